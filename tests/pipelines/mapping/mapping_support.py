"""Support of the mapping tests: small untrained models from the project's factories (fixed
seeds) and the mapping parameters of a profile."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import OmegaConf

from mtneuro import models
from mtneuro.config.mapping import MappingParameters
from mtneuro.config.volume import VolumeParameters
from mtneuro.segmentation_models import build_segmentation_model

PROJECT = Path(__file__).resolve().parents[3]


def mapping_parameters(env: str = "tiny", overrides: dict[str, Any] | None = None) -> MappingParameters:
    """``mapping`` of a profile: from the project's parameters once they hold the block, else from
    ``parameters_mapping.yml`` (or its staged ``.yml.pending``) of conf/base merged with the profile's."""
    raw: dict[str, Any] | None = None
    try:
        from mtneuro.config import load_parameters

        block = getattr(load_parameters(PROJECT / "conf", env), "mapping", None)
        raw = block.model_dump(mode="json") if block is not None else None
    except Exception:
        raw = None
    if raw is None:
        merged = OmegaConf.create({})
        for folder in ("base", env):
            for name in ("parameters_mapping.yml", "parameters_mapping.yml.pending"):
                path = PROJECT / "conf" / folder / name
                if path.exists():
                    merged = OmegaConf.merge(merged, OmegaConf.load(path))
                    break
        raw = OmegaConf.to_container(merged, resolve=True)["mapping"]  # type: ignore[index]
    if overrides:
        raw = OmegaConf.to_container(OmegaConf.merge(OmegaConf.create(raw), OmegaConf.create(overrides)))
    return MappingParameters.model_validate(raw)


def make_segmentation_model(seed: int = 0) -> torch.nn.Module:
    """The base profile's 2D U-Net (resnet18 cut to 4 stages, 64..16 decoder channels), random init."""
    torch.manual_seed(seed)
    net = build_segmentation_model(
        "unet", 4, encoder_name="resnet18", encoder_weights=None, encoder_depth=4, decoder_channels=[64, 32, 16, 16]
    ).eval()
    net.metadata = {
        "model": "unet",
        "dims": 2,
        "mean": 0.45,
        "std": 0.12,
        "seed": seed,
        "classes": ["background", "vessel", "cell", "axon"],
        "setting": "4-class",
    }
    # An untrained network predicts nearly one class everywhere; centre each class's logit on a
    # phantom slice so that all four classes occur (the seam test compares non-trivial maps).
    from mtneuro.volumes import Window, open_volume

    image = open_volume("phantom://prasad2020/image", seed=0).read(Window(300, 301, 640, 896, 1024, 1280))
    x = torch.from_numpy((image.astype(np.float32) / 255.0 - 0.45) / 0.12)[:, None]
    head = net.model.segmentation_head[0]
    with torch.no_grad():
        logits = net(x)
        head.bias -= logits.median(dim=-1).values.median(dim=-1).values[0]
    return net


def make_region_model(seed: int = 0, size: int = 32) -> tuple[Any, Any]:
    """A Task 1 frozen ResNet-18 (width 8, 32-pixel input) and a linear read-out, random init."""
    torch.manual_seed(seed)
    arch = {"name": "resnet18", "in_channels": 1, "representation_dim": 16, "width": 8, "stem": "imagenet"}
    meta = {
        "architecture": arch,
        "input": {"size": size, "normalisation": {"mode": "training_set", "mean": 0.45, "std": 0.12}},
    }
    encoder = models.ResNetFrozenEncoder(models.build_task1_encoder(arch), meta, device="cpu")
    rng = np.random.default_rng(seed)
    readout = models.LinearReadout(rng.normal(size=(4, 16)).astype(np.float32), np.zeros(4, np.float32), [0, 1, 2, 3])
    return encoder, readout


def _phantom_volume() -> VolumeParameters:
    """conf/base's ``volume`` (the phantom, seed 0), each region counted from one roi_labels value."""
    from mtneuro.config import load_parameters

    volume = load_parameters(PROJECT / "conf", "base").volume.model_dump(mode="json")
    assert volume["source"] == "phantom" and volume["options"]["phantom"] == {"seed": 0}
    regions = {"CTX": [1], "STR": [2], "VP": [4], "ZI": [5]}
    return VolumeParameters.model_validate({**volume, "region_label_values": regions})


PHANTOM_VOLUME = _phantom_volume()
