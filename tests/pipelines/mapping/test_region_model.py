"""The region model: chosen by validation accuracy (slices outside its training set and every
test set), never by test accuracy; or named; the choice is recorded."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from mapping_support import PROJECT, make_region_model, mapping_parameters

from mtneuro import models
from mtneuro.config import load_parameters
from mtneuro.pipelines.mapping.engine import MappingError
from mtneuro.pipelines.mapping.models import choose_region_model, validation_slices

#: conf/base's block: ROI-C1 models also test on ROI-C2; train + val slices train, test slices test.
CLASSIFICATION = load_parameters(PROJECT / "conf", "base").classification
assert CLASSIFICATION.evaluate_on == {"roi_c1": ["roi_c1", "roi_c2"], "roi_c3": ["roi_c3"]}
assert (CLASSIFICATION.data.train_splits, CLASSIFICATION.data.test_splits) == (["train", "val"], ["test"])


def _split_index() -> pd.DataFrame:
    """main_CTX: roi_c1 train z 0-5, val 6-7, test 8-11 (label 0); extra_CTX_0: ROI-C3 training
    cube (label 0); extra_CTX_1: ROI-C2/C3 test cube; plus segmentation/probing rows."""
    rows = []
    for z in range(12):
        split = "train" if z < 6 else "val" if z < 8 else "test"
        for config in ("roi_c1", "roi_c3", "seg_4class"):
            rows.append((config, "main_CTX", split, z))
        rows.append(("probing", "main_CTX", "all", z))
    for z in range(12):
        rows.append(("roi_c3", "extra_CTX_0", "train", z))
        rows.append(("roi_c2", "extra_CTX_1", "test", z))
        rows.append(("roi_c3", "extra_CTX_1", "test", z))
    return pd.DataFrame(
        [
            {"config": c, "cube_id": cube, "region": "CTX", "label": 0, "z": z, "z_abs": z, "split": s}
            for c, cube, s, z in rows
        ]
    )


def test_validation_slices_are_outside_training_and_every_test_set():
    index = _split_index()
    roi_c1 = validation_slices(index, "roi_c1", CLASSIFICATION)
    # ROI-C1 trains on the main cubes' train + val slices: its validation is the ROI-C3 extra
    # training cube; test slices (main z 8-11, extra_CTX_1) and probing rows never count.
    assert set(roi_c1["cube_id"]) == {"extra_CTX_0"} and len(roi_c1) == 12
    assert validation_slices(index, "roi_c3", CLASSIFICATION).empty
    held_out = CLASSIFICATION.model_copy(
        update={"data": CLASSIFICATION.data.model_copy(update={"train_splits": ["train"]})}
    )
    val = validation_slices(index, "roi_c3", held_out)
    assert set(map(tuple, val[["cube_id", "z"]].to_numpy())) == {("main_CTX", 6), ("main_CTX", 7)}


def _constant_run(region: int, seed: int):
    encoder, _ = make_region_model(seed)
    bias = np.full(4, -10.0, np.float32)
    bias[region] = 10.0
    return {
        "frozen_encoder": encoder,
        "readout": models.LinearReadout(np.zeros((4, 16), np.float32), bias, [0, 1, 2, 3]),
    }


def _cubes(index: pd.DataFrame):
    rng = np.random.default_rng(0)
    return {
        c: SimpleNamespace(image=rng.integers(0, 255, (12, 32, 32), dtype=np.uint8)) for c in index["cube_id"].unique()
    }


def test_best_region_model_is_chosen_on_validation_not_test():
    index = _split_index()
    index.loc[index["cube_id"] == "extra_CTX_0", "label"] = 1  # validation truth: STR
    index.loc[(index["split"] == "test"), "label"] = 2  # test truth: VP
    runs = {
        "supervised.roi_c1.seed0": _constant_run(2, 0),  # perfect on test, wrong on validation
        "supervised.roi_c1.seed1": _constant_run(1, 1),  # right on validation
        "supervised.roi_c3.seed0": _constant_run(2, 2),  # no validation slices: never chosen
        "pca.roi_c1.seed0": _constant_run(1, 3),  # not a candidate
    }
    params = mapping_parameters(
        "tiny", {"regions": {"model": "best", "candidates": ["supervised"], "validation_slice_step": 2}}
    )
    encoder, readout, selection = choose_region_model(runs, _cubes(index), index, params, CLASSIFICATION)
    assert encoder is runs["supervised.roi_c1.seed1"]["frozen_encoder"]
    assert selection["run"] == "supervised.roi_c1.seed1"
    assert readout is runs["supervised.roi_c1.seed1"]["readout"]
    assert selection["validation_accuracy"]["supervised.roi_c1.seed1"] == 1.0
    assert selection["validation_accuracy"]["supervised.roi_c1.seed0"] == 0.0
    assert np.isnan(selection["validation_accuracy"]["supervised.roi_c3.seed0"])
    assert "pca.roi_c1.seed0" not in selection["validation_accuracy"]
    assert selection["validation_slices"] == 6 and selection["validation_cubes"] == ["extra_CTX_0"]


def test_named_region_model_is_used_and_a_missing_one_is_refused():
    index = _split_index()
    runs = {"supervised.roi_c3.seed0": _constant_run(0, 0)}
    params = mapping_parameters("tiny", {"regions": {"model": "supervised.roi_c3.seed0"}})
    _, readout, selection = choose_region_model(runs, _cubes(index), index, params, CLASSIFICATION)
    assert readout is runs["supervised.roi_c3.seed0"]["readout"]
    assert selection["rule"].startswith("named")
    missing = mapping_parameters("tiny", {"regions": {"model": "mixup.roi_c1.seed4"}})
    with pytest.raises(MappingError, match=r"mapping\.regions\.model.*classification pipeline"):
        choose_region_model(runs, _cubes(index), index, missing, CLASSIFICATION)
