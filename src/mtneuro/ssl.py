"""Task 1 representation learning: augmentations, mixup, BYOL, MYOW and the training module.

One Lightning module, :class:`RepresentationLearner`, trains the ResNet-18 encoder of
:func:`mtneuro.models.build_task1_encoder` with any network method of the Task 1 registry
(:mod:`mtneuro.classification_methods`; the method's spec says its kind, mixup and mined views):

* ``supervised``: cross-entropy on a dropout + linear head over the 256-d representation;
* ``mixup``: the same with mixup of inputs and one-hot targets;
* ``byol``: online encoder + projector + predictor regress a momentum target's projection of
  another augmented view (Grill et al. 2020);
* ``myow``: BYOL plus *mined views* (Azabou et al. 2021): each sample's nearest neighbour
  among the other samples of the batch, in the target encoder's representation, is predicted
  through a second projector/predictor stacked on the first (cascaded), with a weight ramped up
  over the first epochs;
* ``myow_merged``: MYOW with one shared projector and predictor for both terms.

Augmentations run on whole batches on the model's device (random square crop resized back,
flips, 90-degree rotations, intensity jitter, Gaussian blur, noise), so they cost little on a
GPU. Everything random draws from torch's generator, seeded by
:func:`mtneuro.training.seed_everything`, so a CPU run is repeatable.

BYOL's building blocks come from lightly: the projector/predictor MLPs (``ProjectionHead``), the
momentum update of the target networks (``update_momentum``, plus a copy of the BatchNorm
buffers), the cosine schedule of the target momentum (``cosine_schedule``) and the negative
cosine similarity of the regression loss.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch
import torch.nn.functional as F
from lightly.loss import NegativeCosineSimilarity
from lightly.models.modules.heads import ProjectionHead
from lightly.models.utils import deactivate_requires_grad, update_momentum
from lightly.utils.scheduler import cosine_schedule
from torch import nn

from mtneuro import models, training

if TYPE_CHECKING:
    from mtneuro.classification_methods import MethodSpec
    from mtneuro.config import TrainingParameters
    from mtneuro.config.classification import Augmentation, NetworkSettings

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------
# Augmentations
# --------------------------------------------------------------------------------------------


def _uniform(n: int, lo: float, hi: float, device: torch.device) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, device=device)


def random_geometry(
    x: torch.Tensor, crop_scale: Sequence[float] = (1.0, 1.0), flip: bool = True, rot90: bool = True
) -> torch.Tensor:
    """Random square crop (area fraction in ``crop_scale``) resized back, flips and 90-degree rotations.

    One affine ``grid_sample`` per batch; flips and rotations alone map pixels exactly.
    """
    n, device = x.shape[0], x.device
    lo, hi = float(crop_scale[0]), float(crop_scale[1])
    side = torch.sqrt(_uniform(n, lo, hi, device)) if (lo, hi) != (1.0, 1.0) else torch.ones(n, device=device)
    k = torch.randint(0, 4, (n,), device=device) if rot90 else torch.zeros(n, dtype=torch.long, device=device)
    cos = torch.tensor([1.0, 0.0, -1.0, 0.0], device=device)[k]
    sin = torch.tensor([0.0, 1.0, 0.0, -1.0], device=device)[k]
    fx = (torch.randint(0, 2, (n,), device=device) * 2 - 1).float() if flip else torch.ones(n, device=device)
    fy = (torch.randint(0, 2, (n,), device=device) * 2 - 1).float() if flip else torch.ones(n, device=device)
    theta = torch.zeros(n, 2, 3, device=device)
    theta[:, 0, 0] = side * cos * fx
    theta[:, 0, 1] = -side * sin * fy
    theta[:, 1, 0] = side * sin * fx
    theta[:, 1, 1] = side * cos * fy
    theta[:, 0, 2] = (1 - side) * (2 * torch.rand(n, device=device) - 1)
    theta[:, 1, 2] = (1 - side) * (2 * torch.rand(n, device=device) - 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid.to(x.dtype), mode="bilinear", padding_mode="reflection", align_corners=False)


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Blur each image of ``x`` (N, C, H, W) with its own Gaussian ``sigma`` (N,) in pixels."""
    n, c, h, w = x.shape
    radius = int(max(1, min(math.ceil(3 * float(sigma.max())), min(h, w) // 2 - 1)))
    offsets = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    kernel = torch.exp(-0.5 * (offsets[None, :] / sigma[:, None].clamp_min(1e-3).to(x.dtype)) ** 2)
    kernel = (kernel / kernel.sum(dim=1, keepdim=True)).repeat_interleave(c, dim=0)  # (N*C, K)
    y = x.reshape(1, n * c, h, w)
    y = F.pad(y, (radius, radius, 0, 0), mode="reflect")
    y = F.conv2d(y, kernel[:, None, None, :], groups=n * c)
    y = F.pad(y, (0, 0, radius, radius), mode="reflect")
    y = F.conv2d(y, kernel[:, None, :, None], groups=n * c)
    return y.reshape(n, c, h, w)


def augment_batch(x: torch.Tensor, cfg: Augmentation) -> torch.Tensor:
    """Augmentations for X-ray sections, from the ``augmentation`` parameter block.

    Keys: ``crop_scale`` [min, max] area fraction, ``flip``, ``rot90``, ``brightness`` (additive,
    in units of the standardised image), ``contrast`` (multiplicative around each image's mean),
    ``blur_prob`` and ``blur_sigma`` [min, max] pixels, ``noise_std``.
    """
    n, device = x.shape[0], x.device
    x = random_geometry(x, tuple(cfg.crop_scale), bool(cfg.flip), bool(cfg.rot90))
    contrast = float(cfg.contrast)
    if contrast > 0:
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) * _uniform(n, 1 - contrast, 1 + contrast, device).view(n, 1, 1, 1).to(x.dtype) + mean
    brightness = float(cfg.brightness)
    if brightness > 0:
        x = x + _uniform(n, -brightness, brightness, device).view(n, 1, 1, 1).to(x.dtype)
    blur_prob = float(cfg.blur_prob)
    if blur_prob > 0:
        lo, hi = (float(v) for v in cfg.blur_sigma)
        apply = torch.rand(n, device=device) < blur_prob
        if bool(apply.any()):
            blurred = gaussian_blur(x, _uniform(n, lo, hi, device))
            x = torch.where(apply.view(n, 1, 1, 1), blurred, x)
    noise = float(cfg.noise_std)
    if noise > 0:
        x = x + noise * torch.randn_like(x)
    return x


# --------------------------------------------------------------------------------------------
# Mixup
# --------------------------------------------------------------------------------------------


def mixup(
    x: torch.Tensor,
    y_onehot: torch.Tensor,
    alpha: float,
    lam: float | None = None,
    perm: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, float, torch.Tensor]:
    """Mixup (Zhang et al. 2018): ``lam * a + (1 - lam) * b`` of inputs and one-hot targets.

    ``lam ~ Beta(alpha, alpha)`` once per batch, ``b`` = the batch in a random order. Returns
    the mixed inputs and targets, ``lam`` and the permutation.
    """
    if lam is None:
        lam = float(torch.distributions.Beta(float(alpha), float(alpha)).sample()) if alpha > 0 else 1.0
    if perm is None:
        perm = torch.randperm(x.shape[0], device=x.device)
    x_mix = lam * x + (1.0 - lam) * x[perm]
    y_mix = lam * y_onehot + (1.0 - lam) * y_onehot[perm]
    return x_mix, y_mix, lam, perm


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return -(targets * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


# --------------------------------------------------------------------------------------------
# BYOL / MYOW building blocks
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# The training module
# --------------------------------------------------------------------------------------------


class RepresentationLearner(training.EpochHistoryModule):
    """Trains the Task 1 encoder with one network method of the registry.

    ``method`` is the method's spec (:func:`mtneuro.classification_methods.get_method`): its kind
    (supervised or SSL), mixup, mined views. ``settings`` are its resolved settings
    (:meth:`mtneuro.config.classification.ClassificationParameters.method_settings`):
    ``optimizer``, ``lr``, ``momentum``, ``weight_decay``, ``lr_schedule``, ``warmup_epochs``,
    ``augment``, ``augmentation``; supervised: ``dropout``, mixup ``alpha``; SSL:
    ``projector_hidden``, ``projector_out``, ``predictor_hidden``, ``momentum_base``; MYOW:
    ``mined_weight``, ``ramp_epochs``, ``k`` (MYOW's second projector/predictor have the sizes of
    the first).
    """

    def __init__(
        self,
        method: MethodSpec,
        architecture: Mapping[str, Any],
        settings: NetworkSettings,
        n_classes: int,
        steps_per_epoch: int,
        epochs: int,
    ) -> None:
        super().__init__()
        if not method.is_network:
            raise ValueError(f"Task 1 method {method.name!r} is not a network method (kind {method.kind!r})")
        self.spec = method
        self.method = method.name
        self.settings = settings
        self.steps_per_epoch = max(1, int(steps_per_epoch))
        self.total_steps = self.steps_per_epoch * max(1, int(epochs))
        self.encoder = models.build_task1_encoder(dict(architecture))
        dim = int(architecture["representation_dim"])
        s: Any = self.settings  # the kind's settings model (SupervisedSettings, ByolSettings, ...)
        self.tau: float | None = None
        if method.kind == "supervised":
            self.head = nn.Sequential(nn.Dropout(float(s.dropout)), nn.Linear(dim, int(n_classes)))
        else:
            out = int(s.projector_out)
            self.projector = projection_head(dim, int(s.projector_hidden), out)
            self.predictor = projection_head(out, int(s.predictor_hidden), out)
            if method.mined_views == "cascaded":  # second projector/predictor on top of the first projector
                self.projector2 = projection_head(out, int(s.projector_hidden), out)
                self.predictor2 = projection_head(out, int(s.predictor_hidden), out)
            self.target_encoder = copy.deepcopy(self.encoder)
            self.target_projector = copy.deepcopy(self.projector)
            targets = [self.target_encoder, self.target_projector]
            if method.mined_views == "cascaded":
                self.target_projector2 = copy.deepcopy(self.projector2)
                targets.append(self.target_projector2)
            for module in targets:
                deactivate_requires_grad(module)
            self.tau = float(s.momentum_base)
        self._epoch_mined: list[torch.Tensor] = []
        self._epoch_weight: list[float] = []

    # -- pairs of online/target modules updated by momentum --------------------------------
    def _momentum_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        pairs = [(self.encoder, self.target_encoder), (self.projector, self.target_projector)]
        if self.spec.mined_views == "cascaded":
            pairs.append((self.projector2, self.target_projector2))
        return pairs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        return augment_batch(x, self.settings.augmentation)

    def mined_weight(self) -> float:
        progress = self.global_step / self.steps_per_epoch
        s: Any = self.settings
        return ramp_weight(progress, float(s.mined_weight), float(s.ramp_epochs))

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:  # noqa: ARG002
        x, y = batch
        if self.spec.kind == "supervised":
            if self.settings.augment:
                x = self._augment(x)
            loss, mined = self.supervised_loss(x, y), None
        else:
            loss, mined = self.ssl_loss(torch.cat([self._augment(x), self._augment(x)]))
        self.record_loss(loss)
        if mined is not None:
            self._epoch_mined.append(mined.detach())
        return loss

    def supervised_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of the head on (augmented) images; with mixup for mixup methods."""
        if self.spec.mixup:
            s: Any = self.settings
            onehot = F.one_hot(y, cast(nn.Linear, self.head[-1]).out_features).to(x.dtype)
            x, targets, _, _ = mixup(x, onehot, float(s.alpha))
            return soft_cross_entropy(self.head(self.encoder(x)), targets)
        return F.cross_entropy(self.head(self.encoder(x)), y)

    def ssl_loss(self, views: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """BYOL / MYOW loss of two stacked views ``(2N, 1, S, S)`` (view 1 = ``[:N]``, view 2 = ``[N:]``);
        returns the loss and the mined term (None for BYOL)."""
        n = views.shape[0] // 2
        z = self.projector(self.encoder(views))
        p = self.predictor(z)
        with torch.no_grad():
            y_t = self.target_encoder(views)
            z_t = self.target_projector(y_t)
        swap = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(views.device)  # each view -> the other view
        loss = regression_loss(p, z_t[swap])
        if self.spec.mined_views is None:
            return loss, None
        # MYOW: mine each sample's neighbour among the other samples, in the target representation.
        s: Any = self.settings
        neighbour = mine_views(y_t[:n], int(s.k))
        partner = torch.cat([neighbour + n, neighbour])  # view 1 of i -> view 2 of its neighbour and vice versa
        if self.spec.mined_views == "cascaded":
            p_m = self.predictor2(self.projector2(z))
            with torch.no_grad():
                z_m = self.target_projector2(z_t)
        else:  # shared: one projector and predictor for both terms
            p_m, z_m = p, z_t
        mined = regression_loss(p_m, z_m[partner])
        weight = self.mined_weight()
        self._epoch_weight.append(weight)
        return loss + weight * mined, mined

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:  # noqa: ARG002
        if self.spec.kind == "ssl":
            s: Any = self.settings
            self.tau = cosine_momentum(self.global_step, self.total_steps, float(s.momentum_base))
            for online, target in self._momentum_pairs():
                momentum_update(online, target, self.tau)

    def epoch_extras(self) -> dict[str, float]:
        """The epoch record's SSL values: target momentum; MYOW: mined loss and weight."""
        record: dict[str, float] = {}
        if self.spec.kind == "ssl":
            assert self.tau is not None  # set in __init__ for every SSL method
            record["target_momentum"] = float(self.tau)
        if self.spec.mined_views is not None:
            record["mined_loss"] = (
                float(torch.stack(self._epoch_mined).float().mean()) if self._epoch_mined else float("nan")
            )
            record["mined_weight"] = float(np.mean(self._epoch_weight)) if self._epoch_weight else float("nan")
        self._epoch_mined, self._epoch_weight = [], []
        return record

    def configure_optimizers(self) -> Any:
        s = self.settings
        params = [p for p in self.parameters() if p.requires_grad]
        name = str(s.optimizer).lower()
        lr, wd = float(s.lr), float(s.weight_decay)
        opt: torch.optim.Optimizer
        if name == "sgd":
            opt = torch.optim.SGD(params, lr=lr, momentum=float(s.momentum), weight_decay=wd)
        elif name == "adamw":
            opt = torch.optim.AdamW(params, lr=lr, weight_decay=wd)
        elif name == "adam":
            opt = torch.optim.Adam(params, lr=lr, weight_decay=wd)
        else:
            raise ValueError(f"Unknown optimizer {name!r} (sgd, adam, adamw)")
        warmup = round(float(s.warmup_epochs) * self.steps_per_epoch)
        schedule = str(s.lr_schedule)
        total = self.total_steps

        def factor(step: int) -> float:
            if warmup and step < warmup:
                return (step + 1) / warmup
            if schedule == "cosine":
                return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))
            return 1.0

        sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def fit_network(
    method: MethodSpec,
    x: torch.Tensor,
    y: torch.Tensor,
    architecture: Mapping[str, Any],
    settings: NetworkSettings,
    hardware: TrainingParameters,
    seed: int,
    n_classes: int,
) -> tuple[RepresentationLearner, dict[str, Any]]:
    """Train a :class:`RepresentationLearner` on preprocessed images ``x`` (N, 1, S, S) and labels ``y``.

    ``hardware`` is the shared ``training`` block with the task's overrides (accelerator,
    precision, data loader, threads). Returns the trained module (on the CPU, in eval mode) and
    its history (per-epoch loss, time, images/s).
    """
    training.seed_everything(seed)
    accelerator = training.resolve_accelerator(hardware.accelerator)
    epochs = int(settings.epochs)
    batch_size = max(2, min(int(settings.batch_size), len(x)))
    dataset = torch.utils.data.TensorDataset(x.float(), y.long())
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        drop_last=len(x) > batch_size,  # BatchNorm needs >1 sample per batch
        generator=torch.Generator().manual_seed(int(seed)),
        **training.dataloader_kwargs(hardware.dataloader, accelerator),
    )
    module = RepresentationLearner(
        method, architecture, settings, n_classes, steps_per_epoch=len(loader), epochs=epochs
    )
    with training.thread_limit(hardware.torch_threads):
        trainer = training.build_trainer(hardware, max_epochs=epochs)
        start = time.perf_counter()
        trainer.fit(module, loader)
        seconds = time.perf_counter() - start
    seen = int(module.global_step) * batch_size  # = len(loader) x batch x epochs unless a dry run stops early
    history = {
        "method": method.name,
        "epochs": module.history,
        "n_train": len(x),
        "batch_size": batch_size,
        "steps": int(module.global_step),
        "steps_per_epoch": len(loader),  # with ``steps``, what a full run costs (benchmarks/paper_cost.py)
        "train_seconds": seconds,
        "images_per_second": seen / seconds if seconds > 0 else float("nan"),
        "accelerator": accelerator,
        "precision": str(trainer.precision),
    }
    log.info(
        "%s: %d epochs on %d images in %.1f s (%.0f images/s), final loss %.4f",
        method.name,
        epochs,
        len(x),
        seconds,
        history["images_per_second"],
        module.history[-1]["loss"] if module.history else float("nan"),
    )
    return module.cpu().eval(), history
