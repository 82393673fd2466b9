"""Input padding shared by the segmentation networks: any spatial size in, the same size out."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class PadToMultiple(nn.Module):
    """Runs ``model`` on an input padded to ``multiple`` (and at least ``minimum``) per spatial
    axis, and crops the output back to the input's spatial shape.

    Padding is split evenly before/after and replicates the border voxels. Every registered
    network is wrapped in it, so that it maps ``(B, in_channels, *spatial)`` to
    ``(B, num_classes, *spatial)`` logits for any spatial size (multiples of an encoder's output
    stride, PAN's minimum size, VNet's 16 slices).
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
