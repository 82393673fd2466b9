"""Running ``kedro run`` as a user does: in a pseudo-terminal, or as a child process to signal."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


def kedro_command(*args: str) -> list[str]:
    """``kedro <args>`` with this interpreter (the project's environment)."""
    return [sys.executable, "-m", "kedro", *args]


def plain_text(raw: bytes) -> str:
    """Terminal output without colour and cursor codes, carriage returns as line ends."""
    return _ANSI.sub("", raw.decode("utf-8", "replace")).replace("\r\n", "\n").replace("\r", "\n")


def run_in_terminal(command: list[str], timeout: float, columns: int = 120) -> tuple[int, str]:
    """Run ``command`` with a pseudo-terminal as its stdin, stdout and stderr (rich then draws its
    live displays, Lightning its bars); its exit status and what the terminal showed."""
    primary, secondary = pty.openpty()
    env = {**os.environ, "COLUMNS": str(columns), "LINES": "40", "TERM": "xterm-256color"}
    env.pop("NO_COLOR", None)
    process = subprocess.Popen(command, cwd=PROJECT, stdin=secondary, stdout=secondary, stderr=secondary, env=env)
    os.close(secondary)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            if time.monotonic() > deadline:
                process.kill()
                raise TimeoutError(f"{command} ran longer than {timeout} s:\n{plain_text(b''.join(chunks))[-3000:]}")
            ready, _, _ = select.select([primary], [], [], 0.5)
            if ready:
                try:
                    data = os.read(primary, 65536)
                except OSError:  # the child closed the terminal
                    data = b""
                if not data:
                    break
                chunks.append(data)
            elif process.poll() is not None:
                break
        return process.wait(timeout=30), plain_text(b"".join(chunks))
    finally:
        os.close(primary)


def _environment(data_root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{data_root.parent / 'mlflow.db'}"
    return env


def start_kedro_run(data_root: Path, *args: str) -> tuple[subprocess.Popen, Path]:
    """``kedro run <args> --params data_root=...`` in its own process group (as the processes of
    a job are), its output to a log file beside the data root; the process and the log."""
    data_root.parent.mkdir(parents=True, exist_ok=True)
    log = data_root.parent / f"kedro-{time.monotonic_ns()}.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [*kedro_command("run", *args), "--params", f"data_root={data_root}"],
            cwd=PROJECT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=_environment(data_root),
            start_new_session=True,
        )
    return process, log


def run_kedro(data_root: Path, *args: str, timeout: float = 1200) -> tuple[int, str]:
    """``kedro run <args>`` to its end: exit status and output."""
    process, log = start_kedro_run(data_root, *args)
    try:
        process.wait(timeout=timeout)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return process.returncode, log.read_text()
