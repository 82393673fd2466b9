"""The Task 1 pipeline: one namespaced sub-pipeline per (method, training set, seed) of the typed
parameters, wired by the registry; typed parameter blocks reach the nodes."""

from __future__ import annotations

from pathlib import Path

import pytest

from mtneuro.classification_methods import get_method
from mtneuro.config import load_parameters
from mtneuro.pipelines.classification import create_pipeline


@pytest.fixture(scope="module")
def conf(project_path: Path) -> Path:
    return project_path / "conf"


def test_pipeline_has_one_subpipeline_per_run(conf: Path):
    parameters = load_parameters(conf, "tiny", {"classification": {"seeds": [0, 1]}})
    methods = parameters.classification.methods
    pipe = create_pipeline(parameters)
    names = {n.name for n in pipe.nodes}
    for method in methods:
        for config in ("roi_c1", "roi_c3"):
            for seed in (0, 1):
                ns = f"classification.{method}.{config}.seed{seed}"
                assert {f"{ns}.train", f"{ns}.evaluate"} <= names
                assert {
                    f"{ns}.frozen_encoder@model",
                    f"{ns}.readout@model",
                    f"{ns}.training_history",
                    f"{ns}.metrics",
                    f"{ns}.confusion_matrix",
                } <= pipe.all_outputs()
                assert (f"{ns}.fit_readout" in names) == get_method(method).needs_readout
    assert len([n for n in names if n.endswith(".train")]) == len(methods) * 2 * 2
    assert pipe.inputs() == {"cubes", "split_index", "params:classification", "params:training"}
    assert pipe.outputs() >= {"task1_region_classification", "task1_region_classification_summary", "frozen_encoders"}
    # the run index reads every run's encoder and read-out as references (nothing is loaded)
    index = next(n for n in pipe.nodes if n.name == "classification.index_frozen_encoders")
    assert set(index.inputs) == {
        f"classification.{m}.{c}.seed{s}.{member}@reference"
        for m in methods
        for c in ("roi_c1", "roi_c3")
        for s in (0, 1)
        for member in ("frozen_encoder", "readout")
    }
    assert all(n.namespace and n.namespace.split(".")[0] == "classification" for n in pipe.nodes)
    # runs are independent: a run's nodes read only the shared model input and parameters
    for method in methods:
        run = pipe.only_nodes_with_namespaces([f"classification.{method}.roi_c3.seed1"])
        assert run.inputs() == {"classification_images", "params:classification", "params:training"}


def test_the_grid_follows_the_parameters(conf: Path):
    parameters = load_parameters(
        conf, "tiny", {"classification": {"methods": ["byol", "pca"], "configs": ["roi_c3"], "seeds": [4]}}
    )
    names = {n.name for n in create_pipeline(parameters).nodes if n.name.endswith(".train")}
    assert names == {"classification.byol.roi_c3.seed4.train", "classification.pca.roi_c3.seed4.train"}


def test_kedro_hands_the_nodes_typed_blocks(conf: Path):
    """Kedro's parameter validation instantiates the annotated models for every node."""
    from kedro.validation.type_extractor import TypeExtractor

    from mtneuro.config import TrainingParameters
    from mtneuro.config.classification import ClassificationParameters

    pipe = create_pipeline(load_parameters(conf, "tiny"))
    types = TypeExtractor({"classification": pipe}).extract_types_from_pipelines()
    assert types == {"classification": ClassificationParameters, "training": TrainingParameters}
