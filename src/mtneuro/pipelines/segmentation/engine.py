"""Training and inference machinery of the segmentation nodes (no Kedro, no disk I/O).

* :class:`Block` -- a contiguous run of labelled slices of one cube (a split of it);
* :class:`PatchDataset` -- random training patches: 2D slices or ``depth``-slice subvolumes
  (non-overlapping, aligned to the block), a random in-plane crop, flips and 90-degree
  rotations applied identically to image and labels (NumPy views equal to MONAI's dictionary
  transforms, the random choices drawn from torch's generator);
* :class:`SegmentationModule` -- the Lightning module: Dice + cross-entropy loss (MONAI
  ``DiceCELoss``), AdamW, one-cycle / cosine / constant learning rate; its training curve (loss
  and learning rate per epoch) is kept as Task 1's is (:class:`mtneuro.training.EpochHistoryModule`);
* :func:`predict_block` -- whole-block inference with MONAI's sliding-window inferer (2D: each
  slice in windows of ``roi_yx``; 3D: windows of ``depth`` slices x ``roi_yx``), so that a
  cube of any size is segmented.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import torch
from monai.inferers import sliding_window_inference
from monai.losses import DiceCELoss
from torch import nn
from torch.utils.data import Dataset

from mtneuro.training import EpochHistoryModule


@dataclass(frozen=True)
class Block:
    """Contiguous slices ``z`` (array indices, ascending, consecutive) of one cube."""

    cube_id: str
    region: str
    z: np.ndarray
    image: np.ndarray  # uint8 (Z, H, W)
    labels: np.ndarray  # uint8 class indices of the setting (Z, H, W)
    z_offset: int = 0  # absolute volume z of the cube's slice 0

    @property
    def depth(self) -> int:
        return int(self.image.shape[0])


def contiguous_runs(z: np.ndarray) -> list[np.ndarray]:
    """Split sorted slice indices into runs of consecutive values."""
    z = np.sort(np.asarray(z, dtype=np.int64))
    if z.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(z) != 1) + 1
    return [run for run in np.split(z, breaks) if run.size]


def normalise(image: np.ndarray, mean: float, std: float) -> np.ndarray:
    """uint8 gray values -> float32 scaled to [0, 1] and standardised with training statistics."""
    return ((np.asarray(image, dtype=np.float32) / 255.0) - mean) / std


def intensity_stats(blocks: Sequence[Block]) -> tuple[float, float]:
    """Mean and standard deviation of the [0, 1]-scaled gray values of the (training) blocks."""
    total = sum(b.image.size for b in blocks)
    mean = sum(float(b.image.astype(np.float64).sum()) for b in blocks) / (255.0 * total)
    sq = sum(float(np.square(b.image.astype(np.float64) / 255.0).sum()) for b in blocks) / total
    return mean, max(float(np.sqrt(max(sq - mean**2, 0.0))), 1e-6)


def patch_origins(blocks: Sequence[Block], depth: int) -> list[tuple[int, int]]:
    """``(block, first slice)`` of every training sample: each slice (``depth`` 1) or every
    non-overlapping ``depth``-slice subvolume of each block (a shorter remainder is dropped)."""
    origins = []
    for i, block in enumerate(blocks):
        origins += [(i, z0) for z0 in range(0, block.depth - depth + 1, depth)]
    return origins


@dataclass(frozen=True)
class AugmentDraws:
    """The random choices of one training patch: a coin per flip axis (x, y, z) and the number
    ``k`` of 90-degree rotations."""

    flip_x: int
    flip_y: int
    flip_z: int
    k: int


def draw_augmentation() -> AugmentDraws:
    """Draw one patch's choices from torch's global generator (seeded per run), always in this
    order -- three coins, then ``k`` -- whether or not a transform is enabled, so that the
    generator's stream (and every later crop) does not depend on the augmentation settings."""
    coins = torch.randint(0, 2, (3,)).tolist()
    k = int(torch.randint(0, 4, (1,)).item())
    return AugmentDraws(int(coins[0]), int(coins[1]), int(coins[2]), k)


