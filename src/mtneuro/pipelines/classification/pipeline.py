"""Task 1 pipeline wiring: one namespaced sub-pipeline per (method, training set, seed).

Per run ``classification.<method>.<config>.seed<k>``:

* ``train``: supervised/mixup -> ``frozen_encoder``, ``readout`` (the network's own head),
  ``training_history``; BYOL/MYOW/MYOW-merged -> ``frozen_encoder``, ``training_history``;
  PCA/NMF (``fit_decomposition``) -> ``frozen_encoder``, ``training_history``;
* ``fit_readout`` (frozen representations only): linear classifier -> ``readout``;
* ``evaluate``: -> ``metrics`` (one row per test configuration) and ``confusion_matrix``.

Shared: ``prepare_classification_images`` before the runs, ``collect_classification_results``
after them (-> ``task1_region_classification``).
"""

from __future__ import annotations

import warnings
from functools import partial, update_wrapper

from kedro.pipeline import Node, Pipeline

from mtneuro import run_grid

from . import nodes

SHARED_INPUTS = ("classification_images",)
PARAMETERS = ("params:classification", "params:training")


def _bind(func, **kwargs):  # noqa: ANN001, ANN202 - a partial that keeps the function's name
    return update_wrapper(partial(func, **kwargs), func)


def _run_pipeline(run: run_grid.RunSpec) -> Pipeline:
    ident = {"method": run.method, "config": run.config, "seed": run.seed}
    data = ["classification_images", "params:classification"]
    if run.method in nodes.ssl.SUPERVISED_METHODS:
        train = Node(_bind(nodes.train_supervised, **ident), [*data, "params:training"],
                     ["frozen_encoder", "readout", "training_history"], name="train")
        readout = []
    else:
        if run.method in nodes.DECOMPOSITION_METHODS:
            train = Node(_bind(nodes.fit_decomposition, **ident), [*data, "params:training"],
                         ["frozen_encoder", "training_history"], name="train")
        elif run.method in nodes.ssl.SSL_METHODS:
            train = Node(_bind(nodes.train_self_supervised, **ident), [*data, "params:training"],
                         ["frozen_encoder", "training_history"], name="train")
        else:
            raise nodes.ClassificationError(f"Unknown classification method {run.method!r}; expected one of {nodes.METHODS}")
        readout = [
            Node(_bind(nodes.fit_linear_readout, config=run.config, seed=run.seed),
                 ["frozen_encoder", *data, "params:training"], "readout", name="fit_readout")
        ]
    evaluate = Node(_bind(nodes.evaluate_run, **ident),
                    ["frozen_encoder", "readout", "training_history", *data, "params:training"],
                    ["metrics", "confusion_matrix"], name="evaluate")
    return Pipeline([train, *readout, evaluate])


def create_pipeline(**kwargs) -> Pipeline:  # noqa: ANN003, ARG001
    grid = run_grid.task_parameters("classification")
    runs = run_grid.expand_grid("classification", grid["methods"], grid["configs"], grid["seeds"])
    prepare = Pipeline(
        [
            Node(nodes.prepare_images, ["cubes", "split_index", "params:classification"],
                 ["classification_images", "classification_data_summary"], name="prepare_classification_images"),
        ]
    )
    with warnings.catch_warnings():
        # The collector reads every run's namespaced metrics (dotted names by design).
        warnings.filterwarnings("ignore", message="One or more dataset names contain '.'")
        collect = Pipeline(
            [
                Node(_bind(nodes.collect_results, runs=runs),
                     ["classification_data_summary", *[f"{run.namespace}.metrics" for run in runs]],
                     ["task1_region_classification", "task1_region_classification_summary"],
                     name="collect_classification_results"),
            ]
        )
    runs_pipeline = run_grid.grid_pipeline(runs, _run_pipeline, SHARED_INPUTS, PARAMETERS)
    return prepare + runs_pipeline + collect
