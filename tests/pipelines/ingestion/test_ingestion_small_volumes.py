"""Ingestion in real Kedro sessions on a small 40-slice volume: TIFF, Zarr, and BossDB with a token.

The volume (40 x 96 x 384) has the four regions as bands across x (brain-area values 5, 4, 2,
1) and four unlabelled rows at the top; every size and position comes from runtime parameters,
so these sessions take seconds. The z positions of the coarse sections come from the source's
real depth, not from the benchmark volume's 720 slices.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile
import zarr
from bossdb_server import BossDBTestServer

SHAPE = (40, 96, 384)
BANDS = {"CTX": (288, 384), "STR": (192, 288), "VP": (96, 192), "ZI": (0, 96)}
VALUES = {"CTX": 1, "STR": 2, "VP": 4, "ZI": 5}
TOKEN = "FAKE-SECRET-TOKEN-42"


@pytest.fixture(scope="module")
def small_volume() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(11)
    roi = np.zeros(SHAPE, dtype=np.uint8)
    for region, (lo, hi) in BANDS.items():
        roi[:, 4:, lo:hi] = VALUES[region]
    return {
        "image": rng.integers(0, 256, size=SHAPE, dtype=np.uint8),
        "roi_labels": roi,
        "pixel_labels": rng.integers(0, 4, size=SHAPE, dtype=np.uint8),
    }


def _params(source: str, uris: dict[str, str] | None = None, options: dict | None = None) -> dict:
    volume: dict = {"source": source, "options": {source: options or {}}}
    if uris:
        volume["uris"] = {source: uris}
    return {
        "volume": volume,
        "ingestion": {
            "cube_size_yx": 16,
            "main_cubes": {r: {"z": [4, 36], "y": [40, 56], "x": [lo + 40, lo + 56]} for r, (lo, _) in BANDS.items()},
            "splits": {"train": [4, 24], "val": [24, 28], "test": [30, 36]},
            "extra_cubes": {"depth": 16, "min_separation": 8, "overview_level": 1, "overview_sections": 4},
        },
    }


def _versioned(path: Path) -> Path:
    return next(path.glob(f"*/{path.name}"))


def _check_outputs(data_root: Path, volume: dict[str, np.ndarray]) -> None:
    with np.load(data_root / "01_raw" / "region_overview.npz") as overview:
        assert overview["z_indices"].tolist() == [8, 16, 23, 31]  # spread over 40 slices, not 720
        assert overview["shape"].tolist() == list(SHAPE)
    cubes = data_root / "02_intermediate" / "cubes"
    assert len(list(cubes.glob("*.zarr"))) == 16
    main = zarr.open_group(str(cubes / "main_CTX.zarr"), mode="r")
    np.testing.assert_array_equal(np.asarray(main["image"][...]), volume["image"][4:36, 40:56, 328:344])
    coords = pd.read_csv(_versioned(data_root / "01_raw" / "extra_cube_coordinates.csv"))
    assert len(coords) == 12 and (coords.z1 - coords.z0 == 16).all() and (coords.z1 <= 40).all()
    assert (coords.min_separation == 8).all() and (coords.loc[coords.use == "test", "separation"] >= 8).all()
    for row in coords.itertuples():
        lo, hi = BANDS[row.region]
        assert lo <= row.x0 and row.x1 <= hi and row.y0 >= 4
    index = pd.read_parquet(_versioned(data_root / "03_primary" / "split_index.parquet"))
    counts = index.groupby(["config", "split"]).size()
    assert counts[("roi_c1", "train")] == 4 * 20 and counts[("roi_c1", "test")] == 4 * 6
    assert counts[("roi_c2", "test")] == 8 * 16


def test_a_40_slice_tiff_volume_is_ingested(tmp_path, ingest, small_volume):
    uris = {}
    for channel, data in small_volume.items():
        folder = tmp_path / "tiff" / channel
        folder.mkdir(parents=True)
        for z, section in enumerate(data):
            tifffile.imwrite(folder / f"z{z}.tif", section)
        uris[channel] = f"tiff://{folder}"
    ingest(tmp_path / "data", params=_params("local", uris))
    _check_outputs(tmp_path / "data", small_volume)


def test_a_small_zarr_volume_is_ingested(tmp_path, ingest, small_volume):
    uris = {}
    for channel, data in small_volume.items():
        path = tmp_path / f"{channel}.zarr"
        array = zarr.create_array(store=str(path), shape=data.shape, chunks=(8, 32, 64), dtype=data.dtype)
        array[...] = data
        uris[channel] = f"zarr://{path}"
    ingest(tmp_path / "data", params=_params("local", uris))
    _check_outputs(tmp_path / "data", small_volume)


@contextlib.contextmanager
def _all_logs(path: Path) -> Iterator[logging.Handler]:
    """A file handler that keeps every log line, DEBUG included (the console filter leaves files alone).

    Kedro's own loggers keep the project's level (INFO): at DEBUG, Kedro's hook tracing prints the
    arguments of ``after_catalog_created``, the credentials among them.
    """
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s: %(message)s"))
    names = ["mtneuro", "urllib3", "intern", "requests"]
    levels = {n: logging.getLogger(n).level for n in names}
    for n in names:
        logging.getLogger(n).setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        handler.close()
        for n, level in levels.items():
            logging.getLogger(n).setLevel(level)


def test_the_bossdb_token_is_never_written_or_logged(tmp_path, ingest, small_volume):
    keys = {
        "image": "prasad/prasad2020/image",
        "roi_labels": "prasad/prasad_analysis/roi_labels",
        "pixel_labels": "prasad/prasad_analysis/pixel_labels",
    }
    with BossDBTestServer({keys[c]: a for c, a in small_volume.items()}, token=TOKEN, num_hierarchy_levels=2) as server:
        credentials = {"host": server.host, "protocol": "http", "token": TOKEN}
        params = _params("bossdb", options={"backoff": 0.01, "progress": "off", "chunk_size": [16, 32, 32]})
        with _all_logs(tmp_path / "captured.log") as handler:
            ingest(tmp_path / "data", params=params, credentials=credentials, log_handler=handler)
            assert server.count(status=401) == 0 and server.request_count > 16  # the token was sent
            # a wrong region mapping is found on the coarse sections, before any cube is downloaded
            server.reset_counts()
            wrong = {**params, "volume": {**params["volume"], "region_label_values": {"STR": [4], "VP": [2]}}}
            with pytest.raises(Exception) as error:
                ingest(tmp_path / "wrong", params=wrong, credentials=credentials, log_handler=handler)
        message = str(error.value)
        assert (
            "main_STR" in message and "'volume.region_label_values'" in message and "Nothing was downloaded" in message
        )
        assert server.request_count > 0 and all(r.resolution == 1 for r in server.cutouts)
    _check_outputs(tmp_path / "data", small_volume)

    lines = (tmp_path / "captured.log").read_text().splitlines()
    # all was seen: INFO and DEBUG lines of the project, HTTP requests
    assert any("Cube 16/16" in line for line in lines) and any("GET /v1/cutout" in line for line in lines)
    assert any("Opened BossDBVolume" in line for line in lines)
    assert [line for line in lines if TOKEN in line] == []
    assert TOKEN not in message
    conf = tmp_path / "conf"
    written = [p for p in tmp_path.rglob("*") if p.is_file() and conf not in p.parents and p.name != "captured.log"]
    assert len(written) > 50
    assert [p for p in written if TOKEN.encode() in p.read_bytes()] == []
    info_log = Path("info.log")
    if info_log.exists():
        assert TOKEN not in info_log.read_text(errors="replace")
