"""Stopping a run cleanly on SIGTERM, as schedulers (SLURM, ``timeout``, ``docker stop``) ask.

Lightning replaces the SIGTERM handler while it trains with one that only takes note, so a
terminated training went on. :class:`StopOnSigtermHook` installs a handler for the run that
raises :class:`RunTerminated` in the main thread (Lightning calls the handler it found too, and
re-raises what it raises), so the node stops, Kedro calls ``on_pipeline_error`` (progress bar,
MLflow runs) and the outputs of finished nodes stay on disk: ``--only-missing-outputs`` resumes.
A signal that arrives while a dataset is being saved waits until the save has finished, so no
output is left half written. A second SIGTERM ends the process at once.

A process killed outright (SIGKILL, out of memory, a Dask worker ended by its nanny or by
SLURM's SIGTERM, which dask.distributed does not catch) cannot wait: what it was saving stays
half written. So the hook keeps a *save journal* (``<data_root>/.mtneuro-saving/``): one small
file per dataset being saved, written before the save and removed after it, by whichever process
saves (the driver, or a Dask worker: the folder travels as ``MTNEURO_SAVE_JOURNAL``). A run that
finds entries left over when it starts (after the data-root lock is taken, before
``--only-missing-outputs`` looks for missing outputs) removes what those saves left -- the file of
the interrupted save, or its version folder for a versioned dataset -- so the rerun computes it
again instead of trusting it. Datasets whose saves are atomic or resumable on their own (temporary
paths renamed into place, checksums, per-block markers: ``SAVE_IS_SAFE = True``) are left as
they are.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import signal
import socket
import threading
import uuid
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import Any

from kedro.framework.hooks import hook_impl

log = logging.getLogger(__name__)

#: Folder of the save journal, in the data root.
JOURNAL_DIR = ".mtneuro-saving"
#: Environment variables that tell every saving process (Dask workers too) where the journal is
#: and the run's save version.
JOURNAL_ENV = "MTNEURO_SAVE_JOURNAL"
SAVE_VERSION_ENV = "MTNEURO_SAVE_VERSION"


def _entry_path(folder: Path, dataset_name: str) -> Path:
    return folder / f"{hashlib.sha256(dataset_name.encode()).hexdigest()[:20]}.json"


def journal_save_started(dataset_name: str) -> None:
    """Note in the journal (if this run keeps one) that ``dataset_name`` is being saved."""
    folder = os.environ.get(JOURNAL_ENV)
    if not folder:
        return
    path = _entry_path(Path(folder), dataset_name)
    record = {
        "dataset": dataset_name,
        "version": os.environ.get(SAVE_VERSION_ENV),
        "pid": os.getpid(),
        "host": socket.gethostname(),
    }
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(record))
        os.replace(tmp, path)
    except OSError as exc:  # a journal that cannot be written must not stop the save
        log.debug("save journal: %s not noted (%s)", dataset_name, exc)
        tmp.unlink(missing_ok=True)


def journal_save_finished(dataset_name: str) -> None:
    folder = os.environ.get(JOURNAL_ENV)
    if folder:
        _entry_path(Path(folder), dataset_name).unlink(missing_ok=True)


def _remove(path: Path) -> bool:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
        return True
    if path.exists() or path.is_symlink():
        path.unlink()
        return True
    return False


def half_written_paths(dataset: Any, version: str | None) -> list[Path]:
    """What an interrupted save of ``dataset`` (at save ``version``) may have left, on a local disk."""
    from kedro.io import AbstractVersionedDataset

    if getattr(dataset, "SAVE_IS_SAFE", False) or getattr(dataset, "_EPHEMERAL", False):
        return []
    if getattr(dataset, "_protocol", "file") not in ("file", "local"):
        return []  # object stores write an object whole or not at all
    filepath = getattr(dataset, "_filepath", None)
    if filepath is None:
        return []
    if isinstance(dataset, AbstractVersionedDataset) and getattr(dataset, "_version", None) is not None:
        if not version:
            return []
        return [Path(str(filepath)) / version]  # the version folder of that save, nothing older
    return [Path(str(filepath))]


def remove_half_written(catalog: Any, folder: Path) -> list[str]:
    """Remove what the saves noted in the journal ``folder`` left (they never finished); returns
    the datasets whose output was removed."""
    removed = []
    for entry in sorted(folder.glob("*.json")):
        try:
            record = json.loads(entry.read_text())
            name = str(record["dataset"])
        except (OSError, ValueError, KeyError, TypeError):
            entry.unlink(missing_ok=True)
            continue
        try:
            dataset = catalog.get(name)
        except Exception:  # a dataset of another configuration: nothing to remove here
            dataset = None
        paths = half_written_paths(dataset, record.get("version")) if dataset is not None else []
        gone = [str(p) for p in paths if _remove(p)]
        if gone:
            removed.append(name)
            log.warning(
                "%s was being saved when an earlier run was killed: removed its half-written output %s, "
                "so that it is computed again",
                name,
                ", ".join(gone),
            )
        entry.unlink(missing_ok=True)
    return removed


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
    def before_pipeline_run(self, run_params: Mapping[str, Any], catalog: Any) -> None:
        # (no defaults: pluggy passes only the arguments a hook implementation requires)
        self._received, self._saving = None, 0
        if catalog is not None:
            self._open_journal(run_params, catalog)
        if self._installed or threading.current_thread() is not threading.main_thread():
            return  # installed already, or not the main thread (only it can set signal handlers)
        self._previous = signal.signal(signal.SIGTERM, self._handle)
        self._installed = True

    @staticmethod
    def _open_journal(run_params: Mapping[str, Any], catalog: Any) -> None:
        """Clear what killed runs left half written, then keep this run's journal (after the
        preflight hook, which runs first and holds the data-root lock: no other run is saving)."""
        from mtneuro.preflight import _data_root

        data_root, _ = _data_root(run_params, Path(str(run_params.get("project_path") or Path.cwd())))
        folder = data_root / JOURNAL_DIR
        if folder.is_dir():
            remove_half_written(catalog, folder)
        os.environ[JOURNAL_ENV] = str(folder)
        version = run_params.get("run_id") or run_params.get("session_id")
        if version:
            os.environ[SAVE_VERSION_ENV] = str(version)
        else:
            os.environ.pop(SAVE_VERSION_ENV, None)

    @hook_impl
    def before_dataset_saved(self, dataset_name: str) -> None:
        self._saving += 1
        journal_save_started(dataset_name)

    @hook_impl
    def after_dataset_saved(self, dataset_name: str) -> None:
        journal_save_finished(dataset_name)
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

    @staticmethod
    def _close_journal() -> None:
        folder = os.environ.pop(JOURNAL_ENV, None)
        os.environ.pop(SAVE_VERSION_ENV, None)
        if folder:  # empty: every save finished; else saves that never did (a killed worker)
            with contextlib.suppress(OSError):
                Path(folder).rmdir()

    @hook_impl
    def after_pipeline_run(self) -> None:
        self._restore()
        self._close_journal()

    @hook_impl
    def on_pipeline_error(self) -> None:
        self._restore()
        self._close_journal()


STOP_ON_SIGTERM_HOOK = StopOnSigtermHook()
