"""Task 1 model factories: the one place that builds the Task 1 networks.

Task 1 encoders (ResNet-18), the frozen-encoder protocol and the linear read-out. Task 2 networks
live in :mod:`mtneuro.segmentation_models` (one registry and factory for 2D and 3D).
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
    *,
    in_channels: int,
    representation_dim: int,
    width: int,
    stem: str,
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
        net.layer1 = net._make_layer(BasicBlock, width, 2)
        net.layer2 = net._make_layer(BasicBlock, 2 * width, 2, stride=2)
        net.layer3 = net._make_layer(BasicBlock, 4 * width, 2, stride=2)
        net.layer4 = net._make_layer(BasicBlock, 8 * width, 2, stride=2)
    net.bn1 = nn.BatchNorm2d(width)
    net.fc = nn.Linear(8 * width, int(representation_dim))
    return net


def build_task1_encoder(architecture: dict[str, Any]) -> nn.Module:
    """The encoder described by an ``architecture`` record (``classification.encoder`` without
    ``input_size``/``normalisation``, as frozen-encoder metadata records it)."""
    name = architecture["name"]
    if name != "resnet18":
        raise ValueError(f"Unknown Task 1 encoder architecture {name!r}")
    return build_resnet18_encoder(
        in_channels=int(architecture["in_channels"]),
        representation_dim=int(architecture["representation_dim"]),
        width=int(architecture["width"]),
        stem=str(architecture["stem"]),
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
    norm = input_meta["normalisation"]
    mode = norm["mode"]
    if mode == "per_image":
        image_mean = x.mean(dim=(1, 2, 3), keepdim=True)
        return (x - image_mean) / x.std(dim=(1, 2, 3), keepdim=True).clamp_min(1e-6)
    if mode not in ("training_set", "none"):
        raise ValueError(f"Unknown normalisation mode {mode!r} (training_set, per_image, none)")
    mean, std = float(norm["mean"]), float(norm["std"])
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
    def from_parts(cls, metadata: dict[str, Any], state_dict: dict[str, torch.Tensor]) -> ResNetFrozenEncoder:
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
        dim = int(self.metadata["architecture"]["representation_dim"])
        return torch.cat(out).numpy().astype(np.float32) if out else np.zeros((0, dim), np.float32)


class DecompositionFrozenEncoder:
    """PCA or NMF of downsampled images (scikit-learn), frozen: ``embed`` returns the components' weights."""

    kind = "sklearn_decomposition"

    def __init__(self, decomposition: Any, metadata: dict[str, Any]) -> None:
        self.decomposition = decomposition
        self.metadata = {**metadata, "kind": self.kind}

    @classmethod
    def from_parts(cls, metadata: dict[str, Any], decomposition: Any) -> DecompositionFrozenEncoder:
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
