"""SIGTERM (SLURM, ``timeout``) stops a run cleanly: finished outputs kept, nothing half written,
``--only-missing-outputs`` resumes."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from kedro.runner import SequentialRunner

from mtneuro.stopping import RunTerminated, StopOnSigtermHook

PROJECT = Path(__file__).resolve().parents[2]


def test_sigterm_raises_in_the_main_thread_and_waits_for_a_save_in_progress() -> None:
    hook = StopOnSigtermHook()
    before = signal.getsignal(signal.SIGTERM)
    hook.before_pipeline_run({}, None)
    try:
        with pytest.raises(RunTerminated, match="--only-missing-outputs"):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises before this ends
        hook.before_pipeline_run({}, None)  # a new run: nothing pending
        hook.before_dataset_saved("x")
        os.kill(os.getpid(), signal.SIGTERM)  # during a save: noted, not raised
        time.sleep(0.05)
        with pytest.raises(RunTerminated) as stopped:
            hook.after_dataset_saved("x")  # the save has finished: now the run stops
        assert stopped.value.exit_code == 128 + signal.SIGTERM
    finally:
        hook.on_pipeline_error()
    assert signal.getsignal(signal.SIGTERM) == before


#: The one grid cell the runs train (``classification.methods`` and ``configs``).
GRID = {"classification": {"methods": ["supervised"], "configs": ["roi_c1"]}}


class _CompletedNodes(logging.Handler):
    """The names of the nodes a runner logs as completed (``Completed node: <name>``)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.names: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if str(record.msg).startswith("Completed node: ") and record.args:
            self.names.append(str(record.args[0]))  # type: ignore[index]


def _kedro_run(data_root: Path, *params: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "kedro", "run", "--env=tiny", "--pipelines=classification"]
    values = [f"data_root={data_root}", *(f"classification.{k}=[{v[0]}]" for k, v in GRID["classification"].items())]
    command += ["--params", ",".join([*values, *params])]
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    return subprocess.Popen(
        command,
        cwd=PROJECT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,
    )


@pytest.mark.slow
def test_sigterm_stops_a_training_and_the_rerun_resumes(tiny_cubes, kedro_run, tmp_path: Path) -> None:
    # A training far longer than the test (2000 epochs): only the signal can end it in time.
    tiny_cubes(tmp_path)
    run = _kedro_run(tmp_path, "classification.supervised.epochs=2000")
    lines: list[str] = []
    training = threading.Event()

    def read() -> None:
        assert run.stdout is not None
        for line in run.stdout:
            lines.append(line.rstrip())
            if "Running node: classification.supervised.roi_c1.seed0.train" in line:
                training.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert training.wait(timeout=600), "\n".join(lines[-40:])
        time.sleep(2)  # well inside the training
        run.send_signal(signal.SIGTERM)
        run.wait(timeout=120)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    reader.join(timeout=10)
    shown = "\n".join(lines)
    assert run.returncode == 128 + signal.SIGTERM, shown[-3000:]
    assert lines[-1].startswith("kedro run: Stopped by SIGTERM"), shown[-3000:]
    assert "--only-missing-outputs" in lines[-1]
    assert "Traceback" not in shown
    # finished outputs on disk, the interrupted training's not even in part
    assert list((tmp_path / "03_primary" / "split_index.parquet").glob("*/split_index.parquet"))
    assert len(list((tmp_path / "02_intermediate" / "cubes").glob("*.zarr"))) == 16
    assert not (tmp_path / "06_models" / "classification" / "supervised").exists()
    assert not (tmp_path / "08_reporting").exists()

    # the rerun in this process (``KedroSession.run(only_missing_outputs=True)``, what the CLI's
    # flag calls): one interpreter fewer to start, with torch, Lightning and MONAI
    completed = _CompletedNodes()
    runner_log = logging.getLogger(SequentialRunner.__module__)  # not in the logging configuration
    runner_log.addHandler(completed)
    try:
        kedro_run(["classification"], tmp_path, extra_params=GRID, only_missing_outputs=True)
    finally:
        runner_log.removeHandler(completed)
    assert "ingestion.fetch_cubes" not in completed.names, "the rerun fetched the cubes again"
    assert "classification.supervised.roi_c1.seed0.train" in completed.names, completed.names
    assert (tmp_path / "08_reporting" / "task1_region_classification.csv").exists()
