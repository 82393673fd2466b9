"""Task 1 pipeline wiring (namespace ``classification``): one sub-pipeline per (method,
training set, seed).

Per run ``classification.<method>.<config>.seed<k>``:

* ``train``: the training node of the method's kind (registry, :data:`TRAIN_NODES`):
  supervised/mixup -> ``frozen_encoder``, ``readout`` (the network's own head),
  ``training_history``; BYOL/MYOW/MYOW-merged -> ``frozen_encoder``, ``training_history``;
  PCA/NMF (``fit_decomposition``) -> ``frozen_encoder``, ``training_history``;
* ``fit_readout`` (frozen representations only): linear classifier -> ``readout``;
* ``evaluate``: -> ``metrics`` (one row per test configuration) and ``confusion_matrix``.

Shared: ``prepare_classification_images`` before the runs; after them
``collect_classification_results`` (-> ``task1_region_classification``),
``collect_confusion_matrices`` (-> ``task1_confusion_matrices``), ``collect_training_histories``
(-> ``task1_training_histories``, every run's loss and learning rate per epoch) and ``index_frozen_encoders``
(-> ``frozen_encoders``, the run index other tasks read instead of per-run datasets).
Inputs from upstream: ``cubes``, ``split_index``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from kedro.pipeline import Node, Pipeline

from mtneuro import run_grid
from mtneuro.classification_methods import MethodKind, get_method
from mtneuro.config import ProjectParameters
from mtneuro.config.classification import ClassificationParameters

from . import nodes

NAMESPACE = "classification"
SHARED_INPUTS = ("classification_images",)
#: The run index of the task (one entry per run, members loaded on demand).
ENCODER_INDEX = "frozen_encoders"
INDEX_MEMBERS = ("frozen_encoder", "readout")
PARAMETERS = ("params:classification", "params:training")

#: The training node of each kind of method and what it outputs.
TRAIN_NODES: dict[MethodKind, tuple[Callable[..., Any], list[str]]] = {
    "supervised": (nodes.train_supervised, ["frozen_encoder@model", "readout@model", "training_history"]),
    "ssl": (nodes.train_self_supervised, ["frozen_encoder@model", "training_history"]),
    "decomposition": (nodes.fit_decomposition, ["frozen_encoder@model", "training_history"]),
}


def _run_pipeline(run: run_grid.RunSpec) -> Pipeline:
    ident = {"method": run.method, "config": run.config, "seed": run.seed}
    method = get_method(run.method)
    inputs = ["classification_images", *PARAMETERS]
    train_func, train_outputs = TRAIN_NODES[method.kind]
    # Network trainings ask the Dask runner for a GPU (tag "gpu"); PCA/NMF run on any worker.
    tags = ["gpu"] if method.kind != "decomposition" else []
    train = Node(run_grid.bind(train_func, **ident), inputs, train_outputs, name="train", tags=tags)
    readout = (
        [
            Node(
                run_grid.bind(nodes.fit_linear_readout, config=run.config, seed=run.seed),
                ["frozen_encoder@model", *inputs],
                "readout@model",
                name="fit_readout",
            )
        ]
        if method.needs_readout
        else []
    )
    evaluate = Node(
        run_grid.bind(nodes.evaluate_run, **ident),
        ["frozen_encoder@model", "readout@model", "training_history", *inputs],
        ["metrics", "confusion_matrix"],
        name="evaluate",
    )
    return Pipeline([train, *readout, evaluate])


def build_pipeline(classification: ClassificationParameters) -> Pipeline:
    """The Task 1 pipeline of a ``classification`` block: its grid of methods x configs x seeds."""
    runs = run_grid.expand_grid(NAMESPACE, classification.methods, classification.configs, classification.seeds)
    prepare = Pipeline(
        [
            Node(
                nodes.prepare_images,
                ["cubes", "split_index", "params:classification"],
                ["classification_images", "classification_data_summary"],
                name="prepare_classification_images",
                namespace=NAMESPACE,
            ),
        ]
    )
    with warnings.catch_warnings():
        # The collector reads every run's namespaced metrics (dotted names by design).
        warnings.filterwarnings("ignore", message="One or more dataset names contain '.'")
        collect = Pipeline(
            [
                Node(
                    run_grid.bind(nodes.collect_results, runs=runs),
                    ["classification_data_summary", *[f"{run.namespace}.metrics" for run in runs]],
                    ["task1_region_classification", "task1_region_classification_summary"],
                    name="collect_classification_results",
                    namespace=NAMESPACE,
                ),
                Node(
                    run_grid.bind(nodes.collect_confusion_matrices, runs=runs),
                    ["classification_data_summary", *[f"{run.namespace}.confusion_matrix" for run in runs]],
                    "task1_confusion_matrices",
                    name="collect_confusion_matrices",
                    namespace=NAMESPACE,
                ),
                Node(
                    run_grid.bind(nodes.collect_training_histories, runs=runs),
                    ["classification_data_summary", *[f"{run.namespace}.training_history" for run in runs]],
                    "task1_training_histories",
                    name="collect_training_histories",
                    namespace=NAMESPACE,
                ),
                Node(
                    run_grid.make_indexer(runs, INDEX_MEMBERS),
                    run_grid.reference_inputs(runs, INDEX_MEMBERS),
                    ENCODER_INDEX,
                    name="index_frozen_encoders",
                    namespace=NAMESPACE,
                ),
            ]
        )
    runs_pipeline = run_grid.grid_pipeline(runs, _run_pipeline, SHARED_INPUTS, PARAMETERS)
    return prepare + runs_pipeline + collect


def create_pipeline(parameters: ProjectParameters) -> Pipeline:
    """The Task 1 pipeline of the active configuration (``parameters.classification``)."""
    return build_pipeline(parameters.classification)
