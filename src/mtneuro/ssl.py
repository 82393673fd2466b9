"""Task 1 augmentations and mixup, shared by the network methods of
:mod:`mtneuro.classification_methods` (whose Lightning modules, losses and heads live beside
their specs, in the package's private ``_*_network`` modules).

Augmentations run on whole batches on the model's device (random square crop resized back,
flips, 90-degree rotations, intensity jitter, Gaussian blur, noise), so they cost little on a
GPU. Everything random draws from torch's generator, seeded by
:func:`mtneuro.training.seed_everything`, so a CPU run is repeatable.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from mtneuro.config.classification import Augmentation


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
