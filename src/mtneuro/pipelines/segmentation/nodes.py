"""Task 2 nodes: microstructure segmentation of the main cubes' slices.

One node per run (model, label setting, seed) -- :func:`train_and_evaluate` -- trains a network
from :func:`mtneuro.segmentation_models.build_segmentation_model` on the setting's training slices and
segments its test slices; :func:`collect_segmentation_results` stacks the runs into the task
table, :func:`collect_training_histories` their training curves (loss and learning rate per
epoch) and :func:`plot_segmentation_overlays` draws the paper's Figure 3.

Label settings (``segmentation.settings``; the split-index configurations of ingestion):

* ``seg_3class`` (reported as ``3-class``): background + axon (0), vessel (1), cell (2); all
  four regions;
* ``seg_4class`` (``4-class``): background (0), vessel (1), cell (2), axon (3); ZI left out.

Parameters arrive typed: ``params:segmentation`` as
:class:`~mtneuro.config.segmentation.SegmentationParameters` (a model's effective settings:
:meth:`~mtneuro.config.segmentation.SegmentationParameters.run_settings`) and ``params:training``
as :class:`~mtneuro.config.TrainingParameters`.

Metrics: per-class F1 and IoU with TP/FP/FN summed over every test pixel of a run, and their
unweighted mean over classes; beside them ``iou_per_image``, this project's IoU averaged over the
test slices where a class is present, and ``iou_authors``, the paper's IoU as the authors' code
computes it (smp per test sample -- a 2D slice, or a 3D model's ``train.depth``-slice subvolume --
with a class absent from both prediction and truth scoring 1; see :mod:`mtneuro.metrics`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from torch import nn
from torch.utils.data import DataLoader, RandomSampler

from mtneuro import histories, spec
from mtneuro.config import TrainingParameters
from mtneuro.config.segmentation import EvaluationSettings, RunSettings, SegmentationParameters, TrainSettings
from mtneuro.config.training import DataLoaderParameters
from mtneuro.cubes import Cube, describe_source
from mtneuro.errors import MtneuroError
from mtneuro.metrics import AUTHORS_AVERAGING, AVERAGING, PER_IMAGE_AVERAGING, SegmentationMeter
from mtneuro.segmentation_models import build_segmentation_model, get_model, run_settings
from mtneuro.training import (
    build_trainer,
    dataloader_kwargs,
    inference_autocast,
    resolve_accelerator,
    resolve_device,
    seed_everything,
    thread_limit,
)

from .engine import Block, PatchDataset, SegmentationModule, contiguous_runs, intensity_stats, predict_block

log = logging.getLogger(__name__)


class SegmentationError(MtneuroError, ValueError):
    """A segmentation parameter or input is inconsistent; the message names what to fix."""


@dataclass(frozen=True)
class LabelSetting:
    """A Task 2 label setting: which split-index configuration, which classes, and the map from
    pixel_labels values (0 background, 1 vessel, 2 cell, 3 axon) to class indices."""

    config: str
    label: str
    classes: tuple[str, ...]
    lut: tuple[int, ...]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def map_labels(self, pixel_labels: np.ndarray) -> np.ndarray:
        values = np.asarray(pixel_labels)
        if values.size and int(values.max()) >= len(self.lut):
            raise SegmentationError(
                f"pixel_labels hold value {int(values.max())}; expected 0..{len(self.lut) - 1} "
                f"({spec.PIXEL_CLASSES}). Check 'volume.uris' pixel_labels."
            )
        return np.asarray(self.lut, dtype=np.uint8)[values.astype(np.intp)]


SETTINGS: dict[str, LabelSetting] = {
    name: LabelSetting(name, label, classes, lut) for name, (label, classes, lut) in spec.LABEL_SETTINGS.items()
}

RESULT_COLUMNS: tuple[str, ...] = (
    "source",
    "model",
    "dims",
    "setting",
    "config",
    "seed",
    "class",
    "class_index",
    "f1",
    "iou",
    "iou_per_image",
    "iou_authors",
    "support_pixels",
    "predicted_pixels",
    "test_slices",
    "encoder",
    "epochs",
    "train_samples",
    "train_seconds",
    "averaging",
)


def label_setting(name: str) -> LabelSetting:
    if name not in SETTINGS:
        raise SegmentationError(
            f"Unknown label setting {name!r} in 'segmentation.settings'; choose from {sorted(SETTINGS)}"
        )
    return SETTINGS[name]


def setting_blocks(
    cubes: dict[str, Cube],
    split_index: pd.DataFrame,
    setting: LabelSetting,
    splits: list[str],
) -> list[Block]:
    """The setting's slices of the given splits as contiguous blocks (per cube, ascending z),
    labels mapped to the setting's classes."""
    rows = split_index[(split_index["config"] == setting.config) & (split_index["split"].isin(list(splits)))]
    if rows.empty:
        raise SegmentationError(
            f"The split index has no '{setting.config}' slices in splits {list(splits)}; run the ingestion pipeline first."
        )
    blocks = []
    for cube_id, group in rows.groupby("cube_id", sort=True):
        if cube_id not in cubes:
            raise SegmentationError(f"Split index names cube {cube_id!r}, which is not among the ingested cubes")
        cube = cubes[cube_id]
        if cube.pixel_labels is None:
            raise SegmentationError(f"Cube {cube_id} has no pixel labels but is in the '{setting.config}' split index")
        for z in contiguous_runs(group["z"].to_numpy()):
            blocks.append(
                Block(cube_id, cube.region, z, cube.image[z], setting.map_labels(cube.pixel_labels[z]), cube.z_offset)
            )
    return blocks


