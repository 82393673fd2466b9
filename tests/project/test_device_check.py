"""The paper profile on a CPU stops before its first node, naming the device and the way on."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from kedro.pipeline import Node, Pipeline

from mtneuro.classification_methods import method_settings
from mtneuro.config import ConfigurationError, load_parameters
from mtneuro.device_check import check_training_device, training_summary
from mtneuro.segmentation_models import run_settings

PROJECT = Path(__file__).resolve().parents[2]


def _identity(x: object) -> object:
    return x


def _grid() -> Pipeline:
    """Two Task 1 network trainings, one PCA fit and one Task 2 training, named as the grids name them."""
    return Pipeline(
        [
            Node(_identity, "a", "b", name="train", namespace="classification.byol.roi_c1.seed0", tags=["gpu"]),
            Node(_identity, "c", "d", name="train", namespace="classification.supervised.roi_c1.seed0", tags=["gpu"]),
            Node(_identity, "e", "f", name="train", namespace="classification.pca.roi_c1.seed0"),
            Node(_identity, "g", "h", name="train_and_evaluate", namespace="segmentation.unet.3class.seed0"),
        ]
    )


def test_the_paper_profile_refuses_a_cpu_and_says_how_to_go_on() -> None:
    paper = load_parameters(PROJECT / "conf", "paper")
    trainings, epochs = training_summary(_grid(), paper)
    expected = (
        method_settings(paper.classification, "byol").epochs
        + method_settings(paper.classification, "supervised").epochs
        + run_settings(paper.segmentation, "unet").train.epochs
    )
    assert (trainings, epochs) == (3, expected)
    with pytest.raises(ConfigurationError) as refused:
        check_training_device(_grid(), paper, "cpu", "paper")
    message = str(refused.value)
    assert "on the CPU" in message and f"{epochs} epochs" in message
    assert "--params training.allow_cpu=true" in message and "rough estimate" in message.lower()
    assert check_training_device(_grid(), paper, "cuda", "paper") == "GPU"
    allowed = load_parameters(PROJECT / "conf", "paper", {"training": {"allow_cpu": True}})
    assert check_training_device(_grid(), allowed, "cpu", "paper") == "CPU"
    base = load_parameters(PROJECT / "conf", None)
    assert base.training.allow_cpu is True  # the CPU-sized default profile runs anywhere
    assert check_training_device(_grid(), base, "cpu") == "CPU"
    assert check_training_device(Pipeline([Node(_identity, "x", "y", name="plot")]), paper, "cpu") is None


@pytest.mark.slow
def test_kedro_run_with_the_paper_profile_stops_on_a_cpu_with_exit_2() -> None:
    pytest.importorskip("torch")
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    run = subprocess.run(
        # the phantom: the paper profile's BossDB source is checked before the device, and no test
        # may reach BossDB (this machine has no network; the preflight would stop it first)
        [
            sys.executable,
            "-m",
            "kedro",
            "run",
            "--env=paper",
            "--pipelines=classification",
            "--params",
            "volume.source=phantom",
        ],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    lines = [line for line in (run.stdout + run.stderr).splitlines() if line.strip()]
    assert run.returncode == 2, "\n".join(lines[-40:])
    assert "Traceback" not in run.stdout + run.stderr
    assert "training.allow_cpu=true" in run.stdout + run.stderr
    assert not [line for line in lines if "Completed node" in line]
