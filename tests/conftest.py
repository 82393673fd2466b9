"""Shared test fixtures: real Kedro sessions into temporary folders."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

PROJECT_PATH = Path(__file__).resolve().parents[1]
#: Real prasad2020 samples shipped with the tests (CC BY 4.0, see the README beside them).
SAMPLE_DIR = PROJECT_PATH / "tests" / "data" / "prasad2020"


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto`` (pyproject's addopts): one worker per core, at most 4 (each holds torch and its
    own Kedro runs; more workers mostly wait on the end-to-end runs)."""
    from mtneuro.runners import usable_cores

    return max(1, min(usable_cores(), 4))


def _share_the_cores() -> None:
    """Under pytest-xdist, each worker (and the ``kedro run`` processes it starts) gets its share
    of the cores as torch/OpenMP threads: workers with all cores each would oversubscribe them
    several times over. ``MTNEURO_TEST_THREADS`` sets the count (run the suite with 1 and 2)."""
    from mtneuro.runners import usable_cores

    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    cores = usable_cores()
    threads = os.environ.get("MTNEURO_TEST_THREADS") or (str(max(1, cores // workers)) if workers > 1 else None)
    if threads is None:
        return
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[name] = threads
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(int(threads))


def pytest_configure(config: pytest.Config) -> None:
    """Threads per worker (``_share_the_cores``); the log file of every Kedro run of the suite (in-process sessions and ``kedro run``
    subprocesses) goes to a temporary folder, never into the project's ``info.log``."""
    _share_the_cores()
    from kedro.framework.project import LOGGING

    logs = Path(tempfile.mkdtemp(prefix="mtneuro-test-logs-"))
    logging_config = yaml.safe_load((PROJECT_PATH / "conf" / "logging.yml").read_text(encoding="utf-8"))
    logging_config["handlers"]["info_file_handler"]["filename"] = str(logs / "info.log")
    path = logs / "logging.yml"
    path.write_text(yaml.safe_dump(logging_config), encoding="utf-8")
    os.environ["KEDRO_LOGGING_CONFIG"] = str(path)  # subprocesses
    LOGGING.configure(logging_config)  # this process


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Modules with slow tests first, so that pytest-xdist starts those first and the quick ones
    fill the workers' ends (``--dist loadgroup`` hands out tests in this order, after the
    groups): first the modules whose slow tests do not all wait on the shared tiny run
    (``tiny_default_run``, built by whichever worker asks first), then the others. A module's
    tests stay together and in order (its module-scoped fixtures are built once)."""

    def rank(item: pytest.Item) -> int:
        if item.get_closest_marker("slow") is None:
            return 2
        return 1 if "tiny_default_run" in getattr(item, "fixturenames", ()) else 0

    modules: dict[str, int] = {}
    for item in items:
        modules[item.nodeid.split("::")[0]] = min(modules.get(item.nodeid.split("::")[0], 2), rank(item))
    items.sort(key=lambda item: modules[item.nodeid.split("::")[0]])


@pytest.fixture(autouse=True)
def _tracking_store_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """MLflow runs of the tests go to a temporary store, never into the checkout."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")


@pytest.fixture(scope="session")
def project_path() -> Path:
    bootstrap_project(PROJECT_PATH)
    return PROJECT_PATH


@pytest.fixture
def kedro_run(project_path: Path) -> Callable[..., None]:
    """Run pipelines through a real KedroSession on a profile, writing under ``data_root``."""

    return run_session


def run_session(
    pipeline_names: list[str],
    data_root: Path,
    env: str = "tiny",
    extra_params: dict | None = None,
    **run_kwargs: object,
) -> None:
    runtime_params = {"data_root": str(data_root), **(extra_params or {})}
    bootstrap_project(PROJECT_PATH)  # a fresh registry: the grids are built from this run's configuration
    with KedroSession.create(project_path=PROJECT_PATH, env=env, runtime_params=runtime_params) as session:
        session.run(pipeline_names=pipeline_names, **run_kwargs)


@pytest.fixture
def sample_dir() -> Path:
    """The real prasad2020 samples shipped in ``tests/data/prasad2020``."""
    return SAMPLE_DIR


@dataclass(frozen=True)
class KedroCommandRun:
    """A finished ``kedro run`` subprocess: its data root, exit status and console output."""

    data_root: Path
    returncode: int
    output: str

    def copy_to(self, destination: Path, folders: tuple[str, ...] | None = None) -> Path:
        """A private copy of the data root (or of some of its folders) for a test that changes it."""
        for folder in folders or tuple(p.name for p in self.data_root.iterdir()):
            if (self.data_root / folder).exists():
                shutil.copytree(self.data_root / folder, destination / folder, symlinks=True)
        return destination


def kedro_run_command(data_root: Path, *args: str, timeout: float = 1200) -> KedroCommandRun:
    """``kedro run <args> --params data_root=...`` as a user types it, in a child process (its
    MLflow store, if the profile tracks, beside the data root)."""
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{data_root.parent / 'mlflow.db'}"
    command = [sys.executable, "-m", "kedro", "run", *args, "--params", f"data_root={data_root}"]
    run = subprocess.run(command, cwd=PROJECT_PATH, capture_output=True, text=True, env=env, timeout=timeout)
    return KedroCommandRun(data_root, run.returncode, run.stdout + run.stderr)


def session_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The temporary folder of this test session that every pytest-xdist worker sees (each
    worker's own base folder is inside it; without xdist, the session's base folder)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@contextmanager
def _exclusive(lock: Path) -> Iterator[None]:
    with lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes
        yield


def built_once(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], None]) -> Path:
    """A folder that ``build`` fills once per test session, shared by every xdist worker: the
    first worker to ask builds it (the others wait on a file lock), the rest read it. It is built
    in place (outputs may record their absolute paths); one that a build left unfinished (it
    raised) is built again by the next worker that asks, which then sees the error itself."""
    shared = session_folder(tmp_path_factory)
    folder, built = shared / name, shared / f"{name}.built"
    with _exclusive(shared / f"{name}.lock"):
        if not built.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            build(folder)
            built.touch()
    return folder


