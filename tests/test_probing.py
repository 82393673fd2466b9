"""Task 3 read-out: features table, grouped folds, R^2, results table and pipeline wiring.

The frozen Task 1 encoders are replaced here by a stand-in (a fixed random projection of
downsampled images) implementing ``mtneuro.models.FrozenEncoder``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from matplotlib.figure import Figure

from mtneuro import features as feat
from mtneuro import spec
from mtneuro.cubes import Cube, CubeSpec
from mtneuro.models import FrozenEncoder
from mtneuro.pipelines.probing import create_pipeline, nodes
from mtneuro.pipelines.probing.pipeline import encoder_dataset, probing_runs, umap_run
from mtneuro.run_grid import RunSpec
from mtneuro.volumes import Window

CONF = Path(__file__).resolve().parents[1] / "conf"


@pytest.fixture
def probing() -> dict[str, Any]:
    return yaml.safe_load((CONF / "base" / "parameters_probing.yml").read_text())["probing"]


class ProjectionEncoder:
    """Stand-in frozen encoder: mean-pool to 8x8, scale to [0, 1], fixed random projection."""

    def __init__(self, dim: int = 16, seed: int = 0) -> None:
        self.metadata = {"method": "stand-in", "dim": dim, "seed": seed}
        self._w = np.random.default_rng(seed).normal(size=(64, dim)).astype(np.float32)

    def embed(self, images: np.ndarray) -> np.ndarray:
        n, h, w = images.shape
        pooled = images.reshape(n, 8, h // 8, 8, w // 8).mean(axis=(2, 4)).reshape(n, 64) / 255.0
        return (pooled @ self._w).astype(np.float32)


def _cube(region: str, depth: int = 60, size: int = 32, seed: int = 0) -> Cube:
    rng = np.random.default_rng(seed)
    labels = np.zeros((depth, size, size), dtype=np.uint8)
    rows, cols = np.indices((size, size))
    for z in range(depth):
        labels[z, :, : rng.integers(0, size // 3)] = spec.VESSEL
        labels[z, size - rng.integers(0, size // 2) :, :] = spec.AXON
        for _ in range(rng.integers(0, 5)):
            cy, cx, r = rng.integers(4, size - 4), rng.integers(4, size - 4), rng.integers(1, 4)
            labels[z][(rows - cy) ** 2 + (cols - cx) ** 2 <= r * r] = spec.CELL
    image = (40 + 60 * labels + rng.integers(0, 20, labels.shape)).astype(np.uint8)
    window = Window(110, 110 + depth, 0, size, 0, size)
    uris = {c: f"phantom://prasad2020/{c}" for c in ("image", "roi_labels", "pixel_labels")}
    cube_spec = CubeSpec(f"main_{region}", region, "main", window, uris)
    return Cube(cube_spec, image, np.zeros(labels.shape, dtype=np.uint64), labels)


@pytest.fixture
def cubes() -> dict[str, Cube]:
    return {f"main_{r}": _cube(r, seed=i) for i, r in enumerate(spec.REGIONS)}


def _split_index(cubes: dict[str, Cube]) -> pd.DataFrame:
    frames = []
    for cube in cubes.values():
        z = np.arange(cube.image.shape[0])
        frames.append(pd.DataFrame({"config": "probing", "cube_id": cube.cube_id, "region": cube.region,
                                    "label": spec.REGION_INDEX[cube.region], "z": z, "z_abs": z + cube.z_offset,
                                    "split": "all"}))
        frames.append(frames[-1].assign(config="roi_c1", split="train"))
    return pd.concat(frames, ignore_index=True)


# --- images and features ------------------------------------------------------------------------


def test_features_table_matches_images_row_for_row(cubes, probing):
    probing = {**probing, "images": {"tile_size": 16, "slice_step": 3}}
    table, images = nodes.build_probing_dataset(cubes, _split_index(cubes), probing)
    assert len(table) == 4 * 20 * 4 == len(images)  # 4 cubes, 60/3 slices, 4 tiles
    assert images.shape[1:] == (16, 16) and images.dtype == np.uint8
    assert list(table.columns) == [*nodes.IMAGE_COLUMNS, *feat.FEATURES]
    assert table["cube_id"].unique().tolist() == [f"main_{r}" for r in spec.REGIONS]
    assert (table["z"] % 3 == 0).all() and table["source"].eq("phantom").all()
    assert table["cell_count"].dtype == np.int64 and table["mean_nn_distance"].dtype == np.float64
    for i in [0, 17, len(table) - 1]:
        row = table.iloc[i]
        cube = cubes[row["cube_id"]]
        window = (row["z"], slice(row["y0"], row["y0"] + 16), slice(row["x0"], row["x0"] + 16))
        np.testing.assert_array_equal(images[i], cube.image[window])
        expected = feat.image_features(cube.pixel_labels[window])
        got = {f: row[f] for f in feat.FEATURES}
        assert got == pytest.approx(expected, nan_ok=True)


def test_features_table_is_a_parquet_dataset_pandas_can_open(cubes, probing, tmp_path):
    catalog_conf = yaml.safe_load((CONF / "base" / "catalog_probing.yml").read_text())
    entry = {**catalog_conf["probing_features"]}
    entry["filepath"] = entry["filepath"].replace("${runtime_params:data_root,data}", str(tmp_path))
    catalog = DataCatalog.from_config({"probing_features": entry})
    table, _ = nodes.build_probing_dataset(cubes, _split_index(cubes), probing)
    catalog.save("probing_features", table)
    opened = pd.read_parquet(tmp_path / "04_feature" / "probing_features.parquet")
    pd.testing.assert_frame_equal(opened, table)


def test_missing_probing_rows_or_pixel_labels_fail_clearly(cubes, probing):
    with pytest.raises(nodes.ProbingError, match="probing"):
        nodes.build_probing_dataset(cubes, _split_index(cubes).query("config != 'probing'"), probing)
    broken = {**cubes, "main_VP": Cube(cubes["main_VP"].spec, cubes["main_VP"].image, cubes["main_VP"].roi_labels, None)}
    with pytest.raises(nodes.ProbingError, match="main_VP"):
        nodes.build_probing_dataset(broken, _split_index(cubes), probing)


# --- folds and R^2 ------------------------------------------------------------------------------


def _slice_table(n_slices: int = 120, tiles: int = 1) -> pd.DataFrame:
    rows = [{"cube_id": f"main_{r}", "region": r, "z": z, "tile": t}
            for r in spec.REGIONS for z in range(n_slices) for t in range(tiles)]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("gap", [1, 10])
def test_grouped_folds_never_put_neighbouring_slices_on_both_sides(gap):
    table = _slice_table(tiles=2)
    folds = nodes.blocked_folds(table, n_splits=5, block_slices=30, gap_slices=gap)
    assert len(folds) == 5
    tested = np.concatenate([test for _, test in folds])
    assert sorted(tested.tolist()) == list(range(len(table)))  # every image tested exactly once
    for train, test in folds:
        assert not set(train) & set(test)
        for cube_id in table["cube_id"].unique():
            tz = table["z"].to_numpy()[test][table["cube_id"].to_numpy()[test] == cube_id]
            rz = table["z"].to_numpy()[train][table["cube_id"].to_numpy()[train] == cube_id]
            if len(tz) and len(rz):
                assert np.abs(rz[:, None] - tz[None, :]).min() > gap  # so never |dz| = 0 or 1
        # a test block is contiguous slices of one cube, both tiles of a slice on the same side
        test_keys = set(zip(table["cube_id"].to_numpy()[test], table["z"].to_numpy()[test]))
        train_keys = set(zip(table["cube_id"].to_numpy()[train], table["z"].to_numpy()[train]))
        assert not test_keys & train_keys
    with pytest.raises(nodes.ProbingError, match="gap_slices"):
        nodes.blocked_folds(table, 5, 30, 0)


def test_r2_is_one_for_a_linear_feature_and_near_zero_for_an_independent_one():
    rng = np.random.default_rng(0)
    table = _slice_table(n_slices=360)
    embeddings = rng.normal(size=(len(table), 16)).astype(np.float32)
    folds = nodes.blocked_folds(table, 5, 30, 10)
    linear = embeddings.astype(np.float64) @ rng.normal(size=16) + 3.0
    r2_in, r2_cv, n, used = nodes.linear_r2(embeddings, linear, folds)
    assert r2_in == pytest.approx(1.0, abs=1e-6) and r2_cv == pytest.approx(1.0, abs=1e-6)
    assert n == len(table) and used == 5
    independent = rng.normal(size=len(table))
    r2_in, r2_cv, _, _ = nodes.linear_r2(embeddings, independent, folds)
    assert 0 <= r2_in < 0.03  # ~ D / N
    assert abs(r2_cv) < 0.03
    assert r2_cv < r2_in  # in-sample R^2 flatters


def test_r2_leaves_out_undefined_values_and_is_nan_when_undefined():
    rng = np.random.default_rng(1)
    table = _slice_table(n_slices=60)
    embeddings = rng.normal(size=(len(table), 4))
    folds = nodes.blocked_folds(table, 5, 30, 1)
    y = embeddings @ np.arange(1.0, 5.0)
    y[::3] = np.nan  # e.g. mean_nn_distance of images with fewer than two cells
    r2_in, r2_cv, n, _ = nodes.linear_r2(embeddings, y, folds)
    assert n == np.isfinite(y).sum() and r2_in == pytest.approx(1.0) and r2_cv == pytest.approx(1.0)
    assert all(np.isnan(nodes.linear_r2(embeddings, np.full(len(table), 2.0), folds)[:2]))  # constant
    assert all(np.isnan(nodes.linear_r2(embeddings, np.full(len(table), np.nan), folds)[:2]))  # never defined


def test_features_fitted_together_get_the_numbers_of_separate_fits():
    rng = np.random.default_rng(2)
    table = _slice_table(n_slices=90)
    embeddings = rng.normal(size=(len(table), 8))
    folds = nodes.blocked_folds(table, 5, 30, 2)
    Y = np.column_stack([embeddings @ rng.normal(size=8) + rng.normal(size=len(table)) for _ in range(3)])
    together = nodes.linear_r2(embeddings, Y, folds)
    for i in range(3):
        alone = nodes.linear_r2(embeddings, Y[:, i], folds)
        assert alone[0] == pytest.approx(together[0][i]) and alone[1] == pytest.approx(together[1][i])


def test_limited_threads_caps_blas_and_restores():
    from threadpoolctl import threadpool_info

    before = [i["num_threads"] for i in threadpool_info()]
    with nodes.limited_threads(1):
        assert all(i["num_threads"] == 1 for i in threadpool_info())
    assert [i["num_threads"] for i in threadpool_info()] == before
    with nodes.limited_threads(None):
        assert [i["num_threads"] for i in threadpool_info()] == before


def test_probe_embeddings_gives_one_row_per_feature(cubes, probing):
    table, images = nodes.build_probing_dataset(cubes, _split_index(cubes), {**probing, "images": {"slice_step": 1}})
    embeddings = nodes.embed_images(images, ProjectionEncoder(), probing)
    assert embeddings.shape == (len(table), 16) and embeddings.dtype == np.float32
    rows = nodes.probe_embeddings(table, embeddings, probing)
    assert rows["feature"].tolist() == list(feat.FEATURES)
    assert (rows["r2_in_sample"] <= 1 + 1e-9).all() and (rows["cv_folds"] == 5).all()
    # the stand-in sees the labels' gray levels: vessel and axon fractions are linear in its inputs
    assert rows.set_index("feature").loc["vessel_fraction", "r2_cv"] > 0.8


def test_embed_images_rejects_what_is_not_an_encoder(probing):
    class Bad:
        metadata: dict = {}

        def embed(self, images):
            return np.zeros((len(images) + 1, 3))

    images = np.zeros((5, 8, 8), dtype=np.uint8)
    with pytest.raises(nodes.ProbingError, match="FrozenEncoder"):
        nodes.embed_images(images, object(), probing)
    with pytest.raises(nodes.ProbingError, match="shape"):
        nodes.embed_images(images, Bad(), probing)


# --- grid and results table -------------------------------------------------------------------


def test_probing_runs_follow_the_classification_grid(probing):
    grid = {"methods": ["supervised", "pca"], "configs": ["roi_c1", "roi_c2", "roi_c3"], "seeds": 2}
    runs = probing_runs(grid, probing)
    assert len(runs) == 2 * 2 * 2 and {r.config for r in runs} == {"roi_c1", "roi_c3"}
    assert encoder_dataset(runs[0]) == "classification.supervised.roi_c1.seed0.frozen_encoder"
    assert runs[0].namespace == "probing.supervised.roi_c1.seed0"
    narrowed = probing_runs({**grid, "methods": {"byol": {}, "pca": {}}, "seeds": [3]},
                            {**probing, "encoders": {"methods": ["pca"], "train_configs": ["roi_c3"]}})
    assert narrowed == [RunSpec("probing", "pca", "roi_c3", 3)]
    assert probing_runs(None, probing) == []
    assert umap_run(runs, {"umap": {"encoder": {"method": "pca", "train_config": "roi_c3", "seed": 1}}}) == RunSpec(
        "probing", "pca", "roi_c3", 1)
    assert umap_run(runs, probing) == runs[0]  # myow_merged is not in this grid


def _run_probing(cubes: dict[str, Cube], probing: dict, runs: list[RunSpec]) -> DataCatalog:
    pipe = create_pipeline(runs=runs, probing=probing)
    datasets = {
        "cubes": MemoryDataset(cubes),
        "split_index": MemoryDataset(_split_index(cubes)),
        "params:probing": MemoryDataset(probing),
        "probing_features": MemoryDataset(),
        "task3_probing": MemoryDataset(),
        "task3_umap@matplotlib": MemoryDataset(copy_mode="assign"),
    }
    datasets.update({encoder_dataset(r): MemoryDataset(ProjectionEncoder(seed=r.seed), copy_mode="assign") for r in runs})
    catalog = DataCatalog(datasets=datasets)
    SequentialRunner().run(pipe, catalog)
    return catalog


def test_pipeline_writes_one_row_per_encoder_run_and_feature(cubes, probing, monkeypatch):
    # UMAP itself (numba compilation, ~30 s) runs in the session test; here a stand-in projection
    monkeypatch.setattr(nodes, "umap_projection", lambda emb, params: emb[:, :2])
    runs = [RunSpec("probing", m, c, s) for m in ("pca", "myow_merged") for c in ("roi_c1", "roi_c3") for s in (0, 1)]
    pipe = create_pipeline(runs=runs, probing=probing)
    assert {n.name for n in pipe.nodes} >= {"probing.pca.roi_c3.seed1.embed_images", "probing.collect_results"}
    assert all("probing" in n.tags for n in pipe.nodes)
    assert pipe.inputs() == {"cubes", "split_index", "params:probing", *(encoder_dataset(r) for r in runs)}
    catalog = _run_probing(cubes, probing, runs)
    table = catalog.load("task3_probing")
    assert list(table.columns) == list(nodes.RESULT_COLUMNS)
    assert len(table) == len(runs) * len(feat.FEATURES)
    keys = set(zip(table["method"], table["train_config"], table["seed"], table["feature"]))
    assert keys == {(m, c, s, f) for m in ("pca", "myow_merged") for c in ("ROI-C1", "ROI-C3") for s in (0, 1)
                    for f in feat.FEATURES}
    assert table["source"].eq("phantom").all() and table["image_unit"].eq("slice").all()
    figure = catalog.load("task3_umap@matplotlib")
    assert isinstance(figure, Figure) and "myow_merged (ROI-C1, seed 0)" in figure._suptitle.get_text()
    assert len([ax for ax in figure.axes if ax.get_title()]) == 1 + len(feat.FEATURES)


def test_pipeline_without_encoders_writes_an_empty_table(cubes, probing):
    catalog = _run_probing(cubes, probing, [])
    table = catalog.load("task3_probing")
    assert table.empty and list(table.columns) == list(nodes.RESULT_COLUMNS)


def test_stand_in_encoder_implements_the_protocol():
    assert isinstance(ProjectionEncoder(), FrozenEncoder)
