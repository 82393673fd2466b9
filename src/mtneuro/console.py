"""A quiet console for ``kedro run``: one line per node start and finish, one progress view,
each distinct warning once, the report path at the end. Everything else goes to the log file.

``conf/logging.yml`` sends every record to the log file (``info.log``, listed first so that it gets
records before the console filter shortens them); :class:`ConsoleHook`
attaches :class:`ConsoleFilter` to the console handler when a run starts (Kedro only accepts
logging classes from ``logging``/``kedro.logging`` in ``logging.yml``) and shows one rich
progress bar over the run's nodes when the console is a terminal.

One live display at a time: rich keeps a stack of live displays per console, and a second one
(Lightning's ``RichProgressBar`` clears the whole stack when it stops) broke the run's bar and
crashed the run after its last node. A node that wants to show its own progress adds a task to
the run's bar with :func:`node_task` (``mtneuro.training`` does so for the epochs of a training).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from mtneuro.config.reporting import ReportingParameters

# MLflow would attach its own console handler when imported; its records go to the log file instead.
os.environ.setdefault("MLFLOW_CONFIGURE_LOGGING", "false")

#: Extra attribute that sends an INFO record of this project to the console too.
CONSOLE = {"console": True}

log = logging.getLogger(__name__)

_WARNING_LOCATION = re.compile(r"^\S*:\d+: ")

#: A node still running after this many seconds gets its start line on the console.
START_LINE_AFTER_S = 3.0

#: Kedro's record of a failed node, its advice after a failure, and how a stopped run's error begins.
_NODE_FAILED = "Node %s failed with error: \n%s"
_NOT_RUN = re.compile(r"There are \d+ nodes that have not run")
_STOPPED = "Stopped by SIG"
#: Library warnings that are about the library, not the run, kept to the log file: kedro-viz's
#: experimental workflow tracking does not follow non-sequential runners (the default Dask runner).
_FILE_ONLY_WARNINGS = (("kedro_viz", "Workflow tracking is disabled for non-sequential runners"),)


def _first_arg(record: logging.LogRecord) -> str:
    return str(record.args[0] if isinstance(record.args, tuple) else record.args)


class ConsoleFilter(logging.Filter):
    """Keeps the console to node progress, warnings (once each), errors and flagged summaries.

    Every node gets one finish line (``Completed node: X (k/N) in 3.2 s``); a node that runs longer
    than :data:`START_LINE_AFTER_S` also gets its start line, when that time has passed, so a
    long training shows what is running without doubling the lines of quick nodes.
    """

    def __init__(self) -> None:
        super().__init__()
        self.seen_warnings: set[str] = set()
        self.handlers: list[logging.Handler] = []
        self._finished_node = ""
        self._started: dict[str, float] = {}
        self._failure = ""

    def node_started(self, name: str) -> None:
        """Called when a node starts (full, namespaced name)."""
        self._started[name] = time.perf_counter()
        timer = threading.Timer(START_LINE_AFTER_S, self._announce_if_still_running, (name,))
        timer.daemon = True
        timer.start()

    def _announce_if_still_running(self, name: str) -> None:
        if name not in self._started:
            return
        record = logging.LogRecord("kedro.pipeline.node", logging.INFO, __file__, 0, "Running node: %s", (name,), None)
        record.console_delayed = True
        for handler in self.handlers:
            handler.handle(record)

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "console_delayed", False):
            return True
        if record.name == "py.warnings":
            first = record.getMessage().strip().splitlines()[0]
            text = _WARNING_LOCATION.sub("", first)
            if text in self.seen_warnings:
                return False
            self.seen_warnings.add(text)
            record.msg, record.args = first, ()
            return True
        if record.name == "kedro.pipeline.node" and record.msg == _NODE_FAILED and isinstance(record.args, tuple):
            # The command prints the error itself (a paragraph, or the traceback of a bug): the
            # console names the node in one line, the log file keeps Kedro's full record.
            self._failure = str(record.args[-1])
            running = list(self._started)
            record.msg, record.args = "Failed node: %s", (running[-1] if running else str(record.args[0]),)
            return True
        if record.name.startswith("kedro.runner") and _NOT_RUN.match(str(record.msg)):
            return not self._failure.startswith(_STOPPED)  # a stop says how to resume itself
        if record.levelno >= logging.WARNING:
            return not any(
                record.name.startswith(name) and str(record.msg).startswith(text) for name, text in _FILE_ONLY_WARNINGS
            )
        if record.name == "kedro.pipeline.node" and record.msg == "Running node: %s":
            return False  # announced by node_started, after START_LINE_AFTER_S, if still running
        if record.name.startswith("kedro.runner"):
            # Kedro logs "Completed node: X" then "Completed k out of N tasks": one line instead.
            if record.msg == "Completed node: %s":
                self._finished_node = _first_arg(record)
                return False
            if record.msg == "Completed %d out of %d tasks" and isinstance(record.args, tuple):
                name = self._finished_node
                started = self._started.pop(name, None)
                seconds = time.perf_counter() - started if started is not None else float("nan")
                record.msg, record.args = "Completed node: %s (%d/%d) in %.1f s", (name, *record.args, seconds)
                return True
            return "completed" in str(record.msg).lower()
        if record.name.startswith("kedro.framework.session"):
            return True
        return bool(getattr(record, "console", False))


#: Credential keys whose values never reach a log line (file or console).
SECRET_KEYS = ("token", "password", "secret", "api_key", "key")
#: Credential values that are public by design (BossDB's public read token) and common words.
_NOT_SECRET = {"public", "", "none", "null"}


def credential_secrets(credentials: Any) -> set[str]:
    """Every value under a secret-looking key of the credentials (nested), except public ones."""
    found: set[str] = set()
    if isinstance(credentials, dict):
        for key, value in credentials.items():
            if isinstance(value, dict):
                found |= credential_secrets(value)
            elif str(key).lower() in SECRET_KEYS and value is not None and str(value).lower() not in _NOT_SECRET:
                found.add(str(value))
    return found


class SecretRedactingFilter(logging.Filter):
    """Masks credential values in every record (Kedro's DEBUG hook tracing prints its arguments)."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            message = record.getMessage()
            if any(secret in message for secret in self.secrets):
                for secret in self.secrets:
                    message = message.replace(secret, "***")
                record.msg, record.args = message, ()
        return True


def install_secret_filter(secrets: set[str]) -> SecretRedactingFilter:
    """One redacting filter on every root handler (the log file included), first in line."""
    handlers = logging.getLogger().handlers
    for handler in handlers:
        for existing in handler.filters:
            if isinstance(existing, SecretRedactingFilter):
                existing.secrets |= secrets
                return existing
    redactor = SecretRedactingFilter()
    redactor.secrets = set(secrets)
    for handler in handlers:
        handler.filters.insert(0, redactor)
    return redactor


def console_handlers() -> list[logging.Handler]:
    """The root handlers that write to a terminal or standard streams (not files, not pytest's capture)."""
    return [
        h
        for h in logging.getLogger().handlers
        if not isinstance(h, logging.FileHandler) and not type(h).__module__.startswith("_pytest")
    ]


#: Libraries that attach their own console handler; their records go through ours instead.
_SELF_PRINTING_LOGGERS = (
    "lightning",
    "lightning.pytorch",
    "lightning.fabric",
    "pytorch_lightning",
    "mlflow",
    "alembic",
)

#: Width of log lines when the console is not a terminal (CI logs, files): no wrapping of node names.
_NON_TERMINAL_WIDTH = 200


def route_library_loggers() -> None:
    """Make Lightning's INFO lines ("GPU available", tips) go through the project's handlers:
    to the log file, not the console."""
    for name in _SELF_PRINTING_LOGGERS:
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            if not isinstance(handler, logging.FileHandler):
                logger.removeHandler(handler)
        logger.propagate = True


def install_console_filter() -> ConsoleFilter:
    """Attach one :class:`ConsoleFilter` to every console handler (idempotent)."""
    route_library_loggers()
    for handler in console_handlers():
        console = getattr(handler, "console", None)
        if console is not None and not console.is_terminal and console.width < _NON_TERMINAL_WIDTH:
            console.width = _NON_TERMINAL_WIDTH
    for handler in console_handlers():
        for existing in handler.filters:
            if isinstance(existing, ConsoleFilter):
                return existing
    console_filter = ConsoleFilter()
    console_filter.handlers = console_handlers()
    for handler in console_filter.handlers:
        handler.addFilter(console_filter)
    return console_filter


#: The dataset whose path the console shows at the end of a run that wrote it.
REPORT_DATASET = "report_html"


def announce_report(path: str | Path) -> None:
    """Log (to the console too) and print where the report is, as the run's last lines."""
    path = Path(path).expanduser().resolve()
    size = path.stat().st_size if path.exists() else 0
    log.info("MTNeuro report (%.0f KiB): %s", size / 1024, path)
    print(f"\nReport: {path}\n        {path.as_uri()}\n", flush=True)


#: The progress view of the running ``kedro run`` (None when the console is not a terminal).
_RUN_PROGRESS: Progress | None = None
#: The console hook of this process (the one that draws the run's bar).
_RUN_HOOK: ConsoleHook | None = None


def node_finished_elsewhere(name: str) -> None:
    """A node that ran in another process (a Dask worker, whose hooks are not this process's)
    finished: the run's n/N bar advances as for a node run here."""
    hook = _RUN_HOOK
    if hook is not None and hook._progress is not None:
        hook._progress.update(hook._task, description=name)
        hook._progress.advance(hook._task)


def may_draw_progress() -> bool:
    """Whether this process may draw a progress bar: its stderr is a terminal, and it is not a
    Dask worker (whose output is the driver's terminal, where the run's own bar is drawn)."""
    return sys.stderr.isatty() and not os.environ.get("MTNEURO_ON_DASK_WORKER")


def run_progress_active() -> bool:
    """Whether a ``kedro run`` in this process shows its progress bar (nodes then add their tasks to it)."""
    return _RUN_PROGRESS is not None


class NodeTask:
    """One line of the run's progress view, owned by the node that shows it (removed when it ends)."""

    def __init__(self, progress: Progress, task: Any) -> None:
        self._progress = progress
        self._task = task

    def update(self, *, completed: float | None = None, description: str | None = None) -> None:
        self._progress.update(self._task, completed=completed, description=description)

    def remove(self) -> None:
        with contextlib.suppress(KeyError):
            self._progress.remove_task(self._task)


def add_node_task(label: str, total: float | None = None, description: str = "") -> NodeTask | None:
    """A line of the run's progress view for a node's own progress (epochs, chunks); ``None``
    when no run bar is shown (not a terminal, or outside ``kedro run``)."""
    progress = _RUN_PROGRESS
    if progress is None:
        return None
    return NodeTask(progress, progress.add_task(description, total=total, label=label))


@contextlib.contextmanager
def node_task(label: str, total: float | None = None, description: str = "") -> Iterator[NodeTask | None]:
    """:func:`add_node_task` as a context: the line goes when the block ends."""
    task = add_node_task(label, total, description)
    try:
        yield task
    finally:
        if task is not None:
            task.remove()


class ConsoleHook:
    """Quiet console and one progress bar per ``kedro run``."""

    def __init__(self) -> None:
        self._progress: Progress | None = None
        self._task: Any = None
        self._report: Path | None = None
        global _RUN_HOOK
        _RUN_HOOK = self

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        try:
            secrets = credential_secrets(context.config_loader["credentials"])
        except Exception:
            secrets = set()
        install_secret_filter(secrets)
        install_console_filter()

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:  # noqa: ARG002
        install_console_filter()  # again: the pipelines' imports (Lightning) may have added handlers
        self._report = None
        if REPORT_DATASET in pipeline.all_outputs():
            self._report = Path(ReportingParameters.model_validate(catalog.load("params:reporting")).report_path)
        console = next((getattr(h, "console", None) for h in console_handlers() if hasattr(h, "console")), None)
        if console is None or not console.is_terminal:
            return
        global _RUN_PROGRESS
        self._progress = Progress(
            TextColumn("[bold]{task.fields[label]}[/]"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.description}"),
            console=console,
            transient=True,
        )
        self._task = self._progress.add_task("", total=len(pipeline.nodes), label="kedro run")
        self._progress.start()
        _RUN_PROGRESS = self._progress

    @hook_impl
    def before_node_run(self, node: Any) -> None:
        install_console_filter().node_started(node.name)
        if self._progress is not None:
            self._progress.update(self._task, description=node.name)

    @hook_impl
    def after_node_run(self, node: Any) -> None:  # noqa: ARG002
        if self._progress is not None:
            self._progress.advance(self._task)

    def _stop(self) -> None:
        global _RUN_PROGRESS
        _RUN_PROGRESS = None
        progress, self._progress = self._progress, None
        if progress is not None:
            try:
                progress.stop()
            except IndexError:  # another live display emptied rich's stack: the bar is gone already
                log.debug("The run's progress bar was stopped by another live display", exc_info=True)

    @hook_impl
    def after_pipeline_run(self) -> None:
        self._stop()
        if self._report is not None:
            announce_report(self._report)

    @hook_impl
    def on_pipeline_error(self) -> None:
        self._stop()


CONSOLE_HOOK = ConsoleHook()
