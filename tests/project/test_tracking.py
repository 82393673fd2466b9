"""MLflow tracking: one run per grid cell under one parent run per kedro run, with both runners.

A toy grid (two cells ``segmentation.toy.cfg.seed<k>``, each a real two-epoch Lightning training
whose trainer gets :func:`mtneuro.tracking.callbacks`) runs with the tracking hook; the store is
a SQLite file in a temporary folder (``MLFLOW_TRACKING_URI``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import cloudpickle
import numpy as np
import pandas as pd
import pytest
from kedro.framework.hooks.manager import _create_hook_manager
from kedro.io import DataCatalog, MemoryDataset
from kedro.pipeline import Node, Pipeline
from kedro.runner import SequentialRunner

from mtneuro import tracking
from mtneuro.runners import DaskRunner

cloudpickle.register_pickle_by_value(sys.modules[__name__])

SEEDS = (0, 1)
SETTINGS = tracking.TrackingSettings(
    enabled=True,
    required=True,
    tracking_uri=None,
    experiment_name="test",
    tasks=["segmentation"],
    metric_datasets=["metrics"],
    history_datasets=["training_history"],
    artifact_datasets=["trained_model"],
    summary_datasets=["summary"],
    report_datasets=["report"],
)


def train(base: np.ndarray, toy: dict, seed: int) -> tuple[object, pd.DataFrame, dict]:
    """A two-epoch Lightning regression; the test 'metrics' are a class table like Task 2's."""
    import lightning as L
    import torch

    L.seed_everything(seed, verbose=False)

    class Module(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = torch.nn.Linear(1, 1)

        def training_step(self, batch, batch_idx):
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.net(x), y)
            self.log("train_loss", loss, on_step=True, on_epoch=False)
            return loss

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=toy["lr"])

    x = torch.tensor(base, dtype=torch.float32).reshape(-1, 1) / 10
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, 2 * x), batch_size=4)
    module = Module()
    trainer = L.Trainer(
        max_epochs=toy["epochs"],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",  # Lightning adds tracking.callbacks() (an entry point of pyproject.toml)
    )
    trainer.fit(module, data)
    weight = float(module.net.weight.detach()[0, 0])
    metrics = pd.DataFrame(
        {"class": ["a", "mean"], "iou": [weight / 2, weight / 3], "seed": [seed, seed], "support_pixels": [9, 9]}
    )
    history = {"epochs": [{"epoch": e, "lr": toy["lr"]} for e in range(toy["epochs"])]}
    return module.net, metrics, history


def pipeline() -> Pipeline:
    cells = [
        Pipeline(
            [
                Node(
                    train,
                    ["base", "params:toy", f"params:seed{seed}"],
                    ["trained_model", "metrics", "training_history"],
                    name="train",
                )
            ],
            namespace=f"segmentation.toy.cfg.seed{seed}",
            inputs={"base"},
            parameters={"params:toy", f"params:seed{seed}"},
        )
        for seed in SEEDS
    ]
    summary = Node(
        lambda *tables: (pd.concat(tables).groupby("class", as_index=False)["iou"].mean(), "<html>report</html>"),
        [f"segmentation.toy.cfg.seed{seed}.metrics" for seed in SEEDS],
        ["summary", "report"],
        name="summarise",
    )
    return Pipeline([Node(np.arange, "params:size", "base", name="make_base"), *cells, summary])


def catalog(root: Path) -> DataCatalog:
    config = {}
    for seed in SEEDS:
        ns = f"segmentation.toy.cfg.seed{seed}"
        config[f"{ns}.trained_model"] = {
            "type": "pickle.PickleDataset",
            "filepath": str(root / f"{seed}/model.pkl"),
            "versioned": True,
        }
        config[f"{ns}.metrics"] = {
            "type": "pandas.CSVDataset",
            "filepath": str(root / f"{seed}/metrics.csv"),
            "save_args": {"index": False},
        }
    config["summary"] = {"type": "pandas.CSVDataset", "filepath": str(root / "summary.csv")}
    config["report"] = {"type": "text.TextDataset", "filepath": str(root / "report.html")}
    data = DataCatalog.from_config(config, save_version="2026-01-01T00.00.00.000Z")
    data["params:size"] = MemoryDataset(16)
    data["params:toy"] = MemoryDataset({"lr": 0.05, "epochs": 2})
    for seed in SEEDS:
        data[f"params:seed{seed}"] = MemoryDataset(seed)
    return data


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


