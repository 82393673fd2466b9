"""Every Task 1 run's training curve in one table (``task1_training_histories``, drawn by the report)."""

from __future__ import annotations

import pandas as pd

from mtneuro import run_grid
from mtneuro.pipelines.classification import nodes


def test_histories_are_collected_per_run_and_step() -> None:
    runs = run_grid.expand_grid("classification", ["byol", "nmf", "intensity_baseline"], ["roi_c1"], [0])
    histories = [
        {"epochs": [{"epoch": 0, "loss": 1.0, "lr": 0.1}, {"epoch": 1, "loss": 0.5, "lr": 0.0}]},
        {"epochs": [{"iterations": 10, "loss": 0.3}, {"iterations": 20, "loss": 0.2}]},
        {"epochs": []},  # nothing trained: no rows
    ]
    table = nodes.collect_training_histories({"source": "phantom"}, *histories, runs=runs)
    assert list(table.columns[:6]) == list(nodes.HISTORY_KEYS)
    assert table[["method", "train_config", "step_kind", "step"]].values.tolist() == [
        ["byol", "ROI-C1", "epoch", 0],
        ["byol", "ROI-C1", "epoch", 1],
        ["nmf", "ROI-C1", "iterations", 10],
        ["nmf", "ROI-C1", "iterations", 20],
    ]
    assert table["loss"].tolist() == [1.0, 0.5, 0.3, 0.2] and pd.isna(table["lr"].iloc[2])
    assert set(table["source"]) == {"phantom"} and set(table["seed"]) == {0}
    empty = nodes.collect_training_histories({"source": "phantom"}, runs=[])
    assert empty.empty and list(empty.columns) == list(nodes.HISTORY_KEYS)
