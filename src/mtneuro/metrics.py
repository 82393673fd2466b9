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

Classification helpers (:func:`multiclass_accuracy`) follow torchmetrics' definitions too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torchmetrics import MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassJaccardIndex,
)

AVERAGING = (
    "per class: TP/FP/FN summed over all test pixels of a run (torchmetrics average='none', "
    "multidim_average='global'); mean: unweighted mean over classes; a class absent from both "
    "ground truth and prediction is NaN and left out of the mean"
)


def _as_tensor(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    return x if isinstance(x, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(x))


class SegmentationMeter:
    """Accumulates per-class F1, IoU and the confusion matrix over any number of label maps.

    ``update(pred, target)`` takes integer label maps of the same shape (any number of axes,
    numpy or torch, on any device) with values in ``[0, num_classes)`` -- a value outside is a
    ``ValueError`` naming which of the two is out of range (torchmetrics' own checks are off);
    ``compute()`` returns :class:`SegmentationScores`.
    """

    def __init__(self, num_classes: int, device: torch.device | str = "cpu") -> None:
        self.num_classes = int(num_classes)
        kwargs = {"num_classes": self.num_classes, "average": "none", "validate_args": False}
        self.metrics = MetricCollection(
            {
                "f1": MulticlassF1Score(multidim_average="global", **kwargs),
                "iou": MulticlassJaccardIndex(**kwargs),
                "confusion": MulticlassConfusionMatrix(num_classes=self.num_classes, validate_args=False),
            },
            compute_groups=False,
        ).to(device)
        self.device = torch.device(device)

    def update(self, pred: np.ndarray | torch.Tensor, target: np.ndarray | torch.Tensor) -> None:
        pred_t = _as_tensor(pred).to(self.device).long().reshape(-1)
        target_t = _as_tensor(target).to(self.device).long().reshape(-1)
        if pred_t.shape != target_t.shape:
            raise ValueError(f"Prediction and target sizes differ: {tuple(pred.shape)} vs {tuple(target.shape)}")
        for name, values in (("Target", target_t), ("Predicted", pred_t)):
            if values.numel() and (int(values.min()) < 0 or int(values.max()) >= self.num_classes):
                raise ValueError(
                    f"{name} labels must lie in [0, {self.num_classes}); got [{int(values.min())}, {int(values.max())}]"
                )
        self.metrics.update(pred_t, target_t)

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
        return SegmentationScores(f1=f1, iou=iou, confusion=confusion)

    def reset(self) -> None:
        self.metrics.reset()


@dataclass(frozen=True)
class SegmentationScores:
    """Per-class F1/IoU (NaN for undefined classes) and the confusion matrix (rows: truth)."""

    f1: np.ndarray
    iou: np.ndarray
    confusion: np.ndarray

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

    def to_frame(self, class_names: Sequence[str], mean_row: bool = True) -> pd.DataFrame:
        """One row per class (``class``, ``class_index``, ``f1``, ``iou``, ``support_pixels``,
        ``predicted_pixels``) and, with ``mean_row``, a ``class = "mean"`` row (index -1)."""
        if len(class_names) != len(self.f1):
            raise ValueError(f"{len(class_names)} class names for {len(self.f1)} classes")
        frame = pd.DataFrame(
            {
                "class": list(class_names),
                "class_index": np.arange(len(class_names)),
                "f1": self.f1,
                "iou": self.iou,
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
                "support_pixels": int(self.support.sum()),
                "predicted_pixels": int(self.predicted.sum()),
            }
            frame = pd.concat([frame, pd.DataFrame([mean])], ignore_index=True)
        return frame


def segmentation_scores(
    preds: Sequence[np.ndarray | torch.Tensor] | np.ndarray | torch.Tensor,
    targets: Sequence[np.ndarray | torch.Tensor] | np.ndarray | torch.Tensor,
    num_classes: int,
) -> SegmentationScores:
    """F1/IoU per class over all pixels of ``preds``/``targets`` (arrays, or lists of arrays of
    possibly different shapes, e.g. one per test cube)."""
    meter = SegmentationMeter(num_classes)
    if isinstance(preds, (np.ndarray, torch.Tensor)):
        preds, targets = [preds], [targets]
    for pred, target in zip(preds, targets, strict=True):
        meter.update(pred, target)
    return meter.compute()


def multiclass_accuracy(
    preds: np.ndarray | torch.Tensor,
    target: np.ndarray | torch.Tensor,
    num_classes: int,
    average: str = "micro",
) -> float:
    """Accuracy of integer predictions (``micro``: fraction correct; ``macro``: balanced
    accuracy, the mean of per-class recalls over the classes present)."""
    metric = MulticlassAccuracy(num_classes=int(num_classes), average=average, validate_args=False)
    return float(metric(_as_tensor(preds).long().reshape(-1), _as_tensor(target).long().reshape(-1)))
