"""Task 2 nodes on synthetic cubes: label settings, data, patches, one run, table, figure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from mtneuro import spec
from mtneuro.pipelines.segmentation import nodes
from mtneuro.pipelines.segmentation.engine import Block, PatchDataset, augment, contiguous_runs, patch_origins
from mtneuro.segmentation_models import run_settings


def test_label_settings_follow_the_paper():
    three, four = nodes.SETTINGS["seg_3class"], nodes.SETTINGS["seg_4class"]
    raw = np.array([0, 1, 2, 3], dtype=np.uint64)
    assert three.map_labels(raw).tolist() == [0, 1, 2, 0]  # axon -> background
    assert four.map_labels(raw).tolist() == [0, 1, 2, 3]
    assert three.classes == ("background", "vessel", "cell") and four.num_classes == 4
    with pytest.raises(nodes.SegmentationError, match="pixel_labels"):
        four.map_labels(np.array([5]))
    with pytest.raises(nodes.SegmentationError, match=r"segmentation\.settings"):
        nodes.label_setting("seg_5class")


def test_prepared_blocks_follow_the_split_index(cubes, split_index, tiny_parameters):
    data = nodes.prepare_segmentation_data(cubes, split_index, tiny_parameters.segmentation)
    assert data.source == "phantom"
    assert set(data.blocks["seg_3class"]) == {"train", "val", "test"}  # the splits train and evaluation use
    four = data.blocks["seg_4class"]
    assert {b.cube_id for b in four["train"]} == {"main_CTX", "main_STR", "main_VP"}  # no ZI
    train_val = nodes._blocks(data, "seg_3class", ["train", "val"])
    assert len(train_val) == 4 and all(b.z.tolist() == list(range(26)) for b in train_val)  # merged
    test = nodes.centred_blocks(nodes._blocks(data, "seg_3class", ["test"]), 8)
    assert all(b.z.tolist() == list(range(30, 38)) for b in test)
    cube = cubes["main_STR"]
    block = next(b for b in test if b.cube_id == "main_STR")
    np.testing.assert_array_equal(block.image, cube.image[30:38])
    assert (block.labels[cube.pixel_labels[30:38] == spec.AXON] == 0).all()
    assert nodes.centred_blocks(test, None) == test  # None: every slice


def test_runs_and_patch_origins():
    assert [r.tolist() for r in contiguous_runs(np.array([5, 3, 4, 9, 10]))] == [[3, 4, 5], [9, 10]]
    blocks = [Block("a", "CTX", np.arange(20), np.zeros((20, 4, 4), np.uint8), np.zeros((20, 4, 4), np.uint8))]
    assert patch_origins(blocks, 8) == [(0, 0), (0, 8)]  # non-overlapping, remainder dropped
    assert len(patch_origins(blocks, 1)) == 20


def test_augmentation_moves_image_and_labels_together():
    import torch

    torch.manual_seed(0)
    labels = np.random.default_rng(0).integers(0, 4, (8, 16, 16)).astype(np.uint8)
    image = (labels * 50 + 7).astype(np.uint8)
    seen = set()
    for _ in range(20):
        img, lab = augment(image, labels, flip=True, rot90=True, flip_z=True)
        assert isinstance(img, np.ndarray) and img.dtype == np.uint8 and img.shape == image.shape
        np.testing.assert_array_equal(img, lab * 50 + 7)
        seen.add(img.tobytes())
    assert len(seen) > 4  # it does transform

    block = Block("a", "CTX", np.arange(8), image, labels)
    dataset = PatchDataset([block], dims=3, depth=8, crop_yx=12, mean=0.5, std=0.25)
    x, y = dataset[0]
    assert tuple(x.shape) == (1, 8, 12, 12) and tuple(y.shape) == (1, 8, 12, 12)
    assert x.dtype == torch.float32 and y.dtype == torch.int64
    np.testing.assert_allclose(x.numpy(), ((y.numpy() * 50 + 7) / 255 - 0.5) / 0.25, rtol=1e-5)


@pytest.mark.parametrize("model,setting", [("pspnet", "seg_3class"), ("unet3d", "seg_4class")])
def test_train_and_evaluate_one_run(cubes, split_index, tiny_parameters, training, model, setting):
    segmentation = tiny_parameters.segmentation
    data = nodes.prepare_segmentation_data(cubes, split_index, segmentation)
    net, predictions, rows, history = nodes.train_and_evaluate(
        data, segmentation, training, model=model, setting=setting, seed=0
    )
    label = nodes.SETTINGS[setting]
    size = cubes["main_CTX"].image.shape[-1]
    assert rows["class"].tolist() == [*label.classes, "mean"]
    assert rows[["f1", "iou", "iou_per_image"]].stack().between(0, 1).all()
    assert list(rows.columns) == list(nodes.RESULT_COLUMNS)
    assert rows["dims"].unique().tolist() == (["2D"] if model == "pspnet" else ["3D"])
    assert rows["encoder"].unique().tolist() == (["resnet18"] if model == "pspnet" else [""])
    assert rows["setting"].unique().tolist() == [label.label]
    assert rows["train_samples"].unique().tolist() == [8]  # tiny: 8 patches, batches of 4
    regions = {"main_CTX", "main_STR", "main_VP"} | ({"main_ZI"} if setting == "seg_3class" else set())
    assert set(predictions) == regions
    for p in predictions.values():
        assert p["prediction"].shape == (8, size, size) and p["prediction"].dtype == np.uint8
        assert p["z"].tolist() == list(range(30, 38))
    assert int(rows["support_pixels"].iloc[-1]) == len(regions) * 8 * size * size
    assert net.metadata["classes"] == list(label.classes) and net.factory_spec["kwargs"]["name"] == model
    assert net.metadata["train"] == run_settings(segmentation, model).train.model_dump()
    assert net.metadata["subvolume_depth"] == (1 if model == "pspnet" else 8)
    # the training curve, in the format of Task 1's training_history
    assert (history["model"], history["setting"], history["seed"], history["source"]) == (
        model,
        label.label,
        0,
        "phantom",
    )
    assert [r["epoch"] for r in history["epochs"]] == list(range(run_settings(segmentation, model).train.epochs))
    assert all(np.isfinite(r["loss"]) and np.isfinite(r["lr"]) for r in history["epochs"])
    # same seed, same result
    _, again, rows2, _ = nodes.train_and_evaluate(data, segmentation, training, model=model, setting=setting, seed=0)
    pd.testing.assert_frame_equal(rows.drop(columns="train_seconds"), rows2.drop(columns="train_seconds"))
    for cube_id, p in predictions.items():
        np.testing.assert_array_equal(again[cube_id]["prediction"], p["prediction"])


def test_training_history_has_a_record_per_epoch_with_the_optimizers_lr(cubes, split_index, tiny_parameters, training):
    """Three epochs of two steps: one record per epoch, a finite mean loss and the learning rate
    the one-cycle schedule gave the optimizer after the epoch's last step."""
    import torch

    segmentation = tiny_parameters.segmentation
    data = nodes.prepare_segmentation_data(cubes, split_index, segmentation)
    run = run_settings(segmentation, "pspnet")
    train = run.train.model_copy(update={"epochs": 3})
    assert train.scheduler == "onecycle"
    blocks = nodes._blocks(data, "seg_3class", list(train.splits))
    net, info = nodes.train_segmentation_model(
        blocks, "pspnet", 3, run.kwargs, train, training.merged(segmentation.training), seed=0
    )
    # Trained channels-last, returned in the usual layout (what saves and reads it expects).
    assert all(p.is_contiguous() for p in net.parameters())
    history = info["history"]
    assert [r["epoch"] for r in history] == [0, 1, 2] and info["steps"] == 3 * 2  # 8 patches, batches of 4
    assert all(np.isfinite(r["loss"]) and r["loss"] > 0 and r["seconds"] >= 0 for r in history)
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=train.lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=train.lr, total_steps=info["steps"], pct_start=train.pct_start
    )
    expected = []
    for _ in range(3):
        for _ in range(2):
            optimizer.step()
            schedule.step()
        expected.append(optimizer.param_groups[0]["lr"])
    assert [r["lr"] for r in history] == pytest.approx(expected)
    assert len(set(expected)) == 3  # the schedule moves: not a constant that any lr would match