def apply_augmentation(
    image: np.ndarray, labels: np.ndarray, draws: AugmentDraws, flip: bool, rot90: bool, flip_z: bool
) -> tuple[np.ndarray, np.ndarray]:
    """``image`` and ``labels`` ``(..., H, W)`` transformed identically as ``draws`` select: flips
    of the drawn in-plane axes (and of z for subvolumes when ``flip_z``), then ``k`` rotations by
    90 degrees in the y-x plane (square patches only).

    NumPy views (``np.flip``, ``np.rot90``), voxel for voxel what MONAI's ``Flipd`` and
    ``Rotate90d`` give (``tests/pipelines/segmentation/test_segmentation_augmentation.py``) at
    0.03 ms a patch instead of MONAI's 3.6 ms (its metadata tracking per call: 0.6 s CPU of
    each base-profile training's 160 patches).
    """
    if flip:
        axes = [axis for axis, coin in ((-1, draws.flip_x), (-2, draws.flip_y)) if coin]
        if flip_z and image.ndim == 3 and draws.flip_z:
            axes.append(0)
        if axes:
            image, labels = np.flip(image, tuple(axes)), np.flip(labels, tuple(axes))
    if rot90 and draws.k and image.shape[-1] == image.shape[-2]:
        image, labels = np.rot90(image, draws.k, axes=(-2, -1)), np.rot90(labels, draws.k, axes=(-2, -1))
    return image, labels


