"""Checks before a run starts, so that a run that cannot finish stops before its first node.

In this order, in ``before_pipeline_run`` (before every other hook of the project):

1. **Missing inputs**: every dataset the selected pipeline reads but does not write must be on
   disk already, else the run stops and names the pipeline that writes it, with the user's
   ``--env`` and ``data_root`` in the command (``kedro run --pipelines=reporting`` on a fresh
   data root would otherwise fail minutes in, naming a file but not how to make it).
2. **Outside services**: the BossDB host (when ``volume.source`` is ``bossdb``) and the MLflow
   tracking store are probed once, each within ``probe.connect_timeout_s`` +
   ``probe.read_timeout_s`` (``conf/base/preflight.yml``): a dead or silent one stops the run
   with one error naming it, the setting to change and the time it took to give up (MLflow with
   ``mlflow.required: false``: one warning, tracking off). The Dask scheduler address is probed
   the same way by :class:`mtneuro.runners.DaskRunner` before it connects.
3. **One run per data root**: ``<data_root>/.mtneuro.lock`` records the holder's PID, host and
   command; a second run on the same data root is refused naming the holder. A lock whose
   process is gone (same host) is taken over; it is released when the run ends or fails.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl
from kedro.pipeline import Pipeline
from pydantic import ValidationError

from mtneuro.config.base import ConfigurationError, StrictModel, format_validation_error
from mtneuro.config.volume import VolumeParameters
from mtneuro.faults import FaultError
from mtneuro.probes import (  # noqa: F401 (re-exported: the probes were defined here)
    ProbeSettings,
    ServiceUnreachableError,
    probe_http,
    probe_tcp,
    unreachable,
)

log = logging.getLogger(__name__)

CONFIG_KEY = "preflight"
CONFIG_PATTERNS = ["preflight*", "preflight*/**"]
SETTINGS_FILE = "conf/<env>/preflight.yml"
LOCK_NAME = ".mtneuro.lock"


class MissingInputsError(FaultError):
    """The selected pipeline reads datasets that no earlier run has written."""


class DataRootLockedError(FaultError):
    """Another run is using the same data root."""


class PreflightSettings(StrictModel):
    """``conf/base/preflight.yml`` (every default lives in the YAML)."""

    probe: ProbeSettings
    lock_data_root: bool


def read_settings(loader: Any) -> PreflightSettings:
    """``preflight.yml`` of the loader's environment (the file pattern is added when settings.py lacks it)."""
    from kedro.config import MissingConfigException

    try:
        try:
            raw = loader[CONFIG_KEY]
        except KeyError:
            loader.config_patterns = {**loader.config_patterns, CONFIG_KEY: CONFIG_PATTERNS}
            raw = loader[CONFIG_KEY]
    except MissingConfigException as exc:
        raise ConfigurationError(f"No pre-flight settings ({SETTINGS_FILE}): {exc}") from None
    try:
        return PreflightSettings.model_validate(dict(raw))
    except ValidationError as exc:
        raise ConfigurationError(
            f"Invalid pre-flight settings ({SETTINGS_FILE}):\n"
            f"{format_validation_error(exc, ('preflight',), PreflightSettings)}"
        ) from None


# --- probes ---------------------------------------------------------------------------------


def check_bossdb(volume: Mapping[str, Any], credentials: Mapping[str, Any], probe: ProbeSettings) -> None:
    """When the run reads BossDB: its host answers (one request for the image channel's metadata)."""
    if volume.get("source") != "bossdb":
        return
    from mtneuro.volumes.bossdb import credentials_hint, endpoint

    options = {**(credentials.get("bossdb") or {}), **((volume.get("options") or {}).get("bossdb") or {})}
    server = endpoint(options.get("host"), options.get("protocol"))
    image = str(((volume.get("uris") or {}).get("bossdb") or {}).get("image", ""))
    collection, _, rest = image.partition("://")[2].partition("/")
    experiment, _, channel = rest.partition("/")
    url = f"{server}/v1/collection/{collection}/experiment/{experiment}/channel/{channel}/"
    # with the run's token, as intern sends it: the probe is then one more request of the run's own kind
    token = options.get("token")
    reason = probe_http(url, probe, headers={"Authorization": f"Token {token}"} if token else None)
    if reason:
        raise unreachable(
            "BossDB",
            server,
            reason,
            f"the host in {credentials_hint()} or volume.options.bossdb.host; without network set the parameter "
            "volume.source to phantom",
            probe,
        )


