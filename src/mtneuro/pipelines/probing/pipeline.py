"""Probing pipeline wiring (Task 3).

Inputs: ``cubes`` and ``split_index`` (ingestion) and, per classification run trained on a
Task 1 training set, ``classification.<method>.<train_config>.seed<k>.frozen_encoder``.
Outputs: ``probing_features`` (Parquet), ``task3_probing`` (CSV) and ``task3_umap`` (PNG).

The encoders read out are the classification grid (``classification.methods``, ``configs``,
``seeds``) narrowed by ``probing.encoders.train_configs`` and ``probing.encoders.methods``; one
namespaced sub-pipeline per encoder, ``probing.<method>.<train_config>.seed<k>``, embeds the
probing images and reads out every feature.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from kedro.pipeline import Node, Pipeline

from mtneuro import run_grid

from . import nodes

log = logging.getLogger(__name__)

SHARED_INPUTS = ("probing_features", "probing_images")
PARAMS = "params:probing"


def encoder_dataset(run: run_grid.RunSpec) -> str:
    """Catalog name of the frozen Task 1 encoder a probing run reads."""
    return f"classification.{run.method}.{run.config}.seed{run.seed}.frozen_encoder"


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str | int):
        return [value]
    if isinstance(value, Mapping):
        return list(value)
    return list(value)


def probing_runs(classification: Mapping[str, Any] | None, probing: Mapping[str, Any]) -> list[run_grid.RunSpec]:
    """The probing runs: the classification grid on the training configs Task 3 reads.

    ``classification`` holds ``methods`` (a list, or a mapping whose keys are the methods),
    ``configs`` (training sets) and ``seeds`` (a count or a list). ``probing.encoders`` narrows the
    grid: ``train_configs`` (default ROI-C1 and ROI-C3) and ``methods`` (null: all).
    """
    if not classification:
        log.warning("No 'classification' parameters: the probing pipeline reads out no encoder")
        return []
    narrow = probing.get("encoders", {}) or {}
    wanted_configs = _as_list(narrow.get("train_configs")) or ["roi_c1", "roi_c3"]
    wanted_methods = _as_list(narrow.get("methods"))
    methods = [m for m in _as_list(classification.get("methods")) if not wanted_methods or m in wanted_methods]
    configs = [c for c in _as_list(classification.get("configs")) or wanted_configs if c in wanted_configs]
    seeds = classification.get("seeds", 1)
    grid = run_grid.expand_grid("classification", methods, configs, seeds)
    return [run_grid.RunSpec("probing", r.method, r.config, r.seed) for r in grid]


def umap_run(runs: Sequence[run_grid.RunSpec], probing: Mapping[str, Any]) -> run_grid.RunSpec | None:
    """The run whose embeddings the UMAP figure shows (``probing.umap.encoder``, else the first)."""
    if not runs:
        return None
    chosen = (probing.get("umap", {}) or {}).get("encoder", {}) or {}
    for run in runs:
        if (
            run.method == chosen.get("method", run.method)
            and run.config == chosen.get("train_config", run.config)
            and run.seed == int(chosen.get("seed", run.seed))
        ):
            return run
    log.warning("probing.umap.encoder %s is not in the probing grid; the UMAP shows %s", dict(chosen), runs[0].namespace)
    return runs[0]


def _run_pipeline(run: run_grid.RunSpec) -> Pipeline:
    return Pipeline(
        [
            Node(nodes.embed_images, ["probing_images", encoder_dataset(run), PARAMS], "embeddings", name="embed_images"),
            Node(nodes.probe_embeddings, ["probing_features", "embeddings", PARAMS], "r2", name="probe_features"),
        ]
    )


def _task_parameters(task: str) -> dict[str, Any] | None:
    try:
        return run_grid.task_parameters(task)
    except KeyError:
        return None


def create_pipeline(**kwargs: Any) -> Pipeline:
    """The probing pipeline. ``runs`` (probing RunSpecs) and ``probing`` (parameters) override
    the active parameters, e.g. in tests."""
    probing = kwargs["probing"] if kwargs.get("probing") is not None else (_task_parameters("probing") or {})
    runs: Iterable[run_grid.RunSpec] | None = kwargs.get("runs")
    runs = list(runs) if runs is not None else probing_runs(_task_parameters("classification"), probing)
    image_unit = nodes.image_unit_name(probing.get("images", {}) or {})

    grid = sum(
        (
            run_grid.grid_pipeline([run], _run_pipeline, [*SHARED_INPUTS, encoder_dataset(run)], [PARAMS])
            for run in runs
        ),
        Pipeline([]),
    )
    pipe = Pipeline(
        [
            Node(nodes.build_probing_dataset, ["cubes", "split_index", PARAMS], ["probing_features", "probing_images"],
                 name="build_features", namespace="probing"),
            Node(nodes.make_collector(runs, image_unit), ["probing_features", *(f"{run.namespace}.r2" for run in runs)],
                 "task3_probing", name="collect_results", namespace="probing"),
        ]
    ) + grid
    shown = umap_run(runs, probing)
    if shown is not None:
        label = f"{shown.method} ({nodes.TRAIN_CONFIG_NAMES.get(shown.config, shown.config)}, seed {shown.seed})"
        pipe += Pipeline(
            [
                Node(nodes.make_umap_plotter(label),
                     ["probing_features", f"{shown.namespace}.embeddings", PARAMS], "task3_umap@matplotlib",
                     name="plot_umap", namespace="probing"),
            ]
        )
    return pipe.tag("probing")
