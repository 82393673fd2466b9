"""Task 2's outputs of the tiny benchmark run (``kedro run --env=tiny``, shared by the session)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from mtneuro.pipelines.segmentation.nodes import SETTINGS


@pytest.mark.slow
def test_session_writes_every_model_setting_seed_class_row(tiny_default_run, tiny_parameters):
    tmp_path = tiny_default_run.data_root

    segmentation = tiny_parameters.segmentation
    models, settings, seeds = segmentation.models, segmentation.settings, segmentation.seeds

    table = pd.read_csv(tmp_path / "08_reporting" / "task2_segmentation.csv")
    assert {"source", "model", "dims", "setting", "seed", "class", "f1", "iou", "iou_per_image"} <= set(table.columns)
    assert table.columns.get_loc("iou_per_image") == table.columns.get_loc("iou") + 1
    assert set(table["source"]) == {"phantom"}
    expected = {
        (m, SETTINGS[s].label, k, c)
        for m in models
        for s in settings
        for k in seeds
        for c in (*SETTINGS[s].classes, "mean")
    }
    got = set(zip(table["model"], table["setting"], table["seed"], table["class"], strict=True))
    assert got == expected and len(table) == len(expected)
    values = table[["f1", "iou", "iou_per_image"]].to_numpy().ravel()
    assert all(0.0 <= v <= 1.0 for v in values if not math.isnan(v))
    # a class can only be undefined (NaN) where it neither occurs nor is predicted
    undefined = table[table["iou"].isna()]
    assert ((undefined["support_pixels"] == 0) & (undefined["predicted_pixels"] == 0)).all()
    assert table.loc[table["class"] == "mean", "iou"].notna().all()
    # per image: a class is left out only of the slices without it, so it is NaN exactly where pooled is
    assert table["iou_per_image"].isna().equals(table["iou"].isna())
    # the authors' IoU (smp per test sample, absent classes scoring 1) is defined for every class
    assert table.columns.get_loc("iou_authors") == table.columns.get_loc("iou_per_image") + 1
    assert table["iou_authors"].between(0, 1).all()

    # versioned models and predictions, and the figure
    run = f"{models[0]}/{settings[0]}/seed{seeds[0]}"
    assert list((tmp_path / "06_models" / "segmentation" / run / "model.pt").glob("*/model.json"))
    assert list(
        (tmp_path / "07_model_output" / "segmentation" / run / "test_predictions.zarr").glob(
            "*/test_predictions.zarr/SHA256SUMS"
        )
    )
    png = tmp_path / "08_reporting" / "task2_segmentation_overlays.png"
    assert png.read_bytes().startswith(b"\x89PNG")
