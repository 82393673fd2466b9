"""3D segmentation models: MONAI networks on subvolumes of ``segmentation.train.depth`` slices.

U-Net, VNet and HighResNet from MONAI, fed ``(B, 1, D, H, W)`` subvolumes (8 slices in the
paper). MONAI's VNet halves every axis four times and has fixed widths (16..256 channels);
``base_channels`` other than 16 builds the same topology from MONAI's VNet blocks with all
widths scaled (:class:`ScaledVNet`, the "light" VNet), and the wrapper pads 8-slice inputs to
16 slices.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import torch
from torch import nn

from mtneuro.segmentation_models.padding import PadToMultiple
from mtneuro.segmentation_models.registry import segmentation_model


@segmentation_model("unet3d", label="3D U-Net", dims="3D")
def build_unet3d(num_classes: int, in_channels: int = 1, **kwargs: Any) -> nn.Module:
    """``monai.networks.nets.UNet`` (kwargs ``channels``, ``strides``, ``num_res_units``, ...),
    inputs padded to the product of the strides on each axis."""
    from monai.networks.nets import UNet

    kwargs = dict(kwargs)
    channels = tuple(int(c) for c in kwargs.pop("channels", (16, 32, 64, 128, 256)))
    strides = [
        tuple(s) if isinstance(s, (list, tuple)) else int(s) for s in kwargs.pop("strides", (2,) * (len(channels) - 1))
    ]
    # MONAI annotates ``strides`` as ``Sequence[int]`` but accepts a per-axis tuple for each level.
    net = UNet(3, in_channels, num_classes, channels=channels, strides=strides, **kwargs)  # type: ignore[arg-type]
    multiple = [1, 1, 1]
    for s in strides:
        for axis, f in enumerate(s if isinstance(s, tuple) else (s, s, s)):
            multiple[axis] *= int(f)
    return PadToMultiple(net, multiple)


class ScaledVNet(nn.Module):
    """MONAI's VNet topology (4 down / 4 up transitions, 5x5x5 convolutions) with channel
    widths ``base, 2 base, ..., 16 base`` instead of ``16, ..., 256``."""

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 1,
        base_channels: int = 8,
        act: Any = ("elu", {"inplace": True}),
        dropout_prob_down: float | None = 0.5,
        dropout_prob_up: Sequence[float | None] = (0.5, 0.5),
        bias: bool = False,
    ) -> None:
        super().__init__()
        from monai.networks.nets.vnet import DownTransition, InputTransition, OutputTransition, UpTransition

        b = int(base_channels)
        act = tuple(act) if isinstance(act, list) else act
        up = cast("tuple[float | None, float]", tuple(dropout_prob_up))
        self.in_tr = InputTransition(3, in_channels, b, act, bias=bias)
        self.down_tr32 = DownTransition(3, b, 1, act, bias=bias)
        self.down_tr64 = DownTransition(3, 2 * b, 2, act, bias=bias)
        self.down_tr128 = DownTransition(3, 4 * b, 3, act, dropout_prob=dropout_prob_down, bias=bias)
        self.down_tr256 = DownTransition(3, 8 * b, 2, act, dropout_prob=dropout_prob_down, bias=bias)
        self.up_tr256 = UpTransition(3, 16 * b, 16 * b, 2, act, dropout_prob=up)
        self.up_tr128 = UpTransition(3, 16 * b, 8 * b, 2, act, dropout_prob=up)
        self.up_tr64 = UpTransition(3, 8 * b, 4 * b, 1, act)
        self.up_tr32 = UpTransition(3, 4 * b, 2 * b, 1, act)
        self.out_tr = OutputTransition(3, 2 * b, out_channels, act, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out16 = self.in_tr(x)
        out32 = self.down_tr32(out16)
        out64 = self.down_tr64(out32)
        out128 = self.down_tr128(out64)
        out256 = self.down_tr256(out128)
        x = self.up_tr256(out256, out128)
        x = self.up_tr128(x, out64)
        x = self.up_tr64(x, out32)
        x = self.up_tr32(x, out16)
        return self.out_tr(x)


@segmentation_model("vnet", label="VNetLight", dims="3D")
def build_vnet(num_classes: int, in_channels: int = 1, **kwargs: Any) -> nn.Module:
    """``monai.networks.nets.VNet`` when ``base_channels`` is 16, else :class:`ScaledVNet`;
    inputs padded to multiples of 16 on every axis."""
    from monai.networks.nets import VNet

    kwargs = dict(kwargs)
    base = int(kwargs.pop("base_channels", 16))
    if "dropout_prob_up" in kwargs:
        kwargs["dropout_prob_up"] = tuple(kwargs["dropout_prob_up"])
    if isinstance(kwargs.get("act"), list):
        kwargs["act"] = tuple(kwargs["act"])
    net: nn.Module
    if base == 16:
        net = VNet(spatial_dims=3, in_channels=in_channels, out_channels=num_classes, **kwargs)
    else:
        net = ScaledVNet(in_channels, num_classes, base_channels=base, **kwargs)
    return PadToMultiple(net, (16, 16, 16))


@segmentation_model("highresnet", label="HighResNet", dims="3D")
def build_highresnet(num_classes: int, in_channels: int = 1, **kwargs: Any) -> nn.Module:
    """``monai.networks.nets.HighResNet`` (kwargs ``layer_params``, ...); no padding needed."""
    from monai.networks.nets import HighResNet

    kwargs = dict(kwargs)
    if "layer_params" in kwargs:
        kwargs["layer_params"] = tuple(
            {k: tuple(v) if isinstance(v, list) else v for k, v in layer.items()} for layer in kwargs["layer_params"]
        )
    net = HighResNet(spatial_dims=3, in_channels=in_channels, out_channels=num_classes, **kwargs)
    return PadToMultiple(net, (1, 1, 1))
