"""Segmentation pipeline wiring (namespace ``segmentation``): one node per (model, label
setting, seed), then the table, the run index and the figure.

``prepare_data`` turns ``cubes`` + ``split_index`` into ``segmentation_data`` (the labelled
slices of every setting and split, in memory). Per run ``segmentation.<model>.<setting>.seed<k>``
(namespaced, see :mod:`mtneuro.run_grid`) ``train_and_evaluate`` reads it with
``params:segmentation`` and ``params:training`` and writes ``trained_model`` (versioned
TorchModelDataset), ``test_predictions`` (versioned), ``metrics`` (the run's table rows) and
``training_history`` (loss and learning rate per epoch, JSON, as Task 1's runs).
``collect_results`` -> ``task2_segmentation`` (CSV); ``collect_training_histories`` ->
``task2_training_histories`` (CSV, every run's curve; the report draws it); ``index_runs`` -> ``segmentation_runs``
(every run's model and predictions, loaded on demand: the brain maps read their models from
it); ``plot_overlays`` -> ``task2_segmentation_overlays@matplotlib`` (PNG; read back as
``task2_segmentation_overlays@png``).
"""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from mtneuro import run_grid
from mtneuro.config import ProjectParameters

from . import nodes

NAMESPACE = "segmentation"
DATA = "segmentation_data"
#: The task's run index and what it holds of each run.
RUN_INDEX = "segmentation_runs"
INDEX_MEMBERS = ("trained_model", "test_predictions")
PARAMETERS = ("params:segmentation", "params:training")
TABLE = "task2_segmentation"
HISTORIES = "task2_training_histories"
FIGURE = "task2_segmentation_overlays@matplotlib"


def _run_pipeline(run: run_grid.RunSpec) -> Pipeline:
    return Pipeline(
        [
            Node(
                run_grid.bind(nodes.train_and_evaluate, model=run.method, setting=run.config, seed=run.seed),
                inputs=[DATA, *PARAMETERS],
                outputs=["trained_model@model", "test_predictions@model", "metrics", "training_history"],
                name="train_and_evaluate",
            )
        ]
    )


def create_pipeline(parameters: ProjectParameters) -> Pipeline:
    """The Task 2 grid (``segmentation.models`` x ``settings`` x ``seeds``) of the given
    configuration, the task table and Figure 3."""
    segmentation = parameters.segmentation
    runs = run_grid.expand_grid(NAMESPACE, segmentation.models, segmentation.settings, segmentation.seeds)
    grid = run_grid.grid_pipeline(runs, _run_pipeline, shared_inputs=[DATA], parameters=PARAMETERS)
    return Pipeline(
        [
            Node(
                nodes.prepare_segmentation_data,
                inputs=["cubes", "split_index", "params:segmentation"],
                outputs=DATA,
                name="prepare_data",
                namespace=NAMESPACE,
            ),
            grid,
            Node(
                nodes.collect_segmentation_results,
                inputs=[f"{run.namespace}.metrics" for run in runs],
                outputs=TABLE,
                name="collect_results",
                namespace=NAMESPACE,
            ),
            Node(
                run_grid.bind(nodes.collect_training_histories, runs=runs),
                inputs=[f"{run.namespace}.training_history" for run in runs],
                outputs=HISTORIES,
                name="collect_training_histories",
                namespace=NAMESPACE,
            ),
            Node(
                run_grid.make_indexer(runs, INDEX_MEMBERS),
                inputs=run_grid.reference_inputs(runs, INDEX_MEMBERS),
                outputs=RUN_INDEX,
                name="index_runs",
                namespace=NAMESPACE,
            ),
            Node(
                nodes.plot_overlays_from_index,
                inputs=[DATA, "params:segmentation", RUN_INDEX],
                outputs=FIGURE,
                name="plot_overlays",
                namespace=NAMESPACE,
            ),
        ],
        tags="segmentation",
    )
