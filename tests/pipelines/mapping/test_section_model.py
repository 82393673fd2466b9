"""The map's section region model (``mapping.regions.model: section``): its patches are held out
from the mapped window in z and carry the Task 1 class of their roi_labels values."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from mapping_support import mapping_parameters
from pydantic import ValidationError

from mtneuro import spec
from mtneuro.config import load_parameters
from mtneuro.pipelines.mapping import create_pipeline, nodes
from mtneuro.pipelines.mapping.engine import MappingError
from mtneuro.pipelines.mapping.section import sample_section_patches, section_requests, train_section_region_model
from mtneuro.volumes import Window

from mapping_support import PROJECT  # isort: skip

SHAPE = (720, 1420, 5805)


def _outside_gap(z: np.ndarray, window: Window, gap: int) -> np.ndarray:
    return (z < window.z0 - gap) | (z >= window.z1 + gap)


def test_default_reads_are_few_whole_plane_requests_outside_the_gap():
    params = mapping_parameters("base")
    assert params.regions.model == "section"
    window = nodes.mapping_window(params, SHAPE)
    requests = section_requests(params, window, SHAPE)
    gap = params.regions.section.min_gap_z
    assert len(requests) == 2  # one below, one above the slab: each request pays the phantom's blur padding
    for w in requests:
        assert (w.y0, w.y1, w.x0, w.x1) == (0, SHAPE[1], 0, SHAPE[2])
        assert _outside_gap(np.arange(w.z0, w.z1), window, gap).all(), w
    assert [w.to_list()[:2] for w in requests] == [[292, 296], [400, 404]]


def test_distances_within_the_gap_and_a_full_window_are_refused():
    with pytest.raises(ValidationError, match=r"closer to the mapped window than regions\.section\.min_gap_z"):
        mapping_parameters("base", {"regions": {"section": {"distances_z": [8]}}})
    with pytest.raises(ValidationError, match=r"mapping\.window=full,mapping\.regions\.model=best"):
        mapping_parameters("base", {"window": "full"})
    # a window that leaves no slice far enough away
    thick = mapping_parameters("base", {"window": {"z": [30, 700], "y": [0, 1420], "x": [0, 5805]}})
    with pytest.raises(MappingError, match=r"mapping\.regions\.model: best"):
        section_requests(thick, nodes.mapping_window(thick, SHAPE), SHAPE)


def test_the_pipeline_trains_the_section_model_and_reads_no_task1_run():
    pipe = create_pipeline(SimpleNamespace(mapping=mapping_parameters("base")))
    assert "frozen_encoders" not in pipe.inputs()
    assert {"mapping.sample_section_patches", "mapping.train_section_region_model"} <= {n.name for n in pipe.nodes}
    assert "region_section_patches" in pipe.all_outputs()
    best = create_pipeline(SimpleNamespace(mapping=mapping_parameters("base", {"regions": {"model": "best"}})))
    assert "frozen_encoders" in best.inputs() and "mapping.choose_region_model" in {n.name for n in best.nodes}


#: A strip of the plane that crosses VP, internal capsule (ZI), STR, corpus callosum (STR) and
#: CTX: every class, and areas the grouping merges, at the cost of the tiny profile's own box.
STRIP = {"y": [512, 768], "x": [2560, 4608]}


@pytest.fixture(scope="module")
def tiny_patches():
    params = load_parameters(PROJECT / "conf", "tiny")
    mapping = mapping_parameters("tiny", {"regions": {"section": {"extent_yx": STRIP}}})
    return SimpleNamespace(
        mapping=mapping, volume=params.volume, classification=params.classification, training=params.training
    ), sample_section_patches(mapping, params.volume)


def _label_mismatches(patches, mapping, volume) -> list[int]:
    """Patches whose label is not the majority class (by ``volume.region_label_values``, outside
    ``validation.unlabelled_values``) of their region cell, re-read from roi_labels."""
    stride, fraction = mapping.regions.stride, mapping.regions.section.min_cell_fraction
    value_class = {v: i for i, r in enumerate(spec.REGIONS) for v in volume.region_values()[r]}
    ignored = set(mapping.validation.unlabelled_values)
    roi = nodes.open_channel(volume, "roi_labels")
    z, y, x, h = patches["z"], patches["y"], patches["x"], stride // 2
    wrong = []
    for i, label in enumerate(patches["labels"]):
        cell = roi.read(Window(z[i], z[i] + 1, y[i] - h, y[i] + h, x[i] - h, x[i] + h)).ravel()
        classes = np.array([-1 if int(v) in ignored else value_class.get(int(v), -1) for v in cell])
        counts = np.bincount(classes[classes >= 0], minlength=len(spec.REGIONS))
        if counts.argmax() != label or counts.max() < fraction * stride * stride:
            wrong.append(i)
    return wrong


def test_patches_are_held_out_from_the_window_and_labelled_by_the_value_mapping(tiny_patches):
    params, patches = tiny_patches
    mapping, volume = params.mapping, params.volume
    s, p = mapping.regions.section, mapping.regions.patch_size
    window = Window.from_list(patches["window"])
    labels = patches["labels"]
    assert len(labels) > 0 and patches["images"].shape == (len(labels), p, p)
    assert _outside_gap(patches["z"], window, s.min_gap_z).all()
    assert not _outside_gap(np.arange(window.z0 - s.min_gap_z, window.z1 + s.min_gap_z), window, s.min_gap_z).any()
    assert _label_mismatches(patches, mapping, volume) == []
    assert not set(patches["value"].tolist()) & set(mapping.validation.unlabelled_values)  # tissue only
    assert set(np.unique(labels).tolist()) == set(range(len(spec.REGIONS)))  # the strip holds every class
    assert {6, 8} <= set(patches["value"].tolist())  # internal capsule (ZI), corpus callosum (STR)
    # the images are the volume's voxels around the centre (two patches read on their own)
    image = nodes.open_channel(volume, "image")
    z, y, x, h = patches["z"], patches["y"], patches["x"], p // 2
    for i in (0, len(labels) - 1):
        own = image.read(Window(z[i], z[i] + 1, y[i] - h, y[i] - h + p, x[i] - h, x[i] - h + p))[0]
        np.testing.assert_array_equal(patches["images"][i], own)
    # deterministic from the seed
    again = sample_section_patches(mapping, volume)
    np.testing.assert_array_equal(again["images"], patches["images"])
    np.testing.assert_array_equal(again["labels"], labels)


def test_mislabelled_patches_are_caught(tiny_patches):
    """The label check can fail: raw roi_labels values as classes (hypothalamus 7 is ZI, not 6)
    or shifted classes disagree with the value mapping."""
    params, patches = tiny_patches
    for labels in (patches["value"] - 1, (patches["labels"] + 1) % len(spec.REGIONS)):
        if (labels == patches["labels"]).all():
            continue
        assert _label_mismatches({**patches, "labels": labels}, params.mapping, params.volume)


def test_section_model_trains_with_the_task1_trainer(tiny_patches):
    params, patches = tiny_patches
    encoder, readout, selection = train_section_region_model(
        patches, params.mapping, params.classification, params.training
    )
    assert selection["run"] == "section.supervised.seed0"
    assert selection["section_patches"] == len(patches["labels"])
    assert encoder.metadata["method"] == "supervised" and encoder.metadata["n_train"] == len(patches["labels"])
    assert encoder.metadata["train_settings"]["epochs"] == params.mapping.regions.section.epochs
    predicted = np.asarray(readout.predict(encoder.embed(patches["images"][:8])))
    assert predicted.shape == (8,) and set(predicted) <= set(range(len(spec.REGIONS)))