def run_tracked(runner, root: Path) -> tracking.MlflowTrackingHook:
    """What a KedroSession does around runner.run: the pipeline hooks in this process."""
    hook = tracking.MlflowTrackingHook(SETTINGS)
    hook.tags = {"mtneuro.profile": "tiny", "mtneuro.source": "phantom"}
    manager = _create_hook_manager()
    manager.register(hook)
    toy, data = pipeline(), catalog(root)
    runner_repr = f"<{type(runner).__module__}.{type(runner).__name__} object at 0x7f00>"  # as Kedro records it
    manager.hook.before_pipeline_run(
        run_params={"run_id": "r1", "pipeline_names": ["toy"], "runner": runner_repr}, pipeline=toy, catalog=data
    )
    parent = __import__("os").environ[tracking.ENV_PARENT]
    runner.run(toy, data, manager, run_id="r1")
    manager.hook.after_pipeline_run(run_params={}, run_result={}, pipeline=toy, catalog=data)
    hook.parent_id = parent
    return hook


def check_runs(store: str, parent_id: str, runner: str = "SequentialRunner") -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(store)
    parent = client.get_run(parent_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["mtneuro.profile"] == "tiny"
    assert parent.data.tags["mtneuro.runner"] == runner
    # the parent holds the summary metrics and the report
    assert set(parent.data.metrics) == {"summary.a.iou", "summary.mean.iou"}
    assert [a.path for a in client.list_artifacts(parent_id)] == ["report.html"]
    cells = {run.data.tags[tracking.CELL_TAG]: run for run in tracking.child_runs(parent_id, store)}
    assert sorted(cells) == [f"segmentation.toy.cfg.seed{s}" for s in SEEDS]
    for seed in SEEDS:
        run = cells[f"segmentation.toy.cfg.seed{seed}"]
        assert run.info.status == "FINISHED"
        assert run.data.tags["mtneuro.source"] == "phantom" and run.data.tags["mtneuro.seed"] == str(seed)
        assert run.data.params["toy.lr"] == "0.05" and run.data.params["method"] == "toy"
        losses = client.get_metric_history(run.info.run_id, "train_loss_epoch")
        assert [m.step for m in losses] == [0, 1]  # once per epoch, not per step
        assert [m.step for m in client.get_metric_history(run.info.run_id, "lr")] == [0, 1]
        assert set(run.data.metrics) >= {"test.a.iou", "test.mean.iou"} and "test.mean.seed" not in run.data.metrics
        assert not [m for m in run.data.metrics if "support_pixels" in m]  # counts are not metrics
        assert "None" not in run.data.params.values()
        artifacts = [a.path for a in client.list_artifacts(run.info.run_id, "trained_model")]
        assert artifacts == ["trained_model/model.pkl"]


def test_sequential_runner_one_run_per_cell(tmp_path: Path, store: str) -> None:
    from mlflow.tracking import MlflowClient

    hook = run_tracked(SequentialRunner(), tmp_path / "out")
    check_runs(store, hook.parent_id)
    assert tracking.ENV_PARENT not in __import__("os").environ
    # a cell's run is open while its node runs, not until the kedro run ends
    cells = sorted(tracking.child_runs(hook.parent_id, store), key=lambda r: r.info.start_time)
    parent = MlflowClient(store).get_run(hook.parent_id)
    assert cells[0].info.end_time <= cells[1].info.start_time < parent.info.end_time


def test_tracking_changes_no_number(tmp_path: Path, store: str) -> None:
    SequentialRunner().run(pipeline(), catalog(tmp_path / "plain"))
    run_tracked(SequentialRunner(), tmp_path / "tracked")
    for seed in SEEDS:
        pd.testing.assert_frame_equal(
            pd.read_csv(tmp_path / f"plain/{seed}/metrics.csv"), pd.read_csv(tmp_path / f"tracked/{seed}/metrics.csv")
        )


@pytest.mark.xdist_group("dask_cluster")  # the session's cluster, on the worker of the Dask tests
def test_dask_runner_one_run_per_cell(
    tmp_path: Path, store: str, project_path: Path, dask_client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project_path)
    # The workers register the tracking hook (settings.HOOKS does in the project) and get the
    # parent run from the MTNEURO_MLFLOW_* variables that the runner hands them (the cluster's
    # workers started before this test: nothing of its store is in their own environment).
    hook = run_tracked(DaskRunner(client=dask_client, hooks=[tracking.MlflowTrackingHook()]), tmp_path / "out")
    check_runs(store, hook.parent_id, runner="DaskRunner")


def test_disabled_or_without_parent_logs_nothing(tmp_path: Path, store: str) -> None:
    hook = tracking.MlflowTrackingHook(SETTINGS.model_copy(update={"enabled": False}))
    manager = _create_hook_manager()
    manager.register(hook)
    manager.hook.before_pipeline_run(run_params={"run_id": "r0"}, pipeline=pipeline(), catalog=catalog(tmp_path))
    assert tracking.ENV_PARENT not in __import__("os").environ
    SequentialRunner().run(pipeline(), catalog(tmp_path), manager)
    assert not (tmp_path / "mlflow.db").exists()
    assert tracking.callbacks() == []


def test_numbers_of_metrics_outputs() -> None:
    table = pd.DataFrame({"class": ["x", "mean"], "f1": [0.5, np.nan], "seed": [0, 0], "model": ["m", "m"]})
    assert tracking.numbers(table, "test.") == {"test.x.f1": 0.5}
    # Task 1's metrics: one row per test configuration, with per-class recall; no durations or counts
    rows = [
        {"method": "pca", "config": c, "seed": 0, "accuracy": a, "recall_CTX": r, "n_test": 40, "test_seconds": 0.1}
        for c, a, r in [("ROI-C1", 0.5, 0.75), ("ROI-C2", 0.25, 1.0)]
    ]
    assert tracking.numbers(rows, "test.") == {
        "test.ROI-C1.accuracy": 0.5,
        "test.ROI-C1.recall_CTX": 0.75,
        "test.ROI-C2.accuracy": 0.25,
        "test.ROI-C2.recall_CTX": 1.0,
    }
    assert tracking.numbers({"roi_c1": {"accuracy": np.float64(0.25)}, "name": "x", "ok": True}) == {
        "roi_c1.accuracy": 0.25
    }


def test_a_cell_logs_its_own_settings_only() -> None:
    params = dict(
        tracking.flatten(
            {
                "methods": ["pca", "byol", "myow", "myow_merged"],
                "configs": ["roi_c1", "roi_c3"],
                "seeds": [0, 1],
                "pca": {"svd_solver": "full", "whiten": None},
                "byol": {"lr": 0.1},
                "myow": {"ramp_epochs": 1},
                "evaluate_on": {"roi_c1": ["roi_c1", "roi_c2"], "roi_c3": ["roi_c3"]},
                "network_training": {"epochs": 2},
            },
            "classification",
        )
    )
    pca = tracking.run_parameters(params, {"method": "pca", "config": "roi_c1", "seed": "0"})
    assert pca == {
        "classification.pca.svd_solver": "full",
        "classification.evaluate_on.roi_c1": ["roi_c1", "roi_c2"],
        "classification.network_training.epochs": 2,
    }
    merged = tracking.run_parameters(params, {"method": "myow_merged", "config": "roi_c3", "seed": "0"})
    assert "classification.myow.ramp_epochs" in merged and "classification.pca.svd_solver" not in merged


def test_profile_and_runner_names() -> None:
    assert [tracking.profile_name(env) for env in (None, "local", "tiny", "paper")] == ["base", "base", "tiny", "paper"]
    assert tracking.runner_name("<mtneuro.runners.DaskRunner object at 0x7f3b>") == "DaskRunner"
    assert tracking.runner_name("SequentialRunner") == tracking.runner_name("None") == "SequentialRunner"


@pytest.mark.slow
def test_a_tiny_task1_run_logs_test_accuracy_per_configuration(
    project_path: Path, tiny_cubes, tmp_path: Path, store: str
) -> None:
    """A real tiny run (two methods, ROI-C1) with tracking on, read back from its MLflow store."""
    import shutil

    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project
    from mlflow.tracking import MlflowClient

    conf = tmp_path / "conf"
    shutil.copytree(project_path / "conf", conf)
    (conf / "tiny" / "mlflow.yml").write_text("enabled: true\nexperiment_name: tiny\n")
    grid = {"classification": {"methods": ["supervised", "pca"], "configs": ["roi_c1"]}}
    bootstrap_project(project_path)
    with KedroSession.create(
        project_path=project_path,
        env="tiny",
        conf_source=str(conf),
        runtime_params={"data_root": str(tiny_cubes(tmp_path / "data")), **grid},
    ) as session:
        session.run(pipeline_names=["ingestion", "classification"])

    client = MlflowClient(store)
    (parent,) = client.search_runs(
        [client.get_experiment_by_name("tiny").experiment_id], "tags.mtneuro.kedro_run_id != ''"
    )
    assert parent.data.tags["mtneuro.profile"] == "tiny" and parent.data.tags["mtneuro.runner"] == "SequentialRunner"
    assert any(m.startswith("task1_region_classification_summary.") for m in parent.data.metrics)
    cells = {run.data.tags[tracking.CELL_TAG]: run for run in tracking.child_runs(parent.info.run_id, store)}
    assert sorted(cells) == ["classification.pca.roi_c1.seed0", "classification.supervised.roi_c1.seed0"]
    for name, run in cells.items():
        metrics = run.data.metrics
        for test_config in ("ROI-C1", "ROI-C2"):
            assert 0 <= metrics[f"test.{test_config}.accuracy"] <= 1, name
            assert f"test.{test_config}.recall_CTX" in metrics, name
        assert not [m for m in metrics if "second" in m or m.endswith(("n_test", "n_train"))], name
        params = run.data.params
        assert "None" not in params.values(), name
        other = "pca" if "supervised" in name else "supervised"
        assert not [k for k in params if f".{other}." in k], name  # only the cell's own method's settings
        assert run.info.status == "FINISHED" and run.info.end_time < parent.info.end_time
    assert "readout" in {a.path for a in client.list_artifacts(cells["classification.pca.roi_c1.seed0"].info.run_id)}
