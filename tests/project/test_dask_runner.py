"""The Dask runner on a real dask.distributed cluster of 2 processes (1 thread each).

A toy pipeline shaped like a run grid (a shared in-memory input, versioned per-cell outputs, a
table collecting them) checks that the runner writes what SequentialRunner writes, that data
cross workers only through catalog datasets, and what happens when a worker is killed with
SIGKILL in the middle of a node. The last test runs the tiny-profile Task 2 grid through real
KedroSessions with both runners.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import cloudpickle
import numpy as np
import pandas as pd
import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.pipeline import Node, Pipeline
from kedro.runner import SequentialRunner

from mtneuro.runners import DaskRunner, DaskSettings, exchanged_datasets, local_gpu_worker_specs

distributed = pytest.importorskip("distributed")

# One pytest-xdist worker runs the module: the session's cluster (``dask_client``) starts once.
pytestmark = pytest.mark.xdist_group("dask_cluster")

# The toy node functions live in this module, which workers cannot import: send them by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

CELLS = 4


def make_base(size: int) -> np.ndarray:
    return np.arange(size, dtype=float)


def run_cell(base: np.ndarray, seed: int, log_dir: str, kill_marker: str, cell: int) -> pd.DataFrame:
    """One grid cell: random numbers from its seed; appends its pid to a log (who ran, how often)."""
    with open(Path(log_dir) / f"cell{cell}.log", "a") as log:
        log.write(f"{os.getpid()}\n")
    if kill_marker and cell == 2:
        marker = Path(kill_marker)
        if not marker.exists():  # the first attempt dies in the middle of the node
            marker.write_text(str(os.getpid()))
            time.sleep(0.2)
            os.kill(os.getpid(), signal.SIGKILL)
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {"cell": [cell], "seed": [seed], "value": [float(base.sum() * rng.random())], "pid": [os.getpid()]}
    )


def collect(*tables: pd.DataFrame) -> pd.DataFrame:
    return pd.concat(tables, ignore_index=True).drop(columns="pid")


def toy_pipeline() -> Pipeline:
    cells = [
        Node(
            run_cell,
            inputs=["base", f"params:seed{i}", "params:log_dir", "params:kill_marker", f"params:cell{i}"],
            outputs=f"cell{i}.table",
            name=f"cell{i}",
            tags=["gpu"],
        )
        for i in range(CELLS)
    ]
    return Pipeline(
        [
            Node(make_base, "params:size", "base", name="make_base"),
            *cells,
            Node(collect, [f"cell{i}.table" for i in range(CELLS)], "table", name="collect"),
        ]
    )


def toy_catalog(root: Path, log_dir: Path, kill_marker: str = "", save_version: str | None = None) -> DataCatalog:
    config = {
        f"cell{i}.table": {"type": "pandas.CSVDataset", "filepath": str(root / f"cell{i}.csv"), "versioned": True}
        for i in range(CELLS)
    }
    config["table"] = {"type": "pandas.CSVDataset", "filepath": str(root / "table.csv"), "save_args": {"index": False}}
    catalog = DataCatalog.from_config(config, save_version=save_version)
    params = {"size": 10, "log_dir": str(log_dir), "kill_marker": kill_marker}
    params.update({f"seed{i}": 100 + i for i in range(CELLS)})
    params.update({f"cell{i}": i for i in range(CELLS)})
    for key, value in params.items():
        catalog[f"params:{key}"] = MemoryDataset(value)
    return catalog


@pytest.fixture
def client(dask_client):
    """The session's cluster (``dask_client``, shared with the tracking test)."""
    return dask_client


