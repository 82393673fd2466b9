"""The "light" VNet: MONAI's VNet topology with scaled channel widths (its own module: it needs
torch at import, and the registry in :mod:`.monai_models` is read without torch)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import torch
from torch import nn


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
