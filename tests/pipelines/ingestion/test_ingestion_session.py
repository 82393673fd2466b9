"""The ingestion pipeline in real Kedro sessions: the phantom, and BossDB over loopback HTTP."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
import zarr

from mtneuro import spec


@contextlib.contextmanager
def _records(logger: str) -> Iterator[list[logging.LogRecord]]:
    """INFO records of one logger (the session's console filter hides them from ``caplog``)."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = records.append  # type: ignore[method-assign]
    log = logging.getLogger(logger)
    level = log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        yield records
    finally:
        log.removeHandler(handler)
        log.setLevel(level)


@pytest.mark.slow
def test_ingestion_pipeline_run_writes_cubes_and_split_index_once(kedro_run, tmp_path):
    kedro_run(["ingestion"], tmp_path)
    cube_dir = tmp_path / "02_intermediate" / "cubes"
    groups = sorted(p.name for p in cube_dir.glob("*.zarr"))
    assert len(groups) == 16 and "main_CTX.zarr" in groups and "extra_ZI_2.zarr" in groups
    main = zarr.open_group(str(cube_dir / "main_VP.zarr"), mode="r")
    assert main["image"].shape == (360, 32, 32) and main["image"].dtype == np.uint8
    assert set(main.array_keys()) == {"image", "roi_labels", "pixel_labels"}
    assert main.attrs["request"]["uris"]["image"] == "phantom://prasad2020/image"
    extra = zarr.open_group(str(cube_dir / "extra_VP_1.zarr"), mode="r")
    assert "pixel_labels" not in set(extra.array_keys())
    assert (np.asarray(extra["roi_labels"][...]) == spec.BRAIN_AREA_VALUES["VP"]).mean() > 0.5

    index = pd.read_parquet(next((tmp_path / "03_primary" / "split_index.parquet").glob("*/split_index.parquet")))
    assert index.groupby(["config", "split"]).size()[("roi_c2", "test")] == 2880
    coords = pd.read_csv(
        next((tmp_path / "01_raw" / "extra_cube_coordinates.csv").glob("*/extra_cube_coordinates.csv"))
    )
    assert len(coords) == 12

    mtimes = {p: p.stat().st_mtime_ns for p in cube_dir.glob("*.zarr/zarr.json")}
    with _records("mtneuro.datasets.cube_store") as records:
        kedro_run(["ingestion"], tmp_path)
    assert any("16 of 16 cubes already on disk and valid" in r.getMessage() for r in records)
    assert {p: p.stat().st_mtime_ns for p in cube_dir.glob("*.zarr/zarr.json")} == mtimes


@pytest.mark.slow
def test_ingestion_from_bossdb_over_http_downloads_once(ingest, tmp_path):
    """The real intern client against a BossDB-compatible server on loopback serving the phantom.

    Host and token come from ``conf/local/credentials.yml`` (a token is never a parameter).
    """
    from bossdb_server import BossDBTestServer

    from mtneuro.volumes import open_volume

    channels = {
        "prasad/prasad2020/image": open_volume("phantom://prasad2020/image"),
        "prasad/prasad_analysis/roi_labels": open_volume("phantom://prasad2020/roi_labels"),
        "prasad/prasad_analysis/pixel_labels": open_volume("phantom://prasad2020/pixel_labels"),
    }
    with BossDBTestServer(channels, num_hierarchy_levels=6, token="s3cret") as server:
        params = {"volume": {"source": "bossdb", "options": {"bossdb": {"backoff": 0.01, "progress": "off"}}}}
        credentials = {"host": server.host, "protocol": "http", "token": "s3cret"}
        server.fail_next(2, status=503)  # transient errors are retried
        ingest(tmp_path, params=params, credentials=credentials)
        first = server.request_count
        assert first > 16 and server.count(status=401) == 0
        cube = zarr.open_group(str(tmp_path / "02_intermediate" / "cubes" / "main_STR.zarr"), mode="r")
        assert cube.attrs["request"]["uris"]["image"] == "bossdb://prasad/prasad2020/image"
        assert cube.attrs["request"]["endpoints"]["image"] == server.url
        expected = channels["prasad/prasad2020/image"].read(cube.attrs["window_zyx"])
        np.testing.assert_array_equal(np.asarray(cube["image"][...]), expected)

        server.reset_counts()
        ingest(tmp_path, params=params, credentials=credentials)
        assert server.request_count == 0  # the second run downloads nothing
