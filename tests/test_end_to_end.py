"""The whole benchmark on the tiny profile (``kedro run --env=tiny``, shared by the session), then the notebook."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from nbclient import NotebookClient

PROJECT_PATH = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_default_pipeline_on_tiny_profile_then_notebook(tiny_default_run):
    data_root = tiny_default_run.data_root
    reporting = data_root / "08_reporting"
    for name in (
        "task1_region_classification",
        "task2_segmentation",
        "task3_probing",
        "table1_region_classification",
        "table2_segmentation",
        "table3_probing",
    ):
        table = pd.read_csv(reporting / f"{name}.csv")
        assert len(table) > 0, name
        assert set(table["source"]) == {"phantom"}, name
    text = (reporting / "paper_tables.md").read_text()
    assert text.count("Data source: phantom") == 3 and "paper" in text.lower()
    html = (reporting / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 5
    assert str((reporting / "report.html").resolve()) in tiny_default_run.output

    notebook = nbformat.read(PROJECT_PATH / "notebooks" / "getting_started.ipynb", as_version=4)
    env = {"MTNEURO_ENV": "tiny", "MTNEURO_DATA_ROOT": str(data_root), "MTNEURO_PROJECT": str(PROJECT_PATH)}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        NotebookClient(
            notebook,
            timeout=300,
            kernel_name="python3",
            resources={"metadata": {"path": str(PROJECT_PATH / "notebooks")}},
        ).execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "\n".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", "")) for o in outputs)
    assert (
        "source: phantom" in text and "main_CTX" in text and ".roi_c1.seed0" in text
    )  # a run key of the encoder index
    # pictures, not only listings: the cubes, the brain map and the report's figures (3 charts + reporting.figures)
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 2 + 3 + 6, len(images)
    assert "window z0,z1,y0,y1,x0,x1:" in text and "task1_training_curves@png" in text
    html_logs = "\n".join(str(o.get("data", {}).get("text/html", "")) for o in outputs)
    assert "TqdmWarning" not in text + html_logs  # ipywidgets installed: tqdm draws notebook bars
