"""3D segmentation models: MONAI networks on subvolumes of ``segmentation.train.depth`` slices.

U-Net, VNet and HighResNet from MONAI, fed ``(B, 1, D, H, W)`` subvolumes (8 slices in the
paper). MONAI's VNet halves every axis four times and has fixed widths (16..256 channels);
``base_channels`` other than 16 builds the same topology from MONAI's VNet blocks with all
widths scaled (:class:`~mtneuro.segmentation_models._scaled_vnet.ScaledVNet`, the "light" VNet), and the wrapper pads 8-slice inputs to
16 slices.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mtneuro.segmentation_models.registry import segmentation_model

if TYPE_CHECKING:  # torch is imported by the builders: the registry is read to check parameters
    from torch import nn


@segmentation_model("unet3d", label="3D U-Net", dims="3D")
def build_unet3d(num_classes: int, in_channels: int = 1, **kwargs: Any) -> nn.Module:
    """``monai.networks.nets.UNet`` (kwargs ``channels``, ``strides``, ``num_res_units``, ...),
    inputs padded to the product of the strides on each axis."""
    from monai.networks.nets import UNet

    from mtneuro.segmentation_models.padding import PadToMultiple

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


@segmentation_model("vnet", label="VNetLight", dims="3D")
def build_vnet(num_classes: int, in_channels: int = 1, **kwargs: Any) -> nn.Module:
    """``monai.networks.nets.VNet`` when ``base_channels`` is 16, else :class:`ScaledVNet`;
    inputs padded to multiples of 16 on every axis."""
    from monai.networks.nets import VNet

    from mtneuro.segmentation_models._scaled_vnet import ScaledVNet
    from mtneuro.segmentation_models.padding import PadToMultiple

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

    from mtneuro.segmentation_models.padding import PadToMultiple

    kwargs = dict(kwargs)
    if "layer_params" in kwargs:
        kwargs["layer_params"] = tuple(
            {k: tuple(v) if isinstance(v, list) else v for k, v in layer.items()} for layer in kwargs["layer_params"]
        )
    net = HighResNet(spatial_dims=3, in_channels=in_channels, out_channels=num_classes, **kwargs)
    return PadToMultiple(net, (1, 1, 1))
