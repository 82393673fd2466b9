"""Progress of multi-chunk downloads: a rich bar on a terminal, throttled log lines otherwise."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
import time
from typing import Any

from mtneuro.volumes.base import VolumeSourceError

log = logging.getLogger(__name__)

#: Values of the ``progress`` option of remote sources.
PROGRESS_MODES = ("auto", "bar", "log", "off")


class Progress:
    """Progress of a multi-chunk download: a rich bar on a terminal, throttled log lines otherwise.

    ``mode`` is one of :data:`PROGRESS_MODES` (``True`` means ``auto``, ``False``/``None``
    ``off``); ``auto`` draws a bar when rich's console is a terminal and logs otherwise.
    """

    def __init__(self, label: str, total: int, nbytes: int, mode: object = "auto", log_interval: float = 5.0):
        self.label = label
        self.total = total
        self.nbytes = nbytes
        self.done = 0
        self.log_interval = float(log_interval)
        self._t0 = time.monotonic()
        self._last_log = -math.inf
        self._bar = None
        self._task: Any = None
        mode = {True: "auto", False: "off", None: "off"}.get(mode, mode)  # type: ignore[call-overload]
        mode = str(mode).lower()
        if mode not in PROGRESS_MODES:
            raise VolumeSourceError(f"progress must be one of {', '.join(PROGRESS_MODES)}; got {mode!r}")
        if mode == "auto":
            mode = "bar" if total > 1 and is_terminal() else "log"
        self.mode = mode
        if mode == "bar":
            try:
                from rich.progress import (
                    BarColumn,
                    MofNCompleteColumn,
                    Progress,
                    TextColumn,
                    TimeElapsedColumn,
                    TimeRemainingColumn,
                )

                self._bar = Progress(
                    TextColumn("{task.description}"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    TimeElapsedColumn(),
                    TimeRemainingColumn(),
                    transient=True,
                )
                self._bar.start()
                self._task = self._bar.add_task(label, total=total)
            except Exception:
                self._bar = None
                self.mode = "log"

    def __enter__(self) -> Progress:
        if self.total > 1 and self.mode != "off":
            log.info("%s: %d chunks, %.1f MB", self.label, self.total, self.nbytes / 1e6)
        return self

    def advance(self, detail: str) -> None:
        self.done += 1
        if self._bar is not None:
            self._bar.update(self._task, advance=1)
            return
        now = time.monotonic()
        log.debug("%s: chunk %d/%d %s", self.label, self.done, self.total, detail)
        if (
            self.mode == "log"
            and self.total > 1
            and (self.done == self.total or now - self._last_log >= self.log_interval)
        ):
            self._last_log = now
            log.info("%s: chunk %d/%d done (%s, %.1f s)", self.label, self.done, self.total, detail, now - self._t0)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            with contextlib.suppress(Exception):
                self._bar.stop()


def is_terminal() -> bool:
    """True when rich's console (shared with Kedro's rich logging) can draw a live bar; never on
    a Dask worker (``mtneuro.runners.ON_WORKER_ENV``), whose terminal is the driver's."""
    if os.environ.get("MTNEURO_ON_DASK_WORKER"):
        return False
    try:
        from rich import get_console

        console = get_console()
        return bool(console.is_terminal and not console.is_dumb_terminal)
    except Exception:
        try:
            return bool(sys.stderr is not None and sys.stderr.isatty())
        except (AttributeError, ValueError):
            return False
