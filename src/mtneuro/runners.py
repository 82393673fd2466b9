"""Running the pipelines on dask.distributed: ``kedro run --runner=mtneuro.runners.DaskRunner``.

Based on the ``DaskRunner`` of Kedro's deployment documentation, written for this project:

* every node is one Dask task (``client.submit``) that depends on the tasks of the nodes it
  needs; the worker bootstraps the project (``configure_project``), registers the project's
  hooks and runs the node with Kedro's own :class:`kedro.runner.task.Task`;
* data cross workers only through catalog datasets. Persisted datasets are saved by the worker
  that produces them and loaded by the one that needs them (versioning as in any run: every
  worker saves under the session's save version). ``MemoryDataset`` outputs that another node
  reads (e.g. ``segmentation_data``) are written by the runner to a pickle store it owns, one
  folder per run under ``exchange_dir`` (a temporary folder for local clusters), deleted at the
  end of the run; pipeline outputs kept in memory are read back into the driver's catalog;
* nodes tagged ``gpu_tag`` (default ``gpu``) ask for ``resources={"GPU": 1}`` when the cluster's
  workers advertise GPUs, so one training runs per GPU slot; other nodes run anywhere;
* the cluster comes from ``conf/<env>/dask.yml`` (read with the session's config loader), and
  ``--runner-params key=value,...`` overrides single keys: ``local`` (a LocalCluster of processes;
  with GPUs one worker per GPU, ``dask_cuda.LocalCUDACluster``), ``address`` (a running scheduler)
  or ``slurm`` (``dask_jobqueue.SLURMCluster``);
* a worker that dies in the middle of a node (SIGKILL, out of memory, node failure) makes the
  scheduler run the node again on another worker, up to ``allowed_failures`` times; after that
  the run fails with an error naming the node, and ``kedro run ... --only-missing-outputs``
  resumes without recomputing the runs whose outputs were saved.

Environment variables named ``MTNEURO_*`` in the driver when the run starts (e.g. the MLflow
parent run set by :mod:`mtneuro.tracking`) are set in the worker before each node.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from kedro.io import AbstractDataset, MemoryDataset
from kedro.runner import AbstractRunner
from kedro.runner.task import Task
from pydantic import NonNegativeFloat, NonNegativeInt, PositiveInt, ValidationError

from mtneuro.config.base import ConfigurationError, StrictModel, format_validation_error
from mtneuro.faults import FaultError

if TYPE_CHECKING:
    from distributed import Client
    from kedro.io import CatalogProtocol
    from kedro.pipeline import Pipeline
    from kedro.pipeline.node import Node
    from pluggy import PluginManager

log = logging.getLogger(__name__)

#: Environment variables with this prefix travel from the driver to the worker of every node.
ENV_PREFIX = "MTNEURO_"
#: Set on a worker while it runs a node: its output is the driver's terminal, whose one live
#: display (the run's n/N bar) belongs to the driver, so nodes there draw no bars of their own.
ON_WORKER_ENV = "MTNEURO_ON_DASK_WORKER"
#: The configuration key (``conf/<env>/dask*.yml``) and its file patterns.
CONFIG_KEY = "dask"
CONFIG_PATTERNS = ["dask*", "dask*/**"]


class WorkerDiedError(FaultError):
    """A Dask worker died while running a node (killed, out of memory, its machine lost) as often
    as ``allowed_failures`` allows: a fault outside the code, reported in one paragraph."""


class DaskSettings(StrictModel):
    """``conf/base/dask.yml``: which cluster runs the nodes (every default lives in the YAML)."""

    #: local: a cluster on this machine; address: a running scheduler; slurm: dask_jobqueue.
    cluster: Literal["local", "address", "slurm"]
    #: The runner of ``kedro run`` without ``--runner``: ``dask`` (this runner), ``sequential``
    #: (Kedro's SequentialRunner) or ``auto`` (this runner with a local cluster when the machine
    #: has 2 or more cores or a GPU, so that independent trainings run side by side).
    default_runner: Literal["auto", "dask", "sequential"]
    #: ``tcp://host:8786`` of the running scheduler (``cluster: address``).
    address: str | None
    #: Local CPU worker processes (auto: one per core); with GPUs: one per GPU slot.
    n_workers: Literal["auto"] | PositiveInt
    threads_per_worker: PositiveInt
    memory_limit: str
    #: Use this machine's GPUs for a local cluster (auto: when torch sees one).
    gpus: Literal["auto"] | bool
    #: Nodes with this Kedro tag ask for one GPU.
    gpu_tag: str
    #: Trainings sharing one GPU (one worker process each, pinned to the GPU).
    gpu_slots_per_device: PositiveInt
    #: Times a node is started again after its worker died (local clusters; a running
    #: scheduler uses its own ``distributed.scheduler.allowed-failures``).
    allowed_failures: NonNegativeInt
    #: Extra environment of local worker processes (e.g. OMP_NUM_THREADS).
    worker_env: dict[str, str | int]
    #: Where MemoryDatasets read by other nodes are pickled (null: a temporary folder for a
    #: local cluster, ``.dask-exchange`` in the working directory otherwise: a shared file system).
    exchange_dir: str | None
    #: Dashboard of a local cluster (``:8787``), or null for none.
    dashboard_address: str | None
    #: ``dask_jobqueue.SLURMCluster`` arguments (``cluster: slurm``) and how many jobs to start.
    slurm: dict[str, Any]
    slurm_jobs: PositiveInt
    #: Estimated cost of nodes, by glob pattern on the node name (the first that matches; 1 for
    #: the others): ready nodes start in order of the longest estimated path to the run's end.
    node_costs: dict[str, NonNegativeFloat]


def _read_config(overrides: Mapping[str, Any], loader: Any = None) -> DaskSettings:
    """``dask.yml`` of the session's environment (or of ``loader``) with runner parameters applied."""
    from kedro.config import MissingConfigException

    loader = loader if loader is not None else _session_loader()
    try:
        try:
            raw = dict(loader[CONFIG_KEY])
        except KeyError:  # no "dask" pattern in settings.CONFIG_LOADER_ARGS: read the files anyway
            loader.config_patterns = {**loader.config_patterns, CONFIG_KEY: CONFIG_PATTERNS}
            raw = dict(loader[CONFIG_KEY])
    except MissingConfigException:
        raw = {}
    config_file = overrides.get("config")
    if config_file:
        from omegaconf import OmegaConf

        raw.update(OmegaConf.to_container(OmegaConf.load(str(config_file)), resolve=True))  # type: ignore[arg-type]
    raw.update({k: v for k, v in overrides.items() if k != "config"})
    try:
        return DaskSettings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigurationError(
            f"Invalid Dask runner settings (conf/<env>/dask.yml, --runner-params):\n"
            f"{format_validation_error(exc, ('dask',), DaskSettings)}"
        ) from None


