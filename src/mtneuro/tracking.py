"""Experiment tracking with MLflow: one MLflow run per grid cell, grouped under one run per ``kedro run``.

Why not kedro-mlflow or Lightning's ``MLFlowLogger``: kedro-mlflow keeps the active run in the
driver process (MLflow's fluent API), so nodes running on Dask workers would log nowhere, and it
is not a dependency of the project; ``MLFlowLogger`` opens one MLflow run per Lightning trainer,
while a grid cell is several nodes (Task 1: train, read-out, evaluation) that may run on
different workers. Here a Kedro hook does everything with :class:`mlflow.MlflowClient` (no
process-global active run), in whichever process runs the node:

* ``before_pipeline_run`` (driver): opens the parent run (tags: profile, data source, Kedro run
  id, pipelines) and exports its id in ``MTNEURO_MLFLOW_*`` environment variables, which
  :class:`mtneuro.runners.DaskRunner` hands to every worker;
* ``before_node_run`` (driver or worker): for a node whose namespace is a grid cell
  (``<task>.<method>.<config>.seed<k>``, see :class:`mtneuro.run_grid.RunSpec`) of a tracked task,
  finds or creates that cell's child run (tags ``mtneuro.cell``, task, method, config, seed,
  profile, source; parameters: the cell and the node's ``params:`` inputs, flattened);
* :func:`callbacks` gives Lightning trainers an :class:`EpochMetrics` callback that logs the
  trainer's metrics once per epoch (``build_trainer`` adds it; no per-step logging);
* ``after_node_run``: logs the numbers of the cell's ``metrics`` outputs (final test metrics) and
  the per-epoch records of ``training_history`` outputs;
* ``after_dataset_saved``: logs the saved file (or folder) of ``trained_model`` /
  ``frozen_encoder`` outputs as artifacts: the trained weights;
* ``after_pipeline_run`` / ``on_pipeline_error``: closes the cell runs and the parent run.

Tracking never fails a run: an MLflow error is logged as a warning once and tracking stops in
that process. ``mlflow`` is imported only when tracking is on. Settings: ``conf/base/mlflow.yml``;
the environment variable ``MLFLOW_TRACKING_URI`` overrides ``tracking_uri`` (tests point it to a
temporary folder).
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import re
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl
from pydantic import BaseModel, ValidationError

from mtneuro.config.base import ConfigurationError, StrictModel, format_validation_error
from mtneuro.config.volume import VolumeParameters

log = logging.getLogger(__name__)

CONFIG_KEY = "mlflow"
CONFIG_PATTERNS = ["mlflow*", "mlflow*/**"]
#: Environment variables read by the hook in every process (set by the driver's hook).
ENV_URI = "MTNEURO_MLFLOW_TRACKING_URI"
ENV_EXPERIMENT = "MTNEURO_MLFLOW_EXPERIMENT_ID"
ENV_PARENT = "MTNEURO_MLFLOW_PARENT_RUN_ID"
ENV_TAGS = "MTNEURO_MLFLOW_TAGS"
ENV_SETTINGS = "MTNEURO_MLFLOW_SETTINGS"
#: A grid cell's namespace (``RunSpec.namespace``).
CELL = re.compile(r"^(?P<task>[^.]+)\.(?P<method>[^.]+)\.(?P<config>[^.]+)\.seed(?P<seed>\d+)$")
CELL_TAG = "mtneuro.cell"
_MAX_BATCH = 100  # MLflow's limit of params per log_batch


class TrackingSettings(StrictModel):
    """``conf/base/mlflow.yml`` (every default lives in the YAML)."""

    enabled: bool
    #: An unreachable tracking store stops the run before its first node (true), or is one
    #: warning and the run goes on untracked (false). Probed by :mod:`mtneuro.preflight`.
    required: bool
    #: null: ``sqlite:///<project>/mlflow.db``; any MLflow tracking URI (http://host:5000, ...).
    tracking_uri: str | None
    experiment_name: str
    #: Tasks whose grid cells get an MLflow run.
    tasks: list[str]
    #: Cell outputs (last part of the dataset name) whose numbers are the run's final metrics.
    metric_datasets: list[str]
    #: Cell outputs with per-epoch records (``{"epochs": [{"epoch": 0, "loss": ...}, ...]}``).
    history_datasets: list[str]
    #: Cell outputs whose saved file or folder is logged as an artifact (the trained weights).
    artifact_datasets: list[str]
    #: Tables of the whole run whose numbers are the parent run's summary metrics (when the run writes them).
    summary_datasets: list[str]
    #: Files of the whole run logged as the parent run's artifacts (the report).
    report_datasets: list[str]


def read_settings(loader: Any) -> TrackingSettings:
    """``mlflow.yml`` of the loader's environment (the pattern is added if settings.py lacks it)."""
    try:
        raw = loader[CONFIG_KEY]
    except KeyError:
        loader.config_patterns = {**loader.config_patterns, CONFIG_KEY: CONFIG_PATTERNS}
        raw = loader[CONFIG_KEY]
    try:
        return TrackingSettings.model_validate(dict(raw))
    except ValidationError as exc:
        raise ConfigurationError(
            f"Invalid tracking settings (conf/<env>/mlflow.yml):\n{format_validation_error(exc, ('mlflow',), TrackingSettings)}"
        ) from None


