"""Project pipelines."""

from __future__ import annotations

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

#: Order in which the default pipeline runs the stages (Kedro orders nodes by data anyway).
PIPELINE_ORDER = ("ingestion", "classification", "segmentation", "probing", "reporting")


def register_pipelines() -> dict[str, Pipeline]:
    """``kedro run`` runs every pipeline; ``--pipeline=<name>`` one of them and what it needs."""
    pipelines = find_pipelines(raise_errors=True)
    pipelines["__default__"] = sum(
        (pipelines[name] for name in PIPELINE_ORDER if name in pipelines), Pipeline([])
    )
    return pipelines
