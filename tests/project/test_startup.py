"""Checking the parameters (what ``kedro run`` does before it builds the pipelines) imports none
of the heavy libraries, so that a user's typo is reported in seconds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]

HEAVY = ("torch", "lightning", "monai", "segmentation_models_pytorch", "sklearn", "mlflow", "lightly")


def test_checking_the_parameters_imports_no_heavy_library() -> None:
    code = (
        "import sys\n"
        "from mtneuro.cli import check_parameters, check_pipeline_names\n"
        "check_pipeline_names(['classification'])\n"
        "check_parameters('tiny', None, {})\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], cwd=PROJECT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.strip().splitlines()[-1] == "[]", run.stdout