@pytest.fixture(scope="session")
def tiny_default_run(tmp_path_factory: pytest.TempPathFactory) -> KedroCommandRun:
    """The whole benchmark (``kedro run --env=tiny``) once per test session, shared by the tests
    that check its outputs (in every xdist worker: ``built_once``); they only read it
    (``copy_to`` gives a test its own copy to change)."""

    def build(folder: Path) -> None:
        run = kedro_run_command(folder / "data", "--env=tiny")
        (folder / "run.json").write_text(json.dumps({"returncode": run.returncode, "output": run.output}))

    folder = built_once(tmp_path_factory, "tiny-default-run", build)
    result = json.loads((folder / "run.json").read_text())
    assert result["returncode"] == 0, result["output"][-4000:]
    return KedroCommandRun(folder / "data", result["returncode"], result["output"])


@pytest.fixture(scope="session")
def dask_client() -> Iterator[object]:
    """A local Dask cluster of 2 processes (1 thread each) for the whole test session, for the
    tests that hand the runner a client: its processes start once (their start and their
    imports were a few seconds of CPU each time). The tests that use it are in
    ``xdist_group("dask_cluster")``: one pytest-xdist worker runs them all, so one cluster."""
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        # Under heavy load a worker can be reaped later than its nanny waits (5 s); the nanny
        # has sent it SIGKILL by then. No test checks this close: it must not fail whichever
        # test happened to end the session.
        with contextlib.suppress(TimeoutError):
            cluster.close()


#: The folder of the cubes in a data root (``cubes`` of the catalog).
CUBES = Path("02_intermediate") / "cubes"


@pytest.fixture(scope="session")
def tiny_cubes(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Path], Path]:
    """The tiny profile's 16 cubes, generated once per test session (``built_once``), for the
    tests whose runs need cubes but check something else: ``tiny_cubes(data_root)`` copies them
    into ``data_root``; the run's ``fetch_cubes`` then finds them on disk and valid. Every other
    output of the ingestion pipeline is left to the run."""
    folder = built_once(tmp_path_factory, "tiny-cubes", lambda f: run_session(["ingestion"], f / "data"))

    def copy(data_root: Path) -> Path:
        shutil.copytree(folder / "data" / CUBES, data_root / CUBES)
        return data_root

    return copy