def resolve_uri(setting: str | None, project_path: Path) -> str:
    """``MLFLOW_TRACKING_URI`` if set, else the setting, else ``mlflow.db`` in the project; a relative
    SQLite path is made absolute (workers may run elsewhere)."""
    uri = os.environ.get("MLFLOW_TRACKING_URI") or setting or "sqlite:///mlflow.db"
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        uri = f"sqlite:///{(project_path / uri[len('sqlite:///') :]).resolve()}"
    return uri


#: ``uri -> problem`` ("" reachable) of the store probes of :func:`check_store` in this process,
#: taken by the tracking hook of the same run (so a store is probed once per run).
_STORE_VERDICTS: dict[str, str] = {}


def _writable_folder_problem(path: Path) -> str:
    """Why a local store at ``path`` cannot be written (its nearest existing folder), ``""`` if it can."""
    for folder in (path.parent, *path.parent.parents):
        if folder.exists():
            if not folder.is_dir():
                return f"{folder} is not a folder"
            return "" if os.access(folder, os.W_OK | os.X_OK) else f"the folder {folder} is not writable"
    return f"no folder of {path} exists"


def store_problem(uri: str, probe: Any) -> str:
    """Why the tracking store at ``uri`` cannot be used (``""``: it can), within the probe's bounds.

    Local stores (``sqlite:///``, ``file:``, plain paths) must be writable; an ``http(s)`` server
    must answer ``GET /health`` below 500; a database server must accept a TCP connection.
    """
    from urllib.parse import urlsplit

    from mtneuro.probes import probe_http, probe_tcp

    if uri.startswith("sqlite:///"):
        return _writable_folder_problem(Path(uri[len("sqlite:///") :]))
    if uri.startswith("file:"):
        return _writable_folder_problem(Path(urlsplit(uri).path) / "x")
    if "://" not in uri:
        return _writable_folder_problem(Path(uri) / "x")
    parts = urlsplit(uri)
    if parts.scheme in ("http", "https"):
        return probe_http(uri.rstrip("/") + "/health", probe, server_errors_fail=True)
    if parts.hostname and parts.port:
        return probe_tcp(f"tcp://{parts.hostname}:{parts.port}", probe)
    return ""  # databricks, a plug-in store...: left to MLflow


