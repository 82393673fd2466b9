"""Task 3 read-out: features table, grouped folds, R^2 and the results of one encoder.

The frozen Task 1 encoders are replaced here by a stand-in (a fixed random projection of
downsampled images) implementing ``mtneuro.models.FrozenEncoder``.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest
import yaml
from kedro.io import DataCatalog

from mtneuro import features as feat
from mtneuro import spec
from mtneuro.cubes import Cube
from mtneuro.models import FrozenEncoder
from mtneuro.pipelines.probing import nodes

CONF = Path(__file__).resolve().parents[3] / "conf"


# --- images and features ------------------------------------------------------------------------


def test_features_table_matches_images_row_for_row(cubes, probing, with_values, split_index):
    probing = with_values(probing, images__tile_size=16, images__slice_step=3)
    table, images = nodes.build_probing_dataset(cubes, split_index(cubes), probing)
    assert len(table) == 4 * 20 * 4 == len(images)  # 4 cubes, 60/3 slices, 4 tiles
    assert images.shape[1:] == (16, 16) and images.dtype == np.uint8
    assert list(table.columns) == [*nodes.IMAGE_COLUMNS, *feat.feature_names()]
    assert table["cube_id"].unique().tolist() == [f"main_{r}" for r in spec.REGIONS]
    assert (table["z"] % 3 == 0).all() and table["source"].eq("phantom").all()
    # column dtypes come from the registry
    assert table["cell_count"].dtype == np.int64 and table["mean_nn_distance"].dtype == np.float64
    for i in [0, 17, len(table) - 1]:
        row = table.iloc[i]
        cube = cubes[row["cube_id"]]
        window = (row["z"], slice(row["y0"], row["y0"] + 16), slice(row["x0"], row["x0"] + 16))
        np.testing.assert_array_equal(images[i], cube.image[window])
        # the authors' cells are labelled in 3D over the whole cube, then cut (annots/features.py)
        ids = feat.label_cells_3d(cube.pixel_labels)[window]
        expected = feat.image_features(cube.pixel_labels[window], cell_ids=ids)
        got = {f: row[f] for f in feat.feature_names()}
        assert got == pytest.approx(expected, nan_ok=True)
    # the two labellings differ on these cubes (cells continue through neighbouring slices)
    assert (table["cell_count_authors"] != table["cell_count"]).any()


def test_cell_connectivity_parameter_reaches_the_features(cubes, probing, with_values, split_index):
    four, _ = nodes.build_probing_dataset(cubes, split_index(cubes), with_values(probing, images__slice_step=5))
    eight, _ = nodes.build_probing_dataset(
        cubes, split_index(cubes), with_values(probing, images__slice_step=5, cell_connectivity=8)
    )
    assert (eight["cell_count"] <= four["cell_count"]).all() and (eight["cell_count"] < four["cell_count"]).any()


def test_features_table_is_a_parquet_dataset_pandas_can_open(cubes, probing, tmp_path, split_index):
    catalog_conf = yaml.safe_load((CONF / "base" / "catalog_probing.yml").read_text())
    entry = {**catalog_conf["probing_features"]}
    entry["filepath"] = entry["filepath"].replace("${runtime_params:data_root,data}", str(tmp_path))
    catalog = DataCatalog.from_config({"probing_features": entry})
    table, _ = nodes.build_probing_dataset(cubes, split_index(cubes), probing)
    catalog.save("probing_features", table)
    opened = pd.read_parquet(tmp_path / "04_feature" / "probing_features.parquet")
    pd.testing.assert_frame_equal(opened, table)


def test_missing_probing_rows_or_pixel_labels_fail_clearly(cubes, probing, split_index):
    with pytest.raises(nodes.ProbingError, match="probing"):
        nodes.build_probing_dataset(cubes, split_index(cubes).query("config != 'probing'"), probing)
    broken = {
        **cubes,
        "main_VP": Cube(cubes["main_VP"].spec, cubes["main_VP"].image, cubes["main_VP"].roi_labels, None),
    }
    with pytest.raises(nodes.ProbingError, match="main_VP"):
        nodes.build_probing_dataset(broken, split_index(cubes), probing)


def test_image_unit_name(probing, with_values):
    assert nodes.image_unit_name(probing.images) == "slice"
    assert nodes.image_unit_name(with_values(probing, images__tile_size=64).images) == "tile64"


def test_image_unit_is_described_from_the_images_probed(cubes, probing, with_values, split_index):
    whole, _ = nodes.build_probing_dataset(cubes, split_index(cubes), with_values(probing, images__slice_step=20))
    assert nodes.describe_image_unit(whole) == "whole 32x32 slices"
    tiles, _ = nodes.build_probing_dataset(
        cubes, split_index(cubes), with_values(probing, images__slice_step=20, images__tile_size=16)
    )
    assert nodes.describe_image_unit(tiles) == "16x16 tiles of 32x32 slices (4 per slice)"
    assert nodes.describe_image_unit(tiles.iloc[:0]) == "no images"


def test_paper_profile_probes_the_authors_quadrants(project_path):
    """The authors' code probes the four 128x128 quadrants of each 256x256 slice: 5760 images."""
    from mtneuro.config import load_parameters

    paper = load_parameters(project_path / "conf", "paper")
    size, tile = paper.ingestion.cube_size_yx, paper.probing.images.tile_size
    assert (size, tile, paper.probing.images.slice_step) == (256, 128, 1)
    units = list(feat.tiles(size, size, tile))
    assert len(units) == 4 and 4 * 360 * len(units) == 5760


