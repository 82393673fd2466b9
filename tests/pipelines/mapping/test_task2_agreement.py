"""The map and Task 2 agree voxel for voxel on the same slices: the map path (reading, alignment,
normalisation, prepared network, label values) applied to a main cube's test slices gives the
Task 2 test predictions of the same network (issue 19)."""

from __future__ import annotations

import numpy as np
import pytest
from mapping_support import PHANTOM_VOLUME, PROJECT, mapping_parameters

from mtneuro.config import load_parameters
from mtneuro.pipelines.ingestion.nodes import main_cube_windows
from mtneuro.pipelines.mapping import nodes
from mtneuro.pipelines.segmentation.engine import predict_block
from mtneuro.volumes import Window, open_volume

FP32 = {"compute": {"precision": "fp32"}}


@pytest.fixture(scope="module")
def task2_predictions(segmentation_model):
    """Task 2's test predictions of the STR main cube (4 slices of its window), as the
    segmentation pipeline computes them (``predict_block`` on the cube's image)."""
    ingestion = load_parameters(PROJECT / "conf", "base").ingestion
    w = main_cube_windows(ingestion)["STR"]
    z = np.arange(330, 334)  # cube-relative (absolute 440-443: test slices)
    image = open_volume("phantom://prasad2020/image", seed=0).read(
        Window(w.z0 + int(z[0]), w.z0 + int(z[-1]) + 1, w.y0, w.y1, w.x0, w.x1)
    )
    meta = segmentation_model.metadata
    prediction = predict_block(segmentation_model, image, 2, meta["mean"], meta["std"], roi_yx=128, depth=1)
    return ingestion, {"run": "unet.seg_4class.seed0", "predictions": {"main_STR": {"z": z, "prediction": prediction}}}


def _agreement(table):
    return table.set_index("class")["value"]


def test_map_path_reproduces_the_task2_test_predictions(segmentation_model, task2_predictions):
    ingestion, predictions = task2_predictions
    table = nodes.compare_with_task2(
        segmentation_model, predictions, mapping_parameters("base", FP32), PHANTOM_VOLUME, ingestion
    )
    agreement = _agreement(table)
    assert set(agreement.index) == {"same_input", "with_context", "with_context_interior"}
    # same input, same network (batch norms folded: a few ties may flip) -> the same labels
    assert agreement["same_input"] >= 0.999
    # the map sees beyond the cube, Task 2 pads at its border: they differ there most
    assert agreement["with_context_interior"] >= agreement["with_context"] - 1e-9
    counts = np.bincount(predictions["predictions"]["main_STR"]["prediction"].ravel(), minlength=4)
    assert (counts > 0.01 * counts.sum()).sum() >= 2, counts  # not one class everywhere


def test_agreement_check_fails_when_the_map_preprocesses_differently(segmentation_model, task2_predictions):
    """A map that normalised with other statistics than the training ones disagrees, and the
    check shows it (this is what the check is for)."""
    import copy

    ingestion, predictions = task2_predictions
    shifted = copy.deepcopy(segmentation_model)
    shifted.metadata = {**segmentation_model.metadata, "mean": segmentation_model.metadata["mean"] + 0.1}
    table = nodes.compare_with_task2(shifted, predictions, mapping_parameters("base", FP32), PHANTOM_VOLUME, ingestion)
    assert _agreement(table)["same_input"] < 0.98
