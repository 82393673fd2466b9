"""Model factories: the one place that builds networks for every task.

Sections: Task 1 encoders (ResNet-18, frozen-encoder protocol), Task 2 2D segmentation models
(segmentation_models_pytorch) and 3D segmentation models (MONAI). Tasks call these factories;
they never build networks themselves.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class FrozenEncoder(Protocol):
    """A trained, frozen image encoder as Task 3 reads it from the catalog.

    ``embed`` takes raw uint8 images ``(N, H, W)`` as ingestion stores them and does its own
    preprocessing (resizing, scaling/normalisation recorded in ``metadata``), returning
    float32 embeddings ``(N, D)``.
    """

    metadata: dict[str, Any]

    def embed(self, images: np.ndarray) -> np.ndarray: ...


# --- Task 1: classification encoders -------------------------------------------------------
# ResNet-18 (torchvision) on 1-channel images with a 256-d representation, the preprocessing
# every Task 1 model shares, and the frozen encoders Task 3 reads (trained ResNets, PCA/NMF).

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

TASK1_ENCODER_FORMAT = 1


def build_resnet18_encoder(
    in_channels: int = 1,
    representation_dim: int = 256,
    width: int = 64,
    stem: str = "imagenet",
) -> nn.Module:
    """torchvision's ResNet-18 mapping ``(N, in_channels, S, S)`` to ``(N, representation_dim)``.

    ``width`` is the channel count of the first stage (64 in ResNet-18; stages use w, 2w, 4w,
    8w); ``stem`` ``imagenet`` keeps the 7x7/2 convolution and max-pool, ``small`` uses a 3x3/1
    convolution without pooling (for images of 32 pixels or less). ``fc`` is the linear map from
    the pooled features to the representation. Weights are random (never downloaded).
    """
    from torchvision.models.resnet import BasicBlock, resnet18

    net = resnet18(weights=None)
    width = int(width)
    if stem == "imagenet":
        net.conv1 = nn.Conv2d(in_channels, width, kernel_size=7, stride=2, padding=3, bias=False)
    elif stem == "small":
        net.conv1 = nn.Conv2d(in_channels, width, kernel_size=3, stride=1, padding=1, bias=False)
        net.maxpool = nn.Identity()
    else:
        raise ValueError(f"ResNet stem must be 'imagenet' or 'small', not {stem!r}")
    if width != 64:  # rebuild the stages with torchvision's own block builder
        net.inplanes = width
        net.layer1 = net._make_layer(BasicBlock, width, 2)  # noqa: SLF001
        net.layer2 = net._make_layer(BasicBlock, 2 * width, 2, stride=2)  # noqa: SLF001
        net.layer3 = net._make_layer(BasicBlock, 4 * width, 2, stride=2)  # noqa: SLF001
        net.layer4 = net._make_layer(BasicBlock, 8 * width, 2, stride=2)  # noqa: SLF001
    net.bn1 = nn.BatchNorm2d(width)
    net.fc = nn.Linear(8 * width, int(representation_dim))
    return net


def build_task1_encoder(architecture: dict[str, Any]) -> nn.Module:
    """The encoder described by an ``architecture`` record (parameters or frozen-encoder metadata)."""
    name = architecture.get("name", "resnet18")
    if name != "resnet18":
        raise ValueError(f"Unknown Task 1 encoder architecture {name!r}")
    return build_resnet18_encoder(
        in_channels=int(architecture.get("in_channels", 1)),
        representation_dim=int(architecture.get("representation_dim", 256)),
        width=int(architecture.get("width", 64)),
        stem=str(architecture.get("stem", "imagenet")),
    )


def resize_images(images: np.ndarray | torch.Tensor, size: int) -> torch.Tensor:
    """Images ``(N, H, W)`` (uint8 0..255 or float 0..1) -> float32 ``(N, 1, size, size)`` in [0, 1].

    Downsampling averages areas (``F.interpolate(mode="area")``), so 128 -> 64 -> 32 equals
    128 -> 32; upsampling is bilinear. Every Task 1 model and frozen encoder uses this function.
    """
    x = torch.as_tensor(images)
    if x.dtype == torch.uint8:
        x = x.float().div_(255.0)
    else:
        x = x.float()
    if x.ndim != 3:
        raise ValueError(f"Expected images (N, H, W), got shape {tuple(x.shape)}")
    x = x.unsqueeze(1)
    size = int(size)
    if x.shape[-2:] == (size, size):
        return x.contiguous()
    if x.shape[-1] >= size and x.shape[-2] >= size:
        return F.interpolate(x, size=(size, size), mode="area")
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


def preprocess_images(images: np.ndarray | torch.Tensor, input_meta: dict[str, Any]) -> torch.Tensor:
    """Resize to ``input_meta['size']``, then normalise as ``input_meta['normalisation']`` records.

    ``mode`` ``training_set``: ``(x - mean) / std`` with the training images' statistics;
    ``per_image``: each image minus its own mean, divided by its own std; ``none``: [0, 1].
    """
    x = resize_images(images, input_meta["size"])
    norm = input_meta.get("normalisation") or {}
    mode = norm.get("mode", "training_set")
    if mode == "per_image":
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        return (x - mean) / x.std(dim=(1, 2, 3), keepdim=True).clamp_min(1e-6)
    if mode not in ("training_set", "none"):
        raise ValueError(f"Unknown normalisation mode {mode!r} (training_set, per_image, none)")
    mean, std = float(norm.get("mean", 0.0)), float(norm.get("std", 1.0))
    if mean != 0.0 or std != 1.0:
        x = (x - mean) / std
    return x


class ResNetFrozenEncoder:
    """A trained Task 1 ResNet, frozen: ``embed`` returns the 256-d representation.

    ``metadata`` holds everything needed to rebuild it (``architecture``, ``input``: size,
    scaling, resizing and normalisation) plus how it was trained (method, config, seed, ...).
    """

    kind = "torch_resnet"

    def __init__(self, network: nn.Module, metadata: dict[str, Any], device: str | None = None) -> None:
        self.network = network.eval()
        for p in self.network.parameters():
            p.requires_grad_(False)
        self.metadata = {**metadata, "kind": self.kind}
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")

    @classmethod
    def from_parts(cls, metadata: dict[str, Any], state_dict: dict[str, torch.Tensor]) -> "ResNetFrozenEncoder":
        network = build_task1_encoder(metadata["architecture"])
        network.load_state_dict(state_dict)
        return cls(network, metadata)

    def parts(self) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        return self.metadata, {k: v.detach().cpu() for k, v in self.network.state_dict().items()}

    @torch.no_grad()
    def embed(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        net = self.network.to(self.device).eval()
        out = []
        for start in range(0, len(images), batch_size):
            x = preprocess_images(images[start : start + batch_size], self.metadata["input"])
            out.append(net(x.to(self.device)).float().cpu())
        dim = int(self.metadata["architecture"].get("representation_dim", 256))
        return torch.cat(out).numpy().astype(np.float32) if out else np.zeros((0, dim), np.float32)


class DecompositionFrozenEncoder:
    """PCA or NMF of downsampled images (scikit-learn), frozen: ``embed`` returns the components' weights."""

    kind = "sklearn_decomposition"

    def __init__(self, decomposition: Any, metadata: dict[str, Any]) -> None:
        self.decomposition = decomposition
        self.metadata = {**metadata, "kind": self.kind}

    @classmethod
    def from_parts(cls, metadata: dict[str, Any], decomposition: Any) -> "DecompositionFrozenEncoder":
        return cls(decomposition, metadata)

    def parts(self) -> tuple[dict[str, Any], Any]:
        return self.metadata, self.decomposition

    def embed(self, images: np.ndarray, batch_size: int = 1024) -> np.ndarray:
        out = []
        for start in range(0, len(images), batch_size):
            x = preprocess_images(images[start : start + batch_size], self.metadata["input"])
            out.append(self.decomposition.transform(x.reshape(len(x), -1).numpy().astype(np.float64)))
        n = int(self.metadata["architecture"]["n_components"])
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, n), np.float32)


