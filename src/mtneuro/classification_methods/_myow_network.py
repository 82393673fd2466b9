"""MYOW (Azabou et al. 2021): BYOL plus *mined views*. Each sample's nearest neighbour among the
other samples of the batch, in the target encoder's representation, is predicted through a
second projector/predictor stacked on the first (cascaded; MYOW-merged: through the first ones),
with a weight ramped up over the first epochs."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mtneuro.classification_methods._byol_network import ByolLearner, projection_head, regression_loss


@torch.no_grad()
def nearest_neighbours(
    queries: torch.Tensor, pool: torch.Tensor, k: int = 1, exclude: torch.Tensor | None = None
) -> torch.Tensor:
    """Indices ``(N, k)`` into ``pool`` of each query's ``k`` nearest neighbours by cosine distance.

    ``exclude`` (N,) gives, per query, one pool index it may not pick (itself), or -1.
    """
    sim = F.normalize(queries.float(), dim=1) @ F.normalize(pool.float(), dim=1).T
    if exclude is not None:
        rows = torch.arange(len(queries), device=sim.device)
        valid = exclude >= 0
        sim[rows[valid], exclude[valid]] = -float("inf")
    k = min(int(k), pool.shape[0] - (1 if exclude is not None else 0))
    return sim.topk(k, dim=1).indices


@torch.no_grad()
def mine_views(target_repr: torch.Tensor, k: int = 1) -> torch.Tensor:
    """MYOW's miner: for each sample, one of its ``k`` nearest *other* samples of the batch (N,)."""
    n = target_repr.shape[0]
    neighbours = nearest_neighbours(target_repr, target_repr, k, exclude=torch.arange(n, device=target_repr.device))
    pick = torch.randint(0, neighbours.shape[1], (n,), device=neighbours.device)
    return neighbours[torch.arange(n, device=neighbours.device), pick]


def ramp_weight(progress_epochs: float, weight: float, ramp_epochs: float) -> float:
    """The mined loss weight, ramped linearly from 0 to ``weight`` over ``ramp_epochs``."""
    if ramp_epochs <= 0:
        return float(weight)
    return float(weight) * min(1.0, max(0.0, progress_epochs / float(ramp_epochs)))


class MyowLearner(ByolLearner):
    """MYOW with a second, cascaded projector/predictor (and target projector) for mined views."""

    momentum_modules: tuple[str, ...] = ("encoder", "projector", "projector2")
    target_projector2: nn.Module

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._epoch_mined: list[torch.Tensor] = []
        self._epoch_weight: list[float] = []

    def build_heads(self, out: int) -> None:
        self.projector2 = projection_head(out, int(self.settings.projector_hidden), out)
        self.predictor2 = projection_head(out, int(self.settings.predictor_hidden), out)

    def mined_weight(self) -> float:
        progress = self.global_step / self.steps_per_epoch
        return ramp_weight(progress, float(self.settings.mined_weight), float(self.settings.ramp_epochs))

    def mined_predictions(
        self,
        z: torch.Tensor,
        p: torch.Tensor,  # noqa: ARG002
        z_t: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Online predictions and target projections of the mined term."""
        p_m = self.predictor2(self.projector2(z))
        with torch.no_grad():
            z_m = self.target_projector2(z_t)
        return p_m, z_m

    def objective(
        self, loss: torch.Tensor, z: torch.Tensor, p: torch.Tensor, y_t: torch.Tensor, z_t: torch.Tensor
    ) -> torch.Tensor:
        n = y_t.shape[0] // 2
        neighbour = mine_views(y_t[:n], int(self.settings.k))
        partner = torch.cat([neighbour + n, neighbour])  # view 1 of i -> view 2 of its neighbour and vice versa
        p_m, z_m = self.mined_predictions(z, p, z_t)
        mined = regression_loss(p_m, z_m[partner])
        weight = self.mined_weight()
        self._epoch_weight.append(weight)
        self._epoch_mined.append(mined.detach())
        return loss + weight * mined

    def epoch_extras(self) -> dict[str, float]:
        record = super().epoch_extras()
        record["mined_loss"] = (
            float(torch.stack(self._epoch_mined).float().mean()) if self._epoch_mined else float("nan")
        )
        record["mined_weight"] = float(np.mean(self._epoch_weight)) if self._epoch_weight else float("nan")
        self._epoch_mined, self._epoch_weight = [], []
        return record


class MyowMergedLearner(MyowLearner):
    """MYOW-merged: one shared projector and predictor for both terms."""

    momentum_modules = ByolLearner.momentum_modules

    def build_heads(self, out: int) -> None:
        pass

    def mined_predictions(
        self,
        z: torch.Tensor,  # noqa: ARG002
        p: torch.Tensor,
        z_t: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return p, z_t
