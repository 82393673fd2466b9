"""Ingestion nodes and the cube store: extra-cube choice, split index, label checks, caching."""

from __future__ import annotations

import json
import logging
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import zarr
from kedro.io import DatasetError

from mtneuro import spec
from mtneuro.cubes import Cube, CubeSpec, SectionOverview, SectionRequest
from mtneuro.datasets.cube_store import CubeStoreDataset
from mtneuro.pipelines.ingestion import nodes
from mtneuro.volumes import VolumeSource, VolumeSourceError, Window, register_scheme


def _band_overview(level: int = 4) -> SectionOverview:
    """Coarse sections with the four regions as x bands around the main cubes."""
    scale = 2**level
    ny, nx = -(-1420 // scale), -(-5805 // scale)
    section = np.zeros((ny, nx), dtype=np.uint64)
    x = np.arange(nx) * scale
    for region, (lo, hi) in {"ZI": (1000, 2400), "VP": (2700, 3450), "STR": (3500, 4300), "CTX": (4400, 5700)}.items():
        section[:, (x >= lo) & (x < hi)] = spec.BRAIN_AREA_VALUES[region]
    z_indices = [80, 160, 240, 320, 400, 480, 560, 640]
    return SectionOverview(
        request=SectionRequest("phantom://prasad2020/roi_labels", {"seed": 0}, len(z_indices), level),
        sections=np.stack([section] * len(z_indices)),
        z_indices=tuple(z_indices),
        volume_shape=spec.VOLUME_SHAPE,
    )


def test_main_cube_windows_are_centre_crops(ingestion, parameters_with):
    assert ingestion.cube_size_yx == 128
    windows = nodes.main_cube_windows(ingestion)
    assert windows["CTX"] == Window(110, 470, 964, 1092, 4664, 4792)
    assert all(w.shape == (360, 128, 128) for w in windows.values())
    paper = nodes.main_cube_windows(parameters_with("paper").ingestion)
    assert paper["CTX"] == Window(110, 470, 900, 1156, 4600, 4856)  # the whole 256 x 256 box


def test_extra_cubes_are_deterministic_disjoint_and_inside_their_region(volume, ingestion, parameters_with):
    overview = _band_overview()
    table = nodes.choose_extra_cubes(overview, volume, ingestion)
    again = nodes.choose_extra_cubes(overview, volume, ingestion)
    pd.testing.assert_frame_equal(table, again)
    assert len(table) == 12
    assert table.groupby("region").size().to_dict() == dict.fromkeys(spec.REGIONS, 3)
    assert (table.groupby("region")["use"].apply(lambda u: (u == "train").sum()) == 1).all()
    bands = {"ZI": (1000, 2400), "VP": (2700, 3450), "STR": (3500, 4300), "CTX": (4400, 5700)}
    boxes = [tuple(r) for r in table[["z0", "z1", "y0", "y1", "x0", "x1"]].itertuples(index=False)]
    boxes += [tuple(w.to_list()) for w in nodes.main_cube_windows(ingestion).values()]
    for row in table.itertuples():
        lo, hi = bands[row.region]
        assert lo <= row.x0 and row.x1 <= hi
        assert row.z1 - row.z0 == 360 and row.y1 - row.y0 == ingestion.cube_size_yx
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert not nodes._overlaps(a, b), (a, b)
    other_seed = nodes.choose_extra_cubes(
        overview, volume, parameters_with(**{"ingestion.extra_cubes.seed": 1}).ingestion
    )
    assert not other_seed[["x0", "y0"]].equals(table[["x0", "y0"]])


def test_pinned_extra_cubes_replace_the_choice(volume, parameters_with):
    pinned = {"extra_CTX_0": {"z0": 0, "y0": 100, "x0": 5000}}
    params = parameters_with(**{"ingestion.extra_cubes.pinned": pinned}).ingestion
    table = nodes.choose_extra_cubes(_band_overview(), volume, params).set_index("cube_id")
    assert table.loc["extra_CTX_0", ["z0", "y0", "x0"]].tolist() == [0, 100, 5000]
    assert bool(table.loc["extra_CTX_0", "pinned"])


def test_impossible_extra_cubes_fail_naming_the_parameters(volume, parameters_with):
    far = parameters_with(**{"ingestion.extra_cubes.min_separation": 3000}).ingestion
    with pytest.raises(nodes.IngestionError, match=r"extra_CTX_\d.*min_region_fraction.*min_separation"):
        nodes.choose_extra_cubes(_band_overview(), volume, far)
    overview = _band_overview()
    overview.sections[overview.sections == spec.BRAIN_AREA_VALUES["VP"]] = spec.BRAIN_AREA_VALUES["ZI"]
    with pytest.raises(nodes.IngestionError, match=r"main_VP.*region_label_values.*ingestion\.main_cubes\.VP"):
        nodes.choose_extra_cubes(overview, volume, parameters_with().ingestion)


def test_main_cube_outside_the_volume_names_the_cube_and_the_key(volume, ingestion):
    overview = replace(_band_overview(), volume_shape=(720, 1420, 4800))  # CTX spans x = [4600, 4856)
    with pytest.raises(nodes.IngestionError) as error:
        nodes.choose_extra_cubes(overview, volume, ingestion)
    message = str(error.value)
    assert "main_CTX" in message and "'ingestion.main_cubes.CTX'" in message and "x = [4600, 4856)" in message
    assert "(720, 1420, 4800)" in message


def test_extra_cubes_deeper_than_the_volume_name_the_parameter(volume, ingestion):
    overview = _band_overview()
    overview = replace(overview, volume_shape=(300, 1420, 5805), z_indices=(60, 120, 180, 240))
    overview = replace(overview, sections=overview.sections[:4])
    shallow = ingestion.model_copy(
        update={
            "main_cubes": ingestion.main_cubes.model_copy(
                update={
                    r: ingestion.main_cubes.by_region()[r].model_copy(update={"z": [10, 290]}) for r in spec.REGIONS
                }
            )
        }
    )
    with pytest.raises(nodes.IngestionError, match=r"ingestion\.extra_cubes\.depth"):
        nodes.choose_extra_cubes(overview, volume, shallow)


def test_the_request_carries_the_source_and_its_options(volume, ingestion, parameters_with):
    request = nodes.plan_region_overview(volume, ingestion)
    # the z positions come from the source's real depth, when the dataset opens it
    assert request == SectionRequest("phantom://prasad2020/roi_labels", {"seed": 0}, sections=8, level=4)
    boss = parameters_with(**{"volume.source": "bossdb", "volume.options.bossdb.retries": 2}).volume
    request = nodes.plan_region_overview(boss, ingestion)
    # exactly the options the YAML sets: host and token come from the credentials
    assert request.uri == "bossdb://prasad/prasad_analysis/roi_labels" and request.options == {"retries": 2}


def _fake_cubes(ingestion, size=4) -> tuple[dict[str, Cube], pd.DataFrame]:
    cubes = {}
    rows = []
    for region in spec.REGIONS:
        value = spec.BRAIN_AREA_VALUES[region]
        w = nodes.main_cube_windows(ingestion.model_copy(update={"cube_size_yx": size}))[region]
        s = CubeSpec(f"main_{region}", region, "main", w, {})
        cubes[s.cube_id] = Cube(
            s, np.zeros(w.shape, np.uint8), np.full(w.shape, value, np.uint64), np.zeros(w.shape, np.uint8)
        )
        for k in range(3):
            w = Window(0, 360, 0, size, 0, size)
            s = CubeSpec(f"extra_{region}_{k}", region, "extra", w, {})
            cubes[s.cube_id] = Cube(s, np.zeros(w.shape, np.uint8), np.full(w.shape, value, np.uint64), None)
            rows.append({"cube_id": s.cube_id, "region": region, "use": "train" if k == 0 else "test"})
    return cubes, pd.DataFrame(rows)


def test_split_index_matches_the_benchmark_counts(ingestion):
    cubes, extra = _fake_cubes(ingestion)
    index = nodes.build_split_index(cubes, pd.DataFrame(), extra, ingestion)
    counts = index.groupby(["config", "split"]).size().to_dict()
    assert counts[("roi_c1", "train")] == 4 * 270
    assert counts[("roi_c1", "val")] == 4 * 30
    assert counts[("roi_c1", "test")] == 4 * 50
    assert counts[("roi_c2", "train")] + counts[("roi_c2", "val")] == 1200
    assert counts[("roi_c2", "test")] == 2880
    assert counts[("roi_c3", "train")] + counts[("roi_c3", "val")] == 1200 + 4 * 360
    assert counts[("roi_c3", "test")] == 2880
    assert counts[("seg_3class", "train")] == 1080 and counts[("seg_3class", "test")] == 200
    assert counts[("seg_4class", "train")] == 810 and counts[("seg_4class", "test")] == 150
    assert counts[("probing", "all")] == 1440
    assert "ZI" not in set(index.loc[index.config == "seg_4class", "region"])
    # the 10 slices between validation and test belong to no split
    assert not index.loc[index.config == "roi_c1", "z_abs"].between(410, 419).any()
    # test cubes of C2/C3 never appear in training
    c3 = index[index.config == "roi_c3"]
    assert set(c3.loc[c3.split == "train", "cube_id"]).isdisjoint(c3.loc[c3.split == "test", "cube_id"])
    row = index[(index.config == "roi_c1") & (index.cube_id == "main_VP")].iloc[0]
    assert row.z == 0 and row.z_abs == 110 and row.label == spec.REGION_INDEX["VP"]


def test_label_check_fails_when_a_cube_misses_its_region(volume, ingestion, caplog):
    cubes, _ = _fake_cubes(ingestion)
    with caplog.at_level(logging.INFO):
        hist = nodes.label_histograms(cubes, volume, ingestion)
    assert "Cube main_CTX (CTX)" in caplog.text
    ctx = hist[(hist.cube_id == "main_CTX") & (hist.channel == "roi_labels")]
    assert ctx.value.tolist() == [1] and ctx.fraction.tolist() == [1.0]
    cubes["main_STR"].roi_labels[:] = spec.BRAIN_AREA_VALUES["VP"]
    with pytest.raises(nodes.IngestionError, match=r"main_STR.*region_label_values"):
        nodes.label_histograms(cubes, volume, ingestion)


# --- the cube store -------------------------------------------------------------------------


class _CountingVolume(VolumeSource):
    """A small in-memory volume that counts reads and can fail part-way."""

    reads = 0
    fail = False

    def __init__(self, uri: str, **options: object) -> None:
        self.uri = uri
        self._shape = (40, 50, 60)
        self._dtype = np.dtype(np.uint8)

    def _read(self, window):
        type(self).reads += 1
        if type(self).fail and "pixel" in self.uri:
            raise VolumeSourceError("connection lost")
        z, y, x = np.meshgrid(
            *(np.arange(a, b) for a, b in zip(window.to_list()[::2], window.to_list()[1::2])), indexing="ij"
        )
        return ((z + 2 * y + 3 * x) % 251).astype(np.uint8)


register_scheme("counting")(_CountingVolume)


def _spec(cube_id="main_CTX", y0=0) -> CubeSpec:
    uris = {c: f"counting://vol/{c}" for c in ("image", "roi_labels", "pixel_labels")}
    return CubeSpec(cube_id, "CTX", "main", Window(0, 20, y0, y0 + 16, 0, 16), uris)


def test_cube_store_round_trip_metadata_and_no_second_read(tmp_path):
    store = CubeStoreDataset(str(tmp_path / "cubes"), chunks_zyx=(8, 8, 8))
    _CountingVolume.reads, _CountingVolume.fail = 0, False
    store.save({"main_CTX": _spec()})
    assert store.fetched_cubes == ["main_CTX"] and _CountingVolume.reads == 3
    cube = store.load()["main_CTX"]
    assert cube.image.shape == (20, 16, 16) and cube.image.dtype == np.uint8
    np.testing.assert_array_equal(cube.image[1, 2, 3], (1 + 4 + 9) % 251)
    # readable without this package
    group = zarr.open_group(str(tmp_path / "cubes" / "main_CTX.zarr"), mode="r")
    assert group.attrs["window_zyx"] == [0, 20, 0, 16, 0, 16]
    assert group.attrs["request"]["uris"]["image"] == "counting://vol/image"
    assert group.attrs["dtypes"] == {"image": "uint8", "roi_labels": "uint8", "pixel_labels": "uint8"}
    assert group["image"].attrs["source_uri"] == "counting://vol/image"
    # a second save of the same request reads nothing
    store.save({"main_CTX": _spec()})
    assert store.fetched_cubes == [] and _CountingVolume.reads == 3
    # another request for the same id is fetched again
    store.save({"main_CTX": _spec(y0=5)})
    assert store.fetched_cubes == ["main_CTX"]
    manifest = json.loads((tmp_path / "cubes" / "manifest.json").read_text())
    assert list(manifest["cubes"]) == ["main_CTX"]
    entry = manifest["cubes"]["main_CTX"]
    assert entry["request"]["window_zyx"] == [0, 20, 5, 21, 0, 16]
    assert entry["request"]["endpoints"] == dict.fromkeys(("image", "roi_labels", "pixel_labels"), "counting")
    assert entry["checksums"]["image"].startswith("sha256:") and entry["dtypes"]["image"] == "uint8"


def test_interrupted_fetch_keeps_the_old_cube_and_leaves_nothing_half_written(tmp_path):
    store = CubeStoreDataset(str(tmp_path / "cubes"))
    _CountingVolume.fail = False
    store.save({"main_CTX": _spec()})
    before = store.load()["main_CTX"].image.copy()
    _CountingVolume.fail = True
    with pytest.raises(DatasetError, match="connection lost"):
        store.save({"main_CTX": _spec(y0=5)})
    _CountingVolume.fail = False
    leftovers = [p.name for p in (tmp_path / "cubes").iterdir() if p.name.startswith(".")]
    assert leftovers == []
    # the interrupted save removed the manifest: nothing loads, and Kedro sees no output
    assert not store.exists()
    with pytest.raises(DatasetError, match="No cubes"):
        store.load()
    assert not store.is_valid(_spec(y0=5))
    # the old cube is intact and is reused by a save of its own request
    reads = _CountingVolume.reads
    store.save({"main_CTX": _spec()})
    assert store.fetched_cubes == [] and _CountingVolume.reads == reads
    np.testing.assert_array_equal(store.load()["main_CTX"].image, before)


def test_extra_coordinates_of_other_parameters_are_never_used(volume, ingestion, parameters_with):
    table = nodes.choose_extra_cubes(_band_overview(), volume, ingestion)
    requests = nodes.plan_cubes(table, volume, ingestion)
    assert {s.window.shape for s in requests.values()} == {(360, 128, 128)}
    paper = parameters_with(**{"ingestion.cube_size_yx": 256}).ingestion
    with pytest.raises(nodes.IngestionError, match=r"y1 - y0 = \[128\] but 'ingestion.cube_size_yx' = 256"):
        nodes.plan_cubes(table, volume, paper)
    wider = parameters_with(**{"ingestion.extra_cubes.min_separation": 300}).ingestion
    with pytest.raises(nodes.IngestionError, match="min_separation"):
        nodes.plan_cubes(table, volume, wider)
