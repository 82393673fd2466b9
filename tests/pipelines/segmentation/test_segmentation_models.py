"""Task 2 model registry and factory, the model dataset and sliding-window inference."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from kedro.io.core import Version

from mtneuro.datasets.torch_model import TorchModelDataset
from mtneuro.pipelines.segmentation.engine import predict_block, sliding_window_logits
from mtneuro.pipelines.segmentation.nodes import SETTINGS
from mtneuro.segmentation_models import (
    SEGMENTATION_FACTORY,
    PadToMultiple,
    UnknownModelError,
    build_from_factory_spec,
    build_segmentation_model,
    get_model,
    model_names,
    run_settings,
)

PAPER_MODELS = {
    "2D": ["unet", "manet", "fpn", "unetplusplus", "pan", "pspnet"],
    "3D": ["unet3d", "vnet", "highresnet"],
}


@pytest.fixture(scope="module")
def base_segmentation(project_path):
    from mtneuro.config import load_parameters

    return load_parameters(project_path / "conf", "local").segmentation


def _net(segmentation, model: str, num_classes: int) -> torch.nn.Module:
    run = run_settings(segmentation, model)  # the profile's factory arguments
    torch.manual_seed(0)
    return build_segmentation_model(model, num_classes, **run.kwargs).eval()


def test_registry_holds_the_paper_models_with_labels_and_dims(base_segmentation):
    assert list(model_names()) == PAPER_MODELS["2D"] + PAPER_MODELS["3D"]
    assert base_segmentation.models == list(model_names())  # the base grid runs every model
    for dims, names in PAPER_MODELS.items():
        assert {get_model(m).dims for m in names} == {dims}
        assert {get_model(m).spatial_dims for m in names} == {int(dims[0])}
    labels = {m: get_model(m).label for m in model_names()}
    assert labels == {
        "unet": "2D U-Net",
        "manet": "MA-Net",
        "fpn": "FPN",
        "unetplusplus": "U-Net++",
        "pan": "PAN",
        "pspnet": "PSPNet",
        "unet3d": "3D U-Net",
        "vnet": "VNetLight",
        "highresnet": "HighResNet",
    }
    assert {m for m in model_names() if get_model(m).takes_encoder} == set(PAPER_MODELS["2D"])


@pytest.mark.parametrize("model", PAPER_MODELS["2D"] + PAPER_MODELS["3D"])
def test_factory_models_map_inputs_to_class_logits_in_both_settings(base_segmentation, model):
    dims = get_model(model).spatial_dims
    # sizes that are no multiple of any stride, and 8-slice subvolumes for 3D
    shape = (2, 1, 40, 36) if dims == 2 else (2, 1, 8, 24, 20)
    x = torch.randn(shape)
    for setting in SETTINGS.values():
        net = _net(base_segmentation, model, setting.num_classes)
        with torch.no_grad():
            y = net(x)
        assert tuple(y.shape) == (2, setting.num_classes, *shape[2:])
        assert torch.isfinite(y).all()
        assert net.spatial_dims == dims
        assert net.factory_spec["factory"] == SEGMENTATION_FACTORY
        assert net.factory_spec["kwargs"]["name"] == model
        assert net.factory_spec["kwargs"]["num_classes"] == setting.num_classes
        json.dumps(net.factory_spec)  # what TorchModelDataset writes


def test_same_seed_same_initial_weights(base_segmentation):
    first, second = _net(base_segmentation, "vnet", 3), _net(base_segmentation, "vnet", 3)
    for (name, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items(), strict=True):
        assert torch.equal(a, b), name


def test_smp_defaults_and_unknown_names():
    net = build_segmentation_model("unet", 4, encoder_name="resnet18", encoder_weights=None)
    with torch.no_grad():
        assert tuple(net(torch.randn(1, 1, 50, 70)).shape) == (1, 4, 50, 70)
    with pytest.raises(UnknownModelError, match="Unknown segmentation model 'segformer3d'; registered models: unet, "):
        build_segmentation_model("segformer3d", 3)


def test_pad_to_multiple_is_identity_when_no_padding_is_needed():
    inner = torch.nn.Conv2d(1, 2, 3, padding=1)
    wrapped = PadToMultiple(inner, (8, 8))
    x = torch.randn(1, 1, 16, 24)
    torch.testing.assert_close(wrapped(x), inner(x))
    assert tuple(wrapped(torch.randn(1, 1, 13, 9)).shape) == (1, 2, 13, 9)


def test_torch_model_dataset_round_trip(base_segmentation, tmp_path):
    net = _net(base_segmentation, "unet3d", 3)
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


def test_a_factory_spec_read_back_from_json_rebuilds_the_network(base_segmentation):
    """What the model's JSON sidecar holds (lists for tuples) builds the same network."""
    for model in ("pspnet", "highresnet"):
        net = _net(base_segmentation, model, 4)
        rebuilt = build_from_factory_spec(json.loads(json.dumps(net.factory_spec)))
        rebuilt.load_state_dict(net.state_dict())
        x = torch.randn((1, 1, 24, 24) if model == "pspnet" else (1, 1, 8, 12, 12))
        with torch.no_grad():
            torch.testing.assert_close(rebuilt.eval()(x), net(x))
        assert rebuilt.factory_spec == net.factory_spec


def test_sliding_window_on_a_cube_that_fits_one_window_equals_a_direct_pass(base_segmentation):
    for model, shape, roi in (("unet3d", (1, 1, 8, 24, 24), (8, 32, 32)), ("unet", (3, 1, 32, 32), (32, 32))):
        net = _net(base_segmentation, model, 3)
        x = torch.randn(shape)
        with torch.no_grad():
            direct = net(x)
            windowed = sliding_window_logits(net, x, roi, sw_batch_size=2, overlap=0.25, mode="gaussian")
        torch.testing.assert_close(windowed, direct, rtol=1e-4, atol=1e-5)


def test_sliding_window_covers_every_voxel_of_a_larger_cube(base_segmentation):
    shape = (1, 1, 21, 50, 45)  # deeper and wider than one (8, 32, 32) window, no multiple of it
    calls = []

    def ones(window: torch.Tensor) -> torch.Tensor:
        calls.append(tuple(window.shape))
        return torch.ones(window.shape[0], 3, *window.shape[2:])

    out = sliding_window_logits(ones, torch.zeros(shape), (8, 32, 32), sw_batch_size=4, overlap=0.0)
    assert tuple(out.shape) == (1, 3, 21, 50, 45)
    torch.testing.assert_close(out, torch.ones_like(out))  # a voxel no window covered would be 0
    assert all(c[2:] == (8, 32, 32) for c in calls)

    net = _net(base_segmentation, "unet3d", 4)
    image = np.random.default_rng(0).integers(0, 255, (21, 50, 45), dtype=np.uint8)
    pred = predict_block(net, image, dims=3, mean=0.5, std=0.2, roi_yx=32, depth=8)
    assert pred.shape == image.shape and pred.dtype == np.uint8 and pred.max() < 4
    pred2d = predict_block(
        _net(base_segmentation, "pspnet", 3), image[:5], dims=2, mean=0.5, std=0.2, roi_yx=32, depth=8
    )
    assert pred2d.shape == (5, 50, 45) and pred2d.max() < 3
