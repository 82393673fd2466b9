"""Task 3 end to end: its outputs of the tiny benchmark run (``kedro run --env=tiny``, shared by
the session); then, on a copy, ``kedro run --pipeline=probing --only-missing-outputs`` rebuilds
the table from the stored cubes and encoders.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from mtneuro.config import load_parameters
from mtneuro.pipelines.probing.pipeline import probing_runs

pytestmark = pytest.mark.slow


def _files(folder: Path) -> dict[str, float]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


def test_probing_run_writes_every_row_and_reuses_upstream(tiny_default_run, kedro_run, project_path, tmp_path):
    tmp_path = tiny_default_run.copy_to(tmp_path)

    parameters = load_parameters(project_path / "conf", "tiny")
    classification, probing = parameters.classification, parameters.probing
    runs = probing_runs(classification.methods, classification.configs, classification.seeds, probing)
    assert runs, "the tiny classification grid has no ROI-C1/ROI-C3 encoder"
    names = {"roi_c1": "ROI-C1", "roi_c3": "ROI-C3"}
    expected = {(r.method, names[r.config], r.seed, f) for r in runs for f in probing.features}

    csv = tmp_path / "08_reporting" / "task3_probing.csv"
    table = pd.read_csv(csv)
    assert {"source", "method", "train_config", "seed", "feature", "r2_in_sample", "r2_cv"} <= set(table.columns)
    assert set(zip(table["method"], table["train_config"], table["seed"], table["feature"])) == expected
    assert len(table) == len(expected)
    assert table["source"].isin(["phantom", "bossdb", "local"]).all()
    # the nested ridge read-out never extrapolates (least squares gave R^2 down to -16305 here)
    assert table["r2_cv"].notna().any() and (table["r2_cv"].dropna() > -1).all()
    assert table["image_unit"].str.startswith("whole ").all() and table["cv_ridge_alpha"].notna().any()
    assert (tmp_path / "08_reporting" / "task3_umap.png").stat().st_size > 10_000
    features = pd.read_parquet(tmp_path / "04_feature" / "probing_features.parquet")
    assert len(features) > 0 and set(probing.features) <= set(features.columns)

    # --only-missing-outputs: the table is rebuilt from the stored cubes and encoders, nothing retrained
    upstream = {d: _files(tmp_path / d) for d in ("02_intermediate", "06_models")}
    csv.unlink()
    kedro_run(["probing"], tmp_path, only_missing_outputs=True)
    assert len(pd.read_csv(csv)) == len(expected)
    assert {d: _files(tmp_path / d) for d in upstream} == upstream