def test_score_predictions_adds_iou_per_slice_and_keeps_pooled_scores():
    from mtneuro.metrics import SegmentationMeter

    label = nodes.SETTINGS["seg_3class"]
    rng = np.random.default_rng(0)
    truth = {"a": rng.integers(0, 3, (4, 6, 6)).astype(np.uint8), "b": np.zeros((2, 6, 6), dtype=np.uint8)}
    truth["b"][1, :2, :2] = 2  # cell only in one slice of cube b
    pred = {
        k: np.where(rng.random(v.shape) < 0.7, v, rng.integers(0, 3, v.shape)).astype(np.uint8)
        for k, v in truth.items()
    }
    pred["b"][0] = 0  # slice 0 of b: no vessel or cell in truth or prediction -> left out for them
    blocks = [
        Block("a", "CTX", np.arange(0, 2), np.zeros((2, 6, 6), np.uint8), truth["a"][:2]),
        Block("a", "CTX", np.arange(2, 4), np.zeros((2, 6, 6), np.uint8), truth["a"][2:]),
        Block("b", "STR", np.arange(2), np.zeros((2, 6, 6), np.uint8), truth["b"]),
    ]
    predictions = {k: {"z": np.arange(len(v)), "prediction": v} for k, v in pred.items()}
    rows = nodes.score_predictions(predictions, blocks, label)
    # the pooled columns are those of the pooled scores, unchanged
    meter = SegmentationMeter(3)
    for k in pred:
        meter.update(pred[k], truth[k])
    pooled = meter.compute().to_frame(label.classes)
    pd.testing.assert_frame_equal(rows.drop(columns="iou_per_image"), pooled.drop(columns="iou_per_image"))
    # per image: IoU of every slice (6 slices), NaN where a class is in neither map, mean over slices
    slices = [(p[z], t[z]) for k in ("a", "b") for p, t in [(pred[k], truth[k])] for z in range(len(t))]
    per_slice = np.full((len(slices), 3), np.nan)
    for i, (p, t) in enumerate(slices):
        for c in range(3):
            union = np.sum((p == c) | (t == c))
            if union:
                per_slice[i, c] = np.sum((p == c) & (t == c)) / union
    assert np.isnan(per_slice[4, 1:]).all()  # cube b, slice 0
    expected = np.nanmean(per_slice, axis=0)
    np.testing.assert_allclose(rows["iou_per_image"].iloc[:3], expected, rtol=1e-12)
    assert rows["iou_per_image"].iloc[-1] == pytest.approx(expected.mean())
    assert rows.columns.get_loc("iou_per_image") == rows.columns.get_loc("iou") + 1


