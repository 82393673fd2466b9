"""The project's ``kedro run``: Kedro's own command, with user errors as one paragraph.

Kedro loads ``<package>.cli`` and lets its ``cli`` group override the built-in commands
(https://docs.kedro.org/en/stable/extend/common_use_cases/, "how to add or modify CLI commands");
``python -m mtneuro`` runs the same command (``find_run_command``). This ``run`` takes every option
of Kedro's (the same click parameters, the same callback) and adds ``--verbose``. Before Kedro
builds the pipelines it checks the names given to ``--pipelines`` and the parameters, so that a
typo is reported in a second, not after the imports of every pipeline. Known errors (the
configuration, missing inputs, unknown names, an unreachable or unreadable volume source) print
their message and exit 2; a SIGTERM (``mtneuro.stopping``) or Ctrl-C prints one line and exits
143 or 130; anything else is a bug and keeps its traceback. ``info.log`` gets the traceback of every error.
"""

from __future__ import annotations

import difflib
import logging
import sys
import time
import traceback
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import click
from kedro.framework.cli.project import run as kedro_run

from mtneuro.errors import MtneuroError

log = logging.getLogger(__name__)

#: Exit status of a user error (the shell's "misuse"; click's own usage errors exit 2 too).
USER_ERROR_EXIT = 2

#: Errors that are the user's to fix (their messages name the parameter or file and the fix),
#: by qualified class name, so that checking an error imports nothing heavy: every error the
#: project raises on purpose (:class:`mtneuro.errors.MtneuroError`: configuration, plugin names,
#: volume sources, faults outside the code, a node's refusal of its inputs) and Kedro's own CLI errors.
KNOWN_ERRORS = (
    "mtneuro.errors.MtneuroError",
    "kedro.framework.cli.utils.KedroCliError",
)

#: Kedro's own messages for selections that match nothing (raised as plain ValueErrors).
KEDRO_SELECTION_ERRORS = (
    "Failed to find the pipeline named",
    "Pipeline does not contain nodes named",
    "Pipeline does not contain datasets named",
    "Pipeline contains no nodes",
    "Pipeline does not contain nodes",
)


