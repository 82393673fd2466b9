"""BYOL (Grill et al. 2020): an online encoder + projector + predictor regress a momentum
target's projection of another augmented view.

lightly's blocks: the projector/predictor MLPs (``ProjectionHead``), the momentum update of the
target networks (``update_momentum``, plus a copy of the BatchNorm buffers), the cosine schedule
of the target momentum (``cosine_schedule``) and the negative cosine similarity of the loss.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from lightly.loss import NegativeCosineSimilarity
from lightly.models.modules.heads import ProjectionHead
from lightly.models.utils import deactivate_requires_grad, update_momentum
from lightly.utils.scheduler import cosine_schedule
from torch import nn

from mtneuro.classification_methods._network import NetworkLearner


def projection_head(in_dim: int, hidden_dim: int, out_dim: int) -> ProjectionHead:
    """Projector / predictor of BYOL: Linear - BatchNorm - ReLU - Linear, both linear layers with
    a bias (lightly's ``ProjectionHead``; same parameters and initialisation order as before)."""
    return ProjectionHead(
        [
            (in_dim, hidden_dim, nn.BatchNorm1d(hidden_dim), nn.ReLU(inplace=True), True),
            (hidden_dim, out_dim, None, None, True),
        ]
    )


_NEGATIVE_COSINE = NegativeCosineSimilarity(dim=-1)


def regression_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """BYOL's loss ``2 - 2 cos(p, z)`` averaged over the batch, i.e. ``2 + 2 * (-mean cos)``
    (the scale of the paper: 0 for equal directions, 4 for opposite ones)."""
    return 2 + 2 * _NEGATIVE_COSINE(prediction, target.detach())


def cosine_momentum(step: int, total_steps: int, base: float) -> float:
    """BYOL's target momentum: ``1 - (1 - base) (cos(pi k / K) + 1) / 2``, from ``base`` to 1.

    lightly's ``cosine_schedule`` evaluated on the training progress ``k / K`` in [0, 1] as a
    half period (period 2): bit for bit the values of the former formula at every step, which
    ``cosine_schedule(k, K + 1, ...)`` is not (it rounds ``pi k / K`` differently).
    """
    if total_steps <= 0:
        return float(base)
    progress = min(max(step / total_steps, 0.0), 1.0)
    return cosine_schedule(progress, 1, float(base), 1.0, period=2)


@torch.no_grad()
def momentum_update(online: nn.Module, target: nn.Module, tau: float) -> None:
    """``target <- tau * target + (1 - tau) * online`` for parameters (lightly's ``update_momentum``);
    buffers (BN statistics), which lightly leaves alone, are copied."""
    update_momentum(online, target, tau)
    for b_online, b_target in zip(online.buffers(), target.buffers(), strict=True):
        b_target.copy_(b_online)


class ByolLearner(NetworkLearner):
    """BYOL on two augmented views of each batch; targets follow by momentum after each step."""

    #: Online modules with a momentum target ``target_<name>``, in construction order.
    momentum_modules: tuple[str, ...] = ("encoder", "projector")
    target_encoder: nn.Module
    target_projector: nn.Module

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        s = self.settings
        out = int(s.projector_out)
        self.projector = projection_head(self.representation_dim, int(s.projector_hidden), out)
        self.predictor = projection_head(out, int(s.predictor_hidden), out)
        self.build_heads(out)
        for name in self.momentum_modules:
            target = copy.deepcopy(getattr(self, name))
            deactivate_requires_grad(target)
            setattr(self, f"target_{name}", target)
        self.tau = float(s.momentum_base)

    def build_heads(self, out: int) -> None:
        """Further online heads of a subclass (built before the targets are copied)."""

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # noqa: ARG002
        return self.ssl_loss(torch.cat([self.augment(x), self.augment(x)]))

    def ssl_loss(self, views: torch.Tensor) -> torch.Tensor:
        """The loss of two stacked views ``(2N, 1, S, S)`` (view 1 = ``[:N]``, view 2 = ``[N:]``)."""
        n = views.shape[0] // 2
        z = self.projector(self.encoder(views))
        p = self.predictor(z)
        with torch.no_grad():
            y_t = self.target_encoder(views)
            z_t = self.target_projector(y_t)
        swap = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(views.device)  # each view -> the other view
        return self.objective(regression_loss(p, z_t[swap]), z, p, y_t, z_t)

    def objective(
        self,
        loss: torch.Tensor,
        z: torch.Tensor,  # noqa: ARG002
        p: torch.Tensor,  # noqa: ARG002
        y_t: torch.Tensor,  # noqa: ARG002
        z_t: torch.Tensor,  # noqa: ARG002
    ) -> torch.Tensor:
        """The final loss from BYOL's term and the views' projections (a subclass adds terms)."""
        return loss

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:  # noqa: ARG002
        self.tau = cosine_momentum(self.global_step, self.total_steps, float(self.settings.momentum_base))
        for name in self.momentum_modules:
            momentum_update(getattr(self, name), getattr(self, f"target_{name}"), self.tau)

    def epoch_extras(self) -> dict[str, float]:
        return {"target_momentum": float(self.tau)}
