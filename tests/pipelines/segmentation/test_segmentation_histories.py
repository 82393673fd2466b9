"""Every Task 2 run's training curve in one table (``task2_training_histories``, drawn by the
report), collected by the function that collects Task 1's."""

from __future__ import annotations

import pandas as pd

from mtneuro import histories, run_grid
from mtneuro.pipelines.segmentation import nodes


def test_histories_are_collected_per_run_and_epoch() -> None:
    runs = run_grid.expand_grid("segmentation", ["unet", "unet3d"], ["seg_3class", "seg_4class"], [0])
    run_histories = [
        {
            "source": "phantom",
            "epochs": [
                {"epoch": e, "loss": 1.0 + k - 0.5 * e, "seconds": 0.1, "lr": 0.003 / (1 + e)} for e in range(2)
            ],
        }
        for k in range(len(runs))
    ]
    run_histories[-1]["epochs"] = []  # no curve: no rows
    table = nodes.collect_training_histories(*run_histories, runs=runs)
    assert list(table.columns) == [*histories.HISTORY_KEYS, "loss", "seconds", "lr"]
    assert table[["method", "train_config", "seed", "step_kind", "step"]].values.tolist() == [
        ["unet", "3-class", 0, "epoch", 0],
        ["unet", "3-class", 0, "epoch", 1],
        ["unet", "4-class", 0, "epoch", 0],
        ["unet", "4-class", 0, "epoch", 1],
        ["unet3d", "3-class", 0, "epoch", 0],
        ["unet3d", "3-class", 0, "epoch", 1],
    ]
    assert table["loss"].tolist() == [1.0, 0.5, 2.0, 1.5, 3.0, 2.5]
    assert table["lr"].tolist() == [0.003, 0.0015] * 3
    assert set(table["source"]) == {"phantom"}
    empty = nodes.collect_training_histories(runs=[])
    assert empty.empty and list(empty.columns) == list(histories.HISTORY_KEYS)
    # the same table as Task 1's collector makes of the same records
    task1 = histories.collect_histories(runs, run_histories, "phantom", lambda c: nodes.label_setting(c).label)
    pd.testing.assert_frame_equal(table, task1)
