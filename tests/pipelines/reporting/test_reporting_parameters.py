"""The typed ``reporting`` block: every profile parses, bad values name their full key."""

from __future__ import annotations

from pathlib import Path

import pytest

from mtneuro.config import ConfigurationError, load_parameters
from mtneuro.config.reporting import ReportingParameters


@pytest.mark.parametrize(
    ("env", "profile"),
    [
        ("local", "base (CPU default)"),
        ("tiny", "tiny (smoke test, seconds)"),
        ("paper", "paper (the paper's settings)"),
    ],
)
def test_profiles_parse_into_the_typed_block(project_path: Path, env: str, profile: str) -> None:
    reporting = load_parameters(project_path / "conf", env, runtime_params={"data_root": "/tmp/x"}).reporting
    assert isinstance(reporting, ReportingParameters)
    assert reporting.profile == profile and reporting.task1_metric == "accuracy" and reporting.decimals == 3
    assert reporting.report_path == "/tmp/x/08_reporting/report.html"
    assert set(reporting.figures) == {
        "task1_confusion_matrices_figure@png",
        "task1_training_curves@png",
        "task2_training_curves@png",
        "task2_segmentation_overlays@png",
        "task3_umap@png",
        "phantom_vs_real_figure@png",
        "mapping_overview@png",
    }
    assert set(reporting.tables) == {"phantom_vs_real", "mapping_validation", "profile_departures"}
    assert (reporting.table2_metric, reporting.table3_r2) == ("f1", "in_sample")
    assert reporting.folded_tables == ["phantom_vs_real"]
    assert reporting.legends == {"mapping_overview@png": ["regions", "microstructure"]}


def _error(project_path: Path, reporting: dict) -> str:
    with pytest.raises(ConfigurationError) as error:
        load_parameters(project_path / "conf", "tiny", runtime_params={"reporting": reporting})
    return str(error.value)


def test_unknown_task1_metric(project_path: Path) -> None:
    message = _error(project_path, {"task1_metric": "f1"})
    assert "reporting.task1_metric" in message and "'accuracy'" in message and "'balanced_accuracy'" in message


def test_misspelt_key(project_path: Path) -> None:
    message = _error(project_path, {"decimal": 2})
    assert "reporting.decimal: unknown key" in message and "decimals" in message


@pytest.mark.parametrize(
    ("reporting", "key"),
    [
        ({"decimals": -1}, "reporting.decimals"),
        ({"profile": ""}, "reporting.profile"),
        ({"figures": {"task3_umap@png": ""}}, "reporting.figures.task3_umap@png"),
        ({"table2_metric": "accuracy"}, "reporting.table2_metric"),
        ({"folded_tables": "phantom_vs_real"}, "reporting.folded_tables"),
        ({"legends": {"mapping_overview@png": ["tissue"]}}, "reporting.legends.mapping_overview@png.0"),
    ],
)
def test_bad_values_name_their_key(project_path: Path, reporting: dict, key: str) -> None:
    assert f"  - {key}" in _error(project_path, reporting)


def test_folded_tables_and_legends_name_shown_ones(project_path: Path) -> None:
    assert "folded_tables names ['phantom_vs_reel']" in _error(project_path, {"folded_tables": ["phantom_vs_reel"]})
    assert "legends names ['brain_map@png']" in _error(project_path, {"legends": {"brain_map@png": ["regions"]}})
