"""``benchmarks/paper_cost.py`` (issue 20, item 2): the projection of the paper run from its dry
run's step times, on histories written here (the dry run itself is ``test_paper_dry_run.py``)."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

from mtneuro.classification_methods import method_settings
from mtneuro.segmentation_models import run_settings

PROJECT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT / "benchmarks"))

import paper_cost  # noqa: E402


def _history(method: str, config: str, seconds: float, steps: int, epoch_steps: int) -> dict:
    return {
        "source": "phantom",
        "method": method,
        "train_config": config,
        "seed": 0,
        "step_kind": "epoch",
        "step": 0,
        "loss": 1.0,
        "seconds": seconds,
        "lr": 0.1,
        "steps": steps,
        "epoch_steps": epoch_steps,
    }


def _dry_run(root: Path) -> None:
    reports = root / "08_reporting"
    reports.mkdir(parents=True)
    task1 = [_history("supervised", "ROI-C1", 20.0, 2, 1), _history("byol", "ROI-C1", 60.0, 2, 1)]
    task2 = [
        _history("unet", "seg_3class", 10.0, 1, 30),
        _history("fpn", "seg_3class", 5.0, 1, 30),
        _history("unet3d", "seg_3class", 8.0, 2, 40),
    ]
    pd.DataFrame(task1).to_csv(reports / "task1_training_histories.csv", index=False)
    pd.DataFrame(task2).to_csv(reports / "task2_training_histories.csv", index=False)


def test_projection_is_step_time_times_full_steps_epochs_and_seeds(tmp_path: Path, capsys) -> None:
    _dry_run(tmp_path)
    result = paper_cost.main(["--data-root", str(tmp_path), "--gpus", "1", "2"])
    trainings = {(r["task"], r["method"]): r for r in result["trainings"]}
    paper = paper_cost.load_parameters("paper")
    dry = paper_cost.load_parameters("paper_dry")
    ratio = dry.classification.data.train_slice_step / paper.classification.data.train_slice_step
    sup = trainings[("task1", "supervised")]
    epochs = method_settings(paper.classification, "supervised").epochs
    assert sup["cpu_s_per_step"] == pytest.approx(10.0)
    assert sup["cpu_h"] == pytest.approx(10.0 * ratio * epochs * 5 / 3600)
    unet = trainings[("task2", "unet")]
    assert unet["cpu_h_per_training"] == pytest.approx(
        10.0 * 30 * run_settings(paper.segmentation, "unet").train.epochs / 3600
    )
    # one GPU: the H100 rate for U-Net; FPN at half U-Net's CPU time per image takes half its GPU time
    assert unet["gpu_h_per_training"] == pytest.approx(unet["images_per_training"] / 136.9 / 3600)
    fpn = trainings[("task2", "fpn")]
    assert fpn["gpu_h_per_training"] / fpn["images_per_training"] == pytest.approx(
        0.5 * unet["gpu_h_per_training"] / unet["images_per_training"]
    )
    stages = {r["stage"]: r for r in result["stages"]}
    total = stages["all trainings"]
    assert total["trainings"] == 2 * 5 + 3 * len(paper.segmentation.seeds)
    assert total["gpu_x2_h"] < total["gpu_x1_h"] == pytest.approx(sum(r["gpu_h"] for r in result["trainings"]))
    assert "projected from H100 figures" in capsys.readouterr().out


def test_makespan_packs_the_longest_first() -> None:
    assert paper_cost.makespan([3, 3, 2, 2, 2], 2) == 7
    assert paper_cost.makespan([5, 1, 1], 4) == 5
