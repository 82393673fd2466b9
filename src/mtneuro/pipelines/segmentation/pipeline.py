"""Segmentation pipeline wiring: one node per (model, label setting, seed), then the table and
the figure.

``prepare_data`` turns ``cubes`` + ``split_index`` into ``segmentation_data`` (the labelled
slices of every setting and split, in memory). Per run ``segmentation.<model>.<setting>.seed<k>``
(namespaced, see :mod:`mtneuro.run_grid`) ``train_and_evaluate`` reads it with
``params:segmentation`` and ``params:training`` and writes ``trained_model`` (versioned
TorchModelDataset), ``test_predictions`` (versioned) and ``metrics`` (the run's table rows).
``collect_results`` -> ``task2_segmentation`` (CSV); ``plot_overlays`` ->
``task2_segmentation_overlays@matplotlib`` (PNG; read back as ``task2_segmentation_overlays@png``).
"""

from __future__ import annotations

from functools import partial, update_wrapper
from typing import Any

from kedro.pipeline import Node, Pipeline

from mtneuro import run_grid
from mtneuro.config import ProjectParameters

from . import nodes

DATA = "segmentation_data"
PARAMETERS = ("params:segmentation", "params:training")
TABLE = "task2_segmentation"
FIGURE = "task2_segmentation_overlays@matplotlib"


def _bind(func: Any, **kwargs: Any) -> Any:
    """``func`` with keyword arguments fixed, keeping its name (Kedro names nodes after it)."""
    return update_wrapper(partial(func, **kwargs), func)


def _run_pipeline(run: run_grid.RunSpec) -> Pipeline:
    return Pipeline(
        [
            Node(
                _bind(nodes.train_and_evaluate, model=run.method, setting=run.config, seed=run.seed),
                inputs=[DATA, *PARAMETERS],
                outputs=["trained_model", "test_predictions", "metrics"],
                name="train_and_evaluate",
            )
        ]
    )


def create_pipeline(parameters: ProjectParameters) -> Pipeline:
    """The Task 2 grid (``segmentation.models`` x ``settings`` x ``seeds``) of the given
    configuration, the task table and Figure 3."""
    segmentation = parameters.segmentation
    runs = run_grid.expand_grid("segmentation", segmentation.models, segmentation.settings, segmentation.seeds)
    grid = run_grid.grid_pipeline(runs, _run_pipeline, shared_inputs=[DATA], parameters=PARAMETERS)
    figure_inputs = {
        key: f"segmentation.{model}.{setting}.seed{seed}.test_predictions"
        for key, (model, setting, seed) in nodes.figure_inputs(segmentation).items()
    }
    return Pipeline(
        [
            Node(
                nodes.prepare_segmentation_data,
                inputs=["cubes", "split_index", "params:segmentation"],
                outputs=DATA,
                name="prepare_data",
                namespace="segmentation",
            ),
            grid,
            Node(
                nodes.collect_segmentation_results,
                inputs=[f"{run.namespace}.metrics" for run in runs],
                outputs=TABLE,
                name="collect_results",
                namespace="segmentation",
            ),
            Node(
                nodes.plot_segmentation_overlays,
                inputs={"segmentation_data": DATA, "segmentation": "params:segmentation", **figure_inputs},
                outputs=FIGURE,
                name="plot_overlays",
                namespace="segmentation",
            ),
        ],
        tags="segmentation",
    )
