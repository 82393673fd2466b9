"""The OME-Zarr store: resumable after SIGKILL (byte-identical), and readable by ome-zarr-py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from mapping_helpers import HERE, small_request

from mtneuro.datasets.ome_zarr_store import MARKERS, read_map, write_map


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _finished_blocks(markers: Path) -> set[str]:
    """The blocks whose marker is written: not a marker's temporary file (``.<name>.tmp-...``),
    which a kill can leave behind, as it did under load."""
    return {p.name for p in markers.iterdir() if ".tmp-" not in p.name} if markers.is_dir() else set()


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> Path:
    """A small map written in one uninterrupted run (NGFF 0.4)."""
    path = tmp_path_factory.mktemp("map") / "brain_map.ome.zarr"
    stats = write_map(small_request(), path)
    assert stats["computed"] == 3
    return path


def test_killed_run_resumes_to_identical_bytes(written, tmp_path):
    path = tmp_path / "brain_map.ome.zarr"
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "mapping_helpers.py"), str(path)], stdout=subprocess.PIPE, text=True
    )
    markers = path / MARKERS / "blocks"
    deadline = time.monotonic() + 600
    while not _finished_blocks(markers):
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = _finished_blocks(markers)
    assert 1 <= len(done) < 3
    stats = write_map(small_request(), path)
    assert stats["skipped"] == len(done) and stats["computed"] == 3 - len(done)
    assert _files(path) == _files(written)
    # a third run finds the store complete and writes nothing
    assert write_map(small_request(), path)["complete_before"]


def test_changed_settings_start_again(written, tmp_path):
    import shutil

    path = tmp_path / "brain_map.ome.zarr"
    shutil.copytree(written, path)
    stats = write_map(small_request(overrides={"pyramid": {"levels": 2}}), path)
    assert stats["computed"] == 3
    assert len(read_map(path).layers["image"]) == 2


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_ome_zarr_reader_sees_axes_scales_pyramids_and_labels(written, tmp_path, version):
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Label, Multiscales, Reader

    path = written
    if version == "0.5":
        path = tmp_path / "brain_map.ome.zarr"
        write_map(small_request("0.5"), path)
    nodes = list(Reader(parse_url(str(path)))())
    image = nodes[0]
    assert image.load(Multiscales) is not None
    axes = image.metadata["axes"]
    assert [a["name"] for a in axes] == ["z", "y", "x"]
    assert {a["unit"] for a in axes} == {"micrometer"}
    scales = [t[0]["scale"] for t in image.metadata["coordinateTransformations"]]
    assert len(image.data) == 3 and len(scales) == 3
    assert np.allclose(scales[0], [1.17, 1.17, 1.17])
    assert np.allclose(scales[2], [1.17, 4.68, 4.68])
    assert [tuple(d.shape) for d in image.data] == [(2, 256, 768), (2, 128, 384), (2, 64, 192)]
    labels = {n.metadata.get("name"): n for n in nodes if n.load(Label) is not None}
    assert set(labels) == {"microstructure", "regions", "regions_unsmoothed", "tissue"}
    micro = labels["microstructure"].metadata
    assert micro["color"][2] == pytest.approx([40 / 255, 200 / 255, 60 / 255, 1.0])
    assert {v["name"] for v in micro["properties"].values()} == {"background", "vessel", "cell", "axon"}
    regions = labels["regions"].metadata
    assert {v["name"] for v in regions["properties"].values()} == {"CTX", "STR", "VP", "ZI"}
    assert len(labels["regions"].data) == 3
    data = np.asarray(labels["microstructure"].data[0])
    assert data.dtype == np.uint8 and set(np.unique(data)) <= {0, 1, 2, 3}


def test_brain_map_layers_and_features(written):
    brain_map = read_map(written)
    assert set(brain_map.layers) == {"image", "microstructure", "regions", "regions_unsmoothed", "tissue", "features"}
    features = np.asarray(brain_map.layers["features"][0])
    assert features.shape == (5, 2, 2, 6)  # 128-pixel tiles of 256 x 768
    names = brain_map.attributes["features"]
    micro = np.asarray(brain_map.layers["microstructure"][0])
    tile = micro[0, :128, :128]
    assert features[names.index("vessel_fraction"), 0, 0, 0] == pytest.approx((tile == 1).mean())
    regions = np.asarray(brain_map.layers["regions"][0])
    assert set(np.unique(regions)) <= {1, 2, 3, 4}  # all tissue: every voxel mapped
    assert np.asarray(brain_map.layers["tissue"][0]).all()
    # feature display windows fit the values (fractions, counts), not 0-255
    import zarr

    channels = zarr.open_group(str(written / "features"), mode="r").attrs["omero"]["channels"]
    windows = {c["label"]: c["window"] for c in channels}
    assert windows["vessel_fraction"]["end"] <= 1.0
    assert windows["cell_count"]["end"] == pytest.approx(np.nanmax(features[names.index("cell_count")]), rel=0.5)


def test_neuroglancer_state_names_the_store_labels(written):
    """The state beside the store: x-y-z order, the image window, every label layer with the
    store's colours, and segment properties whose names are the store's label names."""
    import json

    import zarr

    from mtneuro.datasets.ome_zarr_store import neuroglancer_paths, segment_properties_folder

    state_path, link_path = neuroglancer_paths(written)
    state = json.loads(state_path.read_text())
    assert list(state["dimensions"]) == ["x", "y", "z"]
    assert state["dimensions"]["x"] == [pytest.approx(1.17e-6), "m"]
    assert state["position"] == pytest.approx([1280 + 384, 640 + 128, 345])
    image = state["layers"][0]
    lo, hi = image["shaderControls"]["normalized"]["range"]
    assert image["source"] == "zarr://http://localhost:8000/brain_map.ome.zarr" and 0 < lo < hi < 255
    store_labels = zarr.open_group(str(written / "labels"), mode="r")
    layers = {layer["name"]: layer for layer in state["layers"][1:]}
    assert set(layers) == set(store_labels.attrs["labels"])
    for name, layer in layers.items():
        meta = store_labels[name].attrs["image-label"]
        names = {str(p["label-value"]): p["name"] for p in meta["properties"] if p["label-value"] != 0}
        colours = {str(c["label-value"]): "#{:02x}{:02x}{:02x}".format(*c["rgba"][:3]) for c in meta["colors"]}
        assert layer["source"][0].endswith(f"brain_map.ome.zarr/labels/{name}")
        assert layer["segmentColors"] == {k: colours[k] for k in names}
        info = json.loads((segment_properties_folder(written) / name / "info").read_text())
        assert info["@type"] == "neuroglancer_segment_properties"
        assert dict(zip(info["inline"]["ids"], info["inline"]["properties"][0]["values"], strict=True)) == names
        assert layer["source"][1].endswith(f"brain_map.neuroglancer/segment_properties/{name}")
    assert link_path.read_text().startswith("https://neuroglancer-demo.appspot.com/#!%7B")


def test_validation_table_uses_dense_truth_far_from_training_cubes(written):
    """Region accuracy over the window (as mapped and unsmoothed), tile disagreement, labels
    outside the tissue; microstructure IoU only on tissue boxes >= min distance from every
    training cube, against the phantom's dense truth (dense_labels=True)."""
    from mapping_helpers import SMALL
    from mapping_support import PHANTOM_VOLUME, PROJECT, mapping_parameters

    from mtneuro.config import load_parameters
    from mtneuro.pipelines.mapping import nodes
    from mtneuro.volumes import Window, open_volume

    ingestion = load_parameters(PROJECT / "conf", "tiny").ingestion
    brain_map = read_map(written)
    # The small window touches the ZI cube: no box is 500 voxels away, so no IoU rows.
    near = nodes.validate_brain_map(brain_map, mapping_parameters("tiny", SMALL), PHANTOM_VOLUME, ingestion)
    assert list(near.columns) == ["metric", "class", "value", "source"]
    assert set(near["metric"]) == {
        "region_accuracy",
        "region_recall",
        "region_tile_disagreement",
        "region_accuracy_unsmoothed",
        "region_recall_unsmoothed",
        "region_tile_disagreement_unsmoothed",
        "region_voxels",
        "region_recall_by_area",
        "region_accuracy_main_areas",
        "non_tissue_labelled_fraction",
        "non_tissue_voxels",
        "tissue_mask_iou",
    }
    value = near.set_index(["metric", "class"])["value"]
    assert 0.0 <= value["region_accuracy", "all"] <= 1.0
    assert 0.0 <= value["region_tile_disagreement", "all"] <= value["region_tile_disagreement_unsmoothed", "all"]
    assert value["region_voxels", "all"] == 2 * 256 * 768
    # With no minimum distance every box counts, and the truth is the phantom's dense labels.
    params = mapping_parameters("tiny", {**SMALL, "validation": {"min_distance_from_training": 0, "max_boxes": 3}})
    table = nodes.validate_brain_map(brain_map, params, PHANTOM_VOLUME, ingestion)
    # The window is ZI, which the 4-class network never trains on: its boxes are scored as
    # another area's (docs/brain-maps.md section 9), not as the target's.
    assert "microstructure_iou" not in set(table["metric"])
    iou = table[table["metric"] == "microstructure_iou_other_areas"].set_index("class")["value"]
    assert set(iou.index) == {"background", "vessel", "cell", "axon", "mean"}
    assert table.query("metric == 'microstructure_voxels_other_areas'")["value"].iloc[0] == 3 * 2 * 256 * 256
    assert "dense truth" in table.query("metric == 'microstructure_iou_other_areas'")["source"].iloc[0]
    assert set(table.query("metric == 'microstructure_iou_by_area'")["class"]) == {"ZI"} | {
        f"ZI:{name}" for name in ("background", "vessel", "cell", "axon")
    }
    window = Window(344, 346, 640, 896, 1280, 2048)
    truth = open_volume("phantom://prasad2020/pixel_labels", seed=0, dense_labels=True).read(window)
    pred = np.asarray(brain_map.layers["microstructure"][0])
    cell = (truth == 2) & (pred == 2)
    assert iou["cell"] == pytest.approx(cell.sum() / ((truth == 2) | (pred == 2)).sum())