def _session_loader() -> Any:
    """The running session's config loader (knows --env and --conf-source), else ``conf/``."""
    from mtneuro.config.active import CONFIGURATION_HOOK
    from mtneuro.config.loading import config_loader, default_conf_source, default_environment

    loader = getattr(CONFIGURATION_HOOK, "loader", None)
    return loader if loader is not None else config_loader(default_conf_source(), default_environment())


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity, e.g. under taskset or a SLURM allocation)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def default_runner(loader: Any) -> str | None:
    """The ``--runner`` that ``kedro run`` uses when none is given (``default_runner`` of
    ``conf/<env>/dask.yml``): this module's DaskRunner, or None for Kedro's SequentialRunner.

    ``auto`` takes the Dask runner on a machine with 2 or more usable cores (or a GPU, which a
    local cluster then uses one worker per GPU slot); reading the setting imports nothing heavy.
    """
    choice = _read_config({}, loader).default_runner
    if choice == "auto":
        gpus = bool(os.environ.get("CUDA_VISIBLE_DEVICES", "").strip(" -1")) or Path("/dev/nvidia0").exists()
        choice = "dask" if usable_cores() >= 2 or gpus else "sequential"
    return f"{__name__}.DaskRunner" if choice == "dask" else None


def local_gpu_count(setting: str | bool) -> int:
    """GPUs a local cluster uses: none when ``gpus`` is false, torch's count otherwise."""
    if setting is False:
        return 0
    import torch

    count = torch.cuda.device_count()
    if setting is True and count == 0:
        raise ConfigurationError("dask.gpus is true but torch sees no GPU on this machine")
    return count


