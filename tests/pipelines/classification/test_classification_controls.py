"""The two control rows of Tables 1 and 3: nothing is trained, and both go through the same
nodes (read-out, evaluation, frozen-encoder dataset) as every other Task 1 method."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from classification_helpers import HARDWARE, tiny_params
from kedro.io.core import Version

from mtneuro import models
from mtneuro.classification_methods.intensity_baseline import IntensitySettings, gray_level_statistics
from mtneuro.datasets.frozen_encoder import FrozenEncoderDataset
from mtneuro.pipelines.classification import nodes


def test_gray_level_statistics_are_mean_std_and_percentiles():
    rng = np.random.default_rng(0)
    flat = rng.random((5, 400))
    stats = gray_level_statistics(flat, [10, 90])
    assert stats.shape == (5, 4)
    np.testing.assert_allclose(stats[:, 0], flat.mean(axis=1))
    np.testing.assert_allclose(stats[:, 1], flat.std(axis=1))
    np.testing.assert_allclose(stats[:, 2], np.percentile(flat, 10, axis=1))
    np.testing.assert_allclose(stats[:, 3], np.percentile(flat, 90, axis=1))


def test_intensity_settings_insist_on_one_component_per_statistic():
    with pytest.raises(ValueError, match=r"n_components must be 2 \+ len\(percentiles\) = 4"):
        IntensitySettings(input_size=16, n_components=16, percentiles=[10, 90])


def test_intensity_baseline_runs_as_a_task1_method_and_ignores_the_seed(images, tmp_path: Path):
    params = tiny_params()
    results = []
    for seed in (0, 1):
        encoder, history = nodes.fit_decomposition(
            images, params, HARDWARE, method="intensity_baseline", config="roi_c1", seed=seed
        )
        readout = nodes.fit_linear_readout(encoder, images, params, HARDWARE, config="roi_c1", seed=seed)
        rows, _ = nodes.evaluate_run(
            encoder, readout, history, images, params, HARDWARE, method="intensity_baseline", config="roi_c1", seed=seed
        )
        results.append([r["accuracy"] for r in rows])
    assert results[0] == results[1]  # deterministic: the same accuracy for every seed
    probe = (np.random.default_rng(2).random((3, 16, 16)) * 255).astype(np.uint8)
    embedding = encoder.embed(probe)
    assert embedding.shape == (3, 4)
    np.testing.assert_allclose(embedding[:, 0], probe.reshape(3, -1).mean(axis=1) / 255, rtol=1e-5)
    ds = FrozenEncoderDataset(filepath=str(tmp_path / "intensity"), version=Version(None, None))
    ds.save(encoder)
    np.testing.assert_allclose(ds.load().embed(probe), embedding, rtol=1e-6)


def test_random_encoder_is_the_untrained_network_of_its_seed(images, tmp_path: Path):
    params = tiny_params()
    encoder, history = nodes.train_self_supervised(
        images, params, HARDWARE, method="random_encoder", config="roi_c1", seed=3
    )
    assert history["steps"] == 0 and history["epochs"] == []
    torch.manual_seed(3)
    fresh = models.build_task1_encoder(encoder.metadata["architecture"])
    for (name, a), b in zip(encoder.network.state_dict().items(), fresh.state_dict().values(), strict=True):
        assert torch.equal(a, b), name  # the initialisation, untouched (batch-norm statistics too)
    again, _ = nodes.train_self_supervised(images, params, HARDWARE, method="random_encoder", config="roi_c1", seed=3)
    probe = (np.random.default_rng(2).random((4, 16, 16)) * 255).astype(np.uint8)
    np.testing.assert_array_equal(encoder.embed(probe), again.embed(probe))
    readout = nodes.fit_linear_readout(encoder, images, params, HARDWARE, config="roi_c1", seed=3)
    rows, _ = nodes.evaluate_run(
        encoder, readout, history, images, params, HARDWARE, method="random_encoder", config="roi_c1", seed=3
    )
    assert [r["config"] for r in rows] == ["ROI-C1", "ROI-C2"] and all(0 <= r["accuracy"] <= 1 for r in rows)
    ds = FrozenEncoderDataset(filepath=str(tmp_path / "random"), version=Version(None, None))
    ds.save(encoder)
    np.testing.assert_allclose(ds.load().embed(probe), encoder.embed(probe), rtol=1e-5, atol=1e-6)
