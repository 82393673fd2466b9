"""Probing pipeline wiring (Task 3).

Inputs: ``cubes`` and ``split_index`` (ingestion) and ``frozen_encoders`` (Task 1's run index,
from which each probing run loads one encoder). Outputs: ``probing_features`` (Parquet),
``task3_probing`` (CSV) and ``task3_umap`` (PNG).

The encoders read out are the classification grid (``classification.methods``, ``configs``,
``seeds``) narrowed by ``probing.encoders.train_configs`` and ``probing.encoders.methods``; one
namespaced sub-pipeline per encoder, ``probing.<method>.<train_config>.seed<k>``, embeds the
probing images and reads out every feature.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from kedro.pipeline import Node, Pipeline

from mtneuro import run_grid, spec
from mtneuro.config import ProjectParameters
from mtneuro.config.probing import ProbingParameters

from . import nodes

log = logging.getLogger(__name__)

ENCODERS = "frozen_encoders"
SHARED_INPUTS = ("probing_features", "probing_images", ENCODERS)
PARAMS = "params:probing"


def probing_runs(
    methods: Iterable[str], configs: Iterable[str], seeds: Iterable[int] | int, probing: ProbingParameters
) -> list[run_grid.RunSpec]:
    """The probing runs: the classification grid (``methods`` x ``configs`` x ``seeds``) on the
    training configs and methods of ``probing.encoders`` (``methods`` None: all)."""
    narrow = probing.encoders
    wanted_methods = narrow.methods or []
    methods = [m for m in methods if not wanted_methods or m in wanted_methods]
    configs = [c for c in configs if c in narrow.train_configs]
    grid = run_grid.expand_grid("classification", methods, configs, seeds)
    return [run_grid.RunSpec("probing", r.method, r.config, r.seed) for r in grid]


def umap_run(runs: Sequence[run_grid.RunSpec], probing: ProbingParameters) -> run_grid.RunSpec | None:
    """The run whose embeddings the UMAP figure shows (``probing.umap.encoder``, else the first)."""
    if not runs:
        return None
    chosen = probing.umap.encoder
    for run in runs:
        if run.method == chosen.method and run.config == chosen.train_config and run.seed == chosen.seed:
            return run
    log.warning(
        "probing.umap.encoder %s is not in the probing grid; the UMAP shows %s", chosen.model_dump(), runs[0].namespace
    )
    return runs[0]


def _run_pipeline(run: run_grid.RunSpec) -> Pipeline:
    return Pipeline(
        [
            Node(
                run_grid.bind(nodes.embed_with_indexed_encoder, run=run.key),
                ["probing_images", ENCODERS, PARAMS],
                "embeddings",
                name="embed_images",
            ),
            Node(nodes.probe_embeddings, ["probing_features", "embeddings", PARAMS], "r2", name="probe_features"),
        ]
    )


def build_pipeline(runs: Sequence[run_grid.RunSpec], probing: ProbingParameters) -> Pipeline:
    """The probing pipeline of the given encoder runs."""
    runs = list(runs)
    grid = run_grid.grid_pipeline(runs, _run_pipeline, SHARED_INPUTS, [PARAMS])
    pipe = (
        Pipeline(
            [
                Node(
                    nodes.build_probing_dataset,
                    ["cubes", "split_index", PARAMS],
                    ["probing_features", "probing_images"],
                    name="build_features",
                    namespace="probing",
                ),
                Node(
                    nodes.make_collector(runs),
                    ["probing_features", *(f"{run.namespace}.r2" for run in runs)],
                    "task3_probing",
                    name="collect_results",
                    namespace="probing",
                ),
            ]
        )
        + grid
    )
    shown = umap_run(runs, probing)
    if shown is not None:
        label = f"{shown.method} ({spec.CONFIG_LABELS.get(shown.config, shown.config)}, seed {shown.seed})"
        pipe += Pipeline(
            [
                Node(
                    nodes.make_umap_plotter(label),
                    ["probing_features", f"{shown.namespace}.embeddings", PARAMS],
                    "task3_umap@matplotlib",
                    name="plot_umap",
                    namespace="probing",
                ),
            ]
        )
    return pipe.tag("probing")


def create_pipeline(parameters: ProjectParameters) -> Pipeline:
    """The probing pipeline of the active configuration: one read-out per frozen encoder of the
    classification grid restricted by ``probing.encoders``."""
    classification = parameters.classification
    runs = probing_runs(classification.methods, classification.configs, classification.seeds, parameters.probing)
    return build_pipeline(runs, parameters.probing)
