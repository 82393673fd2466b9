"""Fault matrix of ingestion against a real BossDB look-alike on loopback (no mocks).

Each fault asserts its outcome: retried, a clear error (naming what to fix) within the retry
budget, resumed (only the missing cubes fetched), re-fetched (a damaged, stale or foreign cube
is never used).
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import zarr
from bossdb_server import BossDBTestServer
from kedro.io import DatasetError

from mtneuro.cubes import CubeSpec, SectionRequest
from mtneuro.datasets.cube_store import MANIFEST, CubeStoreDataset, SectionOverviewDataset
from mtneuro.volumes import Window

IMAGE, ROI, PIXEL = (
    "prasad/prasad2020/image",
    "prasad/prasad_analysis/roi_labels",
    "prasad/prasad_analysis/pixel_labels",
)
SHAPE = (40, 64, 96)
#: Source options of every request: fast retries, several cutouts per cube (the worker pool runs).
OPTIONS = {
    "retries": 2,
    "backoff": 0.01,
    "backoff_max": 0.05,
    "timeout": 5,
    "progress": "off",
    "chunk_size": [10, 16, 16],
}


def _arrays(seed: int = 3) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        IMAGE: rng.integers(0, 256, size=SHAPE, dtype=np.uint8),
        ROI: rng.integers(0, 9, size=SHAPE, dtype=np.uint64),
        PIXEL: rng.integers(0, 4, size=SHAPE, dtype=np.uint64),
    }


@pytest.fixture
def arrays() -> dict[str, np.ndarray]:
    return _arrays()


@pytest.fixture
def server(arrays):
    with BossDBTestServer(arrays, num_hierarchy_levels=2) as srv:
        yield srv


def _specs(size: int = 16, options: dict | None = None) -> dict[str, CubeSpec]:
    """Four cubes: two main (three channels), two extra (image and roi_labels)."""
    uris = {"image": f"bossdb://{IMAGE}", "roi_labels": f"bossdb://{ROI}", "pixel_labels": f"bossdb://{PIXEL}"}
    extra = {c: uris[c] for c in ("image", "roi_labels")}
    opts = {**OPTIONS, **(options or {})}
    return {
        "main_CTX": CubeSpec("main_CTX", "CTX", "main", Window(0, 20, 0, size, 0, size), dict(uris), opts),
        "main_STR": CubeSpec("main_STR", "STR", "main", Window(10, 30, 32, 32 + size, 40, 40 + size), dict(uris), opts),
        "extra_CTX_0": CubeSpec(
            "extra_CTX_0", "CTX", "extra", Window(20, 40, 0, size, 64, 64 + size), dict(extra), opts
        ),
        "extra_STR_0": CubeSpec(
            "extra_STR_0", "STR", "extra", Window(0, 20, 40, 40 + size, 0, size), dict(extra), opts
        ),
    }


def _store(path: Path, srv: BossDBTestServer, **credentials: str) -> CubeStoreDataset:
    return CubeStoreDataset(str(path), chunks_zyx=(8, 8, 8), credentials={"bossdb": {**srv.options, **credentials}})


def _assert_cubes_equal(cubes, specs, arrays) -> None:
    for cube_id, s in specs.items():
        sl = s.window.as_slices()
        np.testing.assert_array_equal(cubes[cube_id].image, arrays[IMAGE][sl])
        np.testing.assert_array_equal(cubes[cube_id].roi_labels, arrays[ROI][sl])
        if s.role == "main":
            np.testing.assert_array_equal(cubes[cube_id].pixel_labels, arrays[PIXEL][sl])


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cube_cutouts(srv: BossDBTestServer) -> int:
    return sum(1 for r in srv.cutouts if r.resolution == 0)


# -- transport faults ---------------------------------------------------------------------------


def test_transient_503s_are_retried(tmp_path, server, arrays):
    specs = _specs()
    store = _store(tmp_path / "cubes", server)
    server.fail_next(3, status=503)
    store.save(specs)
    assert server.count("cutout", 503) == 3
    assert sorted(store.fetched_cubes) == sorted(specs)
    _assert_cubes_equal(store.load(), specs, arrays)


def test_unknown_channel_is_a_clear_error_and_leaves_no_manifest(tmp_path, server):
    specs = _specs()
    bad = specs["main_STR"]
    specs["main_STR"] = CubeSpec(
        bad.cube_id,
        bad.region,
        bad.role,
        bad.window,
        {**bad.uris, "image": "bossdb://prasad/prasad2020/imgae"},
        bad.options,
    )
    store = _store(tmp_path / "cubes", server)
    with pytest.raises(DatasetError) as error:
        store.save(specs)
    message = str(error.value)
    assert "bossdb://prasad/prasad2020/imgae does not exist" in message and "'volume.uris'" in message
    assert server.count("channel", 404) == 1  # not retried
    assert not (tmp_path / "cubes" / MANIFEST).exists()


def test_unreachable_host_fails_clearly_within_the_retry_budget(tmp_path, server):
    store = _store(tmp_path / "cubes", server, host=f"127.0.0.1:{_closed_port()}")
    start = time.monotonic()
    with pytest.raises(DatasetError) as error:
        store.save(_specs(options={"retries": 3, "backoff": 0.2, "backoff_max": 1}))
    elapsed = time.monotonic() - start
    # urllib3 sleeps 0, 0.4, 0.8 s (+25 % jitter) between the 4 attempts: about 1.3 s
    assert elapsed < 4.0
    message = str(error.value)
    assert "Cannot reach BossDB at http://127.0.0.1:" in message and "after 4 attempts" in message
    assert "conf/local/credentials.yml" in message and "every environment" in message
    assert "'volume.source'" in message


def test_a_failing_download_stops_at_the_first_final_failure(tmp_path, server):
    """Queued cutouts are never sent once one request has used up its retries."""
    server.fail_always(503, kind="cutout")
    retries, workers = 3, 2
    spec = _specs(options={"retries": retries, "backoff": 0.1, "workers": workers, "chunk_size": [4, 8, 8]})
    # main_CTX alone: 5 x 2 x 2 = 20 cutouts per channel
    store = _store(tmp_path / "cubes", server)
    start = time.monotonic()
    with pytest.raises(DatasetError, match="HTTP 503"):
        store.save({"main_CTX": spec["main_CTX"]})
    elapsed = time.monotonic() - start
    # at most the requests in flight ran their retries: never a second cycle of queued chunks
    assert server.request_count <= workers * (retries + 1)
    assert elapsed < 2.0  # one cycle sleeps 0 + 0.2 + 0.4 s (+ jitter)


# -- interrupted runs -------------------------------------------------------------------------

_CHILD = """
import json, sys
from mtneuro.cubes import CubeSpec
from mtneuro.datasets.cube_store import CubeStoreDataset
from mtneuro.volumes import Window
path, credentials, specs = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
store = CubeStoreDataset(path, chunks_zyx=(8, 8, 8), credentials=credentials)
store.save({k: CubeSpec(k, s["region"], s["role"], Window.from_list(s["window"]), s["uris"], s["options"]) for k, s in specs.items()})
"""


def test_killed_ingestion_resumes_and_fetches_only_missing_cubes(tmp_path, server, arrays):
    specs = _specs()
    path = tmp_path / "cubes"
    payload = {
        k: {"region": s.region, "role": s.role, "window": s.window.to_list(), "uris": s.uris, "options": s.options}
        for k, s in specs.items()
    }
    # 2 main cubes x 3 channels x 2 cutouts pass; the third cube's first cutout hangs
    server.delay_next(1, 30, skip=12)
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(path), json.dumps({"bossdb": server.options}), json.dumps(payload)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while server.request_count < 13:  # the child hangs inside the third cube
            assert child.poll() is None, child.stderr.read().decode() if child.stderr else ""
            assert time.monotonic() < deadline
            time.sleep(0.02)
        child.send_signal(signal.SIGKILL)
        assert child.wait(10) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
        server.clear_faults()
    done = sorted(p.name.removesuffix(".zarr") for p in path.glob("*.zarr"))
    assert done == ["main_CTX", "main_STR"]
    assert not (path / MANIFEST).exists()  # a killed save never leaves a manifest to trust
    assert list(path.glob(".*.tmp-*"))  # the cube being written was left half-done

    server.reset_counts()
    store = _store(path, server)
    store.save(specs)
    assert sorted(store.fetched_cubes) == sorted(set(specs) - set(done))
    fetched_boxes = {r.zyx for r in server.cutouts}
    for cube_id in done:  # nothing of a finished cube was requested again
        w = specs[cube_id].window
        assert not any(
            box[0][0] >= w.z0
            and box[0][1] <= w.z1
            and box[1][0] >= w.y0
            and box[1][1] <= w.y1
            and box[2][0] >= w.x0
            and box[2][1] <= w.x1
            for box in fetched_boxes
        )
    assert not list(path.glob(".*.tmp-*"))  # the leftover was removed
    _assert_cubes_equal(store.load(), specs, arrays)


# -- damaged and stale caches ---------------------------------------------------------------------


def _chunk_files(cube: Path, channel: str) -> list[Path]:
    return sorted(p for p in (cube / channel).rglob("*") if p.is_file() and p.name != "zarr.json")


def _damage(kind: str, cube: Path) -> None:
    if kind == "deleted chunk":
        _chunk_files(cube, "image")[1].unlink()
    elif kind == "truncated chunk":
        chunk = _chunk_files(cube, "roi_labels")[0]
        chunk.write_bytes(chunk.read_bytes()[: chunk.stat().st_size // 2])
    elif kind == "edited dtype":
        meta = cube / "pixel_labels" / "zarr.json"
        content = json.loads(meta.read_text())
        content["data_type"] = "uint32"
        meta.write_text(json.dumps(content))
    elif kind == "flipped byte":
        chunk = _chunk_files(cube, "image")[0]
        data = bytearray(chunk.read_bytes())
        data[len(data) // 2] ^= 0xFF
        chunk.write_bytes(bytes(data))


@pytest.mark.parametrize("kind", ["deleted chunk", "truncated chunk", "edited dtype", "flipped byte"])
def test_damaged_cube_is_refetched_on_load_and_on_save(tmp_path, server, arrays, kind, caplog):
    specs = _specs()
    store = _store(tmp_path / "cubes", server)
    store.save(specs)
    cube = tmp_path / "cubes" / "main_STR.zarr"

    _damage(kind, cube)
    assert not store.is_valid(specs["main_STR"]) and store.is_valid(specs["main_CTX"])
    server.reset_counts()
    cubes = store.load()  # a later pipeline: the damaged cube is fetched again, not used
    assert store.fetched_cubes == ["main_STR"]
    assert "main_STR" in caplog.text and "invalid" in caplog.text
    _assert_cubes_equal(cubes, specs, arrays)
    assert server.request_count > 0

    _damage(kind, cube)
    server.reset_counts()
    store.save(specs)  # re-ingestion: only the damaged cube is fetched
    assert store.fetched_cubes == ["main_STR"]
    window = specs["main_STR"].window
    assert {r.zyx[0] for r in server.cutouts} <= {(z, min(z + 10, window.z1)) for z in range(window.z0, window.z1, 10)}
    _assert_cubes_equal(store.load(), specs, arrays)


def test_stale_cache_of_mixed_sizes_is_never_loaded_and_refetched(tmp_path, server, arrays):
    path = tmp_path / "cubes"
    old, new = _specs(size=16), _specs(size=8)
    store = _store(path, server)
    store.save(old)
    # re-ingestion with a new cube size fails on the third cube (after two were written)
    server.fail_next(1, 404, kind="metadata", channel=ROI, skip=2)
    with pytest.raises(DatasetError, match="does not exist"):
        store.save(new)
    assert not store.exists()  # --only-missing-outputs re-runs ingestion
    with pytest.raises(DatasetError, match="No cubes"):
        store.load()
    sizes = {p.name: zarr.open_group(str(p), mode="r")["image"].shape[1] for p in path.glob("*.zarr")}
    assert sizes == {"main_CTX.zarr": 8, "main_STR.zarr": 8, "extra_CTX_0.zarr": 16, "extra_STR_0.zarr": 16}

    server.reset_counts()
    store.save(new)
    assert sorted(store.fetched_cubes) == ["extra_CTX_0", "extra_STR_0"]  # no cube of the old size was reused
    cubes = store.load()
    assert {c.image.shape[1:] for c in cubes.values()} == {(8, 8)}
    _assert_cubes_equal(cubes, new, arrays)

    # a cube replaced behind the manifest's back (another save's) is caught on load
    other = tmp_path / "other"
    _store(other, server).save({"main_CTX": old["main_CTX"]})
    (path / "main_CTX.zarr").rename(tmp_path / "trash.zarr")
    (other / "main_CTX.zarr").rename(path / "main_CTX.zarr")
    cubes = store.load()
    assert store.fetched_cubes == ["main_CTX"] and cubes["main_CTX"].image.shape == (20, 8, 8)


def test_cubes_from_another_server_are_never_reused(tmp_path, arrays):
    other_arrays = {k: (v.max() - v).astype(v.dtype) for k, v in arrays.items()}
    specs = _specs()
    with BossDBTestServer(arrays) as first, BossDBTestServer(other_arrays) as second:
        path = tmp_path / "cubes"
        _store(path, first).save(specs)
        n_first = first.request_count
        group = zarr.open_group(str(path / "main_CTX.zarr"), mode="r")
        assert group.attrs["request"]["endpoints"]["image"] == first.url

        # credentials now point to the second server: loading fetches again from it
        switched = _store(path, second)
        cubes = switched.load()
        assert sorted(switched.fetched_cubes) == sorted(specs)
        _assert_cubes_equal(cubes, specs, other_arrays)
        assert first.request_count == n_first and second.request_count > 0

        # and saving from the first again fetches everything again, from the first only
        second.reset_counts()
        back = _store(path, first)
        back.save(specs)
        assert sorted(back.fetched_cubes) == sorted(specs) and second.request_count == 0
        _assert_cubes_equal(back.load(), specs, arrays)


def test_leftovers_of_interrupted_writes_are_removed(tmp_path, server):
    path = tmp_path / "cubes"
    (path / ".main_CTX.zarr.tmp-0badc0de" / "image").mkdir(parents=True)
    (path / ".main_STR.zarr.old-12345678").mkdir()
    (path / ".manifest.json.tmp-abcdef01").write_text("{")
    store = _store(path, server)
    store.save(_specs())
    assert sorted(p.name for p in path.iterdir()) == sorted([*(f"{k}.zarr" for k in _specs()), MANIFEST])


def test_region_overview_cache_is_per_server_and_depth_comes_from_the_source(tmp_path, arrays):
    request = SectionRequest(f"bossdb://{ROI}", {**OPTIONS}, sections=3, level=1)
    short = {k: v[:12] for k, v in arrays.items()}
    with (
        BossDBTestServer(arrays, num_hierarchy_levels=2) as first,
        BossDBTestServer(short, num_hierarchy_levels=2) as second,
    ):
        path = tmp_path / "overview.npz"
        SectionOverviewDataset(str(path), credentials={"bossdb": first.options}).save(request)
        loaded = SectionOverviewDataset(str(path)).load()
        assert loaded.volume_shape == SHAPE and loaded.z_indices == (10, 20, 29)
        np.testing.assert_array_equal(loaded.sections, arrays[ROI][[10, 20, 29], ::2, ::2])

        dataset = SectionOverviewDataset(str(path), credentials={"bossdb": second.options})
        dataset.save(request)
        assert second.request_count > 0  # not reused from the first server
        loaded = dataset.load()
        assert loaded.volume_shape == (12, 64, 96) and loaded.z_indices == (3, 6, 8)
        first.reset_counts(), second.reset_counts()
        dataset.save(request)
        assert first.request_count == second.request_count == 0  # cached for the same server
        path.write_bytes(path.read_bytes()[:100])  # a damaged cache is read again
        dataset.save(request)
        assert second.request_count > 0
        assert path.stat().st_size > 100


def test_credential_errors_name_the_active_environment(tmp_path, arrays, project_path, monkeypatch):
    from mtneuro.config import config_loader
    from mtneuro.volumes.bossdb import BOSSDB_SESSION_HOOK

    with BossDBTestServer(arrays, token="right-token") as srv:
        store = _store(tmp_path / "cubes", srv, token="wrong-token")
        monkeypatch.setattr(BOSSDB_SESSION_HOOK, "active", False)
        with pytest.raises(DatasetError) as outside:
            store.save(_specs())
        context = SimpleNamespace(env=None, config_loader=config_loader(project_path / "conf", "paper"))
        monkeypatch.setattr(BOSSDB_SESSION_HOOK, "env", None)
        BOSSDB_SESSION_HOOK.after_context_created(context)  # what Kedro calls when a session starts
        with pytest.raises(DatasetError) as inside:
            store.save(_specs())
    for error in (outside, inside):
        message = str(error.value)
        assert "HTTP 401" in message and "conf/local/credentials.yml" in message and "every environment" in message
        assert "wrong-token" not in message and "right-token" not in message
    assert "no Kedro session is active" in str(outside.value)
    assert "the active environment is 'paper'" in str(inside.value)


# -- a full disk --------------------------------------------------------------------------------


def test_a_full_disk_while_writing_a_cube_names_it_and_leaves_nothing_half_written(
    tmp_path, server, arrays, monkeypatch
):
    """ENOSPC injected in Zarr's writer once the cube's first chunks are on disk."""
    import errno

    import zarr.storage

    from mtneuro.faults import DiskFullError

    path = tmp_path / "cubes"
    specs = _specs()
    store = _store(path, server)
    store.save(specs)
    shutil.rmtree(path / "main_CTX.zarr")  # to be fetched again, onto a full disk
    original_set = zarr.storage.LocalStore.set
    written = {"chunks": 0}

    async def set_until_full(self, key, value):
        if key.split("/")[-2:-1] == ["c"] or "/c/" in key:
            written["chunks"] += 1
            if written["chunks"] > 2:
                raise OSError(errno.ENOSPC, "No space left on device")
        return await original_set(self, key, value)

    monkeypatch.setattr(zarr.storage.LocalStore, "set", set_until_full)
    with pytest.raises(DiskFullError) as caught:
        _store(path, server).save(specs)
    message = str(caught.value)
    voxels = int(np.prod(specs["main_CTX"].window.shape))
    needed = voxels * (1 + 8 + 8)  # uint8 image, uint64 labels (uncompressed)
    assert str(path / "main_CTX.zarr") in message and "No space left" in message
    assert caught.value.bytes_needed == needed and "--only-missing-outputs" in message
    assert not list(path.glob(".*tmp-*")) and not (path / "main_CTX.zarr").exists()
    assert not (path / MANIFEST).exists()  # the set is incomplete: nothing trusts it

    monkeypatch.setattr(zarr.storage.LocalStore, "set", original_set)  # space freed: the rerun resumes
    store = _store(path, server)
    store.save(specs)
    assert store.fetched_cubes == ["main_CTX"]
    _assert_cubes_equal(store.load(), specs, arrays)
