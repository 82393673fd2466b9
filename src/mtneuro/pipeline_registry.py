"""Project pipelines, built from the active configuration.

The run grids (methods x configurations x seeds of each task) are static Kedro pipelines built
here, from the parameters of the active environment (``--env``, ``--params``, ``--conf-source``),
so that ``kedro run``, ``kedro registry list`` and ``kedro viz`` see the same grid.
"""

from __future__ import annotations

import importlib

from kedro.pipeline import Pipeline

from mtneuro.config import ProjectParameters
from mtneuro.config.active import active_parameters
from mtneuro.plugin_parameters import check_plugin_parameters

#: Each stage and what it needs upstream, so that every ``kedro run --pipelines=<name>`` works
#: on a fresh clone; add ``--only-missing-outputs`` to reuse outputs an earlier run left on disk.
UPSTREAM: dict[str, tuple[str, ...]] = {
    "ingestion": (),
    "classification": ("ingestion",),
    "segmentation": ("ingestion",),
    "probing": ("ingestion", "classification"),
    "mapping": ("ingestion", "classification", "segmentation"),
    "reporting": (),
}


def build_pipelines(parameters: ProjectParameters) -> dict[str, Pipeline]:
    """The five stage pipelines (each with its upstream) and ``__default__``: all of them."""
    stages = {
        name: importlib.import_module(f"mtneuro.pipelines.{name}").create_pipeline(parameters) for name in UPSTREAM
    }
    pipelines = {
        name: sum((stages[up] for up in (*upstream, name)), Pipeline([])) for name, upstream in UPSTREAM.items()
    }
    pipelines["__default__"] = sum(stages.values(), Pipeline([]))
    return pipelines


def register_pipelines() -> dict[str, Pipeline]:
    """Kedro's entry point: the pipelines of the active configuration.

    Stages are imported explicitly rather than with ``find_pipelines``, whose selective loading
    would drop the upstream stages of ``--pipelines=probing``.
    """
    return build_pipelines(check_plugin_parameters(active_parameters()))
