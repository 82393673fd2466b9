"""Volume sources: BossDB through the real intern client (loopback server), Zarr, TIFF folders.

``bossdb_server`` lives in ``tests/``, on ``sys.path`` because of ``tests/conftest.py``.
"""

from __future__ import annotations

import logging
import math
import socket
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr
from bossdb_server import BossDBTestServer

from mtneuro.volumes import (
    BossDBVolume,
    ChannelNotFoundError,
    DTypeMismatchError,
    SourceUnreachableError,
    VolumeSource,
    VolumeSourceError,
    Window,
    open_volume,
)

IMAGE = "coll/exp/image"
LABELS = "coll/exp/labels"
FAST = {"retries": 3, "backoff": 0.001, "backoff_max": 0.01, "timeout": 5, "progress": "off"}


@pytest.fixture(scope="module")
def arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    return {
        IMAGE: rng.integers(0, 256, size=(23, 45, 70), dtype=np.uint8),
        LABELS: rng.integers(0, 2**40, size=(23, 45, 70), dtype=np.uint64),
    }


@pytest.fixture
def server(arrays: dict[str, np.ndarray]):
    with BossDBTestServer(arrays, voxel_size=(1.17, 1.17, 1.17), num_hierarchy_levels=4) as srv:
        yield srv