def frozen_encoder_from_parts(metadata: dict[str, Any], payload: Any) -> FrozenEncoder:
    """Rebuild a frozen encoder from its metadata and weights (what the catalog dataset stores)."""
    kinds = {cls.kind: cls for cls in (ResNetFrozenEncoder, DecompositionFrozenEncoder)}
    kind = metadata.get("kind")
    if kind not in kinds:
        raise ValueError(f"Unknown frozen-encoder kind {kind!r}; expected one of {sorted(kinds)}")
    return kinds[kind].from_parts(metadata, payload)


class LinearReadout:
    """A linear classifier on a representation: ``softmax(x @ weight.T + bias)``.

    Used for the supervised networks' own head, so that every Task 1 run has the same
    ``predict``/``predict_proba`` interface as the scikit-learn read-outs of frozen encoders.
    """

    def __init__(self, weight: np.ndarray, bias: np.ndarray, classes: list[int] | None = None) -> None:
        self.weight = np.asarray(weight, dtype=np.float32)
        self.bias = np.asarray(bias, dtype=np.float32)
        self.classes_ = np.asarray(classes if classes is not None else range(len(self.bias)))

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=np.float32) @ self.weight.T + self.bias

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        logits = self.decision_function(x)
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.classes_[np.argmax(self.decision_function(x), axis=1)]


