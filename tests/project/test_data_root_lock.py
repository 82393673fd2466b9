"""Two runs on one data root: the second is refused naming the holder; a stale lock is taken over.

The holder is a real process (a ``sleep`` started here) or a PID that has exited; the runs are
real Kedro sessions of the tiny profile.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mtneuro.preflight import LOCK_NAME, DataRootLock, DataRootLockedError


def _write_lock(data_root: Path, pid: int, command: str, host: str | None = None) -> Path:
    data_root.mkdir(parents=True, exist_ok=True)
    path = data_root / LOCK_NAME
    holder = {"pid": pid, "host": host or socket.gethostname(), "command": command, "started": "2026-12-03T08:00:00"}
    path.write_text(json.dumps(holder))
    return path


@pytest.fixture
def live_pid() -> Iterator[int]:
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield process.pid
    process.kill()
    process.wait()


@pytest.fixture
def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@pytest.mark.slow
def test_a_second_run_on_the_same_data_root_is_refused_naming_the_holder(kedro_run, tmp_path: Path, live_pid: int):
    data_root = tmp_path / "data"
    lock = _write_lock(data_root, live_pid, "kedro run --env=tiny --pipelines=classification")
    with pytest.raises(DataRootLockedError) as caught:
        kedro_run(["ingestion"], data_root)
    message = str(caught.value)
    assert f"Another run is using the data root {data_root}" in message
    assert f"PID {live_pid}" in message and "kedro run --env=tiny --pipelines=classification" in message
    assert "--params data_root=" in message and f"delete {lock}" in message
    assert not (data_root / "02_intermediate").exists()  # no node ran
    assert json.loads(lock.read_text())["pid"] == live_pid  # the holder's lock is untouched


@pytest.mark.slow
def test_a_stale_lock_is_taken_over_and_released_at_the_end(kedro_run, tiny_cubes, tmp_path: Path, dead_pid: int):
    data_root = tiny_cubes(tmp_path / "data")
    lock = _write_lock(data_root, dead_pid, "kedro run (killed)")
    kedro_run(["ingestion"], data_root)
    assert (data_root / "03_primary" / "split_index.parquet").exists()
    assert not lock.exists()


def test_the_lock_records_this_process_and_other_hosts_are_not_guessed(tmp_path: Path, live_pid: int):
    lock = DataRootLock(tmp_path)
    lock.acquire()
    holder = json.loads((tmp_path / LOCK_NAME).read_text())
    assert holder["pid"] == __import__("os").getpid() and holder["host"] == socket.gethostname() and holder["command"]
    lock.release()
    assert not (tmp_path / LOCK_NAME).exists()
    # a holder on another host cannot be checked: refused, with the file to delete if it is gone
    _write_lock(tmp_path, live_pid, "kedro run", host="another-host")
    with pytest.raises(DataRootLockedError, match="another-host"):
        DataRootLock(tmp_path).acquire()
