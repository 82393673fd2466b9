"""Ingestion pipeline wiring (namespace ``ingestion``): plans the region overview and the extra
cubes, fetches every cube and builds the split index. Outputs other pipelines read: ``cubes``,
``split_index``."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from mtneuro.config import ProjectParameters

from .nodes import build_split_index, choose_extra_cubes, label_histograms, plan_cubes, plan_region_overview


def create_pipeline(parameters: ProjectParameters) -> Pipeline:  # noqa: ARG001 - no grid; uniform interface
    """The ingestion pipeline; it has no run grid, so ``parameters`` does not shape it."""
    return Pipeline(
        [
            Node(
                plan_region_overview,
                ["params:volume", "params:ingestion"],
                "region_overview",
                name="plan_region_overview",
                namespace="ingestion",
            ),
            Node(
                choose_extra_cubes,
                ["region_overview", "params:volume", "params:ingestion"],
                "extra_cube_coordinates",
                name="choose_extra_cubes",
                namespace="ingestion",
            ),
            Node(
                plan_cubes,
                ["extra_cube_coordinates", "params:volume", "params:ingestion"],
                "cubes",
                name="fetch_cubes",
                namespace="ingestion",
            ),
            Node(
                label_histograms,
                ["cubes", "params:volume", "params:ingestion"],
                "cube_label_histograms",
                name="check_cube_labels",
                namespace="ingestion",
            ),
            Node(
                build_split_index,
                ["cubes", "cube_label_histograms", "extra_cube_coordinates", "params:ingestion"],
                "split_index",
                name="build_split_index",
                namespace="ingestion",
            ),
        ]
    )
