"""benchmarks/probe_task1.py: the overrides it applies and the sections it carries to another machine."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from classification_helpers import make_cubes, make_split_index, tiny_params

from mtneuro.classification_methods import method_settings
from mtneuro.config import ConfigurationError
from mtneuro.pipelines.classification import nodes

PROJECT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def probe():
    spec = importlib.util.spec_from_file_location("probe_task1", PROJECT / "benchmarks" / "probe_task1.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_overrides_are_nested_yaml_values(probe):
    tree = probe._nested(["byol.epochs=40", "data.test_slice_step.roi_c2=1", "augmentation.crop_scale=[1, 1]"], "--set")
    assert tree == {
        "byol": {"epochs": 40},
        "data": {"test_slice_step": {"roi_c2": 1}},
        "augmentation": {"crop_scale": [1, 1]},
    }
    with pytest.raises(SystemExit, match="KEY=VALUE"):
        probe._nested(["byol.epochs"], "--set")


def test_overrides_reach_the_typed_parameters_and_are_checked(probe):
    params = probe.load_parameters(
        "tiny", {"byol": {"epochs": 3}, "method_overrides": {"byol": {"augmentation": {"brightness": 0}}}}, {}
    )
    settings = method_settings(params.classification, "byol")
    assert settings.epochs == 3
    assert settings.augmentation.brightness == 0
    assert method_settings(params.classification, "myow").augmentation.brightness > 0
    with pytest.raises(ConfigurationError, match="epochs"):
        probe.load_parameters("tiny", {"byol": {"epochs": -1}}, {})


def test_saved_sections_select_the_same_images(probe, tmp_path):
    cubes = make_cubes(size=16)
    data, _ = nodes.prepare_images(cubes, make_split_index(cubes), tiny_params())
    path = tmp_path / "sections.npz"
    probe.save_images(data, path, ["roi_c1", "roi_c2"], 2)
    loaded = probe.load_images(path)

    assert (loaded.size, loaded.raw_size) == (data.size, data.raw_size)
    assert set(loaded.index["config"]) == {"roi_c1", "roi_c2"}
    assert (loaded.index["z"] % 2 == 0).all()
    for config, splits, step in [("roi_c1", ["train", "val"], 4), ("roi_c1", ["test"], 2), ("roi_c2", ["test"], 2)]:
        want_x, want_y = nodes.select_images(data, config, splits, step)
        got_x, got_y = nodes.select_images(loaded, config, splits, step)
        np.testing.assert_array_equal(got_y, want_y)
        # uint8 on the way: within half a gray level of the prepared float images
        assert np.abs(got_x - want_x).max() <= 0.5 / 255 + 1e-6
    with pytest.raises(nodes.ClassificationError, match="roi_c3"):
        nodes.select_images(loaded, "roi_c3", ["train"], 1)
