"""A run whose inputs no earlier run wrote stops before any node, naming the pipeline that writes them."""

from __future__ import annotations

import pytest

from mtneuro.preflight import MissingInputsError


def test_reporting_on_an_empty_data_root_names_the_task_pipelines(kedro_run, tmp_path):
    data_root = tmp_path / "data"
    with pytest.raises(MissingInputsError) as caught:
        kedro_run(["reporting"], data_root)
    message = str(caught.value)
    assert f"under {data_root}/" in message
    for table, pipeline in [
        ("task1_region_classification", "classification"),
        ("task2_segmentation", "segmentation"),
        ("task3_probing", "probing"),
        ("mapping_validation", "mapping"),
    ]:
        line = next(line for line in message.splitlines() if table in line)
        assert f"--pipelines={pipeline}`" in line, line
    assert "`kedro run --pipelines=classification,mapping,probing,segmentation` first" in message
    # nothing ran: the report folder was not even created
    assert not (data_root / "08_reporting").exists()
