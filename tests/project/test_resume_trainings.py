"""Resume of a killed grid of trainings (issue 20, item 3; the paper's dry run at the tiny profile):
SIGKILL while Task 2 trains, rerun with ``--only-missing-outputs``: no finished training is
repeated (its model file keeps its inode and modification time) and the tables equal those of
the uninterrupted run (the shared ``tiny_default_run``).
"""

from __future__ import annotations

import shutil
import signal
import time
from pathlib import Path

import pandas as pd
import pytest
from kedro_process import run_kedro, start_kedro_run
from test_interruptions import _stop_group, _wait_until

pytestmark = pytest.mark.slow

MODELS = Path("06_models") / "segmentation"
OUTPUTS = Path("07_model_output") / "segmentation"
TABLES = ("task2_segmentation.csv",)  # the segmentation pipeline's table (Table 2 is the reporting pipeline's)


def _finished(root: Path) -> dict[Path, tuple[int, int]]:
    """Model files of the trainings whose every output is on disk: (inode, mtime_ns)."""
    found = {}
    for model in sorted((root / MODELS).glob("*/*/seed*/model.pt")):
        run = model.parent.relative_to(root / MODELS)
        outputs = [root / OUTPUTS / run / name for name in ("metrics.csv", "training_history.json")]
        if all(p.exists() for p in outputs):
            stat = model.stat()
            found[model] = (stat.st_ino, stat.st_mtime_ns)
    return found


def _table(path: Path) -> pd.DataFrame:
    table = pd.read_csv(path)
    return table.drop(columns=[c for c in table.columns if "seconds" in c])  # wall times differ


def test_sigkill_during_task2_trainings_then_only_missing_outputs_repeats_no_finished_training(
    tiny_default_run, tmp_path: Path
) -> None:
    root = tiny_default_run.copy_to(tmp_path / "data")
    runs = len(list((root / MODELS).glob("*/*/seed*/model.pt")))
    assert runs >= 4, runs
    for folder in (MODELS, OUTPUTS):
        for run in (root / folder).glob("*/*/seed*"):
            shutil.rmtree(run)
    for table in TABLES:
        (root / "08_reporting" / table).unlink()

    args = ("--env=tiny", "--pipelines=segmentation", "--only-missing-outputs")
    run, log = start_kedro_run(root, *args)
    _wait_until(lambda: len(_finished(root)) >= 2, run, log)
    _stop_group(run, signal.SIGKILL)
    assert run.returncode == -signal.SIGKILL
    finished = _finished(root)
    assert 2 <= len(finished) < runs, len(finished)

    time.sleep(0.01)  # a rewritten file would get a later mtime
    code, output = run_kedro(root, *args)
    assert code == 0, output[-3000:]
    assert {model: _finished(root).get(model) for model in finished} == finished  # none trained again
    assert len(list((root / MODELS).glob("*/*/seed*/model.pt"))) == runs
    for table in TABLES:
        reference = tiny_default_run.data_root / "08_reporting" / table
        pd.testing.assert_frame_equal(_table(root / "08_reporting" / table), _table(reference))