def _open(srv: BossDBTestServer, key: str = IMAGE, **options: object) -> VolumeSource:
    return open_volume(srv.uri(key), **{**srv.options, **FAST, **options})


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _chunks(window: tuple[int, ...], chunk: tuple[int, int, int]) -> int:
    """Boxes of at most ``chunk`` voxels that cover the window (as BossDBVolume splits it)."""
    return math.prod(-(-(hi - lo) // c) for lo, hi, c in zip(window[0::2], window[1::2], chunk))


# ------------------------------------------------------------------------------------------------
# BossDB over HTTP
# ------------------------------------------------------------------------------------------------


def test_bossdb_metadata_and_multichunk_roundtrip(server: BossDBTestServer, arrays: dict[str, np.ndarray]) -> None:
    vol = _open(server, chunk_size=(4, 16, 32), workers=2)
    assert isinstance(vol, BossDBVolume)
    assert vol.shape == (23, 45, 70)
    assert vol.dtype == np.uint8
    assert vol.voxel_size == pytest.approx((1.17, 1.17, 1.17))
    window = (3, 17, 5, 43, 7, 66)  # odd: not aligned to the chunks
    server.reset_counts()
    got = vol.read(window)
    np.testing.assert_array_equal(got, arrays[IMAGE][3:17, 5:43, 7:66])
    assert server.request_count == _chunks(window, (4, 16, 32)) == 4 * 3 * 2
    assert all(r.status == 200 and r.resolution == 0 for r in server.cutouts)
    # no request is larger than a chunk
    for r in server.cutouts:
        (z0, z1), (y0, y1), (x0, x1) = r.zyx
        assert z1 - z0 <= 4 and y1 - y0 <= 16 and x1 - x0 <= 32

    labels = _open(server, LABELS, chunk_size=(8, 64, 64), workers=1)
    assert labels.dtype == np.uint64
    np.testing.assert_array_equal(labels[0:23, 0:45, 0:70], arrays[LABELS])


def test_bossdb_transient_errors_are_retried(
    server: BossDBTestServer, arrays: dict[str, np.ndarray], caplog: pytest.LogCaptureFixture
) -> None:
    vol = _open(server, chunk_size=(8, 64, 64), workers=2)
    window = (0, 20, 0, 45, 0, 70)
    n = _chunks(window, (8, 64, 64))
    server.reset_counts()
    server.fail_next(3, status=503)
    server.drop_next(1)  # connection closed without an answer
    with caplog.at_level(logging.WARNING, logger="mtneuro.volumes"):
        got = vol.read(window)
    np.testing.assert_array_equal(got, arrays[IMAGE][:20])
    assert server.count("cutout", 503) == 3
    assert server.count("cutout", 0) == 1
    assert server.count("cutout", 200) == n
    assert server.request_count == n + 4
    # one warning per retry, from the source (urllib3 retries, mtneuro.volumes logs)
    retries = [r for r in caplog.records if r.name.startswith("mtneuro.volumes") and "retry" in r.getMessage()]
    assert len(retries) == 4
    assert all("bossdb://coll/exp/image" in r.getMessage() for r in retries)


def test_bossdb_read_timeout_is_retried(server: BossDBTestServer, arrays: dict[str, np.ndarray]) -> None:
    vol = _open(server, workers=1, timeout=0.3)
    server.reset_counts()
    server.delay_next(1, 1.0)  # answers after the client gave up
    np.testing.assert_array_equal(vol.read((2, 4, 0, 9, 0, 9)), arrays[IMAGE][2:4, :9, :9])
    deadline = time.monotonic() + 5  # the server records the slow request once it has answered
    while server.request_count < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.request_count == 2


def test_bossdb_retries_give_up_with_a_clear_error(server: BossDBTestServer) -> None:
    vol = _open(server, retries=2, workers=1)
    server.reset_counts()
    server.fail_next(10, status=502)
    with pytest.raises(VolumeSourceError, match="HTTP 502") as err:
        vol.read((0, 1, 0, 4, 0, 4))
    assert "bossdb://coll/exp/image" in str(err.value)
    assert "after 3 attempts" in str(err.value)
    assert "retries" in str(err.value)  # names the option to raise
    assert server.request_count == 3  # 1 + 2 retries


def test_bossdb_dropped_connections_give_up_with_a_clear_error(server: BossDBTestServer) -> None:
    vol = _open(server, retries=1, workers=1)
    server.reset_counts()
    server.drop_next(5)
    with pytest.raises(VolumeSourceError, match="after 2 attempts") as err:
        vol.read((0, 1, 0, 4, 0, 4))
    assert not isinstance(err.value, SourceUnreachableError)  # the server was reached
    assert "bossdb://coll/exp/image" in str(err.value) and "'retries'" in str(err.value)
    assert server.count("cutout", 0) == 2


def test_bossdb_backoff_grows_between_retries(server: BossDBTestServer, arrays: dict[str, np.ndarray]) -> None:
    """urllib3's schedule: the first retry at once, then backoff * 2**(n - 1) (+ up to 25 % jitter)."""
    vol = _open(server, retries=3, backoff=0.2, backoff_max=10, workers=1)
    server.reset_counts()
    server.fail_next(3, status=503)
    start = time.monotonic()
    np.testing.assert_array_equal(vol.read((0, 1, 0, 4, 0, 4)), arrays[IMAGE][:1, :4, :4])
    assert time.monotonic() - start >= 0.4 + 0.8
    assert server.count("cutout", 503) == 3 and server.count("cutout", 200) == 1


def test_bossdb_permanent_error_is_not_retried(server: BossDBTestServer) -> None:
    vol = _open(server, retries=5, workers=1)
    server.reset_counts()
    server.fail_always(403, kind="cutout", channel=IMAGE)
    with pytest.raises(VolumeSourceError) as err:
        vol.read((0, 1, 0, 4, 0, 4))
    message = str(err.value)
    assert "HTTP 403" in message and "bossdb://coll/exp/image" in message
    assert "token" in message and "volume.uris" in message
    assert server.request_count == 1
    server.clear_faults()
    np.testing.assert_array_equal(vol.read((0, 1, 0, 4, 0, 4)).shape, (1, 4, 4))


def test_bossdb_unknown_channel_names_uri_and_parameter(server: BossDBTestServer) -> None:
    server.reset_counts()
    with pytest.raises(ChannelNotFoundError) as err:
        _open(server, "coll/exp/nope")
    message = str(err.value)
    assert "bossdb://coll/exp/nope" in message and "volume.uris" in message and "404" in message
    assert server.metadata_request_count == 1  # a 404 is not retried


def test_bossdb_token_is_sent(arrays: dict[str, np.ndarray]) -> None:
    with BossDBTestServer({IMAGE: arrays[IMAGE]}, token="s3cret") as srv:
        vol = open_volume(srv.uri(IMAGE), **srv.options, **FAST)
        np.testing.assert_array_equal(vol.read((1, 2, 3, 5, 7, 9)), arrays[IMAGE][1:2, 3:5, 7:9])
        with pytest.raises(VolumeSourceError, match="token"):
            open_volume(srv.uri(IMAGE), **{**srv.options, "token": "wrong"}, **FAST)


def test_bossdb_unreachable_names_the_phantom_switch() -> None:
    port = _closed_port()
    with pytest.raises(SourceUnreachableError) as err:
        open_volume(
            "bossdb://prasad/prasad2020/image",
            host=f"127.0.0.1:{port}",
            protocol="http",
            token="public",
            retries=1,
            backoff=0.001,
            timeout=2,
        )
    message = str(err.value)
    assert "volume.source" in message and "'phantom'" in message
    assert f"127.0.0.1:{port}" in message and "after 2 attempts" in message


def test_bossdb_expected_dtype(server: BossDBTestServer) -> None:
    assert _open(server, LABELS, expected_dtype="uint64").dtype == np.uint64
    with pytest.raises(DTypeMismatchError, match=r"uint8.*expected uint64"):
        _open(server, IMAGE, expected_dtype="uint64")


def test_bossdb_window_outside_the_volume(server: BossDBTestServer) -> None:
    vol = _open(server)
    server.reset_counts()
    with pytest.raises(VolumeSourceError, match=r"outside the volume"):
        vol.read((0, 24, 0, 4, 0, 4))
    with pytest.raises(VolumeSourceError, match=r"outside the volume"):
        vol.read((0, 1, 0, 4, 60, 71))
    assert server.request_count == 0


def test_bossdb_sample_sections_uses_the_resolution_level(
    server: BossDBTestServer, arrays: dict[str, np.ndarray]
) -> None:
    vol = _open(server, LABELS, chunk_size=(2, 8, 8), workers=2)
    server.reset_counts()
    zs = [0, 5, 6, 7, 22]
    got = vol.sample_sections(zs, 2)
    assert got.shape == (5, math.ceil(45 / 4), math.ceil(70 / 4)) == (5, 12, 18)
    np.testing.assert_array_equal(got, arrays[LABELS][zs, ::4, ::4])
    assert server.request_count > 1 and {r.resolution for r in server.cutouts} == {2}
    # never a byte of full resolution: the level-2 sections were read, nothing else
    assert sum(math.prod(hi - lo for lo, hi in r.zyx) for r in server.cutouts) == 5 * 12 * 18

    # beyond the stored levels (4: 0..3): the deepest level, strided
    server.reset_counts()
    got = vol.sample_sections([3], 4)
    np.testing.assert_array_equal(got, arrays[LABELS][[3], ::16, ::16])
    assert {r.resolution for r in server.cutouts} == {3}
    with pytest.raises(VolumeSourceError, match="outside the volume"):
        vol.sample_sections([23], 1)


def test_bossdb_sample_sections_isotropic_scales_z(arrays: dict[str, np.ndarray]) -> None:
    with BossDBTestServer({IMAGE: arrays[IMAGE]}, hierarchy_method="isotropic", num_hierarchy_levels=3) as srv:
        vol = open_volume(srv.uri(IMAGE), **srv.options, **FAST)
        got = vol.sample_sections([0, 5, 7, 22], 1)
        # level-1 slab z // 2 of the server's (strided) level 1 is full-resolution z 2 * (z // 2)
        np.testing.assert_array_equal(got, arrays[IMAGE][[0, 4, 6, 22], ::2, ::2])
        assert {r.resolution for r in srv.cutouts} == {1}
        assert sorted({z for r in srv.cutouts for z in range(*r.zyx[0])}) == [0, 2, 3, 11]


def test_bossdb_sample_sections_without_downsampling(arrays: dict[str, np.ndarray]) -> None:
    with BossDBTestServer({IMAGE: arrays[IMAGE]}, downsample_status="NOT_DOWNSAMPLED") as srv:
        vol = open_volume(srv.uri(IMAGE), **srv.options, **FAST)
        np.testing.assert_array_equal(vol.sample_sections([2, 9], 1), arrays[IMAGE][[2, 9], ::2, ::2])
        assert {r.resolution for r in srv.cutouts} == {0}


def test_bossdb_serves_a_volume_source_and_logs_progress(caplog: pytest.LogCaptureFixture) -> None:
    phantom = open_volume("phantom://prasad2020/roi_labels")
    with BossDBTestServer({"prasad/prasad_analysis/roi_labels": phantom}) as srv:
        vol = open_volume(
            srv.uri("prasad/prasad_analysis/roi_labels"),
            **{**srv.options, **FAST, "chunk_size": (2, 32, 32), "progress": "log", "log_interval": 0},
        )
        assert vol.shape == phantom.shape and vol.dtype == np.uint64
        window = Window(300, 304, 600, 640, 1100, 1200)
        with caplog.at_level(logging.INFO, logger="mtneuro.volumes"):
            got = vol.read(window)
        np.testing.assert_array_equal(got, phantom.read(window))
        n = _chunks(tuple(window.to_list()), (2, 32, 32))
        assert sum("chunk " in r.getMessage() and "done" in r.getMessage() for r in caplog.records) == n


# ------------------------------------------------------------------------------------------------
# Local volumes
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def local_volume() -> np.ndarray:
    return np.random.default_rng(3).integers(0, 65535, size=(9, 37, 29), dtype=np.uint16)


def test_zarr_plain_array(tmp_path: Path, local_volume: np.ndarray) -> None:
    path = tmp_path / "vol.zarr"
    arr = zarr.create_array(store=str(path), shape=local_volume.shape, chunks=(4, 16, 16), dtype=local_volume.dtype)
    arr[:] = local_volume
    vol = open_volume(f"zarr://{path}", voxel_size=[2.0, 1.0, 1.0], host="ignored")
    assert vol.shape == local_volume.shape and vol.dtype == np.uint16
    assert vol.voxel_size == (2.0, 1.0, 1.0)
    np.testing.assert_array_equal(vol.read((1, 8, 3, 30, 5, 29)), local_volume[1:8, 3:30, 5:29])
    np.testing.assert_array_equal(vol.sample_sections([0, 8, 4], 2), local_volume[[0, 8, 4], ::4, ::4])
    with pytest.raises(VolumeSourceError, match="outside the volume"):
        vol.read((0, 10, 0, 1, 0, 1))
    with pytest.raises(DTypeMismatchError):
        open_volume(f"zarr://{path}", expected_dtype="uint8")


def test_zarr_named_array_in_a_group(tmp_path: Path, local_volume: np.ndarray) -> None:
    group = zarr.open_group(str(tmp_path / "store.zarr"), mode="w")
    group.create_array("raw", shape=local_volume.shape, dtype=local_volume.dtype)[:] = local_volume
    group.create_array("other", shape=(2, 2, 2), dtype="uint8")
    vol = open_volume(f"zarr://{tmp_path / 'store.zarr'}?array=raw")
    np.testing.assert_array_equal(vol.read((0, 9, 0, 37, 0, 29)), local_volume)
    with pytest.raises(VolumeSourceError, match=r"\?array=<name>.*other, raw"):
        open_volume(f"zarr://{tmp_path / 'store.zarr'}")
    with pytest.raises(ChannelNotFoundError, match="no array 'missing'"):
        open_volume(f"zarr://{tmp_path / 'store.zarr'}?array=missing")


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_ome_zarr_multiscale_uses_lower_levels(tmp_path: Path, local_volume: np.ndarray, zarr_format: int) -> None:
    """OME-Zarr 0.4 (Zarr v2) and 0.5 (Zarr v3) groups; axes c, z, y, x with one channel."""
    path = tmp_path / "ome.zarr"
    group = zarr.open_group(str(path), mode="w", zarr_format=zarr_format)
    # Level k = the volume strided by 2**k, plus k so that the test sees which level was read.
    levels = [local_volume[:, :: 2**k, :: 2**k] + k for k in range(3)]
    for k, data in enumerate(levels):
        group.create_array(str(k), shape=(1, *data.shape), dtype=data.dtype, chunks=(1, 4, 16, 16))[:] = data[None]
    multiscales = [
        {
            "version": "0.4" if zarr_format == 2 else "0.5",
            "axes": [{"name": "c", "type": "channel"}]
            + [{"name": a, "type": "space", "unit": "micrometer"} for a in "zyx"],
            "datasets": [
                {
                    "path": str(k),
                    "coordinateTransformations": [{"type": "scale", "scale": [1.0, 1.17, 1.17 * 2**k, 1.17 * 2**k]}],
                }
                for k in range(3)
            ],
        }
    ]
    if zarr_format == 2:
        group.attrs["multiscales"] = multiscales
    else:
        group.attrs["ome"] = {"version": "0.5", "multiscales": multiscales}

    vol = open_volume(f"zarr://{path}")
    assert vol.shape == local_volume.shape and vol.dtype == np.uint16
    assert vol.voxel_size == pytest.approx((1.17, 1.17, 1.17))
    np.testing.assert_array_equal(vol.read((2, 7, 1, 36, 0, 29)), local_volume[2:7, 1:36, :])
    zs = [0, 3, 8]
    np.testing.assert_array_equal(vol.sample_sections(zs, 0), local_volume[zs])
    np.testing.assert_array_equal(vol.sample_sections(zs, 1), local_volume[zs, ::2, ::2] + 1)
    np.testing.assert_array_equal(vol.sample_sections(zs, 2), local_volume[zs, ::4, ::4] + 2)
    np.testing.assert_array_equal(vol.sample_sections(zs, 3), local_volume[zs, ::8, ::8] + 2)
    assert vol.sample_sections(zs, 3).shape == (3, math.ceil(37 / 8), math.ceil(29 / 8))


class _ArrayVolume(VolumeSource):
    """A numpy array as a VolumeSource, to exercise the base-class defaults."""

    uri = "array://test"

    def __init__(self, data: np.ndarray) -> None:
        self.data = data
        self.reads: list[Window] = []

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.data.shape  # type: ignore[return-value]

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    def _read(self, window: Window) -> np.ndarray:
        self.reads.append(window)
        return self.data[window.as_slices()]


def test_default_sample_sections_strides(local_volume: np.ndarray) -> None:
    vol = _ArrayVolume(local_volume)
    for level in (0, 1, 2, 3, 6):
        got = vol.sample_sections([4, 0, 4], level)
        assert got.shape == (3, math.ceil(37 / 2**level), math.ceil(29 / 2**level))
        np.testing.assert_array_equal(got, local_volume[[4, 0, 4], :: 2**level, :: 2**level])
    assert all(w.z1 - w.z0 == 1 for w in vol.reads)
    with pytest.raises(VolumeSourceError, match="outside the volume"):
        vol.sample_sections([9], 1)
    with pytest.raises(VolumeSourceError, match="level"):
        vol.sample_sections([0], -1)


def test_bossdb_volume_pickles(server: BossDBTestServer, arrays: dict[str, np.ndarray]) -> None:
    import pickle

    vol = pickle.loads(pickle.dumps(_open(server)))
    np.testing.assert_array_equal(vol.read((0, 2, 0, 3, 0, 4)), arrays[IMAGE][:2, :3, :4])


def _write_slices(folder: Path, volume: np.ndarray) -> list[Path]:
    folder.mkdir()
    paths = []
    for z, section in enumerate(volume):
        # natural order: slice_2 before slice_10 (plain sorting would put 10 first)
        p = folder / f"slice_{z + 1}.tif"
        tifffile.imwrite(p, section, compression="zlib" if z % 2 else None)
        paths.append(p)
    (folder / "notes.txt").write_text("not a slice")
    return paths


def test_tiff_folder(tmp_path: Path) -> None:
    volume = np.random.default_rng(5).integers(0, 256, size=(12, 21, 17), dtype=np.uint8)
    _write_slices(tmp_path / "slices", volume)
    vol = open_volume(f"tiff://{tmp_path / 'slices'}", expected_dtype="uint8", voxel_size=1.17)
    assert vol.shape == (12, 21, 17) and vol.voxel_size == (1.17, 1.17, 1.17)
    np.testing.assert_array_equal(vol.read((0, 12, 0, 21, 0, 17)), volume)
    np.testing.assert_array_equal(vol.read((8, 11, 3, 20, 1, 2)), volume[8:11, 3:20, 1:2])
    np.testing.assert_array_equal(vol.sample_sections([11, 1, 9], 1), volume[[11, 1, 9], ::2, ::2])
    with pytest.raises(VolumeSourceError, match="outside the volume"):
        vol.read((11, 13, 0, 1, 0, 1))


def test_tiff_folder_inconsistent_slices_name_the_file(tmp_path: Path) -> None:
    volume = np.zeros((4, 8, 8), dtype=np.uint8)
    paths = _write_slices(tmp_path / "shape", volume)
    tifffile.imwrite(paths[2], np.zeros((8, 9), dtype=np.uint8))
    with pytest.raises(VolumeSourceError, match=r"slice_3\.tif.*shape \(8, 9\)"):
        open_volume(f"tiff://{tmp_path / 'shape'}")
    paths = _write_slices(tmp_path / "dtype", volume)
    tifffile.imwrite(paths[3], np.zeros((8, 8), dtype=np.uint16))
    with pytest.raises(VolumeSourceError, match=r"slice_4\.tif.*uint16"):
        open_volume(f"tiff://{tmp_path / 'dtype'}")


@pytest.mark.parametrize("scheme", ["zarr", "tiff"])
def test_missing_local_path_names_path_and_parameter(tmp_path: Path, scheme: str) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(ChannelNotFoundError) as err:
        open_volume(f"{scheme}://{missing}")
    assert str(missing) in str(err.value) and "volume.uris" in str(err.value)


def test_unknown_scheme_lists_the_known_ones() -> None:
    with pytest.raises(VolumeSourceError) as err:
        open_volume("s3://bucket/volume")
    message = str(err.value)
    for scheme in ("bossdb://", "phantom://", "tiff://", "zarr://"):
        assert scheme in message
    assert "volume.source" in message