def augment(
    image: np.ndarray, labels: np.ndarray, flip: bool, rot90: bool, flip_z: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Random flips (each in-plane axis, and z for subvolumes when ``flip_z``) and a random
    multiple of 90 degrees rotation in the y-x plane, the same for image and labels.

    Arrays are ``(..., H, W)``; the choices come from torch's global generator (seeded per run,
    :func:`draw_augmentation`) and are applied by :func:`apply_augmentation`.
    """
    return apply_augmentation(image, labels, draw_augmentation(), flip, rot90, flip_z)


class PatchDataset(Dataset):
    """Training samples: ``x`` float32 ``(1, [D,] h, w)`` and ``y`` int64 ``(1, [D,] h, w)``.

    ``dims`` 2: one slice per sample; ``dims`` 3: ``depth`` consecutive slices. ``crop_yx``: side
    of the random in-plane crop (the whole slice when it is at least the slice size).
    """

    def __init__(
        self,
        blocks: Sequence[Block],
        dims: int,
        depth: int,
        crop_yx: int,
        mean: float,
        std: float,
        flip: bool = True,
        rot90: bool = True,
        flip_z: bool = True,
    ) -> None:
        self.blocks = list(blocks)
        self.dims = int(dims)
        self.depth = int(depth) if self.dims == 3 else 1
        self.origins = patch_origins(self.blocks, self.depth)
        if not self.origins:
            raise ValueError(f"No training samples: every training block is shorter than {self.depth} slices")
        self.crop_yx = int(crop_yx)
        self.mean, self.std = float(mean), float(std)
        self.flip, self.rot90, self.flip_z = bool(flip), bool(rot90), bool(flip_z)

    def __len__(self) -> int:
        return len(self.origins)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        block_index, z0 = self.origins[index]
        block = self.blocks[block_index]
        _, height, width = block.image.shape
        ch, cw = min(self.crop_yx, height), min(self.crop_yx, width)
        y0 = int(torch.randint(0, height - ch + 1, (1,)).item())
        x0 = int(torch.randint(0, width - cw + 1, (1,)).item())
        window = (slice(z0, z0 + self.depth), slice(y0, y0 + ch), slice(x0, x0 + cw))
        image, labels = block.image[window], block.labels[window]
        if self.dims == 2:
            image, labels = image[0], labels[0]
        image, labels = augment(image, labels, self.flip, self.rot90, self.flip_z)
        x = torch.from_numpy(normalise(np.ascontiguousarray(image), self.mean, self.std))[None]
        y = torch.from_numpy(np.ascontiguousarray(labels).astype(np.int64))[None]
        return x, y


class SegmentationModule(EpochHistoryModule):
    """Trains a segmentation network on ``(x, y)`` batches with Dice + cross-entropy; per epoch
    the mean loss and the learning rate in :attr:`history`."""

    def __init__(
        self,
        net: nn.Module,
        lr: float,
        weight_decay: float = 0.0,
        lambda_ce: float = 1.0,
        lambda_dice: float = 1.0,
        class_weights: Sequence[float] | None = None,
        scheduler: str = "onecycle",
        pct_start: float = 0.3,
    ) -> None:
        super().__init__()
        self.net = net
        self.lr, self.weight_decay = float(lr), float(weight_decay)
        self.scheduler, self.pct_start = str(scheduler), float(pct_start)
        weight = torch.tensor(class_weights, dtype=torch.float32) if class_weights else None
        # Dice over the whole batch (batch=True) so that a class missing from one patch does
        # not dominate; softmax over classes, targets as class indices.
        self.loss = DiceCELoss(
            to_onehot_y=True,
            softmax=True,
            batch=True,
            lambda_ce=float(lambda_ce),
            lambda_dice=float(lambda_dice),
            weight=weight,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:  # noqa: ARG002
        x, y = batch
        loss = self.loss(self.net(x), y)
        self.record_loss(loss)
        self.log("train_loss", loss, prog_bar=True, on_step=True, on_epoch=False, batch_size=x.shape[0])
        return loss

    def configure_optimizers(self) -> Any:
        # foreach: one multi-tensor update instead of a Python loop over ~90 parameters; on the
        # CPU bit for bit the per-tensor loop's values (checked in the tests), ~10 % less time.
        optimizer = torch.optim.AdamW(self.net.parameters(), lr=self.lr, weight_decay=self.weight_decay, foreach=True)
        total = max(int(self.trainer.estimated_stepping_batches), 1)
        scheduler: torch.optim.lr_scheduler.LRScheduler
        if self.scheduler == "onecycle":
            scheduler = torch.optim.lr_scheduler.OneCycleLR(
                optimizer, max_lr=self.lr, total_steps=total, pct_start=self.pct_start
            )
        elif self.scheduler == "cosine":
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
        elif self.scheduler in ("none", "constant"):
            return optimizer
        else:
            raise ValueError(
                f"Parameter 'segmentation.train.scheduler' must be onecycle, cosine or none, not {self.scheduler!r}"
            )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def sliding_window_logits(
    net: Callable[[torch.Tensor], torch.Tensor],
    volume: torch.Tensor,
    roi_size: Sequence[int],
    sw_batch_size: int = 4,
    overlap: float = 0.0,
    mode: str = "constant",
) -> torch.Tensor:
    """Logits of ``net`` over ``volume`` ``(B, C, *spatial)`` by MONAI's sliding-window inferer.

    The window is clipped to the volume on each axis, so a volume that fits in one window is a
    single direct forward pass; a larger one is covered by windows (blended with ``mode``).
    """
    spatial = tuple(volume.shape[2:])
    roi = tuple(min(int(r), int(s)) for r, s in zip(roi_size, spatial, strict=True))
    # ``net`` returns one tensor, so MONAI returns one tensor (its annotation also allows tuples and dicts).
    logits = sliding_window_inference(volume, roi, int(sw_batch_size), net, overlap=float(overlap), mode=mode)
    return cast(torch.Tensor, logits)


@torch.no_grad()
def predict_block(
    net: nn.Module,
    image: np.ndarray,
    dims: int,
    mean: float,
    std: float,
    roi_yx: int,
    depth: int,
    sw_batch_size: int = 4,
    overlap: float = 0.0,
    mode: str = "constant",
    slices_per_batch: int = 32,
    device: torch.device | str = "cpu",
    autocast: Any = None,
) -> np.ndarray:
    """Class index per voxel (uint8, same shape as ``image`` ``(Z, H, W)``)."""
    import contextlib

    net.eval()
    device = torch.device(device)
    ctx = autocast if autocast is not None else contextlib.nullcontext()
    volume = torch.from_numpy(normalise(image, mean, std))
    out = np.empty(image.shape, dtype=np.uint8)
    with ctx:
        if dims == 2:
            for z0 in range(0, image.shape[0], int(slices_per_batch)):
                chunk = volume[z0 : z0 + int(slices_per_batch), None].to(device)
                logits = sliding_window_logits(net, chunk, (roi_yx, roi_yx), sw_batch_size, overlap, mode)
                out[z0 : z0 + chunk.shape[0]] = logits.float().argmax(1).to(torch.uint8).cpu().numpy()
        else:
            logits = sliding_window_logits(
                net, volume[None, None].to(device), (depth, roi_yx, roi_yx), sw_batch_size, overlap, mode
            )
            out[:] = logits.float().argmax(1)[0].to(torch.uint8).cpu().numpy()
    return out
