"""The pipelines as kedro-viz draws them: six stage namespaces joined by a few main datasets.

kedro-viz shows at the top level the stage namespaces plus every dataset or parameter that
crosses a stage boundary (a stage's free inputs, its unconsumed outputs, and outputs other
stages read). These tests compute that set from the Kedro pipeline itself (not from kedro-viz)
and check that no per-run dataset of a task grid ever leaves its task's namespace.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from kedro.pipeline import Pipeline

from mtneuro.config import load_parameters
from mtneuro.pipeline_registry import UPSTREAM, build_pipelines

STAGES = tuple(UPSTREAM)
#: ``<task>.<method>.<config>.seed<k>.<dataset>`` (with an optional transcoding suffix).
PER_RUN = re.compile(r"^(?P<task>[a-z_]+)\.[^.]+\.[^.]+\.seed\d+\.[^.@]+(@\w+)?$")


def _top_level(pipe: Pipeline) -> set[str]:
    """Stages plus the datasets/parameters on a stage boundary (kedro-viz's top level)."""
    top = set(STAGES)
    for stage in STAGES:
        inside = pipe.only_nodes_with_namespaces([stage])
        rest = pipe - inside
        top |= inside.inputs() | inside.outputs() | (rest.inputs() & inside.all_outputs())
    top |= {n.name for n in pipe.nodes if not n.namespace}
    return {name.split("@")[0] for name in top}


@pytest.fixture(scope="module", params=["base", "tiny", "paper"])
def default_pipeline(request: pytest.FixtureRequest, project_path: Path) -> Pipeline:
    return build_pipelines(load_parameters(project_path / "conf", request.param))["__default__"]


def test_every_node_is_in_a_stage_namespace(default_pipeline: Pipeline) -> None:
    outside = [n.name for n in default_pipeline.nodes if not n.namespace or n.namespace.split(".")[0] not in STAGES]
    assert outside == []


def test_no_per_run_dataset_is_consumed_outside_its_task(default_pipeline: Pipeline) -> None:
    per_run = 0
    for node in default_pipeline.nodes:
        for name in [*node.inputs, *node.outputs]:
            match = PER_RUN.match(name)
            if match:
                per_run += 1
                assert node.namespace.split(".")[0] == match["task"], f"{node.name} uses {name}"
    assert per_run > 100  # the grids are there


def test_top_level_shows_the_benchmark_in_at_most_31_elements(default_pipeline: Pipeline) -> None:
    top = _top_level(default_pipeline)
    assert len(top) <= 31, sorted(top)  # 31: task2_training_histories joined task1_training_histories
    assert not [name for name in top if PER_RUN.match(name)]
    main = {"cubes", "split_index", "frozen_encoders", "segmentation_runs", "report_html"}
    tables = {"task1_region_classification", "task2_segmentation", "task3_probing"}
    assert main | tables | set(STAGES) <= top


def test_cross_stage_datasets_follow_the_paper_order(default_pipeline: Pipeline) -> None:
    """Each stage reads from other stages only what comes before it in the benchmark."""
    produced_by = {out: node.namespace.split(".")[0] for node in default_pipeline.nodes for out in node.outputs}
    reads: dict[str, set[str]] = {stage: set() for stage in STAGES}
    for node in default_pipeline.nodes:
        stage = node.namespace.split(".")[0]
        for name in node.inputs:
            source = produced_by.get(name)
            if source and source != stage:
                reads[stage].add(source)
    assert reads["ingestion"] == set()
    assert reads["classification"] == reads["segmentation"] == {"ingestion"}
    assert reads["probing"] == {"ingestion", "classification"}
    # the default region model is trained for the map from the volume (mapping.regions.model:
    # section); with a Task 1 run (best) the map also reads ingestion (validation) and classification
    assert reads["mapping"] in ({"segmentation"}, {"ingestion", "classification", "segmentation"})
    assert reads["reporting"] <= {"classification", "segmentation", "probing", "mapping"}