def local_gpu_worker_specs(n_gpus: int, slots: int, memory_limit: str, env: Mapping[str, Any]) -> dict[str, dict]:
    """One Nanny per (GPU, slot), pinned to its GPU and advertising ``GPU: 1`` (a SpecCluster spec)."""
    from distributed import Nanny

    return {
        f"gpu{gpu}-{slot}": {
            "cls": Nanny,
            "options": {
                "nthreads": 1,
                "memory_limit": memory_limit,
                "resources": {"GPU": 1},
                "env": {**{k: str(v) for k, v in env.items()}, "CUDA_VISIBLE_DEVICES": str(gpu)},
            },
        }
        for gpu in range(n_gpus)
        for slot in range(slots)
    }


def connect_scheduler(address: str, probe: Any) -> Client:
    """A client of the running scheduler at ``address``; a dead or silent one is an error within
    the probe's bounds (``conf/base/preflight.yml``), naming the address and the setting."""
    from distributed import Client

    from mtneuro.probes import probe_tcp, unreachable

    setting = "dask.address in conf/<env>/dask.yml, or --runner-params=cluster=address,address=tcp://host:8786"
    scheme = address.partition("://")[0] if "://" in address else "tcp"
    # tcp: the scheduler greets first (its handshake); tls: the client speaks first; others: not probed
    reason = probe_tcp(address, probe, greeting=scheme == "tcp") if scheme in ("tcp", "tls") else ""
    if reason:
        raise unreachable("The Dask scheduler", address, reason, setting, probe)
    try:
        return Client(address, timeout=probe.total_s)
    except (OSError, TimeoutError) as exc:
        raise unreachable(
            "The Dask scheduler",
            address,
            f"connected, but no Dask handshake within {probe.total_s:g} s ({type(exc).__name__})",
            setting,
            probe,
        ) from None


def worker_logging(driver_config: Mapping[str, Any]) -> dict[str, Any]:
    """The driver's logging configuration without its console handlers, for the workers.

    A local worker's output is the driver's terminal, where the driver alone shows the run (one
    line per node, the run's n/N bar, warnings once): the workers' records go to the log file
    only, and Dask's own start-up messages (worker banners) are kept below WARNING."""
    import copy

    config: dict[str, Any] = copy.deepcopy(dict(driver_config))
    handlers = config.get("handlers", {})
    console = {
        name
        for name, handler in handlers.items()
        if str(handler.get("class", "")).rsplit(".", 1)[-1] in ("RichHandler", "StreamHandler")
    }
    for name in console:
        handlers.pop(name)
    for section in [config.get("root", {}), *config.get("loggers", {}).values()]:
        if isinstance(section, dict) and "handlers" in section:
            section["handlers"] = [h for h in section["handlers"] if h not in console]
    config.setdefault("loggers", {})["distributed"] = {"level": "WARNING"}
    return config


def close_cluster(client: Any, cluster: Any) -> None:
    """Close the run's own client and local cluster. A close that times out (the nannies are slow
    to answer on a loaded machine) is a warning, not an error: it comes after every node has
    finished and saved, so failing the run then would report a finished run as failed."""
    try:
        client.close()
        cluster.close()
    except TimeoutError as error:  # asyncio.TimeoutError is TimeoutError on Python >= 3.11
        log.warning("The Dask cluster did not close in time (%s); the run's outputs are all saved.", error)