def check_store(settings: TrackingSettings, project_path: Path, probe: Any) -> bool:
    """Pre-flight: is the tracking store usable? True if so (or tracking is off).

    Unreachable: :class:`mtneuro.preflight.ServiceUnreachableError` when ``required``, else one
    warning and False; the verdict is kept for this run's tracking hook, which then tracks nothing.
    """
    if not settings.enabled:
        return True
    from mtneuro.probes import unreachable

    uri = resolve_uri(settings.tracking_uri, project_path)
    problem = store_problem(uri, probe)
    _STORE_VERDICTS[uri] = problem
    if not problem:
        return True
    setting = "tracking_uri in conf/<env>/mlflow.yml or the environment variable MLFLOW_TRACKING_URI"
    if settings.required:
        raise unreachable(
            "The MLflow tracking store",
            uri,
            problem,
            f"{setting}; or set required: false there to run without tracking, or enabled: false",
            probe,
        )
    log.warning(
        "MLflow tracking is off for this run: the tracking store at %s is not reachable (%s; gave up after at "
        "most %g s). Set %s to a reachable store to track runs.",
        uri,
        problem,
        probe.total_s,
        setting,
    )
    return False


def artifact_location(uri: str) -> str | None:
    """Artifacts of a SQLite store go beside the database (``mlartifacts/``); servers choose their own."""
    if uri.startswith("sqlite:///"):
        return (Path(uri[len("sqlite:///") :]).parent / "mlartifacts").as_uri()
    return None


def flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``(a.b.c, leaf)`` pairs of nested mappings and pydantic models."""
    if isinstance(value, BaseModel):
        value = value.model_dump()
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from flatten(item, f"{prefix}.{key}" if prefix else str(key))
    else:
        yield prefix, value


#: Columns of a metrics output that identify or describe a run rather than measure it.
NOT_METRICS = frozenset(
    {
        "seed",
        "epochs",
        "train_samples",
        "test_slices",
        "class_index",
        "support_pixels",
        "n_train",
        "n_test",
        "n_images",
        "test_slice_step",
        "input_size",
        "embedding_dim",
        "cv_folds",
    }
)
#: Preferred row labels of a metrics table when no text column varies.
_ROW_LABELS = ("class", "test_config", "config", "feature")


def is_metric_name(name: str) -> bool:
    """Numbers that measure a run: not identifiers, counts of the setup, or durations (seconds)."""
    last = name.rsplit(".", 1)[-1]
    return last not in NOT_METRICS and "second" not in last


def numbers(value: Any, prefix: str = "") -> dict[str, float]:
    """Every finite number in a metrics output: a dict (nested), a list of rows or a table.

    A table's rows are named by its text columns that vary (the test configuration of a Task 1
    row, the class of a Task 2 row, method and configuration in a summary): ``<row>.<column>``;
    identifiers, set-up counts and durations (:func:`is_metric_name`) are skipped.
    """
    import math

    import pandas as pd

    if isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
        value = pd.DataFrame(list(value))
    out: dict[str, float] = {}
    if isinstance(value, pd.DataFrame):
        text = [c for c in value.columns if value[c].dtype == object and c != "source"]
        labels = [c for c in text if value[c].nunique(dropna=False) > 1]
        if not labels:
            labels = [c for c in _ROW_LABELS if c in value.columns][:1]
        for index, row in value.reset_index(drop=True).iterrows():
            name = ".".join(str(row[c]) for c in labels) if labels else str(index)
            for column in value.select_dtypes("number").columns:
                if is_metric_name(str(column)):
                    out[f"{prefix}{name}.{column}"] = row[column]
    else:
        out = {f"{prefix}{k}": v for k, v in flatten(value) if is_metric_name(k)}
    clean = {}
    for key, item in out.items():
        if isinstance(item, (bool, str)) or item is None:
            continue
        if not isinstance(item, (int, float)):
            try:
                item = float(item)  # numpy scalars
            except (TypeError, ValueError):
                continue
        if math.isfinite(float(item)):
            clean[re.sub(r"[^\w./ -]", "_", key)[:250]] = float(item)
    return clean


def run_parameters(params: Mapping[str, Any], cell: Mapping[str, str]) -> dict[str, Any]:
    """The parameters of one grid cell: its own method's (or model's) settings, not the other grid
    members', no grid lists (methods, configs, seeds) and no unset (None) values."""
    grid_lists = {"methods", "models", "configs", "settings", "seeds"}
    others: set[str] = set()
    own = {cell.get("method", ""), cell.get("config", "")}
    try:  # the settings blocks a Task 1 method reads besides its own (myow_merged reads myow's)
        from mtneuro.classification_methods import get_method

        own.update(get_method(cell.get("method", "")).inherits)
    except Exception:  # not a Task 1 method
        pass
    for key, item in params.items():
        if key.rsplit(".", 1)[-1] in ("methods", "models", "configs", "settings") and isinstance(item, list):
            others.update(str(v) for v in item)
    others -= own
    kept = {}
    for key, item in params.items():
        parts = key.split(".")
        if item is None or parts[-1] in grid_lists or others.intersection(parts[1:]):
            continue
        kept[key] = item
    return kept


