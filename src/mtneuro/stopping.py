"""Stopping a run cleanly on SIGTERM, as schedulers (SLURM, ``timeout``, ``docker stop``) ask.

Lightning replaces the SIGTERM handler while it trains with one that only takes note, so a
terminated training went on. :class:`StopOnSigtermHook` installs a handler for the run that
raises :class:`RunTerminated` in the main thread (Lightning calls the handler it found too, and
re-raises what it raises), so the node stops, Kedro calls ``on_pipeline_error`` (progress bar,
MLflow runs) and the outputs of finished nodes stay on disk: ``--only-missing-outputs`` resumes.
A signal that arrives while a dataset is being saved waits until the save has finished, so no
output is left half written. A second SIGTERM ends the process at once.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from types import FrameType
from typing import Any

from kedro.framework.hooks import hook_impl

log = logging.getLogger(__name__)


class RunTerminated(Exception):
    """The run was asked to stop (SIGTERM); the outputs of finished nodes are on disk."""

    def __init__(self, signum: int = signal.SIGTERM) -> None:
        self.signum = signum
        super().__init__(
            f"Stopped by {signal.Signals(signum).name}; the outputs of finished nodes are kept. "
            "Rerun the same command with --only-missing-outputs to resume."
        )

    @property
    def exit_code(self) -> int:
        """The shell's convention for a process ended by a signal: 128 + its number."""
        return 128 + int(self.signum)


class StopOnSigtermHook:
    """SIGTERM raises :class:`RunTerminated` in the running node, or after the save in progress."""

    def __init__(self) -> None:
        self._previous: Any = None
        self._installed = False
        self._received: int | None = None
        self._saving = 0

    def _handle(self, signum: int, frame: FrameType | None) -> None:  # noqa: ARG002
        if self._received is not None:  # asked twice: stop now
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        self._received = signum
        log.warning("Received %s: stopping the run", signal.Signals(signum).name)
        if not self._saving:
            raise RunTerminated(signum)

    def _raise_if_received(self) -> None:
        if self._received is not None and not self._saving:
            raise RunTerminated(self._received)

    @hook_impl
    def before_pipeline_run(self) -> None:
        self._received, self._saving = None, 0
        if self._installed or threading.current_thread() is not threading.main_thread():
            return  # installed already, or not the main thread (only it can set signal handlers)
        self._previous = signal.signal(signal.SIGTERM, self._handle)
        self._installed = True

    @hook_impl
    def before_dataset_saved(self) -> None:
        self._saving += 1

    @hook_impl
    def after_dataset_saved(self) -> None:
        self._saving = max(0, self._saving - 1)
        self._raise_if_received()

    @hook_impl
    def after_node_run(self) -> None:
        # A node that caught the exception (a broad ``except Exception``) still ends the run here.
        self._raise_if_received()

    def _restore(self) -> None:
        if self._installed:
            signal.signal(signal.SIGTERM, self._previous if self._previous is not None else signal.SIG_DFL)
            self._installed = False

    @hook_impl
    def after_pipeline_run(self) -> None:
        self._restore()

    @hook_impl
    def on_pipeline_error(self) -> None:
        self._restore()


STOP_ON_SIGTERM_HOOK = StopOnSigtermHook()