def test_nothing_is_labelled_outside_the_tissue(tmp_path):
    """At the tissue's edge (lower right of the section) the mask writes 0 in every label and
    feature; mapping_validation shows the fraction of non-tissue voxels labelled (0)."""
    from mapping_support import PHANTOM_VOLUME, PROJECT, mapping_parameters

    from mtneuro.config import load_parameters
    from mtneuro.pipelines.mapping import nodes

    edge = {
        "window": {"z": [344, 345], "y": [1164, 1420], "x": [5549, 5805]},
        "blocks": {"shape_zyx": [1, 256, 256], "chunks_zyx": [1, 256, 256], "read_chunks_zyx": [1, 512, 512]},
        "pyramid": {"levels": 2},
        "validation": {"min_distance_from_training": 0, "min_tissue_fraction": 0.0},
    }
    path = tmp_path / "brain_map.ome.zarr"
    write_map(small_request(overrides=edge), path)
    brain_map = read_map(path)
    tissue = np.asarray(brain_map.layers["tissue"][0]) > 0
    assert 0.1 < tissue.mean() < 0.9
    for name in ("microstructure", "regions", "regions_unsmoothed"):
        assert not np.asarray(brain_map.layers[name][0])[~tissue].any(), name
    features = np.asarray(brain_map.layers["features"][0])
    tiles = tissue.reshape(1, 2, 128, 2, 128).any(axis=(2, 4))
    assert (features[:, ~tiles] == 0).all()
    ingestion = load_parameters(PROJECT / "conf", "tiny").ingestion
    table = nodes.validate_brain_map(brain_map, mapping_parameters("tiny", edge), PHANTOM_VOLUME, ingestion)
    value = table.set_index(["metric", "class"])["value"]
    # Against the truth, only the mask's edge (a voxel or two of a coarse mask) may be labelled.
    assert value["non_tissue_labelled_fraction", "microstructure"] < 0.03
    assert value["non_tissue_labelled_fraction", "regions"] < 0.03
    assert value["tissue_mask_iou", "tissue"] > 0.9


def test_validation_boxes_keep_their_distance_from_every_training_cube():
    from mapping_support import PROJECT, mapping_parameters

    from mtneuro.config import load_parameters
    from mtneuro.pipelines.mapping import nodes
    from mtneuro.volumes import Window

    params = mapping_parameters("base")
    training = nodes._training_boxes(load_parameters(PROJECT / "conf", "base").ingestion)
    window = Window(344, 376, 0, 1420, 0, 5805)
    boxes = nodes.validation_boxes(window, training, params)
    assert 1 <= len(boxes) <= params.validation.max_boxes
    assert all(nodes.box_distance(b, t) >= 500 for b in boxes for t in training)
    # a box next to a training cube is never chosen
    zi = training[3]
    assert nodes.box_distance(Window(344, 376, zi.y0, zi.y0 + 256, zi.x1, zi.x1 + 256), zi) < 500