# --- folds and R^2 ------------------------------------------------------------------------------


def _slice_table(n_slices: int = 120, tiles: int = 1) -> pd.DataFrame:
    rows = [
        {"cube_id": f"main_{r}", "region": r, "z": z, "tile": t}
        for r in spec.REGIONS
        for z in range(n_slices)
        for t in range(tiles)
    ]
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


def _r2_formula(y: np.ndarray, prediction: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """The hand-written R^2 the read-out used before scikit-learn's ``r2_score``."""
    total = np.sum((y - mean) ** 2, axis=0)
    residual = np.sum((y - prediction) ** 2, axis=0)
    constant = total <= 1e-12 * np.maximum(1.0, np.sum(y**2, axis=0))
    return np.where(constant, np.nan, 1.0 - residual / np.where(constant, 1.0, total))


@pytest.mark.parametrize("n_columns", [1, 3, 5])
def test_r2_is_scikit_learns_and_bit_for_bit_the_former_formula(n_columns):
    rng = np.random.default_rng(n_columns)
    y = rng.normal(size=(1440, n_columns)) * rng.uniform(0.01, 100, n_columns) + rng.normal(size=n_columns)
    y[:, 0] = 0.1  # constant, and not representable: the mean leaves a rounding residue
    prediction = y + rng.normal(size=y.shape)
    got = nodes._r2(y, prediction)
    expected = _r2_formula(y, prediction, y.mean(axis=0))
    np.testing.assert_array_equal(got, expected)  # identical, NaN where undefined
    assert np.isnan(got[0])
    if n_columns > 1:
        from sklearn.metrics import r2_score

        assert np.isfinite(got[1:]).all()
        np.testing.assert_array_equal(got[1:], r2_score(y[:, 1:], prediction[:, 1:], multioutput="raw_values"))


@pytest.fixture
def readout(probing, with_values):
    """The base read-out parameters, with min_images 2 (the tests pick their own images)."""
    return with_values(probing, readout__min_images=2).readout


def _folds(table, readout, gap=10):
    return nodes.nested_folds(table, readout.model_copy(update={"gap_slices": gap}))


def test_nested_folds_choose_the_penalty_on_outer_training_images_only(readout):
    table = _slice_table(n_slices=360, tiles=2)
    folds = nodes.nested_folds(table, readout)
    outer = nodes.blocked_folds(table, readout.cv_folds, readout.block_slices, readout.gap_slices)
    assert len(folds) == readout.cv_folds
    z, cube = table["z"].to_numpy(), table["cube_id"].to_numpy()
    for fold, (train, test) in zip(folds, outer):
        np.testing.assert_array_equal(fold.train, train)
        np.testing.assert_array_equal(fold.test, test)
        assert len(fold.inner) == readout.inner_folds
        for inner_train, inner_test in fold.inner:
            assert set(inner_train) <= set(train) and set(inner_test) <= set(train)
            assert not set(inner_train) & set(inner_test)
            # the purge gap holds inside as well
            for c in np.unique(cube[inner_test]):
                tz, rz = z[inner_test][cube[inner_test] == c], z[inner_train][cube[inner_train] == c]
                if len(tz) and len(rz):
                    assert np.abs(rz[:, None] - tz[None, :]).min() > readout.gap_slices
        tested = np.concatenate([b for _, b in fold.inner])
        assert sorted(tested.tolist()) == sorted(train.tolist())  # every training image tested once


def test_r2_is_high_for_a_linear_feature_and_near_zero_for_an_independent_one(readout):
    rng = np.random.default_rng(0)
    table = _slice_table(n_slices=360)
    embeddings = rng.normal(size=(len(table), 16)).astype(np.float32)
    folds = nodes.nested_folds(table, readout)
    linear = embeddings.astype(np.float64) @ rng.normal(size=16) + 3.0
    r2_in, r2_cv, n, used, alpha = nodes.linear_r2(embeddings, linear, folds, readout)
    assert r2_in == pytest.approx(1.0, abs=1e-6) and r2_cv == pytest.approx(1.0, abs=1e-3)
    assert n == len(table) and used == 5 and alpha == min(readout.ridge_alphas)  # no noise: the weakest penalty
    independent = rng.normal(size=len(table))
    r2_in, r2_cv, _, _, alpha = nodes.linear_r2(embeddings, independent, folds, readout)
    assert 0 <= r2_in < 0.03  # ~ D / N
    assert abs(r2_cv) < 0.03
    assert r2_cv < r2_in  # in-sample R^2 flatters
    assert alpha >= 100  # pure noise: a strong penalty


def test_cross_validated_r2_of_noise_is_near_zero_with_hundreds_of_dimensions(readout):
    """Least squares on 256 dimensions and ~2000 images extrapolates (R^2 far below 0 out of
    fold, while in sample it looks like a fit); the nested ridge read-out must not. (One seed:
    a second one, 5, repeated the same code path for 8-16 s; the margins below are wide.)"""
    rng = np.random.default_rng(3)
    table = _slice_table(n_slices=540)
    embeddings = rng.normal(size=(len(table), 256))
    folds = nodes.nested_folds(table, readout)
    noise = rng.normal(size=len(table))
    r2_in, r2_cv, _, used, alpha = nodes.linear_r2(embeddings, noise, folds, readout)
    assert used == 5 and -0.1 < r2_cv < 0.1
    assert r2_in > 0.08  # the in-sample R^2 of the same noise is ~ D / N
    assert alpha >= 1000


def test_noise_smooth_along_the_slices_gives_no_cross_validated_r2(readout):
    """Neighbouring slices look alike: embeddings and a feature that are independent but both
    smooth along z. A penalty chosen image by image (leave-one-out, neighbours on both sides)
    trusts the spurious fit and scores far below 0 on held-out blocks; chosen on inner blocked
    folds it stays near 0."""
    from scipy.ndimage import gaussian_filter1d
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    table = _slice_table(n_slices=360)
    X = gaussian_filter1d(rng.normal(size=(4, 360, 256)), 5, axis=1).reshape(len(table), 256)
    y = gaussian_filter1d(rng.normal(size=(4, 360)), 5, axis=1).reshape(len(table))
    folds = nodes.nested_folds(table, readout)
    r2_in, r2_cv, _, _, _ = nodes.linear_r2(X, y, folds, readout)
    assert r2_in > 0.9 and -0.1 < r2_cv < 0.1
    loo = np.full(len(y), np.nan)
    for fold in folds:
        model = make_pipeline(StandardScaler(), RidgeCV(alphas=readout.ridge_alphas))
        loo[fold.test] = model.fit(X[fold.train], y[fold.train]).predict(X[fold.test])
    assert nodes._r2(y[:, None], loo[:, None])[0] < -1


def test_cross_validated_r2_finds_a_planted_linear_signal_among_hundreds_of_dimensions(readout):
    rng = np.random.default_rng(4)
    table = _slice_table(n_slices=540)
    embeddings = rng.normal(size=(len(table), 256))
    folds = nodes.nested_folds(table, readout)
    signal = embeddings[:, :3] @ np.array([2.0, -1.0, 0.5]) + 0.3 * rng.normal(size=len(table))
    _, r2_cv, _, used, _ = nodes.linear_r2(embeddings, signal, folds, readout)
    assert used == 5 and r2_cv > 0.8


def test_a_dimension_silent_in_training_does_not_blow_up_held_out_predictions(readout):
    """NMF-like embeddings: a component almost constant on the training images but active on one
    held-out block is standardised to huge values there. Clipped to the training range (the
    default) the read-out stays sane; without clipping it extrapolates far below R^2 = -1."""
    rng = np.random.default_rng(6)
    table = _slice_table(n_slices=360)
    embeddings = rng.uniform(0, 1, size=(len(table), 64))
    y = embeddings[:, :2] @ np.array([1.0, -1.0]) + 0.1 * rng.normal(size=len(table))  # best R^2 ~0.94
    silent = rng.normal(size=(len(table), 8)) * 1e-9  # dead components...
    block = (table["cube_id"] == "main_STR").to_numpy() & (table["z"] < 30).to_numpy()
    silent[block] = rng.uniform(0.5, 1.0, size=(block.sum(), 8))  # ... except in one block
    X = np.hstack([embeddings, silent])
    folds = nodes.nested_folds(table, readout)
    _, r2_cv, _, _, _ = nodes.linear_r2(X, y, folds, readout)
    assert r2_cv > 0.8
    _, unclipped, _, _, _ = nodes.linear_r2(X, y, folds, readout.model_copy(update={"clip_held_out": False}))
    assert unclipped < -1


def test_r2_leaves_out_undefined_values_and_is_nan_when_undefined(readout):
    rng = np.random.default_rng(1)
    table = _slice_table(n_slices=120)
    embeddings = rng.normal(size=(len(table), 4))
    folds = _folds(table, readout, gap=1)
    y = embeddings @ np.arange(1.0, 5.0)
    y[::3] = np.nan  # e.g. mean_nn_distance of images with fewer than two cells
    r2_in, r2_cv, n, used, _ = nodes.linear_r2(embeddings, y, folds, readout)
    # out of fold a little below 1: held-out values beyond the training range are clipped
    assert n == np.isfinite(y).sum() and r2_in == pytest.approx(1.0) and 0.995 < r2_cv <= 1
    assert used == 5
    assert all(np.isnan(nodes.linear_r2(embeddings, np.full(len(table), 2.0), folds, readout)[:2]))  # constant
    assert all(np.isnan(nodes.linear_r2(embeddings, np.full(len(table), np.nan), folds, readout)[:2]))  # never defined
    # fewer images with a value than min_images: undefined
    fewer = readout.model_copy(update={"min_images": int(n) + 1})
    assert all(np.isnan(nodes.linear_r2(embeddings, y, folds, fewer)[:2]))


def test_outer_folds_without_inner_folds_are_skipped(readout):
    rng = np.random.default_rng(1)
    table = _slice_table(n_slices=60)
    table = table[table["cube_id"].isin(["main_CTX", "main_STR"])].reset_index(drop=True)
    embeddings = rng.normal(size=(len(table), 4))
    y = embeddings @ np.arange(1.0, 5.0)
    folds = _folds(table, readout, gap=1)  # four blocks: 4 outer folds with 3 blocks to nest
    assert len(folds) == 4 and all(len(f.inner) == 3 for f in folds)
    assert nodes.linear_r2(embeddings, y, folds, readout)[3] == 4
    # one block per cube: two outer folds, each with a single training block and no inner fold
    one_block_left = _folds(table, readout.model_copy(update={"block_slices": 60}), gap=1)
    assert len(one_block_left) == 2 and all(f.inner == () for f in one_block_left)
    r2_in, r2_cv, _, used, alpha = nodes.linear_r2(embeddings, y, one_block_left, readout)
    assert r2_in == pytest.approx(1.0) and np.isnan(r2_cv) and np.isnan(alpha) and used == 0


def test_features_fitted_together_get_the_numbers_of_separate_fits(readout):
    rng = np.random.default_rng(2)
    table = _slice_table(n_slices=180)
    embeddings = rng.normal(size=(len(table), 8))
    folds = _folds(table, readout, gap=2)
    Y = np.column_stack([embeddings @ rng.normal(size=8) * s + rng.normal(size=len(table)) for s in (0.1, 3.0, 1.0)])
    Y[:, 2] = 7.0  # a constant feature among others stays undefined, the others unaffected
    together = nodes.linear_r2(embeddings, Y, folds, readout)
    assert np.isnan(together[0][2]) and np.isnan(together[1][2])
    assert together[4][0] > together[4][1]  # the weak signal gets the stronger penalty
    for i in range(2):
        alone = nodes.linear_r2(embeddings, Y[:, i], folds, readout)
        assert alone[0] == pytest.approx(together[0][i]) and alone[1] == pytest.approx(together[1][i])
        assert alone[4] == pytest.approx(together[4][i])  # each feature gets its own penalty


def test_thread_limit_caps_blas_and_torch_and_restores():
    import torch
    from threadpoolctl import threadpool_info

    from mtneuro.training import thread_limit

    before, torch_before = [i["num_threads"] for i in threadpool_info()], torch.get_num_threads()
    with thread_limit(1):  # probing.threads = 1
        assert all(i["num_threads"] == 1 for i in threadpool_info())
        assert torch.get_num_threads() == 1
    assert [i["num_threads"] for i in threadpool_info()] == before
    assert torch.get_num_threads() == torch_before
    with thread_limit(None):
        assert [i["num_threads"] for i in threadpool_info()] == before


def test_probe_embeddings_gives_one_row_per_configured_feature(cubes, probing, with_values, split_index, encoder):
    table, images = nodes.build_probing_dataset(cubes, split_index(cubes), probing)
    embeddings = nodes.embed_images(images, encoder(), probing)
    assert embeddings.shape == (len(table), 16) and embeddings.dtype == np.float32
    rows = nodes.probe_embeddings(table, embeddings, probing)
    assert rows["feature"].tolist() == list(probing.features) == list(feat.feature_names())
    assert (rows["r2_in_sample"] <= 1 + 1e-9).all() and (rows["cv_folds"] == probing.readout.cv_folds).all()
    # the stand-in sees the labels' gray levels: vessel and axon fractions are linear in its inputs
    assert rows.set_index("feature").loc["vessel_fraction", "r2_cv"] > 0.8
    # only the features of probing.features, in their order
    two = with_values(probing, features=["mean_cell_area", "vessel_fraction"])
    assert nodes.probe_embeddings(table, embeddings, two)["feature"].tolist() == ["mean_cell_area", "vessel_fraction"]


def test_embed_images_rejects_what_is_not_an_encoder(probing):
    class Bad:
        metadata: ClassVar[dict] = {}

        def embed(self, images):
            return np.zeros((len(images) + 1, 3))

    images = np.zeros((5, 8, 8), dtype=np.uint8)
    with pytest.raises(nodes.ProbingError, match="FrozenEncoder"):
        nodes.embed_images(images, object(), probing)
    with pytest.raises(nodes.ProbingError, match="shape"):
        nodes.embed_images(images, Bad(), probing)


def test_embed_images_batches_give_the_same_embeddings(probing, with_values, encoder):
    images = np.random.default_rng(0).integers(0, 255, (37, 16, 16), dtype=np.uint8)
    whole = nodes.embed_images(images, encoder(), probing)
    batched = nodes.embed_images(images, encoder(), with_values(probing, embed_batch_size=5))
    np.testing.assert_array_equal(whole, batched)


def test_stand_in_encoder_implements_the_protocol(encoder):
    assert isinstance(encoder(), FrozenEncoder)
