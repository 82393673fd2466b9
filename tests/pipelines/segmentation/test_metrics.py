"""Metrics (mtneuro.metrics) against an independent numpy computation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mtneuro.metrics import SegmentationMeter, SegmentationScores


def segmentation_scores(preds, targets, num_classes: int) -> SegmentationScores:
    """The scores of one or several label maps, streamed through one meter as a run does."""
    meter = SegmentationMeter(num_classes)
    pairs = zip(preds, targets, strict=True) if isinstance(preds, list) else [(preds, targets)]
    for pred, target in pairs:
        meter.update(pred, target)
    return meter.compute()


def numpy_f1_iou(preds: list[np.ndarray], targets: list[np.ndarray], num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-class F1 and IoU from a confusion matrix summed over every pixel (independent of torchmetrics)."""
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    for p, t in zip(preds, targets, strict=True):
        np.add.at(confusion, (t.ravel(), p.ravel()), 1)
    tp = np.diag(confusion).astype(float)
    fp = confusion.sum(axis=0) - tp
    fn = confusion.sum(axis=1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = 2 * tp / (2 * tp + fp + fn)
        iou = tp / (tp + fp + fn)
    return f1, iou


def hand_made() -> tuple[list[np.ndarray], list[np.ndarray]]:
    # Two 4x4 "test images"; class 2 (cell) is absent from the first image's ground truth but
    # predicted once there, and present in the second.
    t1 = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [0, 0, 0, 0], [3, 3, 0, 0]])
    p1 = np.array([[0, 0, 1, 0], [0, 2, 1, 1], [0, 0, 0, 0], [3, 0, 0, 0]])
    t2 = np.array([[2, 2, 0, 0], [2, 2, 0, 0], [0, 0, 0, 3], [0, 0, 3, 3]])
    p2 = np.array([[2, 2, 0, 0], [2, 0, 0, 0], [0, 1, 0, 3], [0, 0, 3, 0]])
    return [p1, p2], [t1, t2]


def test_per_class_f1_iou_match_numpy_over_all_pixels():
    preds, targets = hand_made()
    scores = segmentation_scores(preds, targets, num_classes=4)
    f1, iou = numpy_f1_iou(preds, targets, 4)
    np.testing.assert_allclose(scores.f1, f1, rtol=1e-6)
    np.testing.assert_allclose(scores.iou, iou, rtol=1e-6)
    assert scores.mean_f1 == pytest.approx(f1.mean())
    assert scores.mean_iou == pytest.approx(iou.mean())
    # the counts behind them
    assert scores.support.tolist() == [np.sum(np.concatenate([t.ravel() for t in targets]) == c) for c in range(4)]
    assert scores.confusion.sum() == 32


def test_pixels_accumulate_over_images_not_averaged_per_image():
    preds, targets = hand_made()
    pooled = segmentation_scores(preds, targets, num_classes=4)
    # per-image F1 of class 2 on image 1 would be 0 (absent, predicted once); pooled it is not
    per_image = segmentation_scores(preds[:1], targets[:1], num_classes=4)
    assert per_image.f1[2] == 0.0
    assert 0.0 < pooled.f1[2] < 1.0
    # streaming updates (e.g. one cube at a time, torch tensors) give the same numbers
    meter = SegmentationMeter(4)
    for p, t in zip(preds, targets, strict=True):
        meter.update(torch.from_numpy(p), torch.from_numpy(t))
    np.testing.assert_allclose(meter.compute().iou, pooled.iou)


def test_iou_per_image_by_hand():
    preds, targets = hand_made()
    scores = segmentation_scores(preds, targets, num_classes=4)
    # image 1: bg 9/12, vessel 3/4, cell 0/1 (predicted once, absent), axon 1/2;
    # image 2: bg 8/11, vessel 0/1 (predicted once, absent), cell 3/4, axon 2/3
    expected = [(0.75 + 8 / 11) / 2, (0.75 + 0.0) / 2, (0.0 + 0.75) / 2, (0.5 + 2 / 3) / 2]
    np.testing.assert_allclose(scores.iou_per_image, expected, rtol=1e-12)
    assert scores.mean_iou_per_image == pytest.approx(np.mean(expected))
    # the pooled IoU is a different average (TP/FP/FN summed first)
    assert scores.iou[0] == pytest.approx(17 / 23) and scores.iou_per_image[0] != pytest.approx(17 / 23)


def test_iou_per_image_leaves_out_images_without_the_class():
    # a (2, 2, 2) stack is two images; class 2 is in neither map of image A, class 1 in neither of
    # image B, class 3 nowhere
    target = np.array([[[0, 1], [1, 0]], [[2, 2], [0, 0]]])
    pred = np.array([[[0, 1], [0, 0]], [[2, 0], [0, 0]]])
    scores = segmentation_scores(pred, target, num_classes=4)
    np.testing.assert_allclose(scores.iou_per_image[:3], [2 / 3, 0.5, 0.5], rtol=1e-12)  # not 0.25 for 1 and 2
    assert np.isnan(scores.iou_per_image[3])
    assert scores.mean_iou_per_image == pytest.approx(5 / 9)
    frame = scores.to_frame(["background", "vessel", "cell", "axon"])
    assert frame.columns.tolist()[3:5] == ["iou", "iou_per_image"]
    assert frame.loc[frame["class"] == "mean", "iou_per_image"].item() == pytest.approx(5 / 9)
    assert frame.loc[frame["class"] == "vessel", "iou_per_image"].item() == pytest.approx(0.5)