def centred_blocks(blocks: list[Block], max_slices_per_cube: int | None) -> list[Block]:
    """Per cube, the centred ``n`` slices of its longest block (all blocks when ``n`` is None)."""
    if not max_slices_per_cube:
        return list(blocks)
    out = []
    for cube_id in dict.fromkeys(b.cube_id for b in blocks):
        longest = max((b for b in blocks if b.cube_id == cube_id), key=lambda b: b.depth)
        n = min(int(max_slices_per_cube), longest.depth)
        keep = slice((longest.depth - n) // 2, (longest.depth - n) // 2 + n)
        out.append(
            Block(cube_id, longest.region, longest.z[keep], longest.image[keep], longest.labels[keep], longest.z_offset)
        )
    return out


def _splits_used(segmentation: SegmentationParameters) -> set[str]:
    splits: set[str] = set()
    for model in segmentation.models:
        run = run_settings(segmentation, model)
        splits |= set(run.train.splits) | set(run.evaluation.splits)
    return splits


@dataclass(frozen=True)
class SegmentationData:
    """What every Task 2 run reads (``segmentation_data``, in memory): a few tens of MB instead
    of every cube."""

    #: The data source of the cubes (:func:`mtneuro.cubes.describe_source`).
    source: str
    #: Label setting -> split -> the labelled blocks of that split.
    blocks: dict[str, dict[str, list[Block]]]


def prepare_segmentation_data(
    cubes: dict[str, Cube], split_index: pd.DataFrame, segmentation: SegmentationParameters
) -> SegmentationData:
    """What every run reads, built once: per label setting and split, the labelled blocks."""
    splits = sorted(_splits_used(segmentation))
    blocks: dict[str, dict[str, list[Block]]] = {
        name: {split: setting_blocks(cubes, split_index, label_setting(name), [split]) for split in splits}
        for name in segmentation.settings
    }
    for name, per_split in blocks.items():
        log.info(
            "Segmentation %s: %s",
            label_setting(name).label,
            ", ".join(f"{split} {sum(b.depth for b in bl)} slices" for split, bl in per_split.items()),
        )
    return SegmentationData(describe_source(cubes), blocks)


def _blocks(data: SegmentationData, setting: str, splits: list[str]) -> list[Block]:
    available = data.blocks.get(setting)
    if available is None:
        raise SegmentationError(f"No prepared data for label setting {setting!r}")
    missing = [s for s in splits if s not in available]
    if missing:
        raise SegmentationError(f"Splits {missing} were not prepared for {setting!r}")
    blocks = [b for s in splits for b in available[s]]
    # adjacent splits of one cube (train + val) become one block
    merged: list[Block] = []
    for block in sorted(blocks, key=lambda b: (b.cube_id, int(b.z[0]))):
        last = merged[-1] if merged else None
        if last is not None and last.cube_id == block.cube_id and int(last.z[-1]) + 1 == int(block.z[0]):
            merged[-1] = Block(
                block.cube_id,
                block.region,
                np.concatenate([last.z, block.z]),
                np.concatenate([last.image, block.image]),
                np.concatenate([last.labels, block.labels]),
                block.z_offset,
            )
        else:
            merged.append(block)
    return merged


def _patch_loader(
    blocks: list[Block],
    dims: int,
    mean: float,
    std: float,
    train: TrainSettings,
    dataloader: DataLoaderParameters,
    accelerator: str,
) -> DataLoader:
    """Random training patches of ``blocks``, ``train.samples_per_epoch`` an epoch (default: as
    many as the blocks hold; drawn with replacement when more), in whole batches."""
    dataset = PatchDataset(
        blocks,
        dims=dims,
        depth=train.depth,
        crop_yx=train.crop_yx,
        mean=mean,
        std=std,
        flip=train.augment.flip,
        rot90=train.augment.rot90,
        flip_z=train.augment.flip_z,
    )
    samples = len(dataset) if train.samples_per_epoch is None else train.samples_per_epoch
    sampler = RandomSampler(dataset, replacement=samples > len(dataset), num_samples=samples)
    return DataLoader(
        dataset,
        batch_size=min(train.batch_size, samples),
        sampler=sampler,
        drop_last=True,
        **dataloader_kwargs(dataloader, accelerator),
    )


def train_segmentation_model(
    blocks: list[Block],
    model: str,
    num_classes: int,
    kwargs: dict[str, Any],
    train: TrainSettings,
    training: TrainingParameters,
    seed: int,
) -> tuple[nn.Module, dict[str, Any]]:
    """Builds and trains one network (a registered ``model``); returns it (eval mode) and what
    describes its training (``history``: the per-epoch records of
    :class:`mtneuro.training.EpochHistoryModule`)."""
    seed_everything(seed)
    dims = get_model(model).spatial_dims
    mean, std = intensity_stats(blocks)
    # Channels-last training (measured CPU per training: VNet -33 %, U-Net++ -16 %, MA-Net -10 %;
    # not bit for bit the contiguous layout's sums); the trained network returns contiguous.
    layout = torch.channels_last if dims == 2 else torch.channels_last_3d
    net = build_segmentation_model(model, num_classes, **kwargs).to(memory_format=layout)
    accelerator = resolve_accelerator(training.accelerator)
    loader = _patch_loader(blocks, dims, mean, std, train, training.dataloader, accelerator)
    samples, batch_size = len(loader.sampler), int(loader.batch_size or 1)  # type: ignore[arg-type]
    module = SegmentationModule(
        net,
        lr=train.lr,
        weight_decay=train.weight_decay,
        lambda_ce=train.loss.lambda_ce,
        lambda_dice=train.loss.lambda_dice,
        class_weights=train.loss.class_weights,
        scheduler=train.scheduler,
        pct_start=train.pct_start,
    )
    epochs = train.epochs
    trainer = build_trainer(training, max_epochs=epochs)
    start = time.perf_counter()
    trainer.fit(module, loader)
    seconds = time.perf_counter() - start
    net = module.net.cpu().to(memory_format=torch.contiguous_format).eval()
    info = {
        "mean": mean,
        "std": std,
        "epochs": epochs,
        "train_samples": epochs * (samples // batch_size) * batch_size,
        "train_seconds": seconds,
        "batch_size": batch_size,
        "history": module.history,
        "steps": int(module.global_step),
        "steps_per_epoch": samples // batch_size,  # with ``steps``, what a full run costs (benchmarks/paper_cost.py)
        "accelerator": accelerator,
        "precision": str(trainer.precision),
    }
    return net, info


def segment_blocks(
    net: nn.Module,
    blocks: list[Block],
    dims: int,
    mean: float,
    std: float,
    evaluation: EvaluationSettings,
    depth: int,
    training: TrainingParameters,
) -> dict[str, dict[str, np.ndarray]]:
    """Predicted class per voxel of every block: ``{cube_id: {"z": z, "prediction": uint8 (Z, H, W)}}``."""
    device = resolve_device(training)
    net = net.to(device)
    out: dict[str, dict[str, list[np.ndarray]]] = {}
    for block in blocks:
        pred = predict_block(
            net,
            block.image,
            dims=dims,
            mean=mean,
            std=std,
            roi_yx=evaluation.roi_yx,
            depth=depth,
            sw_batch_size=evaluation.sw_batch_size,
            overlap=evaluation.overlap,
            mode=evaluation.blend_mode,
            slices_per_batch=evaluation.slices_per_batch,
            device=device,
            autocast=inference_autocast(training, device),
        )
        entry = out.setdefault(block.cube_id, {"z": [], "prediction": []})
        entry["z"].append(block.z)
        entry["prediction"].append(pred)
    net.cpu()
    return {k: {"z": np.concatenate(v["z"]), "prediction": np.concatenate(v["prediction"])} for k, v in out.items()}


def score_predictions(
    predictions: dict[str, dict[str, np.ndarray]], blocks: list[Block], setting: LabelSetting, sample_depth: int = 1
) -> pd.DataFrame:
    """Per-class F1/IoU (and the mean row) over every test pixel of the run, the IoU per test
    slice averaged over the slices where the class is present (``iou_per_image``; predictions are
    ``(Z, H, W)``: Z images) and the authors' per-sample IoU (``iou_authors``; a sample is
    ``sample_depth`` consecutive slices of one test block: 1 for 2D models, the subvolume depth
    for 3D models)."""
    meter = SegmentationMeter(setting.num_classes, sample_depth=sample_depth)
    by_cube: dict[str, list[Block]] = {}
    for block in blocks:
        by_cube.setdefault(block.cube_id, []).append(block)
    for cube_id, entry in predictions.items():
        start = 0
        for block in by_cube[cube_id]:  # segment_blocks concatenates each cube's blocks in this order
            meter.update(entry["prediction"][start : start + block.depth], block.labels)
            start += block.depth
    return meter.compute().to_frame(setting.classes)


def train_and_evaluate(
    segmentation_data: SegmentationData,
    segmentation: SegmentationParameters,
    training: TrainingParameters,
    *,
    model: str,
    setting: str,
    seed: int,
) -> tuple[nn.Module, dict[str, dict[str, np.ndarray]], pd.DataFrame, dict[str, Any]]:
    """One run of the grid: train ``model`` in label ``setting`` with ``seed``, segment the test
    slices and score them. Returns the trained network (with ``metadata``), the test predictions,
    the run's rows of the task table and its training history (``{"epochs": [{"epoch", "loss",
    "seconds", "lr"}, ...], ...}``, the record format of Task 1's ``training_history``).

    ``segmentation.training`` overrides keys of the shared ``training`` block for this task
    (e.g. ``torch_threads``); the process's torch thread count is restored afterwards."""
    training = training.merged(segmentation.training, ("segmentation", "training"))
    with thread_limit(training.torch_threads):
        return _train_and_evaluate(segmentation_data, segmentation, training, model, setting, seed)


def _train_and_evaluate(
    segmentation_data: SegmentationData,
    segmentation: SegmentationParameters,
    training: TrainingParameters,
    model: str,
    setting: str,
    seed: int,
) -> tuple[nn.Module, dict[str, dict[str, np.ndarray]], pd.DataFrame, dict[str, Any]]:
    run = run_settings(segmentation, model)
    label = label_setting(setting)
    train, evaluation = run.train, run.evaluation
    train_blocks = _blocks(segmentation_data, setting, list(train.splits))
    net, info = train_segmentation_model(train_blocks, model, label.num_classes, run.kwargs, train, training, seed)
    test_blocks = centred_blocks(
        _blocks(segmentation_data, setting, list(evaluation.splits)), evaluation.max_slices_per_cube
    )
    start = time.perf_counter()
    depth = train.depth
    predictions = segment_blocks(
        net, test_blocks, run.spatial_dims, info["mean"], info["std"], evaluation, depth, training
    )
    sample_depth = depth if run.spatial_dims == 3 else 1
    scores = score_predictions(predictions, test_blocks, label, sample_depth)
    log.info(
        "segmentation %s %s seed %d: mean IoU %.3f (per image %.3f, authors' %.3f), mean F1 %.3f "
        "(train %.1f s on %d samples, test %.1f s)",
        model,
        label.label,
        seed,
        scores["iou"].iloc[-1],
        scores["iou_per_image"].iloc[-1],
        scores["iou_authors"].iloc[-1],
        scores["f1"].iloc[-1],
        info["train_seconds"],
        info["train_samples"],
        time.perf_counter() - start,
    )
    rows = scores.assign(
        source=segmentation_data.source,
        model=model,
        dims=run.dims,
        setting=label.label,
        config=label.config,
        seed=int(seed),
        test_slices=int(sum(b.depth for b in test_blocks)),
        encoder=run.encoder_name or "",
        epochs=info["epochs"],
        train_samples=info["train_samples"],
        train_seconds=round(info["train_seconds"], 2),
        averaging="per class over all test pixels of the run; mean: unweighted over classes",
    )[list(RESULT_COLUMNS)]
    net.metadata = _model_metadata(model, label, run, info, seed, sample_depth)  # type: ignore[assignment]
    evaluation_seconds = time.perf_counter() - start  # segmenting and scoring the test slices
    history = _training_history(segmentation_data.source, model, label, seed, info, evaluation_seconds)
    return net, predictions, rows, history


def _model_metadata(
    model: str, label: LabelSetting, run: RunSettings, info: Mapping[str, Any], seed: int, sample_depth: int
) -> dict[str, Any]:
    """What the saved network carries for inference and mapping (classes, normalisation, depth)."""
    train, evaluation = run.train, run.evaluation
    return {
        "task": "segmentation",
        "model": model,
        "setting": label.label,
        "config": label.config,
        "classes": list(label.classes),
        "pixel_label_to_class": list(label.lut),
        "seed": int(seed),
        "dims": run.spatial_dims,
        "input": "uint8 gray values / 255, standardised with the training split's mean and std",
        "mean": info["mean"],
        "std": info["std"],
        "subvolume_depth": train.depth if run.spatial_dims == 3 else 1,
        "inference_roi_yx": evaluation.roi_yx,
        "train": train.model_dump(),
        "metrics_averaging": AVERAGING,
        "metrics_averaging_per_image": PER_IMAGE_AVERAGING,
        "metrics_averaging_authors": AUTHORS_AVERAGING,
        "authors_iou_sample_depth": sample_depth,
    }


def _training_history(
    source: str, model: str, label: LabelSetting, seed: int, info: Mapping[str, Any], evaluation_seconds: float
) -> dict[str, Any]:
    """The run's per-epoch record (``training_history``) and how it was trained."""
    return {
        "source": source,
        "model": model,
        "setting": label.label,
        "seed": int(seed),
        "epochs": info["history"],
        "train_samples": info["train_samples"],
        "batch_size": info["batch_size"],
        "steps": info["steps"],
        "steps_per_epoch": info["steps_per_epoch"],
        "epochs_planned": info["epochs"],
        "train_seconds": info["train_seconds"],
        "evaluation_seconds": evaluation_seconds,
        "accelerator": info["accelerator"],
        "precision": info["precision"],
    }


def collect_segmentation_results(*run_tables: pd.DataFrame) -> pd.DataFrame:
    """The task table: every run's per-class rows and mean row, one table."""
    if not run_tables:
        return pd.DataFrame(columns=list(RESULT_COLUMNS))
    table = pd.concat(run_tables, ignore_index=True)
    order = {name: i for i, name in enumerate(dict.fromkeys(table["model"]))}
    table = (
        table.assign(_m=table["model"].map(order), _c=table["class_index"].where(table["class_index"] >= 0, 99))
        .sort_values(["dims", "_m", "setting", "seed", "_c"], kind="stable")
        .drop(columns=["_m", "_c"])
        .reset_index(drop=True)
    )
    summary = (
        table[table["class"] == "mean"]
        .groupby(["dims", "model", "setting"], sort=False)[
            [c for c in ("f1", "iou", "iou_per_image", "iou_authors") if c in table]
        ]
        .agg(["mean", "std"])
    )
    log.info("Task 2 (mean over classes, mean and std over seeds):\n%s", summary.round(3).to_string())
    return table


def collect_training_histories(*run_histories: Mapping[str, Any], runs: list[Any]) -> pd.DataFrame:
    """Every run's training curve in one long table, as Task 1's
    (:func:`mtneuro.histories.collect_histories`): source, ``method`` (the model),
    ``train_config`` (the label setting, ``3-class``/``4-class``), seed, ``step_kind`` ``epoch``,
    ``step`` and the epoch's ``loss``, ``lr`` and ``seconds``."""
    return histories.collect_histories(runs, run_histories, config_label=lambda name: label_setting(name).label)


# --- Figure 3 ---------------------------------------------------------------------------------

#: RGBA overlay colour per pixel_labels value (vessel red, cell green, axon blue).
OVERLAY_COLOURS: dict[str, tuple[float, float, float]] = {
    "vessel": (0.9, 0.1, 0.1),
    "cell": (0.1, 0.85, 0.2),
    "axon": (0.2, 0.4, 1.0),
}


def overlay(image: np.ndarray, labels: np.ndarray, classes: tuple[str, ...], alpha: float = 0.5) -> np.ndarray:
    """RGB float image: gray values with every non-background class tinted in its colour."""
    gray = np.asarray(image, dtype=np.float32) / 255.0
    rgb = np.repeat(gray[..., None], 3, axis=-1)
    for index, name in enumerate(classes):
        colour = OVERLAY_COLOURS.get(name)
        if colour is None:
            continue
        mask = labels == index
        rgb[mask] = (1 - alpha) * rgb[mask] + alpha * np.asarray(colour, dtype=np.float32)
    return np.clip(rgb, 0.0, 1.0)


def figure_inputs(segmentation: SegmentationParameters) -> dict[str, tuple[str, str, int]]:
    """Keyword -> (model, setting, seed) of the predictions the figure shows (``figure.models``
    and ``figure.seed`` are runs of the grid: the parameters check it)."""
    figure = segmentation.figure
    return {f"{m}__{s}": (m, s, figure.seed) for m in figure.models for s in segmentation.settings}


def plot_overlays_from_index(
    segmentation_data: SegmentationData, segmentation: SegmentationParameters, segmentation_runs: Mapping[str, Any]
) -> Figure:
    """:func:`plot_segmentation_overlays` with the figure runs' predictions read from the task's
    run index (only those runs are loaded)."""
    predictions = {}
    for key, (model, setting, seed) in figure_inputs(segmentation).items():
        run = f"{model}.{setting}.seed{seed}"
        if run not in segmentation_runs:
            raise KeyError(f"segmentation.figure names run {run!r}, which the segmentation run index does not hold")
        predictions[key] = segmentation_runs[run]["test_predictions"]
    return plot_segmentation_overlays(segmentation_data, segmentation, **predictions)


def _find_slice(blocks: list[Block], cube_id: str, z: int) -> tuple[Block, int] | None:
    for block in blocks:
        if block.cube_id == cube_id:
            hits = np.flatnonzero(block.z == z)
            if hits.size:
                return block, int(hits[0])
    return None


def plot_segmentation_overlays(
    segmentation_data: SegmentationData, segmentation: SegmentationParameters, **predictions: dict[str, Any]
) -> Figure:
    """The paper's Figure 3: per setting and region one test slice (the middle segmented one),
    its image, the ground-truth overlay and the predicted overlay of each figure model.

    ``predictions``: ``<model>__<setting>`` -> that run's ``test_predictions``."""
    wanted = figure_inputs(segmentation)
    models = list(dict.fromkeys(m for m, _, _ in wanted.values()))
    rows = []
    for setting_name in segmentation.settings:
        label = label_setting(setting_name)
        test_blocks = [b for bl in segmentation_data.blocks[setting_name].values() for b in bl]
        for region in spec.REGIONS:
            cube_id = f"main_{region}"
            preds = {m: (predictions.get(f"{m}__{setting_name}") or {}).get(cube_id) for m in models}
            reference = next((p for p in preds.values() if p is not None), None)
            if reference is None:
                continue
            z = int(np.asarray(reference["z"])[len(reference["z"]) // 2])
            found = _find_slice(test_blocks, cube_id, z)
            if found is not None:
                rows.append((label, found[0], found[1], z, preds))
    ncols = 2 + len(models)
    fig = Figure(figsize=(2.3 * ncols + 0.6, 2.3 * max(len(rows), 1) + 0.5), layout="constrained")
    axes = fig.subplots(max(len(rows), 1), ncols, squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    for r, (label, block, i, z, preds) in enumerate(rows):
        image = block.image[i]
        panels: list[tuple[str, np.ndarray | None]] = [("image", np.repeat(image[..., None] / 255.0, 3, axis=-1))]
        panels.append(("ground truth", overlay(image, block.labels[i], label.classes)))
        for m in models:
            p = preds[m]
            hit = np.flatnonzero(np.asarray(p["z"]) == z) if p is not None else np.array([])
            panels.append(
                (
                    get_model(m).label,
                    overlay(image, p["prediction"][int(hit[0])], label.classes) if p is not None and hit.size else None,
                )
            )
        for c, (title, data) in enumerate(panels):
            ax = axes[r, c]
            if r == 0:
                ax.set_title(title, fontsize=9)
            if c == 0:
                ax.text(
                    -0.06,
                    0.5,
                    f"{label.label}\n{block.region}\nz={z + block.z_offset}",
                    transform=ax.transAxes,
                    ha="right",
                    va="center",
                    fontsize=8,
                )
            if data is not None:
                ax.imshow(data, interpolation="nearest")
    seed = next(iter(wanted.values()))[2] if wanted else 0
    fig.suptitle(
        f"Task 2 test slices, ground truth and predictions (seed {seed}; data source: {segmentation_data.source}); "
        "red vessel, green cell, blue axon",
        fontsize=9,
    )
    return fig