def profile_name(env: str | None) -> str:
    """The profile a Kedro environment runs: ``base`` for the default run environment (``local``)."""
    return "base" if not env or env == "local" else str(env)


def runner_name(runner: Any) -> str:
    """The runner's class name from Kedro's ``run_params["runner"]`` (a class name, an object repr, or
    ``"None"`` when the session runs its default)."""
    text = str(runner or "None")
    if text == "None":  # no --runner: the session runs Kedro's default
        return "SequentialRunner"
    match = re.match(r"<([\w.]+) object at", text)
    return (match.group(1) if match else text).rsplit(".", 1)[-1]


# --- per process state ------------------------------------------------------------------------


class _Tracker:
    """The MLflow client of this process and the cell runs it opened or found."""

    def __init__(
        self, uri: str, experiment_id: str, parent_id: str, tags: Mapping[str, str], settings: TrackingSettings
    ) -> None:
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(uri)
        self.experiment_id = experiment_id
        self.parent_id = parent_id
        self.tags = dict(tags)
        self.settings = settings
        self.cells: dict[str, str] = {}

    def cell_run(self, namespace: str, cell: Mapping[str, str], params: Mapping[str, Any]) -> str:
        """The cell's run under the parent: found by tag (another worker may have opened it) or created."""
        if namespace in self.cells:
            run_id = self.cells[namespace]
            self.client.update_run(run_id, status="RUNNING")
            return run_id
        found = self.client.search_runs(
            [self.experiment_id],
            filter_string=f"tags.mlflow.parentRunId = '{self.parent_id}' and tags.`{CELL_TAG}` = '{namespace}'",
            max_results=1,
        )
        if found:
            run_id = found[0].info.run_id
            if found[0].info.status != "RUNNING":  # closed by the cell's previous node: open again
                self.client.update_run(run_id, status="RUNNING")
        else:
            from mlflow.entities import Param

            tags = {
                **self.tags,
                "mlflow.parentRunId": self.parent_id,
                CELL_TAG: namespace,
                **{f"mtneuro.{k}": str(v) for k, v in cell.items()},
            }
            run_id = self.client.create_run(self.experiment_id, tags=tags, run_name=namespace).info.run_id
            items = [Param(k, str(v)[:6000]) for k, v in {**cell, **run_parameters(params, cell)}.items()]
            for start in range(0, len(items), _MAX_BATCH):
                self.client.log_batch(run_id, params=items[start : start + _MAX_BATCH])
        self.cells[namespace] = run_id
        return run_id

    def log_metrics(self, run_id: str, metrics: Mapping[str, float], step: int = 0) -> None:
        from mlflow.entities import Metric

        stamp = int(time.time() * 1000)
        items = [Metric(k, float(v), stamp, int(step)) for k, v in metrics.items()]
        for start in range(0, len(items), 1000):
            self.client.log_batch(run_id, metrics=items[start : start + 1000])


_TRACKER: _Tracker | None = None
_TRACKER_KEY: tuple[str, ...] | None = None
_FAILED: set[str] = set()  # parent runs whose tracking failed in this process
#: The cell run of the node running in this thread (read by :class:`EpochMetrics`).
_ACTIVE: contextvars.ContextVar[str | None] = contextvars.ContextVar("mtneuro_mlflow_cell_run", default=None)