# --- the data-root lock ---------------------------------------------------------------------


@dataclass(frozen=True)
class LockHolder:
    pid: int
    host: str
    command: str
    started: str

    @classmethod
    def of_this_process(cls) -> LockHolder:
        return cls(
            pid=os.getpid(),
            host=socket.gethostname(),
            command=" ".join(sys.argv) or sys.executable,
            started=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        )

    def describe(self) -> str:
        return f"PID {self.pid} on {self.host}, started {self.started}: {self.command}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    return True


def _read_holder(path: Path) -> LockHolder | None:
    try:
        return LockHolder(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None


class DataRootLock:
    """``<data_root>/.mtneuro.lock``: one run at a time on a data root (see the module docstring)."""

    def __init__(self, data_root: Path) -> None:
        self.data_root = data_root
        self.path = data_root / LOCK_NAME
        self.held = False

    def acquire(self) -> None:
        me = LockHolder.of_this_process()
        self.data_root.mkdir(parents=True, exist_ok=True)
        for _ in range(3):  # a stale lock is removed, then created again exclusively
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = _read_holder(self.path)
                if holder is not None and not self._stale(holder, me):
                    raise DataRootLockedError(
                        f"Another run is using the data root {self.data_root} (lock {self.path}: "
                        f"{holder.describe()}). Wait for it to finish, or give this run its own folder with "
                        "`--params data_root=...`. If that process is gone (another host, a killed container), "
                        f"delete {self.path} and run again."
                    ) from None
                log.warning(
                    "Taking over the stale lock %s (%s)",
                    self.path,
                    holder.describe() if holder else "unreadable",
                )
                self.path.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w") as f:
                json.dump(me.__dict__, f)
            self.held = True
            return
        raise DataRootLockedError(f"Could not take the lock {self.path}; another run keeps taking it. Try again.")

    @staticmethod
    def _stale(holder: LockHolder, me: LockHolder) -> bool:
        """The holder is gone: a dead PID on this host, or this very process (an earlier session of
        it that never reached its end, e.g. stopped by another hook before its first node)."""
        if holder.host != me.host:
            return False
        return holder.pid == me.pid or not _alive(holder.pid)

    def release(self) -> None:
        if not self.held:
            return
        holder = _read_holder(self.path)
        if holder is not None and holder.pid == os.getpid():
            self.path.unlink(missing_ok=True)
        self.held = False


# --- missing inputs -------------------------------------------------------------------------


def missing_inputs(pipeline: Pipeline, catalog: Any) -> list[str]:
    """Free inputs of ``pipeline`` (parameters aside) whose catalog dataset does not exist."""
    missing = []
    for name in sorted(pipeline.inputs()):
        if name == "parameters" or name.startswith("params:"):
            continue
        try:
            present = bool(catalog.exists(name))
        except Exception:  # cannot tell (e.g. a remote store): leave it to Kedro's error at load time
            present = True
        if not present:
            missing.append(name)
    return missing


def _base_name(name: str) -> str:
    return name.split("@", 1)[0]


def run_command(pipelines: list[str], env: str | None, data_root: str | None) -> str:
    """``kedro run`` with the user's ``--env`` and ``data_root``, for the given pipelines."""
    parts = ["kedro run"]
    if env and env != "local":
        parts.append(f"--env={env}")
    if pipelines:
        parts.append(f"--pipelines={','.join(pipelines)}")
    if data_root:
        parts.append(f"--params data_root={data_root}")
    return " ".join(parts)


def missing_inputs_message(
    missing: list[str],
    registry: Mapping[str, Pipeline],
    data_root: str,
    env: str | None = None,
    user_data_root: str | None = None,
) -> str:
    """Each missing dataset with the smallest registered pipeline that writes it (a stage rather
    than ``__default__``; transcoded entries such as ``x@png`` and ``x@matplotlib`` share a file).

    ``env`` and ``user_data_root`` (the ``data_root`` the user passed, None for the default) are
    repeated in the commands, so that they run on the same profile and folder.
    """
    writes = {key: {_base_name(o) for o in p.all_outputs()} for key, p in registry.items()}
    sizes = {key: len(p.nodes) for key, p in registry.items()}
    by_pipeline: dict[str, list[str]] = {}
    for name in missing:
        writers = [key for key, outputs in writes.items() if _base_name(name) in outputs]
        by_pipeline.setdefault(min(writers, key=lambda k: (sizes[k], k)) if writers else "", []).append(name)
    profile = f" (profile --env={env})" if env and env != "local" else ""
    lines = [f"This run reads {len(missing)} dataset(s) that are not on disk under {data_root}/{profile}:"]
    for pipeline_name, names in sorted(by_pipeline.items()):
        origin = (
            f"written by `{run_command([pipeline_name], env, user_data_root)}`"
            if pipeline_name
            else "no registered pipeline writes it"
        )
        lines.append(f"  - {', '.join(names)} ({origin})")
    to_run = sorted(p for p in by_pipeline if p)
    if to_run:
        lines.append(
            f"Run `{run_command(to_run, env, user_data_root)}` first (or the whole project with "
            f"`{run_command([], env, user_data_root)}`), or point `--params data_root=...` at the folder an "
            "earlier run wrote."
        )
    return "\n".join(lines)


# --- the hook -------------------------------------------------------------------------------


def _data_root(run_params: Mapping[str, Any], project_path: Path) -> tuple[Path, str | None]:
    """The data root of the run (absolute) and the ``data_root`` the user passed (None: the default)."""
    params = run_params.get("runtime_params") or {}
    given = params.get("data_root")
    path = Path(str(given or "data"))  # the catalog's default root
    return (path if path.is_absolute() else project_path / path), (str(given) if given else None)


class PreflightHook:
    """Runs the checks of the module docstring before any node (and before the other hooks)."""

    def __init__(self) -> None:
        self.loader: Any = None
        self.project_path = Path.cwd()
        self.volume: Mapping[str, Any] = {}
        self.lock: DataRootLock | None = None

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        self.loader = context.config_loader
        self.project_path = Path(context.project_path)
        # Kedro hands the block typed (the nodes' type hints); one validation takes either form
        volume = (context.params or {}).get("volume")
        self.volume = VolumeParameters.model_validate(volume).model_dump() if volume is not None else {}

    @hook_impl(tryfirst=True)  # before the tracking hook opens an MLflow run
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Pipeline, catalog: Any) -> None:
        data_root, user_data_root = _data_root(run_params, self.project_path)
        missing = missing_inputs(pipeline, catalog)
        if missing:
            from kedro.framework.project import pipelines as registry

            shown = user_data_root or "data"
            raise MissingInputsError(
                missing_inputs_message(missing, dict(registry), shown, run_params.get("env"), user_data_root)
            )
        if self.loader is None:  # outside a session (tests of single hooks): nothing more to check
            return
        settings = read_settings(self.loader)
        credentials = self._credentials()
        check_bossdb(self.volume, credentials, settings.probe)
        from mtneuro import tracking

        tracking.check_store(tracking.read_settings(self.loader), self.project_path, settings.probe)
        if settings.lock_data_root:
            self.lock = DataRootLock(data_root)
            self.lock.acquire()

    def _credentials(self) -> Mapping[str, Any]:
        try:
            return self.loader["credentials"] or {}
        except Exception:  # no credentials files: the defaults apply
            return {}

    @hook_impl
    def after_pipeline_run(self) -> None:
        self._release()

    @hook_impl
    def on_pipeline_error(self) -> None:
        self._release()

    def _release(self) -> None:
        if self.lock is not None:
            self.lock.release()
            self.lock = None


PREFLIGHT_HOOK = PreflightHook()
