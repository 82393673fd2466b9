"""Running ``kedro run`` as a user does: in a pseudo-terminal, or as a child process to signal."""

from __future__ import annotations

import os
import pty
import re
import select
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
