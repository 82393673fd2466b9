"""2D segmentation models: segmentation_models_pytorch networks on single slices.

U-Net, MA-Net, FPN, U-Net++, PAN and PSPNet, each with the shared encoder of
``segmentation.encoder`` (an smp encoder name; ``weights: null`` is a random initialisation and
downloads nothing). Factory kwargs (``segmentation.model_settings.<model>.kwargs``) go to the smp
class (e.g. ``encoder_depth``, ``decoder_channels``).
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from mtneuro.segmentation_models.registry import SegmentationModel, register

if TYPE_CHECKING:  # torch is imported by the builders: the registry is read to check parameters
    from torch import nn


def build_smp_model(
    smp_class: str,
    num_classes: int,
    encoder_name: str = "resnet18",
    encoder_weights: str | None = None,
    in_channels: int = 1,
    min_stride_multiple: int = 1,
    **kwargs: Any,
) -> nn.Module:
    """The segmentation_models_pytorch network ``smp_class`` wrapped in :class:`PadToMultiple`.

    Inputs are padded to a multiple of the encoder's output stride and to at least
    ``min_stride_multiple`` strides (PAN's feature pyramid attention pools its deepest feature
    map three more times: 8).
    """
    import segmentation_models_pytorch as smp

    from mtneuro.segmentation_models.padding import PadToMultiple

    for key in ("decoder_channels", "upsampling_size"):
        if isinstance(kwargs.get(key), list):
            kwargs[key] = tuple(kwargs[key])
    net = smp.create_model(
        smp_class,
        encoder_name=encoder_name,
        encoder_weights=encoder_weights,
        in_channels=in_channels,
        classes=num_classes,
        **kwargs,
    )
    _drop_unused_encoder_stages(net.encoder, int(kwargs.get("encoder_depth", 5)))
    stride = int(net.encoder.output_stride)
    minimum = int(min_stride_multiple) * stride
    return PadToMultiple(net, (stride, stride), (minimum, minimum))


def _drop_unused_encoder_stages(encoder: nn.Module, depth: int) -> None:
    """smp keeps every encoder stage even when ``encoder_depth`` < 5 never runs the deeper ones;
    replace those (where they are direct children, e.g. ResNet's ``layer3``/``layer4``) by
    ``nn.Identity`` so that they cost no optimizer time and no checkpoint space."""
    from torch import nn

    stages = encoder.get_stages() if hasattr(encoder, "get_stages") else {}  # type: ignore[operator]  # smp method
    unused = [m for stride, modules in stages.items() if int(stride) > 2**depth for m in modules]
    for name, child in list(encoder.named_children()):
        if any(child is m for m in unused):
            setattr(encoder, name, nn.Identity())


#: name, report label (the paper's Table 2), smp class, minimum input size in encoder strides.
_SMP_MODELS: tuple[tuple[str, str, str, int], ...] = (
    ("unet", "2D U-Net", "Unet", 1),
    ("manet", "MA-Net", "MAnet", 1),
    ("fpn", "FPN", "FPN", 1),
    ("unetplusplus", "U-Net++", "UnetPlusPlus", 1),
    ("pan", "PAN", "PAN", 8),
    ("pspnet", "PSPNet", "PSPNet", 1),
)

for _name, _label, _smp_class, _minimum in _SMP_MODELS:
    register(
        SegmentationModel(
            _name, _label, "2D", partial(build_smp_model, _smp_class, min_stride_multiple=_minimum), takes_encoder=True
        )
    )
