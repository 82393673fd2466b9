"""Evaluation metrics shared by the tasks, computed with torchmetrics.

Segmentation (Task 2) -- averaging used everywhere in this project:

* **per class, over all pixels of a run**: the true/false positives and false negatives of each
  class are summed over every test pixel of the run (every slice of every test cube; the
  torchmetrics setting ``average="none"``, ``multidim_average="global"``), and F1 and IoU are
  computed once from those sums. A class missing from some test images therefore counts only
  where it occurs; it is not averaged image by image.
* ``F1_c = 2 TP / (2 TP + FP + FN)``, ``IoU_c = TP / (TP + FP + FN)``.
* a class that neither occurs in the ground truth nor is predicted anywhere in the run has no
  defined F1/IoU: it is reported as NaN (not 0 or 1) and left out of the mean.
* **mean over classes** (the paper's "Avg."): the unweighted mean of the per-class values
  (macro average), background included.

A second IoU, **per image, present classes only** (``iou_per_image``; this project's own, not the
authors'): each image -- a 2D slice, the last two axes of a label map (every slice of a 3D model's
prediction is an image too) -- gets ``IoU_c = |pred_c ∩ gt_c| / |pred_c ∪ gt_c|``; the per-class
value is the mean over the images, an image where class ``c`` is neither in the ground truth nor
predicted being left out (NaN-excluded, as the undefined pooled values above); the mean over
classes is the unweighted mean of those per-class image averages (a class absent from every image
is NaN and left out).

A third IoU, **the authors'** (``iou_authors``), is the number the paper's Table 2 prints, computed
with segmentation_models_pytorch's own functions exactly as the MTNeuro code calls them
(``scripts/task2_main.py``: ``smp.metrics.get_stats(..., mode="multiclass")`` per test batch, lines
212-216; ``smp.metrics.iou_score(..., reduction=None)`` and ``.sum(0) / len``, lines 244-245; the
printed "new IoU", line 280): one row of TP/FP/FN/TN per test **sample** and class, the IoU of each
(sample, class) with smp's default ``zero_division=1.0`` -- a class absent from both prediction
and truth of a sample scores **1** --, the mean over samples per class, and the unweighted mean over
classes. A sample is what the authors' test loader yields: one 2D slice for a 2D model, one
subvolume of ``sample_depth`` consecutive slices for a 3D model (``volume_z`` = 8 in their
``taskconfig/task2_3D_*.json``; ``MTNeuro/bossdbdataset.py`` cuts the test range into such
subvolumes), not each of its slices. A test block whose depth is not a multiple of
``sample_depth`` ends with one shorter subvolume.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torchmetrics import MetricCollection
from torchmetrics.classification import (
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassJaccardIndex,
    MulticlassStatScores,
)

AVERAGING = (
    "per class: TP/FP/FN summed over all test pixels of a run (torchmetrics average='none', "
    "multidim_average='global'); mean: unweighted mean over classes; a class absent from both "
    "ground truth and prediction is NaN and left out of the mean"
)
PER_IMAGE_AVERAGING = (
    "iou_per_image: IoU of each class in each 2D image (slice), averaged over the images where the "
    "class occurs in ground truth or prediction (present classes only; not the authors' definition); "
    "mean: unweighted over classes"
)
AUTHORS_AVERAGING = (
    "iou_authors: smp.metrics.get_stats per test sample (2D: a slice; 3D: a subvolume of sample_depth "
    "slices) and smp.metrics.iou_score(reduction=None, zero_division=1.0: a class absent from both "
    "prediction and truth scores 1), mean over samples per class, unweighted mean over classes "
    "(MTNeuro scripts/task2_main.py, lines 212-245 and 280)"
)


def _as_tensor(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    return x if isinstance(x, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(x))


class SegmentationMeter:
    """Accumulates per-class F1, IoU (pooled and per image) and the confusion matrix over any
    number of label maps.

    ``update(pred, target)`` takes integer label maps of the same shape (any number of axes,
    numpy or torch, on any device) with values in ``[0, num_classes)`` -- a value outside is a
    ``ValueError`` naming which of the two is out of range (torchmetrics' own checks are off).
    For the per-image IoU the last two axes are one image and any leading axes count images
    (``(Z, H, W)``: Z images); a map of fewer than two axes is one image. For the authors' IoU one
    ``update`` is one contiguous block of slices, cut into samples of ``sample_depth`` consecutive
    slices (the last one shorter where the depth does not divide). ``compute()`` returns
    :class:`SegmentationScores`.
    """

    def __init__(self, num_classes: int, device: torch.device | str = "cpu", sample_depth: int = 1) -> None:
        self.num_classes = int(num_classes)
        if int(sample_depth) < 1:
            raise ValueError(f"sample_depth must be >= 1 (slices per test sample), got {sample_depth}")
        #: Slices per test sample of the authors' IoU (1: 2D models; a 3D model's subvolume depth).
        self.sample_depth = int(sample_depth)
        #: Per test sample (authors' definition): TP, FP, FN, TN of every class, from smp.
        self._sample_stats: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]] = []
        kwargs: dict[str, Any] = {"num_classes": self.num_classes, "average": "none", "validate_args": False}
        self.metrics = MetricCollection(
            {
                "f1": MulticlassF1Score(multidim_average="global", **kwargs),
                "iou": MulticlassJaccardIndex(**kwargs),
                "confusion": MulticlassConfusionMatrix(num_classes=self.num_classes, validate_args=False),
            },
            compute_groups=False,
        ).to(device)
        # per image (sample) TP/FP/TN/FN/support of every class, for the per-image IoU
        self.per_image = MulticlassStatScores(
            num_classes=self.num_classes, average="none", multidim_average="samplewise", validate_args=False
        ).to(device)
        self.device = torch.device(device)

    def update(self, pred: np.ndarray | torch.Tensor, target: np.ndarray | torch.Tensor) -> None:
        pred_full = _as_tensor(pred)
        target_full = _as_tensor(target)
        pred_t = pred_full.to(self.device).long().reshape(-1)
        target_t = target_full.to(self.device).long().reshape(-1)
        if pred_t.shape != target_t.shape:
            raise ValueError(f"Prediction and target sizes differ: {tuple(pred.shape)} vs {tuple(target.shape)}")
        for name, values in (("Target", target_t), ("Predicted", pred_t)):
            if values.numel() and (int(values.min()) < 0 or int(values.max()) >= self.num_classes):
                raise ValueError(
                    f"{name} labels must lie in [0, {self.num_classes}); got [{int(values.min())}, {int(values.max())}]"
                )
        self.metrics.update(pred_t, target_t)
        if pred_t.numel():
            shape = tuple(target_full.shape)
            n_images = int(np.prod(shape[:-2])) if len(shape) >= 2 else 1
            self.per_image.update(pred_t.reshape(n_images, -1), target_t.reshape(n_images, -1))
            self._update_samples(pred_t.reshape(n_images, -1), target_t.reshape(n_images, -1))

    def _update_samples(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """smp's per-sample TP/FP/FN/TN of images ``(Z, pixels)`` grouped into samples of
        ``sample_depth`` consecutive images (whole ones batched, then the shorter remainder)."""
        import segmentation_models_pytorch as smp

        depth = self.sample_depth
        n_full = (len(pred) // depth) * depth
        parts = [(pred[:n_full], target[:n_full], n_full // depth), (pred[n_full:], target[n_full:], 1)]
        for p, t, n_samples in parts:
            if len(p) == 0:
                continue
            stats = smp.metrics.get_stats(
                p.reshape(n_samples, -1).cpu(),
                t.reshape(n_samples, -1).cpu(),
                mode="multiclass",
                num_classes=self.num_classes,
            )
            self._sample_stats.append(stats)

    def _iou_authors(self) -> tuple[np.ndarray, int]:
        """Per class: smp's IoU of every sample (zero_division 1.0), averaged over the samples."""
        import segmentation_models_pytorch as smp

        if not self._sample_stats:
            return np.full(self.num_classes, np.nan), 0
        tp, fp, fn, tn = (torch.cat([s[i] for s in self._sample_stats]) for i in range(4))
        per_sample = smp.metrics.iou_score(tp, fp, fn, tn, reduction=None)
        return (per_sample.sum(0) / len(per_sample)).double().numpy(), len(per_sample)

    def _iou_per_image(self) -> np.ndarray:
        """Per class: the mean over images of the image's IoU, images without the class left out."""
        if not self.per_image.update_count:
            return np.full(self.num_classes, np.nan)
        stats = self.per_image.compute().reshape(-1, self.num_classes, 5).cpu().numpy().astype(np.float64)
        tp, fp, fn = stats[..., 0], stats[..., 1], stats[..., 3]
        union = tp + fp + fn
        with np.errstate(invalid="ignore", divide="ignore"):
            iou = np.where(union > 0, tp / np.where(union > 0, union, 1.0), np.nan)
        present = np.isfinite(iou).sum(axis=0)
        total = np.nansum(iou, axis=0)
        return np.where(present > 0, total / np.maximum(present, 1), np.nan)

    def compute(self) -> SegmentationScores:
        values = self.metrics.compute()
        confusion = values["confusion"].cpu().numpy().astype(np.int64)
        f1 = values["f1"].float().cpu().numpy().astype(np.float64)
        iou = values["iou"].float().cpu().numpy().astype(np.float64)
        support = confusion.sum(axis=1)
        predicted = confusion.sum(axis=0)
        undefined = (support + predicted) == 0
        f1[undefined] = np.nan
        iou[undefined] = np.nan
        iou_authors, n_samples = self._iou_authors()
        return SegmentationScores(
            f1=f1,
            iou=iou,
            confusion=confusion,
            iou_per_image=self._iou_per_image(),
            iou_authors=iou_authors,
            n_samples=n_samples,
        )

    def reset(self) -> None:
        self.metrics.reset()
        self.per_image.reset()
        self._sample_stats = []


@dataclass(frozen=True)
class SegmentationScores:
    """Per-class pooled F1/IoU (NaN for undefined classes), the confusion matrix (rows: truth),
    the per-class IoU averaged per image over the images where the class is present (NaN for a
    class absent from every image) and the authors' per-sample IoU (``iou_authors``, from smp)."""

    f1: np.ndarray
    iou: np.ndarray
    confusion: np.ndarray
    iou_per_image: np.ndarray
    iou_authors: np.ndarray
    #: Test samples behind ``iou_authors`` (slices for 2D, subvolumes for 3D).
    n_samples: int

    @property
    def support(self) -> np.ndarray:
        """Ground-truth pixels per class."""
        return self.confusion.sum(axis=1)

    @property
    def predicted(self) -> np.ndarray:
        """Predicted pixels per class."""
        return self.confusion.sum(axis=0)

    @property
    def mean_f1(self) -> float:
        return float(np.nanmean(self.f1)) if np.isfinite(self.f1).any() else float("nan")

    @property
    def mean_iou(self) -> float:
        return float(np.nanmean(self.iou)) if np.isfinite(self.iou).any() else float("nan")

    @property
    def mean_iou_per_image(self) -> float:
        """Unweighted mean over classes of the per-class image averages."""
        values = self.iou_per_image
        return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")

    @property
    def mean_iou_authors(self) -> float:
        """The authors' "Avg." IoU: the unweighted mean over classes of the per-sample means."""
        values = self.iou_authors
        return float(values.mean()) if np.isfinite(values).all() and len(values) else float("nan")

    def to_frame(self, class_names: Sequence[str], mean_row: bool = True) -> pd.DataFrame:
        """One row per class (``class``, ``class_index``, ``f1``, ``iou``, ``iou_per_image``,
        ``iou_authors``, ``support_pixels``, ``predicted_pixels``) and, with ``mean_row``, a ``class = "mean"`` row
        (index -1)."""
        if len(class_names) != len(self.f1):
            raise ValueError(f"{len(class_names)} class names for {len(self.f1)} classes")
        frame = pd.DataFrame(
            {
                "class": list(class_names),
                "class_index": np.arange(len(class_names)),
                "f1": self.f1,
                "iou": self.iou,
                "iou_per_image": self.iou_per_image,
                "iou_authors": self.iou_authors,
                "support_pixels": self.support,
                "predicted_pixels": self.predicted,
            }
        )
        if mean_row:
            mean = {
                "class": "mean",
                "class_index": -1,
                "f1": self.mean_f1,
                "iou": self.mean_iou,
                "iou_per_image": self.mean_iou_per_image,
                "iou_authors": self.mean_iou_authors,
                "support_pixels": int(self.support.sum()),
                "predicted_pixels": int(self.predicted.sum()),
            }
            frame = pd.concat([frame, pd.DataFrame([mean])], ignore_index=True)
        return frame
