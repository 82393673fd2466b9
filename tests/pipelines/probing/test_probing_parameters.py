"""The typed ``probing`` block: every profile parses, bad values name their full key."""

from __future__ import annotations

from pathlib import Path

import pytest

from mtneuro import features as feat
from mtneuro.config import ConfigurationError, load_parameters
from mtneuro.config.probing import ProbingParameters
from mtneuro.plugin_parameters import load_checked_parameters


@pytest.mark.parametrize("env", ["local", "tiny", "paper"])
def test_profiles_parse_into_the_typed_block(project_path: Path, env: str) -> None:
    probing = load_parameters(project_path / "conf", env).probing
    assert isinstance(probing, ProbingParameters)
    assert set(probing.features) <= set(feat.feature_names())


def test_profiles_keep_their_values(base_parameters, tiny_parameters) -> None:
    assert tiny_parameters.probing.images.slice_step == 8 != base_parameters.probing.images.slice_step
    assert tiny_parameters.probing.readout.min_images == 5 and base_parameters.probing.readout.min_images == 10
    # keys tiny does not set keep the base value
    assert tiny_parameters.probing.readout.cv_folds == base_parameters.probing.readout.cv_folds == 5
    assert base_parameters.probing.embed_batch_size == 256 and base_parameters.probing.umap.n_epochs == 200
    readout = base_parameters.probing.readout
    assert readout.inner_folds == 4 and readout.clip_held_out is True
    assert readout.ridge_alphas == [10.0**k for k in range(-2, 8)]  # log-spaced


def test_paper_profile_reads_out_quadrants(project_path: Path) -> None:
    paper = load_parameters(project_path / "conf", "paper")
    assert paper.probing.images.tile_size == 128 and paper.ingestion.cube_size_yx == 256


def _error(project_path: Path, probing: dict) -> str:
    """The error of the checks the pipelines are built with (plugin names included)."""
    with pytest.raises(ConfigurationError) as error:
        load_checked_parameters(project_path / "conf", "tiny", runtime_params={"probing": probing})
    return str(error.value)


def test_unknown_feature_lists_the_registered_ones(project_path: Path) -> None:
    message = _error(project_path, {"features": ["vessel_fraction", "cell_cnt"]})
    assert "probing.features" in message and "'cell_cnt'" in message
    for name in feat.feature_names():
        assert name in message


def test_cv_folds_below_two(project_path: Path) -> None:
    message = _error(project_path, {"readout": {"cv_folds": 1}})
    assert "probing.readout.cv_folds" in message and "greater than or equal to 2" in message


def test_misspelt_key(project_path: Path) -> None:
    message = _error(project_path, {"readout": {"cv_fold": 3}})
    assert "probing.readout.cv_fold: unknown key" in message and "cv_folds" in message


@pytest.mark.parametrize(
    ("probing", "key"),
    [
        ({"images": {"tile_size": 0}}, "probing.images.tile_size"),
        ({"images": {"slice_step": 0}}, "probing.images.slice_step"),
        ({"cell_connectivity": 6}, "probing.cell_connectivity"),
        ({"features": []}, "probing.features"),
        ({"features": ["axon_fraction", "axon_fraction"]}, "probing.features"),
        ({"encoders": {"train_configs": ["roi_c2"]}}, "probing.encoders.train_configs"),
        ({"encoders": {"methods": ["simclr"]}}, "probing.encoders.methods"),
        ({"umap": {"encoder": {"method": "byol", "train_config": "roi_c1", "seed": -1}}}, "probing.umap.encoder.seed"),
        ({"umap": {"n_neighbors": 1}}, "probing.umap.n_neighbors"),
        ({"threads": 0}, "probing.threads"),
        ({"readout": {"ridge_alphas": []}}, "probing.readout.ridge_alphas"),
        ({"readout": {"ridge_alphas": [1.0, 0.1]}}, "probing.readout.ridge_alphas"),
        ({"readout": {"ridge_alphas": [0.0, 1.0]}}, "probing.readout.ridge_alphas.0"),
        ({"readout": {"inner_folds": 1}}, "probing.readout.inner_folds"),
        ({"readout": {"clip_held_out": "sometimes"}}, "probing.readout.clip_held_out"),
    ],
)
def test_bad_values_name_their_key(project_path: Path, probing: dict, key: str) -> None:
    assert f"  - {key}" in _error(project_path, probing)


def test_null_tile_size_and_threads_are_allowed(project_path: Path) -> None:
    parameters = load_parameters(project_path / "conf", "tiny", runtime_params={"probing": {"threads": None}})
    assert parameters.probing.threads is None and parameters.probing.images.tile_size is None
