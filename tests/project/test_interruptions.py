"""Interrupted tiny-profile runs (issue 26, item 4): SIGKILL during the brain map, a Dask worker
killed with SIGKILL during a node, SIGTERM (as SLURM sends it, to every process of the job) during
a Dask run. None leaves a half-written output that the rerun trusts, and ``--only-missing-outputs``
finishes with the bytes of an uninterrupted run (the shared ``tiny_default_run``).

The runs are kept short: the brain map is interrupted in ``--to-outputs=brain_map`` (the Task 2
comparison, which the kill would waste, runs once, in the rerun), and the Dask runs are of the
ingestion pipeline, whose one long node writes the cubes. The process to kill is found through
the save journal (``<data_root>/.mtneuro-saving``: the dataset a process is saving, and its PID).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from kedro_process import start_kedro_run

from mtneuro.datasets.ome_zarr_store import MARKERS, OmeZarrMapDataset
from mtneuro.runners import DaskRunner
from mtneuro.stopping import JOURNAL_DIR

MAP = Path("07_model_output") / "brain_map.ome.zarr"
MAP_TABLES = (Path("08_reporting") / "mapping_validation.csv", Path("08_reporting") / "mapping_overview.png")
DASK = ("--runner=mtneuro.runners.DaskRunner", "--runner-params=n_workers=2,allowed_failures=0")

pytestmark = pytest.mark.slow


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _saving(data_root: Path, dataset: str) -> int | None:
    """The PID of the process saving ``dataset`` now (from the save journal), if any."""
    for entry in (data_root / JOURNAL_DIR).glob("*.json"):
        try:
            record = json.loads(entry.read_text())
        except (OSError, ValueError):
            continue
        if record.get("dataset") == dataset:
            return int(record["pid"])
    return None


def _wait_until(ready: Callable[[], bool], process: subprocess.Popen, log: Path, timeout: float = 900) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if process.poll() is not None:
            pytest.fail(f"the run ended before it could be interrupted:\n{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            os.killpg(process.pid, signal.SIGKILL)
            pytest.fail(f"nothing to interrupt within {timeout} s:\n{log.read_text()[-3000:]}")
        time.sleep(0.05)


def _finished_blocks(markers: Path) -> list[Path]:
    """The map's blocks whose marker is written (a kill can leave a marker's ``.tmp-`` file)."""
    return [p for p in markers.iterdir() if ".tmp-" not in p.name] if markers.is_dir() else []


def _stop_group(process: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(process.pid, signum)
        process.wait(timeout=300)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _same_file(a: Path, b: Path) -> None:
    assert a.read_bytes() == b.read_bytes(), f"{a} differs from {b}"


def _latest(folder: Path) -> Path:
    """The file of the latest version of a versioned dataset ``folder``."""
    return max(folder.glob(f"*/{folder.name}"))


def test_sigkill_during_the_brain_map_then_only_missing_outputs_finishes_it(
    tiny_default_run, kedro_run, tmp_path: Path
) -> None:
    root = tiny_default_run.copy_to(tmp_path / "data")
    shutil.rmtree(root / MAP)
    for table in MAP_TABLES:
        (root / table).unlink()
    markers = root / MAP / MARKERS / "blocks"

    run, log = start_kedro_run(root, "--env=tiny", "--pipelines=mapping", "--to-outputs=brain_map")
    _wait_until(lambda: bool(_finished_blocks(markers)), run, log)
    _stop_group(run, signal.SIGKILL)
    assert run.returncode == -signal.SIGKILL
    written = len(_finished_blocks(markers))
    assert 1 <= written < 4, written  # the tiny map has 4 blocks
    assert not OmeZarrMapDataset(path=str(root / MAP))._exists()  # an unfinished map is missing
    assert _saving(root, "brain_map") is not None  # the journal knows the save never ended

    # the resume in this process (``KedroSession.run(only_missing_outputs=True)``, what the CLI's
    # flag calls): one interpreter fewer to start, with torch and MONAI
    kedro_run(["mapping"], root, only_missing_outputs=True)
    assert _files(root / MAP) == _files(tiny_default_run.data_root / MAP)  # chunks and checksums
    for table in MAP_TABLES:
        _same_file(root / table, tiny_default_run.data_root / table)
    assert not (root / JOURNAL_DIR).exists()


def _same_ingestion_outputs(root: Path, reference: Path) -> None:
    _same_file(
        root / "02_intermediate" / "cubes" / "manifest.json", reference / "02_intermediate" / "cubes" / "manifest.json"
    )
    for name in ("03_primary/split_index.parquet", "01_raw/extra_cube_coordinates.csv"):
        _same_file(_latest(root / name), _latest(reference / name))


def _cubes_written(root: Path, at_least: int) -> Callable[[], bool]:
    cubes = root / "02_intermediate" / "cubes"
    return lambda: _saving(root, "cubes") is not None and len(list(cubes.glob("*.zarr"))) >= at_least


def test_sigterm_to_a_dask_run_then_a_killed_worker_then_only_missing_outputs_finishes(
    request: pytest.FixtureRequest, kedro_run, tmp_path: Path
) -> None:
    """One data root, three runs of ``kedro run --pipelines=ingestion`` on the Dask runner (2
    workers, no retries): SIGTERM to the job's processes, then a resume whose worker is killed
    with SIGKILL while it writes the cubes, then the resume that finishes. The shared tiny run,
    the reference, is asked for at the end only: another worker may build it meanwhile."""
    root = tmp_path / "data"
    cubes = root / "02_intermediate" / "cubes"
    # 1. SIGTERM, as SLURM sends it at the time limit: to the driver and every worker
    run, log = start_kedro_run(root, "--env=tiny", "--pipelines=ingestion", *DASK)
    _wait_until(_cubes_written(root, 2), run, log)
    _stop_group(run, signal.SIGTERM)
    output = log.read_text()
    assert run.returncode == 128 + signal.SIGTERM, output[-3000:]
    last = [line for line in output.splitlines() if line.strip()][-1]
    assert last.startswith("kedro run: Stopped by SIGTERM") and "--only-missing-outputs" in last, output[-3000:]
    assert "Traceback" not in output
    assert not (cubes / "manifest.json").exists()  # no cube set is trusted
    assert not (root / "03_primary").exists()  # nothing after the cubes was written
    kept = len(list(cubes.glob("*.zarr")))

    # 2. the resume; the worker writing the cubes is killed (SIGKILL) half-way through the rest
    run, log = start_kedro_run(root, "--env=tiny", "--pipelines=ingestion", *DASK, "--only-missing-outputs")
    _wait_until(_cubes_written(root, kept + 1), run, log)
    worker = _saving(root, "cubes")
    assert worker is not None and worker != run.pid  # a worker process writes them
    os.kill(worker, signal.SIGKILL)
    run.wait(timeout=600)
    output = log.read_text()
    assert run.returncode == 2, output[-3000:]  # a fault outside the code: one paragraph, no traceback
    assert "Traceback" not in output and "│" not in output, output[-3000:]
    message = " ".join(output.split())
    assert "Node 'ingestion.fetch_cubes' failed on the Dask cluster: its worker died" in message, output[-3000:]
    assert "--only-missing-outputs" in message
    assert not (cubes / "manifest.json").exists()

    # 3. the same command finishes, with the bytes of an uninterrupted run; in this process (its
    # own 2-worker local cluster, as the CLI's), one interpreter fewer to start
    kedro_run(["ingestion"], root, runner=DaskRunner(n_workers=2, allowed_failures=0), only_missing_outputs=True)
    reference = request.getfixturevalue("tiny_default_run").data_root
    _same_file(cubes / "manifest.json", reference / "02_intermediate" / "cubes" / "manifest.json")
    for name in ("03_primary/split_index.parquet", "01_raw/extra_cube_coordinates.csv"):
        _same_file(_latest(root / name), _latest(reference / name))
    assert not (root / JOURNAL_DIR).exists()