# --- Task 2: 2D segmentation (segmentation_models_pytorch) ---------------------------------
# One factory for every segmentation network (2D and 3D): ``build_segmentation_model``. Every
# network maps ``(B, in_channels, *spatial)`` to ``(B, num_classes, *spatial)`` logits for any
# spatial size: a :class:`PadToMultiple` wrapper pads the input to what the architecture needs
# (multiples of the encoder's output stride, PAN's minimum size, VNet's 16 slices) and crops
# the logits back. The factory records its arguments in ``model.factory_spec`` so that
# ``mtneuro.datasets.torch_model.TorchModelDataset`` can save the weights and rebuild the model.

import importlib  # noqa: E402
import math  # noqa: E402
from collections.abc import Sequence  # noqa: E402

import torch  # noqa: E402, F811
import torch.nn.functional as F  # noqa: E402, F811, N812
from torch import nn  # noqa: E402, F811

#: Model name (as in the run grid and the paper's tables) -> segmentation_models_pytorch class.
SMP_ARCHITECTURES: dict[str, str] = {
    "unet": "Unet",
    "manet": "MAnet",
    "fpn": "FPN",
    "unetplusplus": "UnetPlusPlus",
    "pan": "PAN",
    "pspnet": "PSPNet",
}

SEGMENTATION_FACTORY = "mtneuro.models:build_segmentation_model"


