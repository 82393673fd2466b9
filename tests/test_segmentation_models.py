"""Task 2 model factories, the model dataset and sliding-window inference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from kedro.io.core import Version

from mtneuro.datasets.torch_model import TorchModelDataset
from mtneuro.models import (
    MONAI_ARCHITECTURES,
    SMP_ARCHITECTURES,
    PadToMultiple,
    build_segmentation_model,
    segmentation_model_dims,
)
from mtneuro.pipelines.segmentation.engine import predict_block, sliding_window_logits
from mtneuro.pipelines.segmentation.nodes import SETTINGS, run_settings

CONF = Path(__file__).resolve().parents[1] / "conf"
BASE = yaml.safe_load((CONF / "base" / "parameters_segmentation.yml").read_text())["segmentation"]


def _net(model: str, num_classes: int) -> torch.nn.Module:
    run = run_settings(BASE, model)  # the base profile's factory arguments
    torch.manual_seed(0)
    return build_segmentation_model(run["architecture"], num_classes, **run["kwargs"]).eval()


def test_every_paper_model_is_in_the_base_grid():
    assert set(BASE["models"]) == set(SMP_ARCHITECTURES) | set(MONAI_ARCHITECTURES)
    assert {segmentation_model_dims(m) for m in SMP_ARCHITECTURES} == {2}
    assert {segmentation_model_dims(m) for m in MONAI_ARCHITECTURES} == {3}


@pytest.mark.parametrize("model", sorted(SMP_ARCHITECTURES) + list(MONAI_ARCHITECTURES))
def test_factory_models_map_inputs_to_class_logits_in_both_settings(model):
    dims = segmentation_model_dims(model)
    # sizes that are no multiple of any stride, and 8-slice subvolumes for 3D
    shape = (2, 1, 40, 36) if dims == 2 else (2, 1, 8, 24, 20)
    x = torch.randn(shape)
    for setting in SETTINGS.values():
        net = _net(model, setting.num_classes)
        with torch.no_grad():
            y = net(x)
        assert tuple(y.shape) == (2, setting.num_classes, *shape[2:])
        assert torch.isfinite(y).all()
        assert net.factory_spec["kwargs"]["num_classes"] == setting.num_classes


def test_smp_defaults_and_unknown_names():
    net = build_segmentation_model("unet", 4, encoder_name="resnet18", encoder_weights=None)
    with torch.no_grad():
        assert tuple(net(torch.randn(1, 1, 50, 70)).shape) == (1, 4, 50, 70)
    with pytest.raises(ValueError, match="Unknown segmentation model"):
        build_segmentation_model("segformer3d", 3)


def test_pad_to_multiple_is_identity_when_no_padding_is_needed():
    inner = torch.nn.Conv2d(1, 2, 3, padding=1)
    wrapped = PadToMultiple(inner, (8, 8))
    x = torch.randn(1, 1, 16, 24)
    torch.testing.assert_close(wrapped(x), inner(x))
    assert tuple(wrapped(torch.randn(1, 1, 13, 9)).shape) == (1, 2, 13, 9)


def test_torch_model_dataset_round_trip(tmp_path):
    net = _net("unet3d", 3)
    net.metadata = {"mean": 0.5, "classes": ["background", "vessel", "cell"]}
    dataset = TorchModelDataset(filepath=str(tmp_path / "model.pt"), version=Version(None, None))
    dataset.save(net)
    loaded = TorchModelDataset(filepath=str(tmp_path / "model.pt"), version=Version(None, None)).load()
    x = torch.randn(1, 1, 8, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), net(x))
    assert loaded.metadata == net.metadata
    saved = list(tmp_path.glob("model.pt/*/model.*"))
    assert sorted(p.suffix for p in saved) == [".json", ".pt"]


def test_sliding_window_on_a_cube_that_fits_one_window_equals_a_direct_pass():
    for model, shape, roi in (("unet3d", (1, 1, 8, 24, 24), (8, 32, 32)), ("unet", (3, 1, 32, 32), (32, 32))):
        net = _net(model, 3)
        x = torch.randn(shape)
        with torch.no_grad():
            direct = net(x)
            windowed = sliding_window_logits(net, x, roi, sw_batch_size=2, overlap=0.25, mode="gaussian")
        torch.testing.assert_close(windowed, direct, rtol=1e-4, atol=1e-5)


def test_sliding_window_covers_every_voxel_of_a_larger_cube():
    shape = (1, 1, 21, 50, 45)  # deeper and wider than one (8, 32, 32) window, no multiple of it
    calls = []

    def ones(window: torch.Tensor) -> torch.Tensor:
        calls.append(tuple(window.shape))
        return torch.ones(window.shape[0], 3, *window.shape[2:])

    out = sliding_window_logits(ones, torch.zeros(shape), (8, 32, 32), sw_batch_size=4, overlap=0.0)
    assert tuple(out.shape) == (1, 3, 21, 50, 45)
    torch.testing.assert_close(out, torch.ones_like(out))  # a voxel no window covered would be 0
    assert all(c[2:] == (8, 32, 32) for c in calls)

    net = _net("unet3d", 4)
    image = np.random.default_rng(0).integers(0, 255, (21, 50, 45), dtype=np.uint8)
    pred = predict_block(net, image, dims=3, mean=0.5, std=0.2, roi_yx=32, depth=8)
    assert pred.shape == image.shape and pred.dtype == np.uint8 and pred.max() < 4
    pred2d = predict_block(_net("pspnet", 3), image[:5], dims=2, mean=0.5, std=0.2, roi_yx=32, depth=8)
    assert pred2d.shape == (5, 50, 45) and pred2d.max() < 3