def start_cluster(
    settings: DaskSettings, probe: Any = None, worker_environ: Mapping[str, str] | None = None
) -> tuple[Client, Any]:
    """A client and the cluster it owns (None for a running scheduler) from the settings;
    ``probe`` (:class:`mtneuro.preflight.ProbeSettings`) bounds the wait for a running scheduler;
    ``worker_environ`` is set in local workers before they start (e.g. their logging)."""
    import dask
    from distributed import Client, LocalCluster

    dask_config: dict[str, Any] = {"distributed.scheduler.allowed-failures": settings.allowed_failures}
    extra_environ = {**(worker_environ or {}), **{k: str(v) for k, v in settings.worker_env.items()}}
    if extra_environ:
        dask_config["distributed.nanny.pre-spawn-environ"] = {
            **dask.config.get("distributed.nanny.pre-spawn-environ"),
            **extra_environ,
        }
    with dask.config.set(dask_config):
        if settings.cluster == "address":
            if not settings.address:
                raise ConfigurationError(
                    "dask.address: set the scheduler address (tcp://host:8786) for cluster: address"
                )
            if probe is None:
                return Client(settings.address), None
            return connect_scheduler(settings.address, probe), None
        if settings.cluster == "slurm":
            from dask_jobqueue import SLURMCluster

            cluster: Any = SLURMCluster(**settings.slurm)
            cluster.scale(jobs=settings.slurm_jobs)
            return Client(cluster), cluster
        common = {"memory_limit": settings.memory_limit, "dashboard_address": settings.dashboard_address}
        n_gpus = local_gpu_count(settings.gpus)
        if n_gpus and settings.gpu_slots_per_device == 1:
            try:
                from dask_cuda import LocalCUDACluster  # optional extra "cuda"
            except ImportError:
                LocalCUDACluster = None
            if LocalCUDACluster is not None:
                cluster = LocalCUDACluster(threads_per_worker=1, resources={"GPU": 1}, **common)
                return Client(cluster), cluster
        if n_gpus:
            from distributed import Scheduler, SpecCluster

            cluster = SpecCluster(
                workers=local_gpu_worker_specs(
                    n_gpus, settings.gpu_slots_per_device, settings.memory_limit, settings.worker_env
                ),
                scheduler={"cls": Scheduler, "options": {"dashboard_address": settings.dashboard_address}},
            )
            return Client(cluster), cluster
        n_workers = usable_cores() if settings.n_workers == "auto" else settings.n_workers
        cluster = LocalCluster(
            n_workers=n_workers, threads_per_worker=settings.threads_per_worker, processes=True, **common
        )
        return Client(cluster), cluster


# --- on the worker ---------------------------------------------------------------------------

_WORKER_HOOKS: dict[str, Any] = {}


def _worker_hook_manager(
    package_name: str | None, logging_config: Mapping[str, Any] | None, extra_hooks: tuple[Any, ...] = ()
) -> PluginManager:
    """The project bootstrapped in this worker process, and a hook manager with its hooks (once per process).

    Only the project's hooks (``settings.HOOKS``) and the runner's ``hooks`` run on workers, not
    plugins' entry points (kedro-viz's dataset statistics, telemetry), which belong to the driver.
    """
    from kedro.framework.hooks.manager import _create_hook_manager, _register_hooks
    from kedro.framework.project import PACKAGE_NAME, configure_logging, configure_project, settings

    key = package_name or ""
    if key not in _WORKER_HOOKS:
        if package_name and package_name != PACKAGE_NAME:
            configure_project(package_name)
            if logging_config:
                configure_logging(dict(logging_config))
        manager = _create_hook_manager()
        _register_hooks(manager, settings.HOOKS)
        _WORKER_HOOKS[key] = manager
    if not extra_hooks:
        return _WORKER_HOOKS[key]
    project_types = {type(h) for h in settings.HOOKS}
    manager = _create_hook_manager()
    _register_hooks(manager, (*settings.HOOKS, *(h for h in extra_hooks if type(h) not in project_types)))
    return manager


