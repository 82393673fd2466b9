"""Task 1's outputs of the tiny benchmark run (``kedro run --env=tiny``, shared by the session)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from kedro.io.core import Version

from mtneuro import models, spec
from mtneuro.classification_methods import method_settings
from mtneuro.config import load_parameters
from mtneuro.datasets.frozen_encoder import FrozenEncoderDataset


@pytest.mark.slow
def test_classification_session_writes_one_row_per_run(tiny_default_run, project_path: Path):
    params = load_parameters(project_path / "conf", "tiny").classification
    tmp_path = tiny_default_run.data_root

    table = pd.read_csv(tmp_path / "08_reporting" / "task1_region_classification.csv")
    tests = sorted({t for c in params.configs for t in params.evaluate_on[c]})
    assert len(table) == len(params.methods) * len(tests) * len(params.seeds)
    assert not table.duplicated(["method", "config", "seed"]).any()
    assert list(dict.fromkeys(table["method"])) == params.methods  # the registry's order (= the profile's)
    assert set(table["config"]) == {"ROI-C1", "ROI-C2", "ROI-C3"}
    assert set(table["seed"]) == set(params.seeds)
    assert set(table["source"]) == {"phantom"}
    for column in ["accuracy", "balanced_accuracy", *(f"recall_{r}" for r in spec.REGIONS)]:
        assert table[column].between(0, 1).all(), column
    summary = pd.read_csv(tmp_path / "08_reporting" / "task1_region_classification_summary.csv")
    assert len(summary) == len(params.methods) * len(tests)

    # per-run datasets: confusion matrices and metrics for every run, frozen encoders for Task 3
    runs_dir = tmp_path / "07_model_output" / "classification"
    for method in params.methods:
        for config in params.configs:
            for seed in params.seeds:
                run = runs_dir / method / config / f"seed{seed}"
                (cm_file,) = run.glob("confusion_matrix.csv/*/confusion_matrix.csv")
                cm = pd.read_csv(cm_file)
                assert list(cm.columns) == ["config", "true_region", *(f"pred_{r}" for r in spec.REGIONS)]
                (metrics_file,) = run.glob("metrics.json/*/metrics.json")
                assert {row["config"] for row in json.loads(metrics_file.read_text())} == {
                    spec.CONFIG_LABELS[t] for t in params.evaluate_on[config]
                }
                folder = tmp_path / "06_models" / "classification" / method / config / f"seed{seed}" / "frozen_encoder"
                encoder = FrozenEncoderDataset(filepath=str(folder), version=Version(None, None)).load()
                assert isinstance(encoder, models.FrozenEncoder)
                meta = encoder.metadata
                assert (meta["method"], meta["train_config"], meta["seed"]) == (method, config, seed)
                assert meta["train_settings"] == method_settings(params, method).model_dump()
                assert {"architecture", "input"} <= set(meta) and meta["source"] == "phantom"
                images = np.random.default_rng(0).integers(0, 256, (3, 32, 32), dtype=np.uint8)
                emb = encoder.embed(images)
                assert emb.dtype == np.float32 and emb.shape[0] == 3 and np.isfinite(emb).all()
