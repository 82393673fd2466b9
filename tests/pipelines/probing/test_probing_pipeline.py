"""The probing pipeline: its grid follows the classification grid, and it runs end to end on
synthetic cubes with stand-in encoders (a Kedro runner, no session)."""

from __future__ import annotations

import numpy as np
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from kedro.validation.type_extractor import TypeExtractor
from matplotlib.figure import Figure

from mtneuro.config.probing import ProbingParameters
from mtneuro.pipelines.probing import create_pipeline, nodes
from mtneuro.pipelines.probing.pipeline import ENCODERS, build_pipeline, probing_runs, umap_run
from mtneuro.run_grid import RunSpec


def test_probing_runs_follow_the_classification_grid(probing, with_values):
    runs = probing_runs(["supervised", "pca"], ["roi_c1", "roi_c2", "roi_c3"], 2, probing)
    assert len(runs) == 2 * 2 * 2 and {r.config for r in runs} == {"roi_c1", "roi_c3"}
    assert runs[0].key == "supervised.roi_c1.seed0"  # its encoder's key in Task 1's run index
    assert runs[0].namespace == "probing.supervised.roi_c1.seed0"
    narrowed = probing_runs(
        ["byol", "pca"],
        ["roi_c1", "roi_c3"],
        [3],
        with_values(probing, encoders__methods=["pca"], encoders__train_configs=["roi_c3"]),
    )
    assert narrowed == [RunSpec("probing", "pca", "roi_c3", 3)]
    chosen = with_values(probing, umap__encoder={"method": "pca", "train_config": "roi_c3", "seed": 1})
    assert umap_run(runs, chosen) == RunSpec("probing", "pca", "roi_c3", 1)
    assert umap_run(runs, probing) == runs[0]  # myow_merged (the base profile's choice) is not in this grid
    assert umap_run([], probing) is None


def test_create_pipeline_builds_the_grid_of_the_parameters(tiny_parameters):
    classification = tiny_parameters.classification
    pipe = create_pipeline(tiny_parameters)
    runs = probing_runs(classification.methods, classification.configs, classification.seeds, tiny_parameters.probing)
    assert runs and {r.config for r in runs} <= {"roi_c1", "roi_c3"}
    assert {n.name for n in pipe.nodes} == {
        "probing.build_features",
        "probing.collect_results",
        "probing.plot_umap",
        *(f"{r.namespace}.{step}" for r in runs for step in ("embed_images", "probe_features")),
    }
    assert pipe.inputs() == {"cubes", "split_index", "params:probing", ENCODERS}
    assert pipe.outputs() == {"task3_probing", "task3_umap@matplotlib"}
    assert "probing_features" in pipe.all_outputs()
    # Kedro's parameter validation hands every node the typed block
    assert TypeExtractor({"probing": pipe}).extract_types_from_pipelines() == {"probing": ProbingParameters}


def _run_probing(cubes, split_index, encoder, probing, runs) -> DataCatalog:
    pipe = build_pipeline(runs, probing)
    datasets = {
        "cubes": MemoryDataset(cubes),
        "split_index": MemoryDataset(split_index(cubes)),
        "params:probing": MemoryDataset(probing),
        "probing_features": MemoryDataset(),
        "task3_probing": MemoryDataset(),
        "task3_umap@matplotlib": MemoryDataset(copy_mode="assign"),
    }
    # Task 1's run index: run key -> {"frozen_encoder": encoder}
    index = {r.key: {"frozen_encoder": encoder(seed=r.seed)} for r in runs}
    datasets[ENCODERS] = MemoryDataset(index, copy_mode="assign")
    catalog = DataCatalog(datasets=datasets)
    SequentialRunner().run(pipe, catalog)
    return catalog


def test_pipeline_writes_one_row_per_encoder_run_and_feature(cubes, split_index, encoder, probing, monkeypatch):
    # UMAP itself (numba compilation, ~30 s) runs in the session test; here a stand-in projection
    monkeypatch.setattr(nodes, "umap_projection", lambda emb, _params: emb[:, :2])
    runs = [RunSpec("probing", m, c, s) for m in ("pca", "myow_merged") for c in ("roi_c1", "roi_c3") for s in (0, 1)]
    pipe = build_pipeline(runs, probing)
    assert {n.name for n in pipe.nodes} >= {"probing.pca.roi_c3.seed1.embed_images", "probing.collect_results"}
    assert all("probing" in n.tags for n in pipe.nodes)
    catalog = _run_probing(cubes, split_index, encoder, probing, runs)
    table = catalog.load("task3_probing")
    assert list(table.columns) == list(nodes.RESULT_COLUMNS)
    assert len(table) == len(runs) * len(probing.features)
    keys = set(zip(table["method"], table["train_config"], table["seed"], table["feature"]))
    assert keys == {
        (m, c, s, f)
        for m in ("pca", "myow_merged")
        for c in ("ROI-C1", "ROI-C3")
        for s in (0, 1)
        for f in probing.features
    }
    assert table["source"].eq("phantom").all() and table["image_unit"].eq("whole 32x32 slices").all()
    assert np.isfinite(table["r2_in_sample"]).any()
    # the chosen ridge penalties are recorded, one of the grid (a median of choices) per row
    alphas = table["cv_ridge_alpha"].dropna()
    assert len(alphas) and alphas.between(min(probing.readout.ridge_alphas), max(probing.readout.ridge_alphas)).all()
    figure = catalog.load("task3_umap@matplotlib")
    assert isinstance(figure, Figure) and "myow_merged (ROI-C1, seed 0)" in figure._suptitle.get_text()
    assert len([ax for ax in figure.axes if ax.get_title()]) == 1 + len(probing.features)


def test_pipeline_without_encoders_writes_an_empty_table(cubes, split_index, encoder, probing):
    catalog = _run_probing(cubes, split_index, encoder, probing, [])
    table = catalog.load("task3_probing")
    assert table.empty and list(table.columns) == list(nodes.RESULT_COLUMNS)