def test_iou_per_image_matches_torchmetrics_image_by_image():
    from torchmetrics.classification import MulticlassJaccardIndex

    rng = np.random.default_rng(3)
    num_classes = 4
    cubes_t, cubes_p = [], []
    for depth, size in [(5, 12), (3, 9)]:  # two test cubes (Z, H, W) of different shapes
        t = rng.integers(0, num_classes, (depth, size, size))
        t[0][t[0] == 3] = 0  # class 3 absent from some slices' ground truth
        t[1][t[1] == 2] = 1
        p = np.where(rng.random(t.shape) < 0.6, t, rng.integers(0, num_classes - 1, t.shape))
        p[0][p[0] == 3] = 0  # ... and from their predictions: those slices are left out for class 3
        cubes_t.append(t)
        cubes_p.append(p)
    meter = SegmentationMeter(num_classes)
    for p, t in zip(cubes_p, cubes_t, strict=True):
        meter.update(torch.from_numpy(p), t)
    ours = meter.compute()
    jaccard = MulticlassJaccardIndex(num_classes, average="none", zero_division=float("nan"))
    per_image = torch.stack(
        [
            jaccard(torch.from_numpy(p[z]).reshape(-1), torch.from_numpy(t[z]).reshape(-1))
            for p, t in zip(cubes_p, cubes_t, strict=True)
            for z in range(t.shape[0])
        ]
    )
    assert per_image.shape == (8, num_classes) and torch.isnan(per_image).any()
    reference = torch.nanmean(per_image.double(), dim=0).numpy()
    np.testing.assert_allclose(ours.iou_per_image, reference, rtol=1e-6)
    assert ours.mean_iou_per_image == pytest.approx(float(reference.mean()), rel=1e-6)
    # the pooled values are unchanged by the per-image bookkeeping
    _, iou = numpy_f1_iou([p.ravel() for p in cubes_p], [t.ravel() for t in cubes_t], num_classes)
    np.testing.assert_allclose(ours.iou, iou, rtol=1e-6)


def test_class_absent_everywhere_is_nan_and_left_out_of_the_mean():
    t = np.array([[0, 0, 1], [1, 0, 0]])
    p = np.array([[0, 1, 1], [1, 0, 0]])
    scores = segmentation_scores(p, t, num_classes=3)  # class 2 neither occurs nor is predicted
    assert np.isnan(scores.f1[2]) and np.isnan(scores.iou[2])
    f1, iou = numpy_f1_iou([p], [t], 3)
    np.testing.assert_allclose(scores.f1[:2], f1[:2])
    assert scores.mean_iou == pytest.approx(np.mean(iou[:2]))
    frame = scores.to_frame(["background", "vessel", "cell"])
    assert frame["class"].tolist() == ["background", "vessel", "cell", "mean"]
    assert frame.loc[frame["class"] == "mean", "iou"].item() == pytest.approx(np.mean(iou[:2]))


def test_predicted_but_absent_class_scores_zero():
    t = np.zeros((3, 3), dtype=int)
    p = t.copy()
    p[0, 0] = 1
    scores = segmentation_scores(p, t, num_classes=2)
    assert scores.f1[1] == 0.0 and scores.iou[1] == 0.0


def test_labels_out_of_range_are_rejected():
    with pytest.raises(ValueError, match=r"Target labels must lie in \[0, 3\); got \[0, 5\]"):
        segmentation_scores(np.zeros(4, dtype=int), np.array([0, 1, 2, 5]), num_classes=3)
    with pytest.raises(ValueError, match=r"Target labels must lie in \[0, 3\); got \[-1, 2\]"):
        segmentation_scores(np.zeros(4, dtype=int), np.array([0, 1, 2, -1]), num_classes=3)


def test_predictions_out_of_range_are_rejected():
    target = np.array([0, 1, 2, 2])
    with pytest.raises(ValueError, match=r"Predicted labels must lie in \[0, 3\); got \[0, 3\]"):
        segmentation_scores(np.array([0, 1, 3, 2]), target, num_classes=3)
    meter = SegmentationMeter(3)
    with pytest.raises(ValueError, match=r"Predicted labels must lie in \[0, 3\); got \[-2, 2\]"):
        meter.update(torch.tensor([0, -2, 2, 2]), torch.from_numpy(target))
    meter.update(np.array([0, 1, 2, 2]), target)  # the rejected maps left nothing behind
    assert meter.compute().confusion.sum() == 4