class PadToMultiple(nn.Module):
    """Runs ``model`` on an input padded to ``multiple`` (and at least ``minimum``) per spatial
    axis, and crops the output back to the input's spatial shape.

    Padding is split evenly before/after and replicates the border voxels.
    """

    def __init__(self, model: nn.Module, multiple: Sequence[int], minimum: Sequence[int] | None = None) -> None:
        super().__init__()
        self.model = model
        self.multiple = tuple(int(m) for m in multiple)
        self.minimum = tuple(int(m) for m in (minimum or (1,) * len(self.multiple)))

    def padded_shape(self, shape: Sequence[int]) -> tuple[int, ...]:
        return tuple(
            max(math.ceil(s / m) * m, math.ceil(lo / m) * m)
            for s, m, lo in zip(shape, self.multiple, self.minimum, strict=True)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spatial = tuple(x.shape[2:])
        if len(spatial) != len(self.multiple):
            raise ValueError(f"Expected {len(self.multiple)} spatial axes, got input of shape {tuple(x.shape)}")
        target = self.padded_shape(spatial)
        before = [(t - s) // 2 for s, t in zip(spatial, target, strict=True)]
        pad: list[int] = []
        for s, t, b in reversed(list(zip(spatial, target, before, strict=True))):
            pad += [b, t - s - b]
        out = self.model(F.pad(x, pad, mode="replicate") if target != spatial else x)
        if tuple(out.shape[2:]) != target:
            raise ValueError(
                f"{type(self.model).__name__} maps an input of spatial shape {target} to {tuple(out.shape[2:])}; "
                "check the model's kwargs (e.g. encoder_depth vs upsampling)"
            )
        if target == spatial:
            return out
        crop = (slice(None), slice(None), *(slice(b, b + s) for b, s in zip(before, spatial, strict=True)))
        return out[crop]


def build_segmentation_model_2d(
    architecture: str,
    num_classes: int,
    encoder_name: str = "resnet18",
    encoder_weights: str | None = None,
    in_channels: int = 1,
    **kwargs: Any,
) -> nn.Module:
    """A segmentation_models_pytorch network (U-Net, MA-Net, FPN, U-Net++, PAN, PSPNet).

    ``encoder_weights`` defaults to None (random initialisation; nothing is downloaded).
    ``kwargs`` go to the smp class (e.g. ``decoder_channels``, ``encoder_depth``).
    """
    import segmentation_models_pytorch as smp

    if architecture not in SMP_ARCHITECTURES:
        raise ValueError(f"Unknown 2D segmentation model {architecture!r}; choose one of {sorted(SMP_ARCHITECTURES)}")
    for key in ("decoder_channels", "upsampling_size"):
        if isinstance(kwargs.get(key), list):
            kwargs[key] = tuple(kwargs[key])
    net = smp.create_model(
        SMP_ARCHITECTURES[architecture],
        encoder_name=encoder_name,
        encoder_weights=encoder_weights,
        in_channels=in_channels,
        classes=num_classes,
        **kwargs,
    )
    _drop_unused_encoder_stages(net.encoder, int(kwargs.get("encoder_depth", 5)))
    stride = int(net.encoder.output_stride)
    # PAN's feature pyramid attention pools its deepest feature map three more times.
    minimum = 8 * stride if architecture == "pan" else stride
    return PadToMultiple(net, (stride, stride), (minimum, minimum))


def _drop_unused_encoder_stages(encoder: nn.Module, depth: int) -> None:
    """smp keeps every encoder stage even when ``encoder_depth`` < 5 never runs the deeper ones;
    replace those (where they are direct children, e.g. ResNet's ``layer3``/``layer4``) by
    ``nn.Identity`` so that they cost no optimizer time and no checkpoint space."""
    stages = encoder.get_stages() if hasattr(encoder, "get_stages") else {}
    unused = [m for stride, modules in stages.items() if int(stride) > 2**depth for m in modules]
    for name, child in list(encoder.named_children()):
        if any(child is m for m in unused):
            setattr(encoder, name, nn.Identity())


def segmentation_model_dims(architecture: str) -> int:
    """2 for the smp models, 3 for the MONAI ones."""
    if architecture in SMP_ARCHITECTURES:
        return 2
    if architecture in MONAI_ARCHITECTURES:
        return 3
    raise ValueError(
        f"Unknown segmentation model {architecture!r}; choose one of "
        f"{sorted(SMP_ARCHITECTURES) + sorted(MONAI_ARCHITECTURES)}"
    )


def build_segmentation_model(architecture: str, num_classes: int, **kwargs: Any) -> nn.Module:
    """The one factory of every Task 2 network; ``architecture`` is a key of
    :data:`SMP_ARCHITECTURES` (2D) or :data:`MONAI_ARCHITECTURES` (3D).

    The returned module carries ``factory_spec`` (this function's import path and arguments,
    JSON-serialisable) and ``spatial_dims``.
    """
    dims = segmentation_model_dims(architecture)
    build = build_segmentation_model_2d if dims == 2 else build_segmentation_model_3d
    model = build(architecture, int(num_classes), **dict(kwargs))
    model.factory_spec = {
        "factory": SEGMENTATION_FACTORY,
        "kwargs": {"architecture": architecture, "num_classes": int(num_classes), **_jsonable(kwargs)},
    }
    model.spatial_dims = dims
    return model


def build_from_factory_spec(spec: dict[str, Any]) -> nn.Module:
    """Rebuild a network from a ``factory_spec`` (``{"factory": "module:function", "kwargs": {...}}``)."""
    module_name, _, func_name = spec["factory"].partition(":")
    factory = getattr(importlib.import_module(module_name), func_name)
    return factory(**spec.get("kwargs", {}))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


# --- Task 2: 3D segmentation (MONAI) -------------------------------------------------------
# U-Net, VNet and HighResNet from MONAI, fed ``(B, 1, D, H, W)`` subvolumes (8 slices in the
# paper). MONAI's VNet halves every axis four times and has fixed widths (16..256 channels);
# ``base_channels`` other than 16 builds the same topology from MONAI's VNet blocks with all
# widths scaled (the "light" VNet), and the wrapper pads 8-slice inputs to 16 slices.

MONAI_ARCHITECTURES: tuple[str, ...] = ("unet3d", "vnet", "highresnet")


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
        up = tuple(dropout_prob_up)
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


def build_segmentation_model_3d(architecture: str, num_classes: int, in_channels: int = 1, **kwargs: Any) -> nn.Module:
    """A MONAI network: ``unet3d`` (``monai.networks.nets.UNet``; kwargs ``channels``,
    ``strides``, ``num_res_units``, ...), ``vnet`` (``monai.networks.nets.VNet`` when
    ``base_channels`` is 16, else :class:`ScaledVNet`) or ``highresnet``
    (``monai.networks.nets.HighResNet``; kwargs ``layer_params``, ...)."""
    from monai.networks.nets import HighResNet, UNet, VNet

    kwargs = dict(kwargs)
    if architecture == "unet3d":
        channels = tuple(int(c) for c in kwargs.pop("channels", (16, 32, 64, 128, 256)))
        strides = [tuple(s) if isinstance(s, (list, tuple)) else int(s) for s in kwargs.pop("strides", (2,) * (len(channels) - 1))]
        net = UNet(3, in_channels, num_classes, channels=channels, strides=strides, **kwargs)
        multiple = [1, 1, 1]
        for s in strides:
            for axis, f in enumerate(s if isinstance(s, tuple) else (s, s, s)):
                multiple[axis] *= int(f)
        return PadToMultiple(net, multiple)
    if architecture == "vnet":
        base = int(kwargs.pop("base_channels", 16))
        if "dropout_prob_up" in kwargs:
            kwargs["dropout_prob_up"] = tuple(kwargs["dropout_prob_up"])
        if isinstance(kwargs.get("act"), list):
            kwargs["act"] = tuple(kwargs["act"])
        if base == 16:
            net = VNet(spatial_dims=3, in_channels=in_channels, out_channels=num_classes, **kwargs)
        else:
            net = ScaledVNet(in_channels, num_classes, base_channels=base, **kwargs)
        return PadToMultiple(net, (16, 16, 16))
    if architecture == "highresnet":
        if "layer_params" in kwargs:
            kwargs["layer_params"] = tuple(
                {k: tuple(v) if isinstance(v, list) else v for k, v in layer.items()} for layer in kwargs["layer_params"]
            )
        net = HighResNet(spatial_dims=3, in_channels=in_channels, out_channels=num_classes, **kwargs)
        return PadToMultiple(net, (1, 1, 1))
    raise ValueError(f"Unknown 3D segmentation model {architecture!r}; choose one of {list(MONAI_ARCHITECTURES)}")