def _fake_rows(model: str, setting: str, seed: int) -> pd.DataFrame:
    label = nodes.SETTINGS[setting]
    classes = [*label.classes, "mean"]
    return pd.DataFrame(
        {
            "source": "phantom",
            "model": model,
            "dims": "2D",
            "setting": label.label,
            "config": setting,
            "seed": seed,
            "class": classes,
            "class_index": [*range(label.num_classes), -1],
            "f1": 0.5,
            "iou": 0.4,
            "iou_per_image": 0.45,
        }
    )


def test_collect_results_orders_runs():
    tables = [_fake_rows(m, s, k) for m in ("unet", "manet") for s in ("seg_4class", "seg_3class") for k in (1, 0)]
    table = nodes.collect_segmentation_results(*tables)
    assert len(table) == 2 * 2 * (4 + 5)
    first = table.iloc[:4]
    assert first["model"].unique().tolist() == ["unet"] and first["class"].tolist()[-1] == "mean"
    assert first["setting"].unique().tolist() == ["3-class"] and first["seed"].unique().tolist() == [0]
    assert list(nodes.collect_segmentation_results().columns) == list(nodes.RESULT_COLUMNS)


def test_figure_shows_the_figure_models(cubes, split_index, tiny_with):
    segmentation = tiny_with(
        models=["manet", "unet3d", "unet"], figure={"models": ["manet", "unet3d"], "seed": 0}
    ).segmentation
    data = nodes.prepare_segmentation_data(cubes, split_index, segmentation)
    wanted = nodes.figure_inputs(segmentation)
    assert wanted == {f"{m}__{s}": (m, s, 0) for m in ("manet", "unet3d") for s in ("seg_3class", "seg_4class")}
    preds = {
        key: {b.cube_id: {"z": b.z, "prediction": b.labels} for b in nodes._blocks(data, setting, ["test"])}
        for key, (_, setting, _) in wanted.items()
    }
    fig = nodes.plot_segmentation_overlays(data, segmentation, **preds)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == (4 + 3) * 4  # rows: 4 regions (3-class) + 3 (4-class); image, truth, 2 models
