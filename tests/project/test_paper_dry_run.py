"""The paper's dry run (issue 20): ``kedro run --env=paper_dry`` runs every node of the paper
profile at the paper's sizes with a few optimizer steps per training, on a CPU, so that the paper
profile cannot rot unnoticed. One seed here (the grid's shape, not its length, is what can break);
it takes long (see benchmarks/README.md, "The paper's dry run"), hence ``slow``.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from kedro_process import PROJECT, kedro_command

from mtneuro.classification_methods import method_settings
from mtneuro.config import load_parameters

ONE_SEED = "classification.seeds=[0],segmentation.seeds=1"


def test_paper_dry_run_layers_on_the_paper_profile() -> None:
    paper, dry = load_parameters(PROJECT / "conf", "paper"), load_parameters(PROJECT / "conf", "paper_dry")
    assert dry.training.dry_run_steps is not None and paper.training.dry_run_steps is None
    assert dry.volume.source == "phantom" and dry.training.allow_cpu
    # the paper's sizes and grid, unchanged
    assert dry.ingestion.cube_size_yx == paper.ingestion.cube_size_yx == 256
    assert dry.classification.seeds == paper.classification.seeds and len(paper.classification.seeds) == 5
    assert dry.classification.encoder == paper.classification.encoder
    assert dry.segmentation.encoder == paper.segmentation.encoder
    assert dry.segmentation.model_settings == paper.segmentation.model_settings
    assert method_settings(dry.classification, "byol") == method_settings(paper.classification, "byol")


#: The one-seed dry run takes hours on 2 CPU cores (the paper's batch sizes: one BYOL step 355 s,
#: one U-Net-b7 step 301 s; benchmarks/README.md): too long for the suite. Opt in on a bigger
#: machine or a GPU node with ``MTNEURO_PAPER_TESTS=1 uv run pytest tests/project/test_paper_dry_run.py``.
PAPER_TESTS = pytest.mark.skipif(
    os.environ.get("MTNEURO_PAPER_TESTS") != "1", reason="hours on a CPU: opt in with MTNEURO_PAPER_TESTS=1"
)


@pytest.mark.slow
@PAPER_TESTS
def test_paper_dry_run_with_one_seed_writes_every_table_and_the_report(tmp_path: Path) -> None:
    root = tmp_path / "data"
    run = subprocess.run(
        [*kedro_command("run", "--env=paper_dry", "--params", f"data_root={root},{ONE_SEED}")],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=4 * 3600,
        env={**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"},
    )
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    reports = root / "08_reporting"
    steps = load_parameters(PROJECT / "conf", "paper_dry").training.dry_run_steps
    for name in ("table1_region_classification", "table2_segmentation", "table3_probing"):
        table = pd.read_csv(reports / f"{name}.csv")
        assert not table.empty, name
        assert table["profile"].str.startswith("DRY RUN").all(), name
    assert "DRY RUN" in (reports / "report.html").read_text()
    assert "DRY RUN" in (reports / "paper_tables.md").read_text()
    # every network trained for exactly the dry run's steps, at the paper's epoch lengths
    for name, trainings in (("task1_training_histories", 5 * 2), ("task2_training_histories", 9 * 2)):
        curves = pd.read_csv(reports / f"{name}.csv")
        curves = curves[curves["step_kind"] == "epoch"]
        per_run = curves.groupby(["method", "train_config", "seed"])
        assert len(per_run) == trainings, name
        assert (per_run["steps"].sum() == steps).all(), name
        assert (curves["epoch_steps"] >= steps).all(), name  # a full epoch has at least the steps taken
    assert (root / "07_model_output" / "brain_map.ome.zarr").is_dir()
