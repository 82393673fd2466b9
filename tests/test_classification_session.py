"""Task 1 end to end: a real KedroSession runs ingestion + classification on the tiny profile."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from kedro.config import OmegaConfigLoader
from kedro.io.core import Version

from mtneuro import models, spec
from mtneuro.datasets.frozen_encoder import FrozenEncoderDataset

CONF = Path(__file__).resolve().parents[1] / "conf"


def _tiny_classification_params() -> dict:
    loader = OmegaConfigLoader(str(CONF), base_env="base", default_run_env="tiny", merge_strategy={"parameters": "soft"})
    return loader["parameters"]["classification"]


@pytest.mark.slow
def test_classification_session_writes_one_row_per_run(kedro_run, tmp_path: Path):
    params = _tiny_classification_params()
    kedro_run(["ingestion", "classification"], tmp_path)

    table = pd.read_csv(tmp_path / "08_reporting" / "task1_region_classification.csv")
    seeds = params["seeds"] if isinstance(params["seeds"], list) else list(range(params["seeds"]))
    tests = sorted({t for c in params["configs"] for t in params["evaluate_on"][c]})
    assert len(table) == len(params["methods"]) * len(tests) * len(seeds)
    assert not table.duplicated(["method", "config", "seed"]).any()
    assert set(table["method"]) == set(params["methods"])
    assert set(table["config"]) == {"ROI-C1", "ROI-C2", "ROI-C3"}
    assert set(table["seed"]) == set(seeds)
    assert set(table["source"]) == {"phantom"}
    for column in ["accuracy", "balanced_accuracy", *(f"recall_{r}" for r in spec.REGIONS)]:
        assert table[column].between(0, 1).all(), column
    summary = pd.read_csv(tmp_path / "08_reporting" / "task1_region_classification_summary.csv")
    assert len(summary) == len(params["methods"]) * len(tests)

    # per-run datasets: confusion matrices and metrics for every run, frozen encoders for Task 3
    runs_dir = tmp_path / "07_model_output" / "classification"
    for method in params["methods"]:
        for config in params["configs"]:
            for seed in seeds:
                run = runs_dir / method / config / f"seed{seed}"
                (cm_file,) = run.glob("confusion_matrix.csv/*/confusion_matrix.csv")
                cm = pd.read_csv(cm_file)
                assert list(cm.columns) == ["config", "true_region", *(f"pred_{r}" for r in spec.REGIONS)]
                (metrics_file,) = run.glob("metrics.json/*/metrics.json")
                assert {row["config"] for row in json.loads(metrics_file.read_text())} == {
                    {"roi_c1": "ROI-C1", "roi_c2": "ROI-C2", "roi_c3": "ROI-C3"}[t] for t in params["evaluate_on"][config]
                }
                folder = tmp_path / "06_models" / "classification" / method / config / f"seed{seed}" / "frozen_encoder"
                encoder = FrozenEncoderDataset(filepath=str(folder), version=Version(None, None)).load()
                assert isinstance(encoder, models.FrozenEncoder)
                meta = encoder.metadata
                assert (meta["method"], meta["train_config"], meta["seed"]) == (method, config, seed)
                assert {"architecture", "input"} <= set(meta) and meta["source"] == "phantom"
                images = np.random.default_rng(0).integers(0, 256, (3, 32, 32), dtype=np.uint8)
                emb = encoder.embed(images)
                assert emb.dtype == np.float32 and emb.shape[0] == 3 and np.isfinite(emb).all()