def _tracker(closing: bool = False) -> _Tracker | None:
    """This process's tracker for the parent run named in the environment (None: tracking off)."""
    global _TRACKER, _TRACKER_KEY
    parent = os.environ.get(ENV_PARENT)
    if not parent or (parent in _FAILED and not closing):
        return None
    key = (os.environ[ENV_URI], os.environ[ENV_EXPERIMENT], parent)
    if key != _TRACKER_KEY:
        settings = TrackingSettings.model_validate_json(os.environ[ENV_SETTINGS])
        _TRACKER = _Tracker(*key, tags=json.loads(os.environ.get(ENV_TAGS, "{}")), settings=settings)
        _TRACKER_KEY = key
    return _TRACKER


def _safely(what: str, func: Any, *args: Any, **kwargs: Any) -> Any:
    """Tracking must never fail a run: the first MLflow error stops tracking in this process."""
    try:
        return func(*args, **kwargs)
    except Exception as exc:
        _FAILED.add(os.environ.get(ENV_PARENT, ""))
        log.warning("MLflow tracking stopped in this process (%s failed: %s: %s)", what, type(exc).__name__, exc)
        return None


def log_epoch(metrics: Mapping[str, float], epoch: int) -> None:
    """Log one epoch's numbers to the active cell run (no-op when not tracked); for loops outside Lightning."""
    run_id, tracker = _ACTIVE.get(), _tracker()
    if run_id and tracker:
        _safely("log_epoch", tracker.log_metrics, run_id, numbers(dict(metrics)), epoch)


def callbacks() -> list[Any]:
    """Lightning callbacks for a trainer built inside a tracked cell (``[]`` otherwise)."""
    return [_epoch_metrics_class()()] if _ACTIVE.get() else []


_EPOCH_METRICS: type | None = None


def _epoch_metrics_class() -> type:
    """:class:`EpochMetrics`, defined on first use so that importing this module does not import Lightning."""
    global _EPOCH_METRICS
    if _EPOCH_METRICS is None:
        import lightning as L

        class EpochMetrics(L.Callback):
            """Once per epoch: the mean training loss over the epoch's steps (summed on the device,
            read once) and the trainer's logged metrics (validation metrics included)."""

            def __init__(self) -> None:
                self._loss_sum: Any = None
                self._steps = 0

            def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:  # noqa: ARG002
                self._loss_sum, self._steps = None, 0

            def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, *args: Any) -> None:  # noqa: ARG002
                loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
                if loss is not None and hasattr(loss, "detach"):
                    value = loss.detach().float()
                    self._loss_sum = value if self._loss_sum is None else self._loss_sum + value
                    self._steps += 1

            def _logged(self, trainer: Any) -> dict[str, float]:
                values = {}
                for key, value in trainer.callback_metrics.items():
                    try:
                        values[key] = float(value)
                    except (TypeError, ValueError):
                        continue
                return values

            def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:  # noqa: ARG002
                values = self._logged(trainer)
                if self._steps:
                    values["train_loss_epoch"] = float(self._loss_sum) / self._steps
                if values:
                    log_epoch(values, trainer.current_epoch)

            def on_validation_epoch_end(self, trainer: Any, pl_module: Any) -> None:  # noqa: ARG002
                if not trainer.sanity_checking:
                    values = {k: v for k, v in self._logged(trainer).items() if k.startswith("val")}
                    if values:
                        log_epoch(values, trainer.current_epoch)

        _EPOCH_METRICS = EpochMetrics
    return _EPOCH_METRICS


# --- the hook ---------------------------------------------------------------------------------