@pytest.fixture(autouse=True)
def _project_conf(project_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The runner reads conf/base/dask.yml of the project in the working directory."""
    monkeypatch.chdir(project_path)


def _logs(log_dir: Path) -> dict[int, list[str]]:
    return {
        i: (log_dir / f"cell{i}.log").read_text().split() for i in range(CELLS) if (log_dir / f"cell{i}.log").exists()
    }


def test_same_tables_as_sequential_runner(tmp_path: Path, client) -> None:
    (tmp_path / "seq_logs").mkdir()
    (tmp_path / "dask_logs").mkdir()
    SequentialRunner().run(toy_pipeline(), toy_catalog(tmp_path / "seq", tmp_path / "seq_logs"), run_id="s1")
    catalog = toy_catalog(tmp_path / "dask", tmp_path / "dask_logs", save_version="2026-01-01T00.00.00.000Z")
    DaskRunner(client=client).run(toy_pipeline(), catalog, run_id="d1")

    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "seq" / "table.csv"), pd.read_csv(tmp_path / "dask" / "table.csv")
    )
    # Versioning intact: every cell saved once, under the session's save version.
    for i in range(CELLS):
        versions = list((tmp_path / "dask" / f"cell{i}.csv").iterdir())
        assert [v.name for v in versions] == ["2026-01-01T00.00.00.000Z"]
    # The cells really ran in the worker processes, none in this one.
    pids = {pid for runs in _logs(tmp_path / "dask_logs").values() for pid in runs}
    worker_pids = {str(pid) for pid in client.run(os.getpid).values()}
    assert pids <= worker_pids
    assert str(os.getpid()) not in pids


def test_memory_outputs_cross_workers_through_a_temporary_store(tmp_path: Path, client) -> None:
    (tmp_path / "logs").mkdir()
    catalog = toy_catalog(tmp_path / "out", tmp_path / "logs")
    pipeline = toy_pipeline() + Pipeline([Node(make_base, "params:size", "free_output", name="free")])
    assert exchanged_datasets(pipeline, catalog) == ["base", "free_output"]
    result = DaskRunner(client=client, exchange_dir=str(tmp_path / "exchange")).run(pipeline, catalog, run_id="r1")
    # A free output held in memory comes back like with SequentialRunner ...
    np.testing.assert_array_equal(result["free_output"].load(), make_base(10))
    # ... and the runner's store is gone.
    assert not any((tmp_path / "exchange").iterdir())


def test_gpu_tag_asks_for_a_gpu_only_when_workers_have_one(tmp_path: Path, client) -> None:
    runner = DaskRunner(client=client)
    settings = DaskSettings.model_validate(
        {**_base_settings(), "gpu_slots_per_device": 2, "worker_env": {"OMP_NUM_THREADS": 4}}
    )
    assert runner._gpu_requests(client) is False  # CPU workers: gpu-tagged nodes run anywhere
    specs = local_gpu_worker_specs(2, 2, "auto", settings.worker_env)
    assert sorted(specs) == ["gpu0-0", "gpu0-1", "gpu1-0", "gpu1-1"]
    assert specs["gpu1-0"]["options"]["env"] == {"OMP_NUM_THREADS": "4", "CUDA_VISIBLE_DEVICES": "1"}
    assert specs["gpu1-0"]["options"]["resources"] == {"GPU": 1}


def test_workers_log_to_the_file_only() -> None:
    """The workers' output is the driver's terminal: no console handler, Dask's banners quiet."""
    from mtneuro.runners import worker_logging

    driver = {
        "version": 1,
        "handlers": {
            "rich": {"class": "kedro.logging.RichHandler"},
            "info_file_handler": {"class": "logging.handlers.RotatingFileHandler", "filename": "info.log"},
        },
        "loggers": {"kedro": {"level": "INFO", "handlers": ["rich"]}},
        "root": {"level": "INFO", "handlers": ["info_file_handler", "rich"]},
    }
    worker = worker_logging(driver)
    assert set(worker["handlers"]) == {"info_file_handler"}
    assert worker["root"]["handlers"] == ["info_file_handler"] and worker["loggers"]["kedro"]["handlers"] == []
    assert worker["loggers"]["distributed"] == {"level": "WARNING"}
    assert "rich" in driver["handlers"]  # the driver's own configuration is untouched


def _base_settings() -> dict:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(OmegaConf.load(Path.cwd() / "conf" / "base" / "dask.yml"))


def test_bad_settings_name_the_key(tmp_path: Path, client) -> None:
    from mtneuro.config import ConfigurationError

    (tmp_path / "logs").mkdir()
    with pytest.raises(ConfigurationError, match=r"dask\.gpu_slots_per_device"):
        DaskRunner(client=client, gpu_slots_per_device=0).run(toy_pipeline(), toy_catalog(tmp_path, tmp_path / "logs"))


def fill_disk(base: np.ndarray) -> np.ndarray:
    from mtneuro.faults import DiskFullError

    raise DiskFullError("/data/06_models/x/model.pt", 4_000_000, 1_000)


def test_a_fault_error_on_a_worker_reaches_the_driver_unwrapped(tmp_path: Path, client) -> None:
    """Its message stands alone (the console prints it as one paragraph), not inside a RuntimeError."""
    from mtneuro.faults import DiskFullError

    pipeline = Pipeline([Node(make_base, "params:size", "base", name="make_base"), Node(fill_disk, "base", "out")])
    catalog = DataCatalog({"params:size": MemoryDataset(4)})
    with pytest.raises(DiskFullError, match=r"model\.pt \(4\.0 MB needed, 1\.0 kB free there\)"):
        DaskRunner(client=client).run(pipeline, catalog)


def test_killed_worker_node_runs_again_on_another_worker(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    marker = tmp_path / "killed"
    catalog = toy_catalog(tmp_path / "out", tmp_path / "logs", kill_marker=str(marker))
    DaskRunner(n_workers=2, allowed_failures=1).run(toy_pipeline(), catalog, run_id="k1")

    logs = _logs(tmp_path / "logs")
    assert len(logs[2]) == 2  # started twice: the first worker was killed in the middle
    assert logs[2][0] == marker.read_text() and logs[2][1] != logs[2][0]
    assert all(len(logs[i]) == 1 for i in (0, 1, 3))
    assert len(pd.read_csv(tmp_path / "out" / "table.csv")) == CELLS


def test_killed_worker_fails_naming_the_node_then_only_missing_outputs_resumes(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    marker = tmp_path / "killed"
    catalog = toy_catalog(tmp_path / "out", tmp_path / "logs", kill_marker=str(marker))
    # The killed worker held cell2, and possibly a task queued behind it: either is named.
    with pytest.raises(RuntimeError, match=r"Node 'cell\d' failed on the Dask cluster: its worker died"):
        DaskRunner(n_workers=2, allowed_failures=0).run(toy_pipeline(), catalog, run_id="f1")
    first = _logs(tmp_path / "logs")
    saved = {i for i in range(CELLS) if (tmp_path / "out" / f"cell{i}.csv").exists()}
    assert 2 not in saved
    assert not (tmp_path / "out" / "table.csv").exists()

    catalog = toy_catalog(tmp_path / "out", tmp_path / "logs", kill_marker=str(marker))
    DaskRunner(n_workers=2, allowed_failures=0).run(toy_pipeline(), catalog, run_id="f2", only_missing_outputs=True)
    second = _logs(tmp_path / "logs")
    for i in range(CELLS):  # cells saved by the failed run are not computed again
        assert len(second[i]) == len(first.get(i, [])) + (0 if i in saved else 1)
    assert len(pd.read_csv(tmp_path / "out" / "table.csv")) == CELLS


@pytest.mark.slow
def test_tiny_task2_tables_same_as_sequential_runner(
    tiny_default_run, kedro_run, tmp_path: Path, client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tiny-profile Task 2 grid through a real KedroSession with the Dask runner (on a copy of
    the shared tiny run's cubes): the same table as the sequential ``kedro run``."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    dask_root = tiny_default_run.copy_to(tmp_path / "dask", ("01_raw", "02_intermediate", "03_primary"))
    kedro_run(["segmentation"], dask_root, env="tiny", runner=DaskRunner(client=client))
    from mtneuro.timing import RUN_TIMES_HOOK

    # the workers ran the nodes and their hooks; the driver's time table still has every node
    times = RUN_TIMES_HOOK.last
    assert times is not None and not times.failed
    assert {n for n in times.nodes if n.startswith("segmentation.")} >= {"segmentation.prepare_data"}
    assert all(seconds >= 0 for seconds in times.nodes.values()) and times.to_first_node is not None

    table = Path("08_reporting") / "task2_segmentation.csv"
    sequential = pd.read_csv(tiny_default_run.data_root / table).drop(columns="train_seconds")
    dask = pd.read_csv(dask_root / table).drop(columns="train_seconds")
    assert len(sequential) > 0
    pd.testing.assert_frame_equal(sequential, dask)
    # Every grid cell saved its versioned model once, under the session's save version.
    models = sorted((dask_root / "06_models" / "segmentation").glob("*/*/seed*/model.pt"))
    assert models and all(len(list(m.iterdir())) == 1 for m in models)


def test_kedro_run_without_runner_uses_every_core(monkeypatch: pytest.MonkeyPatch) -> None:
    """``default_runner: auto`` (conf/base/dask.yml): the Dask runner from 2 usable cores on; the
    tiny profile, whose nodes last less than a worker's start-up, runs sequentially."""
    from mtneuro import runners
    from mtneuro.cli import choose_runner

    monkeypatch.setattr(runners, "usable_cores", lambda: 2)
    assert choose_runner(None, None) == "mtneuro.runners.DaskRunner"
    assert choose_runner("paper", None) == "mtneuro.runners.DaskRunner"
    assert choose_runner("tiny", None) is None
    monkeypatch.setattr(runners, "usable_cores", lambda: 1)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    if not Path("/dev/nvidia0").exists():
        assert choose_runner(None, None) is None  # one core and no GPU: nothing to run side by side


def _noop(*_: object) -> int:
    return 0


def test_node_priorities_are_the_longest_estimated_path_to_the_end() -> None:
    from mtneuro.runners import node_priorities

    pipeline = Pipeline(
        [
            Node(_noop, "params:a", "cubes", name="fetch"),
            Node(_noop, "cubes", "model", name="task1.long.train"),
            Node(_noop, "cubes", "probe", name="probing.embed"),
            Node(_noop, "model", "map", name="map"),
            Node(_noop, ["map", "probe"], "report", name="report"),
        ]
    )
    rank = {node.name: value for node, value in node_priorities(pipeline, {"*.train": 10, "map": 5}).items()}
    assert rank == {"report": 1, "map": 6, "probing.embed": 2, "task1.long.train": 16, "fetch": 17}


def record_span(log_dir: str, name: str) -> int:
    """A node that records when it started and ended (seconds since the epoch)."""
    start = time.time()
    time.sleep(1.0)
    (Path(log_dir) / f"{name}.span").write_text(f"{start} {time.time()}")
    return 0


def test_ready_nodes_start_longest_path_first_one_per_worker_thread(tmp_path: Path, client) -> None:
    names = [f"n{i}" for i in range(5)]
    pipeline = Pipeline(
        [Node(record_span, ["params:log_dir", f"params:{name}"], f"{name}_out", name=name) for name in names]
    )
    catalog = DataCatalog(
        {
            "params:log_dir": MemoryDataset(str(tmp_path)),
            **{f"params:{name}": MemoryDataset(name) for name in names},
            **{f"{name}_out": MemoryDataset() for name in names},
        }
    )
    # Both workers import what a node needs first: a worker still importing would start its node late.
    client.run(lambda: [__import__(m) for m in ("kedro.runner.task", "mtneuro.runners", "pandas")])
    DaskRunner(client=client, node_costs={"n3": 10, "n1": 5}).run(pipeline, catalog, run_id="p1")
    spans = {name: tuple(map(float, (tmp_path / f"{name}.span").read_text().split())) for name in names}
    order = sorted(names, key=lambda name: spans[name][0])
    assert set(order[:2]) == {"n3", "n1"}  # the two longest paths first, on the two worker threads
    # The others wait for a free thread: none starts before one of the first two has ended.
    assert min(spans[name][0] for name in order[2:]) >= min(spans[name][1] for name in order[:2]) - 0.05
