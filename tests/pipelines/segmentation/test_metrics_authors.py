"""The authors' Task 2 IoU (``iou_authors``) on real masks, held to segmentation_models_pytorch.

The MTNeuro code (scripts/task2_main.py, lines 212-245 and 280) calls ``smp.metrics.get_stats``
per test sample and ``smp.metrics.iou_score(..., reduction=None)``, then averages over samples;
a class absent from both prediction and truth of a sample scores 1. The reference below calls
smp directly on the stacked samples; the meter must agree to 1e-6, for 2D samples (slices) and
3D samples (subvolumes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import segmentation_models_pytorch as smp
import torch

from mtneuro.metrics import SegmentationMeter

MASKS = Path(__file__).resolve().parents[2] / "data" / "prasad2020" / "pixel_labels_128.npz"
NUM_CLASSES = 4  # the 4-class setting: background, vessel, cell, axon (CTX and ZI have no axon)


@pytest.fixture(scope="module")
def planted() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per region: (prediction, truth) (32, 128, 128). Predictions are the real masks shifted by
    two pixels, with 2 % of the pixels relabelled at random and, in some slices, a class erased
    (missed) or planted (predicted where absent)."""
    rng = np.random.default_rng(24)
    data = np.load(MASKS)
    out = {}
    for region in ("CTX", "STR", "VP", "ZI"):
        truth = data[region].astype(np.int64)
        pred = np.roll(truth, shift=(2, -2), axis=(1, 2)).copy()
        noise = rng.random(pred.shape) < 0.02
        pred[noise] = rng.integers(0, NUM_CLASSES, int(noise.sum()))
        pred[3][pred[3] == 2] = 0  # cells missed in slice 3
        pred[5][pred[5] == 1] = 0  # vessels missed in slice 5
        if region in ("CTX", "ZI"):  # no axons in the truth: planted in slice 7 only, else absent
            pred[pred == 3] = 0
            pred[7, :4, :4] = 3
        out[region] = (pred, truth)
    return out


def smp_reference(samples_pred: list[torch.Tensor], samples_truth: list[torch.Tensor]) -> np.ndarray:
    """smp's per-class IoU averaged over samples, as the authors' script computes it."""
    stats = [
        smp.metrics.get_stats(p[None], t[None], mode="multiclass", num_classes=NUM_CLASSES)
        for p, t in zip(samples_pred, samples_truth, strict=True)
    ]
    tp, fp, fn, tn = (torch.cat([s[i] for s in stats]) for i in range(4))
    iou = smp.metrics.iou_score(tp, fp, fn, tn, reduction=None)
    return (iou.sum(0) / len(iou)).double().numpy()


def test_authors_iou_2d_equals_smp_per_slice(planted: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    meter = SegmentationMeter(NUM_CLASSES)
    preds, truths = [], []
    for pred, truth in planted.values():
        meter.update(pred, truth)
        preds += [torch.from_numpy(p) for p in pred]
        truths += [torch.from_numpy(t) for t in truth]
    scores = meter.compute()
    reference = smp_reference(preds, truths)
    assert scores.n_samples == 4 * 32
    np.testing.assert_allclose(scores.iou_authors, reference, atol=1e-6, rtol=0)
    assert scores.mean_iou_authors == pytest.approx(float(reference.mean()), abs=1e-6)
    # absent classes score 1 per sample: the axon IoU is lifted by the CTX/ZI slices without
    # axons in truth or prediction, so it lies above the present-only per-slice mean
    absent, present_sum = _axon_slices(planted)
    assert absent >= 62
    assert scores.iou_authors[3] == pytest.approx((absent + present_sum) / 128, abs=1e-6)
    assert scores.iou_authors[3] > scores.iou_per_image[3] + 0.1


def _axon_slices(planted: dict[str, tuple[np.ndarray, np.ndarray]]) -> tuple[int, float]:
    """Slices without axons in truth and prediction, and the sum of the axon IoU of the others."""
    absent, total = 0, 0.0
    for pred, truth in planted.values():
        for p, t in zip(pred, truth, strict=True):
            union = np.sum((p == 3) | (t == 3))
            if union:
                total += np.sum((p == 3) & (t == 3)) / union
            else:
                absent += 1
    return absent, total


def test_authors_iou_3d_equals_smp_per_subvolume(planted: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    depth = 8
    meter = SegmentationMeter(NUM_CLASSES, sample_depth=depth)
    preds, truths = [], []
    for pred, truth in planted.values():
        # one test block of 12 slices per region: a whole 8-slice subvolume and a 4-slice remainder
        block_p, block_t = pred[10:22], truth[10:22]
        meter.update(torch.from_numpy(block_p), block_t)
        for z0 in (0, 8):
            preds.append(torch.from_numpy(block_p[z0 : z0 + depth]))
            truths.append(torch.from_numpy(block_t[z0 : z0 + depth]))
    scores = meter.compute()
    reference = smp_reference(preds, truths)
    assert scores.n_samples == 8
    np.testing.assert_allclose(scores.iou_authors, reference, atol=1e-6, rtol=0)
    # a subvolume is one sample, not 8 (or 4) slices: the slice-wise smp average differs
    slice_wise = smp_reference([s for p in preds for s in p], [s for t in truths for s in t])
    assert np.abs(slice_wise - scores.iou_authors).max() > 1e-3


def test_authors_iou_by_hand_absent_class_scores_one() -> None:
    # two 2x2 samples; class 2 is in neither map of the first sample (scores 1 there) and
    # predicted but absent in the second (scores 0)
    truth = np.array([[[0, 1], [1, 0]], [[0, 0], [1, 1]]])
    pred = np.array([[[0, 1], [0, 0]], [[2, 0], [1, 1]]])
    meter = SegmentationMeter(3)
    meter.update(pred, truth)
    scores = meter.compute()
    np.testing.assert_allclose(scores.iou_authors, [(2 / 3 + 1 / 2) / 2, (1 / 2 + 1) / 2, (1 + 0) / 2], atol=1e-12)
    assert scores.iou_per_image[2] == 0.0  # present-only: sample 1 left out, sample 2 scores 0
    frame = scores.to_frame(["background", "vessel", "cell"])
    assert frame.columns.tolist()[3:6] == ["iou", "iou_per_image", "iou_authors"]
    assert frame.loc[frame["class"] == "mean", "iou_authors"].item() == pytest.approx(scores.iou_authors.mean())


def test_sample_depth_must_be_positive() -> None:
    with pytest.raises(ValueError, match="sample_depth must be >= 1"):
        SegmentationMeter(3, sample_depth=0)
