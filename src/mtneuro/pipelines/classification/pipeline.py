"""Task 1 pipeline wiring: one namespaced sub-pipeline per (method, training set, seed).

Per run ``classification.<method>.<config>.seed<k>``:

* ``train``: the training node of the method's kind (registry, :data:`TRAIN_NODES`):
  supervised/mixup -> ``frozen_encoder``, ``readout`` (the network's own head),
  ``training_history``; BYOL/MYOW/MYOW-merged -> ``frozen_encoder``, ``training_history``;
  PCA/NMF (``fit_decomposition``) -> ``frozen_encoder``, ``training_history``;
* ``fit_readout`` (frozen representations only): linear classifier -> ``readout``;
* ``evaluate``: -> ``metrics`` (one row per test configuration) and ``confusion_matrix``.

Shared: ``prepare_classification_images`` before the runs, ``collect_classification_results``
after them (-> ``task1_region_classification``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from functools import partial, update_wrapper
from typing import Any

from kedro.pipeline import Node, Pipeline

from mtneuro import run_grid
from mtneuro.classification_methods import MethodKind, get_method
from mtneuro.config import ProjectParameters
from mtneuro.config.classification import ClassificationParameters

from . import nodes

SHARED_INPUTS = ("classification_images",)
PARAMETERS = ("params:classification", "params:training")

#: The training node of each kind of method and what it outputs.
TRAIN_NODES: dict[MethodKind, tuple[Callable[..., Any], list[str]]] = {
    "supervised": (nodes.train_supervised, ["frozen_encoder", "readout", "training_history"]),
    "ssl": (nodes.train_self_supervised, ["frozen_encoder", "training_history"]),
    "decomposition": (nodes.fit_decomposition, ["frozen_encoder", "training_history"]),
}


def _bind(func, **kwargs):
    return update_wrapper(partial(func, **kwargs), func)


def _run_pipeline(run: run_grid.RunSpec) -> Pipeline:
    ident = {"method": run.method, "config": run.config, "seed": run.seed}
    method = get_method(run.method)
    inputs = ["classification_images", *PARAMETERS]
    train_func, train_outputs = TRAIN_NODES[method.kind]
    # Network trainings ask the Dask runner for a GPU (tag "gpu"); PCA/NMF run on any worker.
    tags = ["gpu"] if method.kind != "decomposition" else []
    train = Node(_bind(train_func, **ident), inputs, train_outputs, name="train", tags=tags)
    readout = (
        [
            Node(
                _bind(nodes.fit_linear_readout, config=run.config, seed=run.seed),
                ["frozen_encoder", *inputs],
                "readout",
                name="fit_readout",
            )
        ]
        if method.needs_readout
        else []
    )
    evaluate = Node(
        _bind(nodes.evaluate_run, **ident),
        ["frozen_encoder", "readout", "training_history", *inputs],
        ["metrics", "confusion_matrix"],
        name="evaluate",
    )
    return Pipeline([train, *readout, evaluate])


def build_pipeline(classification: ClassificationParameters) -> Pipeline:
    """The Task 1 pipeline of a ``classification`` block: its grid of methods x configs x seeds."""
    runs = run_grid.expand_grid("classification", classification.methods, classification.configs, classification.seeds)
    prepare = Pipeline(
        [
            Node(
                nodes.prepare_images,
                ["cubes", "split_index", "params:classification"],
                ["classification_images", "classification_data_summary"],
                name="prepare_classification_images",
            ),
        ]
    )
    with warnings.catch_warnings():
        # The collector reads every run's namespaced metrics (dotted names by design).
        warnings.filterwarnings("ignore", message="One or more dataset names contain '.'")
        collect = Pipeline(
            [
                Node(
                    _bind(nodes.collect_results, runs=runs),
                    ["classification_data_summary", *[f"{run.namespace}.metrics" for run in runs]],
                    ["task1_region_classification", "task1_region_classification_summary"],
                    name="collect_classification_results",
                ),
            ]
        )
    runs_pipeline = run_grid.grid_pipeline(runs, _run_pipeline, SHARED_INPUTS, PARAMETERS)
    return prepare + runs_pipeline + collect


def create_pipeline(parameters: ProjectParameters) -> Pipeline:
    """The Task 1 pipeline of the active configuration (``parameters.classification``)."""
    return build_pipeline(parameters.classification)
