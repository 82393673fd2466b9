"""Project pipelines."""

from __future__ import annotations

import importlib

from kedro.pipeline import Pipeline

#: Each stage and what it needs upstream, so that every ``kedro run --pipelines=<name>`` works
#: on a fresh clone; add ``--only-missing-outputs`` to reuse outputs an earlier run left on disk.
UPSTREAM: dict[str, tuple[str, ...]] = {
    "ingestion": (),
    "classification": ("ingestion",),
    "segmentation": ("ingestion",),
    "probing": ("ingestion", "classification"),
    "reporting": (),
}


def register_pipelines() -> dict[str, Pipeline]:
    """The five stage pipelines (each with its upstream) and ``__default__``: all of them.

    Stages are imported explicitly rather than with ``find_pipelines``, whose selective loading
    would drop the upstream stages of ``--pipelines=probing``.
    """
    stages = {
        name: importlib.import_module(f"mtneuro.pipelines.{name}").create_pipeline() for name in UPSTREAM
    }
    pipelines = {
        name: sum((stages[up] for up in (*upstream, name)), Pipeline([])) for name, upstream in UPSTREAM.items()
    }
    pipelines["__default__"] = sum(stages.values(), Pipeline([]))
    return pipelines