class UnknownPipelineError(MtneuroError, ValueError):
    """``--pipelines`` names a pipeline that the project does not register."""


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _causes(error: BaseException) -> Iterator[BaseException]:
    """The error and what caused it (Kedro wraps a dataset's errors in its DatasetError)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def known_error(error: BaseException) -> BaseException | None:
    """The user error behind ``error``, if it is one (see :data:`KNOWN_ERRORS`)."""
    for cause in _causes(error):
        if any(_qualified(cls) in KNOWN_ERRORS for cls in type(cause).__mro__):
            return cause
        if type(cause) is ValueError and str(cause).startswith(KEDRO_SELECTION_ERRORS):
            return cause
    return None


def is_run_terminated(error: BaseException) -> BaseException | None:
    for cause in _causes(error):
        if _qualified(type(cause)) == "mtneuro.stopping.RunTerminated":
            return cause
    return None


def _message(error: BaseException) -> str:
    if isinstance(error, KeyError) and type(error).__str__ is KeyError.__str__ and error.args:
        return str(error.args[0]).strip()  # KeyError's own str() quotes the sentence
    return str(getattr(error, "message", None) or error).strip()


def _log_to_file(message: str, error: BaseException) -> None:
    """The traceback into the log files only (the console shows the paragraph)."""
    record = logging.LogRecord(__name__, logging.ERROR, __file__, 0, "%s", (message,), None)
    record.exc_info = (type(error), error, error.__traceback__)
    record.exc_text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


def _stop_console() -> None:
    """The run's progress bar ends before the message (an error in a hook skips Kedro's ``on_pipeline_error``)."""
    from mtneuro.console import CONSOLE_HOOK

    CONSOLE_HOOK.on_pipeline_error()


def _fail(message: str, code: int) -> None:
    click.echo(message, err=True)
    sys.exit(code)


def pipeline_names(pipeline: str | None, pipelines: Iterable[str] | None) -> list[str]:
    names = [pipeline] if pipeline else list(pipelines or [])
    return [name for name in names if name]


def check_pipeline_names(names: Iterable[str]) -> None:
    """Every name is a registered pipeline (the stages of ``pipeline_registry.UPSTREAM``)."""
    from mtneuro.pipeline_registry import UPSTREAM

    known = [*UPSTREAM, "__default__"]
    for name in names:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"Did you mean `--pipelines={close[0]}`? " if close else ""
            raise UnknownPipelineError(
                f"No pipeline named {name!r}. {hint}Pipelines: {', '.join(UPSTREAM)} "
                "(each with what it needs upstream); without --pipelines, `kedro run` runs all of them."
            )


def check_parameters(env: str | None, conf_source: str | None, params: dict[str, Any] | None) -> None:
    """Parse the run's parameters and check their plugin names as ``register_pipelines`` will
    (raises ``ConfigurationError``)."""
    from pathlib import Path

    from mtneuro.config.loading import default_conf_source, default_environment
    from mtneuro.plugin_parameters import load_checked_parameters

    source = Path(conf_source) if conf_source else default_conf_source()
    if source.exists() and not source.is_dir():
        return  # an archive: Kedro reads it itself
    load_checked_parameters(source, env or default_environment(), params or {})


def choose_runner(env: str | None, conf_source: str | None) -> str | None:
    """The runner of a ``kedro run`` without ``--runner`` (``default_runner`` of ``dask.yml``):
    with 2 or more cores the Dask runner, so that a run keeps every core busy."""
    from pathlib import Path

    from mtneuro.config.loading import config_loader, default_conf_source, default_environment
    from mtneuro.runners import default_runner

    source = Path(conf_source) if conf_source else default_conf_source()
    if source.exists() and not source.is_dir():
        return None  # an archive: Kedro's own default
    return default_runner(config_loader(source, env or default_environment()))


def _run(verbose: bool, **kwargs: Any) -> Any:
    started = time.perf_counter()
    try:
        check_pipeline_names(pipeline_names(kwargs.get("pipeline"), kwargs.get("pipelines")))
        check_parameters(kwargs.get("env"), kwargs.get("conf_source"), kwargs.get("params"))
        if not kwargs.get("runner"):
            kwargs["runner"] = choose_runner(kwargs.get("env"), kwargs.get("conf_source"))
            if kwargs["runner"]:
                log.info(
                    "Runner: %s on a local cluster (dask.yml default_runner; --runner=SequentialRunner runs in one process)",
                    kwargs["runner"].rsplit(".", 1)[-1],
                )
        log.info(
            "Parameters checked in %.1f s; loading PyTorch, Lightning and MONAI to build the pipelines ...",
            time.perf_counter() - started,
        )
        return kedro_run.callback(**kwargs)  # type: ignore[misc]
    except KeyboardInterrupt as error:
        _stop_console()
        if verbose:
            raise
        _log_to_file("Interrupted (SIGINT)", error)
        _fail(
            "kedro run: interrupted; the outputs of finished nodes are kept. "
            "Rerun the same command with --only-missing-outputs to resume.",
            130,
        )
    except Exception as error:
        _stop_console()
        terminated = is_run_terminated(error)
        if terminated is not None:
            _log_to_file(str(terminated), error)
            _fail(f"kedro run: {terminated}", int(getattr(terminated, "exit_code", 143)))
        known = known_error(error)
        if known is None or verbose:
            raise
        message = _message(known)
        _log_to_file(message, error)
        _fail(f"Error: {message}\n(kedro run --verbose shows the traceback; info.log has it too)", USER_ERROR_EXIT)


run = click.Command(
    name="run",
    params=[
        *kedro_run.params,
        click.Option(["--verbose"], is_flag=True, default=False, help="Show the traceback of every error."),
    ],
    callback=_run,
    help=kedro_run.help,
    short_help=kedro_run.short_help,
)


@click.group(name="mtneuro")
def cli() -> None:
    """The project's commands (they override Kedro's built-in ones of the same name)."""


cli.add_command(run)


def _option(name: str) -> click.Parameter:
    return next(p for p in kedro_run.params if p.name == name)


@cli.command(name="predict")
@click.option(
    "--input",
    "input_path",
    required=True,
    type=click.Path(path_type=Path),
    help="TIFF stack, folder of TIFF slices or Zarr / OME-Zarr array (z, y, x).",
)
@click.option(
    "--model",
    required=True,
    help="A run of the segmentation run index (e.g. unet.seg_4class.seed0) or a model.pt file.",
)
@click.option(
    "--output",
    required=True,
    type=click.Path(path_type=Path),
    help="The OME-Zarr store to write (e.g. my_volume.ome.zarr).",
)
@click.option("--data-root", default="data", show_default=True, help="Data root whose run index names --model.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option(
    "--intensity-range",
    "intensity",
    type=float,
    nargs=2,
    default=None,
    help="LOW HIGH mapped to 0-255 (default: none for uint8, else the 0.5-99.5 percentiles).",
)
@click.option(
    "--voxel-size", type=float, nargs=3, default=None, help="Z Y X in micrometres (default: the input's, else 1)."
)
@click.option("--overwrite", is_flag=True, default=False, help="Replace an output of other settings.")
@click.option("--verbose", is_flag=True, default=False, help="Show the traceback of every error.")
def predict(verbose: bool, **options: Any) -> None:
    """Segment your own volume with a trained Task 2 model into an OME-Zarr labels image."""
    from mtneuro.predict import predict_volume

    try:
        predict_volume(**options, echo=click.echo)
    except KeyboardInterrupt:
        _fail("kedro predict: interrupted; run the same command again to resume (finished blocks are kept).", 130)
    except Exception as error:
        known = known_error(error)
        if known is None or verbose:
            raise
        _fail(f"Error: {_message(known)}", USER_ERROR_EXIT)


for _name in ("env", "conf_source", "params"):
    predict.params.append(_option(_name))
