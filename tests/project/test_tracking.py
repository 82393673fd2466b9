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
        accelerator="cpu",
        callbacks=tracking.callbacks(),
    )
    trainer.fit(module, data)
    weight = float(module.net.weight.detach()[0, 0])
    metrics = pd.DataFrame({"class": ["a", "mean"], "iou": [weight / 2, weight / 3], "seed": [seed, seed]})
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
    return Pipeline([Node(np.arange, "params:size", "base", name="make_base"), *cells])


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
    manager.hook.before_pipeline_run(
        run_params={"run_id": "r1", "pipeline_names": ["toy"], "runner": "x"}, pipeline=toy, catalog=data
    )
    parent = __import__("os").environ[tracking.ENV_PARENT]
    runner.run(toy, data, manager, run_id="r1")
    manager.hook.after_pipeline_run(run_params={}, run_result={}, pipeline=toy, catalog=data)
    hook.parent_id = parent
    return hook


def check_runs(store: str, parent_id: str) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(store)
    parent = client.get_run(parent_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["mtneuro.profile"] == "tiny"
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
        artifacts = [a.path for a in client.list_artifacts(run.info.run_id, "trained_model")]
        assert artifacts == ["trained_model/model.pkl"]


def test_sequential_runner_one_run_per_cell(tmp_path: Path, store: str) -> None:
    hook = run_tracked(SequentialRunner(), tmp_path / "out")
    check_runs(store, hook.parent_id)
    assert tracking.ENV_PARENT not in __import__("os").environ


def test_tracking_changes_no_number(tmp_path: Path, store: str) -> None:
    SequentialRunner().run(pipeline(), catalog(tmp_path / "plain"))
    run_tracked(SequentialRunner(), tmp_path / "tracked")
    for seed in SEEDS:
        pd.testing.assert_frame_equal(
            pd.read_csv(tmp_path / f"plain/{seed}/metrics.csv"), pd.read_csv(tmp_path / f"tracked/{seed}/metrics.csv")
        )


def test_dask_runner_one_run_per_cell(
    tmp_path: Path, store: str, project_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import distributed

    monkeypatch.chdir(project_path)
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
    ):
        # The workers register the tracking hook (settings.HOOKS does in the project) and get
        # the parent run from the MTNEURO_MLFLOW_* variables that the runner hands them.
        hook = run_tracked(DaskRunner(client=client, hooks=[tracking.MlflowTrackingHook()]), tmp_path / "out")
        check_runs(store, hook.parent_id)


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
    assert tracking.numbers({"roi_c1": {"accuracy": np.float64(0.25)}, "name": "x", "ok": True}) == {
        "roi_c1.accuracy": 0.25
    }