def run_node_on_worker(
    node: Node,
    catalog: CatalogProtocol,
    package_name: str | None,
    logging_config: Mapping[str, Any] | None,
    environ: Mapping[str, str],
    is_async: bool,
    run_id: str | None,
    extra_hooks: tuple[Any, ...] = (),
) -> tuple[str, float, float]:
    """One node on a Dask worker, with the project's hooks; returns the node's name, its
    seconds (from the first load of its inputs to the last save of its outputs) and the worker
    process's CPU seconds meanwhile (every thread)."""
    for key in [k for k in os.environ if k.startswith(ENV_PREFIX) and k not in environ]:
        del os.environ[key]
    os.environ.update(environ)
    os.environ[ON_WORKER_ENV] = "1"
    logging.captureWarnings(True)  # to the log file: the driver's console shows each warning once
    hook_manager = _worker_hook_manager(package_name, logging_config, extra_hooks)
    started, cpu_started = time.perf_counter(), time.process_time()
    Task(node=node, catalog=catalog, hook_manager=hook_manager, is_async=is_async, run_id=run_id).execute()
    return node.name, time.perf_counter() - started, time.process_time() - cpu_started


def node_priorities(pipeline: Pipeline, costs: Mapping[str, float]) -> dict[Node, float]:
    """Each node's longest path to the run's end, in estimated cost (``costs``: glob pattern on
    the node name -> cost, the first match; 1 otherwise). Starting the ready node with the longest
    path first keeps the critical path moving, so the workers end together (list scheduling)."""
    from fnmatch import fnmatchcase

    def cost(node: Node) -> float:
        return next((float(c) for pattern, c in costs.items() if fnmatchcase(node.name, pattern)), 1.0)

    children: dict[Node, list[Node]] = {node: [] for node in pipeline.nodes}
    for node, parents in pipeline.node_dependencies.items():
        for parent in parents:
            children[parent].append(node)
    rank: dict[Node, float] = {}
    for node in reversed(pipeline.nodes):  # topologically sorted: children first
        rank[node] = cost(node) + max((rank[child] for child in children[node]), default=0.0)
    return rank


# --- the runner ------------------------------------------------------------------------------


@contextmanager
def _quiet_catalog() -> Iterator[None]:
    """Replacing a dataset in the catalog logs a warning; the runner's swaps are expected."""
    logger = logging.getLogger("kedro.io.data_catalog")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def exchanged_datasets(pipeline: Pipeline, catalog: CatalogProtocol) -> list[str]:
    """Node outputs kept in memory (ephemeral datasets): they cannot cross worker processes."""
    names = []
    for name in sorted(pipeline.all_outputs()):
        dataset = catalog.get(name, fallback_to_runtime_pattern=True)
        if getattr(dataset, "_EPHEMERAL", False):
            names.append(name)
    return names