class MlflowTrackingHook:
    """Registered in ``settings.HOOKS``; runs in the driver and (by the Dask runner) in every worker."""

    def __init__(self, settings: TrackingSettings | None = None) -> None:
        self.settings = settings
        self.project_path = Path.cwd()
        self.tags: dict[str, str] = {}
        self._catalogs: dict[str, Any] = {}
        self._exported: list[str] = []

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        """Driver: the settings and tags of this session (profile, data source)."""
        self.settings = read_settings(context.config_loader)
        self.project_path = Path(context.project_path)
        volume = (context.params or {}).get("volume")
        source = VolumeParameters.model_validate(volume).source if volume is not None else ""
        self.tags = {"mtneuro.profile": profile_name(context.env), "mtneuro.source": str(source)}

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any) -> None:
        """Driver: open the parent run and export it to the node processes."""
        if self.settings is None or not self.settings.enabled:
            return
        uri = resolve_uri(self.settings.tracking_uri, self.project_path)
        if _STORE_VERDICTS.pop(uri, ""):  # the pre-flight found it unreachable (and warned)
            return
        _safely("opening the parent run", self._open_parent, run_params, pipeline)

    def _open_parent(self, run_params: Mapping[str, Any], pipeline: Any) -> None:
        from mlflow.tracking import MlflowClient

        assert self.settings is not None
        uri = resolve_uri(self.settings.tracking_uri, self.project_path)
        client = MlflowClient(uri)
        experiment = client.get_experiment_by_name(self.settings.experiment_name)
        experiment_id = (
            experiment.experiment_id
            if experiment
            else client.create_experiment(self.settings.experiment_name, artifact_location=artifact_location(uri))
        )
        tags = {
            **self.tags,
            "mtneuro.kedro_run_id": str(run_params.get("run_id")),
            "mtneuro.pipelines": ",".join(run_params.get("pipeline_names") or ["__default__"]),
            "mtneuro.runner": runner_name(run_params.get("runner")),
        }
        parent = client.create_run(experiment_id, tags=tags, run_name=f"kedro run {run_params.get('run_id')}")
        environ = {
            ENV_URI: uri,
            ENV_EXPERIMENT: experiment_id,
            ENV_PARENT: parent.info.run_id,
            ENV_TAGS: json.dumps(self.tags),
            ENV_SETTINGS: self.settings.model_dump_json(),
        }
        os.environ.update(environ)
        self._exported = list(environ)
        log.info(
            "MLflow: run %s of experiment %r at %s (nodes: %d)",
            parent.info.run_id,
            self.settings.experiment_name,
            uri,
            len(pipeline.nodes),
        )

    @hook_impl
    def before_node_run(self, node: Any, catalog: Any, inputs: dict[str, Any]) -> None:
        """Any process: the node of a tracked grid cell logs into the cell's run."""
        match = CELL.match(node.namespace or "")
        tracker = _tracker() if match else None
        if tracker is None or match is None or match["task"] not in tracker.settings.tasks:
            _ACTIVE.set(None)
            return
        params: dict[str, Any] = {}
        for name, value in inputs.items():
            if name.startswith("params:"):
                params.update(flatten(value, name[len("params:") :].rsplit(".", 1)[-1]))
        run_id = _safely("opening the cell run", tracker.cell_run, node.namespace, match.groupdict(), params)
        _ACTIVE.set(run_id)
        if run_id:
            self._catalogs[node.namespace] = catalog
            while len(self._catalogs) > 16:  # nodes of other cells are long done
                self._catalogs.pop(next(iter(self._catalogs)))

    @hook_impl
    def after_node_run(self, outputs: dict[str, Any]) -> None:
        """Final metrics and per-epoch histories found among the cell node's outputs."""
        run_id, tracker = _ACTIVE.get(), _tracker()
        _ACTIVE.set(None)
        if not run_id or tracker is None:
            return
        for name, value in outputs.items():
            last = name.rsplit(".", 1)[-1]
            if last in tracker.settings.metric_datasets:
                _safely("logging metrics", tracker.log_metrics, run_id, numbers(value, "test."))
            elif last in tracker.settings.history_datasets and isinstance(value, Mapping):
                for record in value.get("epochs") or []:
                    epoch = int(record.get("epoch", 0)) if isinstance(record, Mapping) else 0
                    _safely("logging the history", tracker.log_metrics, run_id, numbers(record), epoch)
        # The run is open while one of its nodes runs: its duration is the cell's, not the kedro run's
        # (the artifacts were logged by after_dataset_saved, before this hook).
        _safely("closing the cell run", tracker.client.set_terminated, run_id, "FINISHED")

    @hook_impl
    def on_node_error(self, node: Any) -> None:
        run_id, tracker = _ACTIVE.get(), _tracker()
        _ACTIVE.set(None)
        if run_id and tracker:
            _safely("closing a failed cell run", tracker.client.set_terminated, run_id, "FAILED")
        self._catalogs.pop(node.namespace or "", None)

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, node: Any) -> None:
        """The saved weights of a tracked cell become an artifact of its run."""
        tracker = _tracker()
        namespace = node.namespace or ""
        if tracker is None or namespace not in tracker.cells or namespace not in self._catalogs:
            return
        last = dataset_name.rsplit(".", 1)[-1].split("@")[0]
        if last in tracker.settings.artifact_datasets:
            _safely(
                "logging an artifact",
                self._log_artifact,
                tracker,
                self._catalogs[namespace],
                dataset_name,
                tracker.cells[namespace],
                last,
            )

    @staticmethod
    def _log_artifact(tracker: _Tracker, catalog: Any, dataset_name: str, run_id: str, name: str) -> None:
        dataset = catalog.get(dataset_name)
        versioned = getattr(dataset, "_version", None) is not None
        path = Path(
            str(dataset._get_versioned_path(dataset.resolve_save_version()) if versioned else dataset._filepath)
        )
        if path.is_dir():
            tracker.client.log_artifacts(run_id, str(path), artifact_path=name)
        elif path.exists():
            tracker.client.log_artifact(run_id, str(path), artifact_path=name)

    @hook_impl
    def after_pipeline_run(self, pipeline: Any, catalog: Any) -> None:
        tracker = _tracker(closing=True) if self._exported else None
        if tracker is not None:
            _safely("logging the run's summary", self._log_summary, tracker, pipeline, catalog)
        self._close("FINISHED")

    @staticmethod
    def _log_summary(tracker: _Tracker, pipeline: Any, catalog: Any) -> None:
        """The parent run: the summary tables' numbers as metrics, the report as an artifact."""
        outputs = {name.split("@")[0] for name in pipeline.all_outputs()}
        for name in tracker.settings.summary_datasets:
            if name in outputs and catalog.exists(name):
                tracker.log_metrics(tracker.parent_id, numbers(catalog.load(name), f"{name}."))
        for name in tracker.settings.report_datasets:
            if name in outputs and catalog.exists(name):
                path = Path(str(getattr(catalog.get(name), "_filepath", "")))
                if path.is_file():
                    tracker.client.log_artifact(tracker.parent_id, str(path))

    @hook_impl
    def on_pipeline_error(self) -> None:
        self._close("FAILED")

    def _close(self, status: str) -> None:
        """Driver: close the cell runs still open (their nodes may have run anywhere), then the parent."""
        tracker = _tracker(closing=True) if self._exported else None
        if tracker is not None:
            _safely("closing the runs", self._close_runs, tracker, status)
        for key in self._exported:
            os.environ.pop(key, None)
        self._exported = []
        self._catalogs.clear()

    @staticmethod
    def _close_runs(tracker: _Tracker, status: str) -> None:
        open_cells = tracker.client.search_runs(
            [tracker.experiment_id],
            filter_string=f"tags.mlflow.parentRunId = '{tracker.parent_id}' and attributes.status = 'RUNNING'",
            max_results=10000,
        )
        for run in open_cells:
            tracker.client.set_terminated(run.info.run_id, status)
        tracker.client.set_terminated(tracker.parent_id, status)


#: The instance registered in ``settings.HOOKS``.
MLFLOW_HOOK = MlflowTrackingHook()


def child_runs(parent_id: str, uri: str) -> Iterable[Any]:
    """The cell runs of one kedro run (for tests and reports)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    parent = client.get_run(parent_id)
    return client.search_runs([parent.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent_id}'")
