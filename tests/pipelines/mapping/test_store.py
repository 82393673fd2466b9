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
    while not (markers.exists() and any(markers.iterdir())):
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = {p.name for p in markers.iterdir()}
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
    assert set(labels) == {"microstructure", "regions"}
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
    assert set(brain_map.layers) == {"image", "microstructure", "regions", "features"}
    features = np.asarray(brain_map.layers["features"][0])
    assert features.shape == (5, 2, 2, 6)  # 128-pixel tiles of 256 x 768
    names = brain_map.attributes["features"]
    micro = np.asarray(brain_map.layers["microstructure"][0])
    tile = micro[0, :128, :128]
    assert features[names.index("vessel_fraction"), 0, 0, 0] == pytest.approx((tile == 1).mean())
    regions = np.asarray(brain_map.layers["regions"][0])
    assert set(np.unique(regions)) <= {1, 2, 3, 4}


def test_validation_table_uses_dense_truth_far_from_training_cubes(written):
    """Region accuracy over the window; microstructure IoU only on boxes >= min distance from
    every training cube, against the phantom's dense truth (dense_labels=True)."""
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
    assert set(near["metric"]) == {"region_accuracy", "region_recall", "region_voxels"}
    accuracy = float(near.query("metric == 'region_accuracy'")["value"].iloc[0])
    assert 0.0 <= accuracy <= 1.0
    assert float(near.query("metric == 'region_voxels'")["value"].iloc[0]) == 2 * 256 * 768
    # With no minimum distance every box counts, and the truth is the phantom's dense labels.
    params = mapping_parameters("tiny", {**SMALL, "validation": {"min_distance_from_training": 0, "max_boxes": 3}})
    table = nodes.validate_brain_map(brain_map, params, PHANTOM_VOLUME, ingestion)
    iou = table[table["metric"] == "microstructure_iou"].set_index("class")["value"]
    assert set(iou.index) == {"background", "vessel", "cell", "axon", "mean"}
    assert table.query("metric == 'microstructure_voxels'")["value"].iloc[0] == 3 * 2 * 256 * 256
    assert "dense truth" in table.query("metric == 'microstructure_iou'")["source"].iloc[0]
    window = Window(344, 346, 640, 896, 1280, 2048)
    truth = open_volume("phantom://prasad2020/pixel_labels", seed=0, dense_labels=True).read(window)
    pred = np.asarray(brain_map.layers["microstructure"][0])
    cell = (truth == 2) & (pred == 2)
    assert iou["cell"] == pytest.approx(cell.sum() / ((truth == 2) | (pred == 2)).sum())


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