class DaskRunner(AbstractRunner):
    """Runs each node as a task on a dask.distributed cluster (see the module docstring).

    Keyword arguments (``--runner-params``) override keys of ``dask.yml``; ``config=<file>``
    reads another settings file on top (e.g. ``conf/slurm/dask.yml`` with ``--env=paper``).
    ``client`` (Python only) runs on an existing :class:`distributed.Client`, left open;
    ``hooks`` (Python only) are hook instances the workers register besides ``settings.HOOKS``.
    """

    def __init__(
        self, is_async: bool = False, client: Client | None = None, hooks: Iterable[Any] = (), **options: Any
    ) -> None:
        super().__init__(is_async=is_async)
        self._client = client
        self._hooks = tuple(hooks)
        self._options = options
        self.settings: DaskSettings | None = None

    def _get_executor(self, max_workers: int) -> None:  # noqa: ARG002 - Dask schedules, not an executor
        return None

    def _run(
        self,
        pipeline: Pipeline,
        catalog: CatalogProtocol,
        hook_manager: PluginManager | None = None,  # noqa: ARG002 - the workers run the project's hooks
        run_id: str | None = None,
    ) -> None:
        from kedro.framework.project import LOGGING, PACKAGE_NAME

        self.settings = settings = _read_config(self._options)
        logging_config = worker_logging(getattr(LOGGING, "data", {}) or {})
        # Local workers import Kedro (which configures logging) before their first node: they
        # read the console-free configuration from this file from the start.
        logging_file = Path(tempfile.mkstemp(prefix="mtneuro-worker-logging-", suffix=".yml")[1])
        import yaml

        logging_file.write_text(yaml.safe_dump(logging_config), encoding="utf-8")
        try:
            if self._client is not None:
                client, cluster = self._client, None
            else:
                from mtneuro.preflight import read_settings

                client, cluster = start_cluster(
                    settings,
                    read_settings(_session_loader()).probe,
                    {"KEDRO_LOGGING_CONFIG": str(logging_file), ON_WORKER_ENV: "1"},
                )
        except BaseException:
            logging_file.unlink(missing_ok=True)
            raise
        exchange_root = self._exchange_root(settings)
        exchange = exchange_root / (run_id or f"run-{time.time_ns()}").replace(":", "-")
        swapped = self._swap_memory_datasets(pipeline, catalog, exchange)
        try:
            self._submit_and_wait(client, pipeline, catalog, run_id, PACKAGE_NAME, logging_config, settings)
            self._restore_memory_datasets(pipeline, catalog, swapped)
        finally:
            logging_file.unlink(missing_ok=True)
            shutil.rmtree(exchange, ignore_errors=True)
            if exchange_root.name.startswith("mtneuro-dask-"):
                shutil.rmtree(exchange_root, ignore_errors=True)
            if cluster is not None:
                close_cluster(client, cluster)

    @staticmethod
    def _exchange_root(settings: DaskSettings) -> Path:
        if settings.exchange_dir:
            return Path(settings.exchange_dir)
        if settings.cluster == "local":
            return Path(tempfile.mkdtemp(prefix="mtneuro-dask-"))
        return Path.cwd() / ".dask-exchange"

    def _swap_memory_datasets(self, pipeline: Pipeline, catalog: CatalogProtocol, folder: Path) -> dict[str, Any]:
        """Node outputs held in memory become pickle files in ``folder`` (owned by this run)."""
        from kedro_datasets.pickle import PickleDataset

        names = exchanged_datasets(pipeline, catalog)
        if names:
            folder.mkdir(parents=True, exist_ok=True)
            self._logger.info("Datasets in memory crossing workers are pickled in %s: %s", folder, ", ".join(names))
        swapped = {}
        with _quiet_catalog():
            for index, name in enumerate(names):
                swapped[name] = catalog.get(name, fallback_to_runtime_pattern=True)
                catalog[name] = PickleDataset(filepath=str(folder / f"{index:04d}.pkl"))
        return swapped

    @staticmethod
    def _restore_memory_datasets(
        pipeline: Pipeline, catalog: CatalogProtocol, swapped: Mapping[str, AbstractDataset]
    ) -> None:
        """Free outputs of the pipeline come back into memory, as with SequentialRunner."""
        outputs = pipeline.outputs()
        with _quiet_catalog():
            for name, original in swapped.items():
                if name in outputs and catalog.exists(name):
                    catalog[name] = MemoryDataset(data=catalog.load(name), copy_mode="assign")
                else:
                    catalog[name] = original

    @staticmethod
    def _gpu_requests(client: Client) -> bool:
        """Whether any worker advertises GPUs (else no node may ask for one: it would wait forever)."""
        workers = client.scheduler_info().get("workers", {})
        return any("GPU" in (w.get("resources") or {}) for w in workers.values())

    def _submit_and_wait(
        self,
        client: Client,
        pipeline: Pipeline,
        catalog: CatalogProtocol,
        run_id: str | None,
        package_name: str | None,
        logging_config: Mapping[str, Any],
        settings: DaskSettings,
    ) -> None:
        from distributed import as_completed

        from mtneuro.console import node_finished_elsewhere
        from mtneuro.timing import RUN_TIMES_HOOK

        environ = {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIX)}
        use_gpus = self._gpu_requests(client)
        node_dependencies = pipeline.node_dependencies
        todo = set(pipeline.nodes)
        done: set[Node] = set()
        running: dict[Any, Node] = {}
        pending = as_completed()

        priority = node_priorities(pipeline, settings.node_costs)

        def submit_ready() -> None:
            # A node is submitted once its upstream nodes are done, with no Dask data dependency:
            # the results of finished nodes are on disk, so a worker that dies loses nothing
            # that other tasks need (Dask would otherwise recompute the finished nodes it held).
            # At most one node per worker thread is submitted, the longest path to the end first:
            # the scheduler does not know how long a node takes, and would hand the ready nodes
            # out in any order (a long training started last keeps one worker busy alone).
            ready = sorted((n for n in todo if node_dependencies[n] <= done), key=lambda n: (-priority[n], n.name))
            free = max(1, sum(client.nthreads().values())) - len(running)
            for node in ready[: max(0, free)]:
                todo.discard(node)
                resources = {"GPU": 1} if use_gpus and settings.gpu_tag in node.tags else None
                future = client.submit(
                    run_node_on_worker,
                    node,
                    catalog,
                    package_name,
                    logging_config,
                    environ,
                    self._is_async,
                    run_id,
                    self._hooks,
                    key=f"{node.name}-{run_id or 'run'}-{time.time_ns()}",
                    resources=resources,
                    pure=False,
                )
                running[future] = node
                pending.add(future)

        submit_ready()
        try:
            for future in pending:
                node = running.pop(future)
                try:
                    _, seconds, cpu_seconds = future.result()
                except FaultError:  # its message stands alone (damaged model, full disk...): passed on as is
                    self._suggest_resume_scenario(pipeline, done, catalog)
                    raise
                except Exception as exc:
                    self._suggest_resume_scenario(pipeline, done, catalog)
                    raise self._failure(node, exc) from exc
                future.release()
                done.add(node)
                # The workers run the project's hooks; this process's console and run times
                # hear of the node here (one line, the n/N bar, the time table).
                RUN_TIMES_HOOK.record(node.name, seconds, cpu_seconds)
                node_finished_elsewhere(node.name)
                self._logger.info(
                    "Completed node: %s (%d/%d) in %.1f s (%.1f s CPU)",
                    node.name,
                    len(done),
                    len(pipeline.nodes),
                    seconds,
                    cpu_seconds,
                    extra={"console": True},
                )
                submit_ready()
        finally:
            if running:
                client.cancel(list(running))
        if todo:
            raise RuntimeError(f"Unable to schedule nodes: {', '.join(sorted(n.name for n in todo))}")

    def _failure(self, node: Node, exc: BaseException) -> Exception:
        from distributed.scheduler import KilledWorker

        if isinstance(exc, KilledWorker):
            allowed = self.settings.allowed_failures if self.settings else None
            tries = "" if allowed is None else " (tried once)" if allowed == 0 else f" (tried {allowed + 1} times)"
            return WorkerDiedError(
                f"Node '{node.name}' failed on the Dask cluster: its worker died while running it{tries}, "
                "killed or out of memory. Outputs saved so far are kept, and what the worker left half "
                "written is removed when the next run starts; rerun the same command with "
                "--only-missing-outputs to finish the run (allow retries on another worker with "
                "--runner-params=allowed_failures=<n>)."
            )
        return RuntimeError(f"Node '{node.name}' failed on the Dask cluster: {type(exc).__name__}: {exc}")
