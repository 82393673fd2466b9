"""Adding a Task 1 method is one module plus one YAML line: a toy method registered here shows up
in Task 1, in Task 3 and in the report, through real Kedro sessions."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from mtneuro.classification_methods import get_method, register_method
from mtneuro.classification_methods.base import unregister_method
from mtneuro.config import load_parameters
from mtneuro.pipelines.reporting import nodes as reporting_nodes
from mtneuro.plugin_parameters import load_checked_parameters

PROJECT = Path(__file__).resolve().parents[2]
TOY = "toy_pca"
TOY_LABEL = "Toy PCA (test)"


@pytest.fixture
def toy_method() -> Iterator[str]:
    """What a contributor's module would do: register a method (here a PCA variant with its own block)."""
    pca = get_method("pca")
    register_method(replace(pca, name=TOY, label=TOY_LABEL, order=pca.order + 1, inherits=(*pca.inherits[:-1], TOY)))
    yield TOY
    unregister_method(TOY)


def _grid(toy: str) -> dict:
    """The "YAML line": the toy in the method list (plus its own settings block), a small grid."""
    return {
        "classification": {"methods": ["pca", toy], "configs": ["roi_c1"], toy: {"svd_solver": "full"}},
        "probing": {"encoders": {"train_configs": ["roi_c1"]}, "umap": {"encoder": {"method": toy}}},
    }


def test_an_unregistered_method_is_refused_with_the_registry(project_path: Path):
    from mtneuro.config import ConfigurationError

    with pytest.raises(ConfigurationError) as error:
        load_checked_parameters(project_path / "conf", "tiny", _grid(TOY))
    assert "classification.methods" in str(error.value) and "pca" in str(error.value)
    assert "probing.umap.encoder.method" in str(error.value)


@pytest.mark.slow
def test_a_registered_toy_method_reaches_task1_task3_and_the_report(
    toy_method: str, kedro_run, tiny_cubes, tmp_path: Path
):
    # up to the two tables the test reads: the UMAP figure (numba compiling UMAP: the run's slowest
    # node) and the other figures are not what it checks
    kedro_run(
        ["ingestion", "classification", "probing"],
        tiny_cubes(tmp_path),
        extra_params=_grid(toy_method),
        to_outputs=["task1_region_classification", "task3_probing"],
    )
    reporting_dir = tmp_path / "08_reporting"

    task1 = pd.read_csv(reporting_dir / "task1_region_classification.csv")
    assert set(task1["method"]) == {"pca", toy_method}
    assert set(task1.loc[task1["method"] == toy_method, "config"]) == {"ROI-C1", "ROI-C2"}

    task3 = pd.read_csv(reporting_dir / "task3_probing.csv")
    toy_rows = task3[task3["method"] == toy_method]
    assert len(toy_rows) == len(load_parameters(PROJECT / "conf", "tiny").probing.features)

    reporting = load_parameters(PROJECT / "conf", "tiny").reporting
    table1 = reporting_nodes.build_table1(task1, reporting)
    table3 = reporting_nodes.build_table3(task3, reporting)
    assert TOY_LABEL in reporting_nodes.table1_markdown(table1, reporting)
    assert TOY_LABEL in reporting_nodes.table3_markdown(table3, reporting)
