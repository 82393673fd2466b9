"""Task 1 nodes: brain-region classification of single sections (benchmark spec section 3).

Pure functions, no I/O: the catalog loads ``cubes``/``split_index`` and saves every result.
One run = (method, training configuration, seed). Training configurations are ``roi_c1``
(the main cubes' train(+val) slices; its models are tested on ROI-C1 and ROI-C2) and ``roi_c3``
(plus the extra training cubes; tested on ROI-C3), see ``evaluate_on`` in the parameters.

Nodes take the typed ``classification`` block (:class:`ClassificationParameters`) and the shared
``training`` block (:class:`TrainingParameters`, overridden by ``classification.hardware``). What
each method is (its kind, settings and trainer) comes from the registry
(:mod:`mtneuro.classification_methods`).
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import pandas as pd
import torch
from pydantic import BaseModel
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix, precision_recall_fscore_support
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mtneuro import histories, models, spec
from mtneuro.classification_methods import MethodSpec, get_method, method_names, method_settings
from mtneuro.config import TrainingParameters
from mtneuro.config.classification import ClassificationParameters, TrainConfig
from mtneuro.cubes import Cube, describe_source
from mtneuro.errors import MtneuroError
from mtneuro.training import thread_limit

log = logging.getLogger(__name__)

#: Split-index configurations Task 1 reads, and their names in result tables (one definition, in spec).
CONFIG_LABELS: dict[str, str] = spec.CONFIG_LABELS


class ClassificationError(MtneuroError, ValueError):
    """A parameter or input of the classification pipeline is inconsistent."""


# --------------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------------


def hardware_settings(classification: ClassificationParameters, training: TrainingParameters) -> TrainingParameters:
    """The shared ``training`` block with this task's ``classification.hardware`` overrides."""
    return training.merged(classification.hardware, ("classification", "hardware"))


def _method(method: str, kinds: tuple[str, ...], node: str) -> MethodSpec:
    """The registered method, checked to be of a kind the node trains."""
    method_spec = get_method(method)
    if method_spec.kind not in kinds:
        names = [m for m in method_names() if get_method(m).kind in kinds]
        raise ClassificationError(f"{node} trains {names}, not {method!r} (kind {method_spec.kind!r})")
    return method_spec


def config_label(config: str) -> str:
    return CONFIG_LABELS[config]


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ClassificationImages:
    """Every section Task 1 uses, resized once (``classification_images``)."""

    #: (N, S, S) float32 in [0, 1].
    images: np.ndarray
    #: The split-index rows of ROI-C1/C2/C3, with the ``row`` of their image in ``images``.
    index: pd.DataFrame
    #: S: ``data.prepared_size``, or the raw size where the sections are smaller.
    size: int
    #: The side of the smallest raw section.
    raw_size: int
    #: The data source of the cubes (:func:`mtneuro.cubes.describe_source`).
    source: str


def prepare_images(
    cubes: dict[str, Cube], split_index: pd.DataFrame, classification: ClassificationParameters
) -> tuple[ClassificationImages, dict[str, Any]]:
    """Every section Task 1 uses, resized once to ``data.prepared_size`` (float32 in [0, 1]).

    Returns the model input (:class:`ClassificationImages`) and a JSON summary.
    Methods resize further to their own input size with the same area averaging, so
    128 -> 64 -> 32 equals 128 -> 32 as the frozen encoders do on raw images.
    """
    index = split_index[split_index["config"].isin(list(CONFIG_LABELS))].copy()
    if index.empty:
        raise ClassificationError("split_index has no roi_c1/roi_c2/roi_c3 rows; re-run the ingestion pipeline")
    missing = sorted(set(index["cube_id"]) - set(cubes))
    if missing:
        raise ClassificationError(f"split_index refers to cubes that are not in `cubes`: {missing}")
    raw_hw = {tuple(cubes[c].image.shape[1:]) for c in index["cube_id"].unique()}
    raw_size = min(min(hw) for hw in raw_hw)
    size = min(int(classification.data.prepared_size), raw_size)
    unique = index[["cube_id", "z"]].drop_duplicates().sort_values(["cube_id", "z"]).reset_index(drop=True)
    unique["row"] = np.arange(len(unique))
    images = np.empty((len(unique), size, size), dtype=np.float32)
    with thread_limit(classification.hardware.get("torch_threads")):
        for cube_id, rows in unique.groupby("cube_id", sort=True):
            stack = cubes[cube_id].image[rows["z"].to_numpy()]
            images[rows["row"].to_numpy()] = models.resize_images(stack, size)[:, 0].numpy()
    index = index.merge(unique, on=["cube_id", "z"], how="left")
    source = describe_source(cubes)
    counts = index.groupby(["config", "split"]).size()
    summary = {
        "source": source,
        "raw_shape_yx": [int(v) for v in sorted(raw_hw)[0]],
        "prepared_size": size,
        "n_images": len(unique),
        "counts": {f"{c}/{s}": int(n) for (c, s), n in counts.items()},
        "cubes": sorted(index["cube_id"].unique().tolist()),
    }
    log.info(
        "Task 1 images: %d sections of %s resized to %dx%d (source %s)",
        len(unique),
        summary["raw_shape_yx"],
        size,
        size,
        source,
    )
    return ClassificationImages(images, index.reset_index(drop=True), size, raw_size, source), summary


def select_images(
    data: ClassificationImages, config: str, splits: Sequence[str], slice_step: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, S, S) and class indices (N,) of a configuration's splits, every ``slice_step``-th slice."""
    index = data.index
    rows = index[(index["config"] == config) & index["split"].isin(list(splits))]
    if int(slice_step) > 1:
        rows = rows[rows["z"] % int(slice_step) == 0]
    if rows.empty:
        raise ClassificationError(f"No images for config {config!r}, splits {list(splits)} (slice step {slice_step})")
    rows = rows.sort_values(["cube_id", "z"])
    return data.images[rows["row"].to_numpy()], rows["label"].to_numpy().astype(np.int64)


def _check_input_size(data: ClassificationImages, size: int, key: str) -> None:
    """Models trained on prepared images must see what their frozen encoder makes of raw sections."""
    prepared, raw = int(data.size), int(data.raw_size)
    if size > prepared and prepared < raw:
        raise ClassificationError(
            f"{key} = {size} exceeds classification.data.prepared_size = {prepared} (sections are {raw} pixels): "
            "raise data.prepared_size to at least the largest input size"
        )


def _training_images(
    data: ClassificationImages, classification: ClassificationParameters, config: str
) -> tuple[np.ndarray, np.ndarray]:
    d = classification.data
    return select_images(data, config, d.train_splits, d.train_slice_step)


def _input_metadata(x: torch.Tensor, size: int, mode: str) -> dict[str, Any]:
    """How a model's inputs are made from uint8 sections; ``mode``: training_set | per_image | none."""
    if mode == "training_set":
        norm = {
            "mode": mode,
            "mean": float(x.mean()),
            "std": float(x.std().clamp_min(1e-6)),
            "formula": "(x - mean) / std",
            "statistics": "training images of the run",
        }
    elif mode == "per_image":
        norm = {"mode": mode, "formula": "(x - mean(x)) / std(x) per image"}
    elif mode == "none":
        norm = {"mode": mode, "mean": 0.0, "std": 1.0, "formula": "x"}
    else:
        raise ClassificationError(f"encoder.normalisation must be training_set, per_image or none, not {mode!r}")
    return {
        "size": int(size),
        "channels": 1,
        "dtype_in": "uint8 (N, H, W) [z-sections], or float in [0, 1]",
        "scale": "uint8 / 255",
        "resize": "area averaging when downsampling, bilinear when upsampling (mtneuro.models.resize_images)",
        "normalisation": norm,
    }


def _run_metadata(
    method: str, config: str, seed: int, source: str, settings: BaseModel, n_train: int
) -> dict[str, Any]:
    return {
        "format_version": models.TASK1_ENCODER_FORMAT,
        "task": "classification",
        "method": method,
        "train_config": config,
        "seed": int(seed),
        "source": source,
        "classes": list(spec.REGIONS),
        "n_train": int(n_train),
        "train_settings": settings.model_dump(),
    }


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------


def _train_network(
    data: ClassificationImages,
    classification: ClassificationParameters,
    hardware: TrainingParameters,
    method: MethodSpec,
    config: str,
    seed: int,
) -> tuple[models.ResNetFrozenEncoder, Any, dict[str, Any]]:
    _check_input_size(data, int(classification.encoder.input_size), "encoder.input_size")
    images, labels = _training_images(data, classification, config)
    return train_network_on_images(
        images, labels, classification, hardware, method, seed, config=config, source=data.source
    )


def train_network_on_images(
    images: np.ndarray,
    labels: np.ndarray,
    classification: ClassificationParameters,
    hardware: TrainingParameters,
    method: MethodSpec,
    seed: int,
    *,
    config: str,
    source: str,
    settings: BaseModel | None = None,
) -> tuple[models.ResNetFrozenEncoder, Any, dict[str, Any]]:
    """A registered network method trained on ``images`` (N, H, W; uint8 or float in [0, 1]) and
    their class ``labels``: the frozen encoder, the trained module and the history. Task 1 and
    the brain map's region model (``mapping.regions.model: section``) both train through here.
    ``settings``: the method's resolved settings (default: :func:`method_settings`)."""
    settings = settings if settings is not None else method_settings(classification, method.name)
    architecture = classification.encoder.architecture()
    size = int(classification.encoder.input_size)
    x = models.resize_images(images, size)
    input_meta = _input_metadata(x, size, classification.encoder.normalisation)
    x = models.preprocess_images(images, input_meta)
    module, history = method.trainer(
        method, x, torch.as_tensor(labels), architecture, settings, hardware, seed, n_classes=len(spec.REGIONS)
    )
    metadata = {
        **_run_metadata(method.name, config, seed, source, settings, len(x)),
        "architecture": architecture,
        "input": input_meta,
    }
    metadata["train_history"] = {k: v for k, v in history.items() if k != "epochs"}
    return (
        models.ResNetFrozenEncoder(module.encoder, metadata),
        module,
        {**history, "config": config, "seed": int(seed)},
    )


def supervised_readout(module: Any) -> models.LinearReadout:
    """A supervised network's own linear head as the read-out of its frozen encoder."""
    linear = cast(torch.nn.Linear, module.head[-1])
    return models.LinearReadout(
        linear.weight.detach().numpy(), linear.bias.detach().numpy(), list(range(len(spec.REGIONS)))
    )


def train_supervised(
    classification_images: ClassificationImages,
    classification: ClassificationParameters,
    training: TrainingParameters,
    *,
    method: str,
    config: str,
    seed: int,
) -> tuple[models.ResNetFrozenEncoder, models.LinearReadout, dict[str, Any]]:
    """Supervised (or mixup) ResNet-18: the frozen encoder, its own linear head as read-out, the history."""
    method_spec = _method(method, ("supervised",), "train_supervised")
    hardware = hardware_settings(classification, training)
    encoder, module, history = _train_network(
        classification_images, classification, hardware, method_spec, config, seed
    )
    return encoder, supervised_readout(module), history


def train_self_supervised(
    classification_images: ClassificationImages,
    classification: ClassificationParameters,
    training: TrainingParameters,
    *,
    method: str,
    config: str,
    seed: int,
) -> tuple[models.ResNetFrozenEncoder, dict[str, Any]]:
    """BYOL / MYOW / MYOW-merged ResNet-18 on the training images (labels unused): frozen encoder + history."""
    method_spec = _method(method, ("ssl",), "train_self_supervised")
    hardware = hardware_settings(classification, training)
    encoder, _, history = _train_network(classification_images, classification, hardware, method_spec, config, seed)
    return encoder, history


def fit_decomposition(
    classification_images: ClassificationImages,
    classification: ClassificationParameters,
    training: TrainingParameters,
    *,
    method: str,
    config: str,
    seed: int,
) -> tuple[models.DecompositionFrozenEncoder, dict[str, Any]]:
    """PCA or NMF (``n_components`` of ``input_size`` downsampled images): frozen encoder + history.

    History: the method's loss curve (PCA: reconstruction error as components are added; NMF:
    reconstruction error after each block of iterations), see the method's ``trainer``.
    """
    method_spec = _method(method, ("decomposition",), "fit_decomposition")
    with thread_limit(hardware_settings(classification, training).torch_threads):
        return _fit_decomposition(classification_images, classification, method_spec, config, seed)


def _fit_decomposition(
    classification_images: ClassificationImages,
    classification: ClassificationParameters,
    method_spec: MethodSpec,
    config: str,
    seed: int,
) -> tuple[models.DecompositionFrozenEncoder, dict[str, Any]]:
    method = method_spec.name
    settings: Any = method_settings(classification, method)
    size = int(settings.input_size)
    _check_input_size(classification_images, size, f"{method}.input_size")
    images, _ = _training_images(classification_images, classification, config)
    x = models.resize_images(images, size)
    input_meta = _input_metadata(x, size, "none")  # NMF needs non-negative inputs; PCA centres itself
    flat = x.reshape(len(x), -1).numpy().astype(np.float64)
    n_components = int(min(int(settings.n_components), *flat.shape))
    start = time.perf_counter()
    model, curve = method_spec.trainer(flat, n_components, settings, seed)
    seconds = time.perf_counter() - start
    architecture = {"name": method, "n_components": n_components, "input_size": size}
    metadata = {
        **_run_metadata(method, config, seed, classification_images.source, settings, len(flat)),
        "architecture": architecture,
        "input": input_meta,
    }
    history = {
        "method": method,
        "config": config,
        "seed": int(seed),
        "n_train": len(flat),
        "train_seconds": seconds,
        "epochs": curve,
        "images_per_second": len(flat) / seconds if seconds > 0 else float("nan"),
    }
    metadata["train_history"] = {k: v for k, v in history.items() if k != "epochs"}
    log.info(
        "%s: %d components of %dx%d images fitted on %d images in %.1f s",
        method,
        n_components,
        size,
        size,
        len(flat),
        seconds,
    )
    return models.DecompositionFrozenEncoder(model, metadata), history


def fit_linear_readout(
    frozen_encoder: models.FrozenEncoder,
    classification_images: ClassificationImages,
    classification: ClassificationParameters,
    training: TrainingParameters,
    *,
    config: str,
    seed: int,
) -> Any:
    """A linear classifier (standardised features + logistic regression) on the frozen representation
    of the same training images the encoder saw."""
    images, labels = _training_images(classification_images, classification, config)
    settings = classification.readout
    classifier = make_pipeline(
        StandardScaler(),
        LogisticRegression(C=float(settings.C), max_iter=int(settings.max_iter), random_state=int(seed)),
    )
    with thread_limit(hardware_settings(classification, training).torch_threads), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        features = frozen_encoder.embed(images)
        classifier.fit(features, labels)
    log.info(
        "Linear read-out on %d x %d features: training accuracy %.3f",
        *features.shape,
        classifier.score(features, labels),
    )
    return classifier


# --------------------------------------------------------------------------------------------
# Evaluation and results
# --------------------------------------------------------------------------------------------


def classification_scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Accuracy, balanced accuracy and per-class recall / precision / F1 (``recall_CTX``, ...)."""
    labels = list(range(len(spec.REGIONS)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # classes absent from a test set
        precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
        scores = {
            "accuracy": float(accuracy_score(y_true, y_pred)),
            "balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)),
        }
    for i, region in enumerate(spec.REGIONS):
        scores[f"recall_{region}"] = float(recall[i]) if support[i] else float("nan")
    for i, region in enumerate(spec.REGIONS):
        scores[f"precision_{region}"] = float(precision[i])
    for i, region in enumerate(spec.REGIONS):
        scores[f"f1_{region}"] = float(f1[i]) if support[i] else float("nan")
    return scores


def bootstrap_accuracy(
    y_true: np.ndarray, y_pred: np.ndarray, resamples: int, level: float, seed: int
) -> tuple[float, float]:
    """Percentile interval at ``level`` of the accuracy over ``resamples`` bootstrap draws of the
    test images (with replacement, numpy generator seeded with ``seed``)."""
    correct = (np.asarray(y_true) == np.asarray(y_pred)).astype(np.float64)
    if correct.size == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(int(seed))
    draws = correct[rng.integers(0, correct.size, size=(int(resamples), correct.size))].mean(axis=1)
    tail = 100 * (1 - float(level)) / 2
    low, high = np.percentile(draws, [tail, 100 - tail])
    return float(low), float(high)


def _confusion_frame(labels: np.ndarray, predicted: np.ndarray, config: str) -> pd.DataFrame:
    """Rows ``config`` x true region, columns ``pred_<region>``: the counts of one test configuration."""
    cm = confusion_matrix(labels, predicted, labels=list(range(len(spec.REGIONS))))
    frame = pd.DataFrame(cm, columns=[f"pred_{r}" for r in spec.REGIONS])
    frame.insert(0, "true_region", list(spec.REGIONS))
    frame.insert(0, "config", config)
    return frame


def evaluate_run(
    frozen_encoder: models.FrozenEncoder,
    readout: Any,
    training_history: dict[str, Any],
    classification_images: ClassificationImages,
    classification: ClassificationParameters,
    training: TrainingParameters,
    *,
    method: str,
    config: str,
    seed: int,
) -> tuple[list[dict[str, Any]], pd.DataFrame]:
    """Test a run on every configuration its training set serves (``evaluate_on``).

    Returns one result row per test configuration (with the bootstrap interval of the accuracy
    over the test images, ``classification.bootstrap``) and the confusion matrices (rows: test
    configuration x true region, columns: predicted region counts).
    """
    evaluate_on = classification.evaluate_on[cast(TrainConfig, config)]
    test_splits = classification.data.test_splits
    steps = classification.data.test_slice_step
    threads = hardware_settings(classification, training).torch_threads
    rows, matrices = [], []
    for test_config in evaluate_on:
        step = int(steps[test_config])
        images, labels = select_images(classification_images, test_config, test_splits, step)
        start = time.perf_counter()
        with thread_limit(threads):
            predicted = np.asarray(readout.predict(frozen_encoder.embed(images))).astype(np.int64)
        seconds = time.perf_counter() - start
        scores = classification_scores(labels, predicted)
        boot = classification.bootstrap
        ci_low, ci_high = bootstrap_accuracy(labels, predicted, boot.resamples, boot.level, boot.seed)
        rows.append(
            {
                "method": method,
                "config": config_label(test_config),
                "seed": int(seed),
                "train_config": config_label(config),
                **scores,
                "accuracy_ci_low": ci_low,
                "accuracy_ci_high": ci_high,
                "ci_level": float(boot.level),
                "n_train": int(training_history["n_train"]),
                "n_test": len(labels),
                "test_slice_step": step,
                "input_size": int(frozen_encoder.metadata["input"]["size"]),
                "train_seconds": float(training_history["train_seconds"]),
                "train_images_per_second": float(training_history["images_per_second"]),
                "test_seconds": seconds,
            }
        )
        matrices.append(_confusion_frame(labels, predicted, config_label(test_config)))
        log.info(
            "%s %s seed %d on %s: accuracy %.3f, balanced %.3f (%d images)",
            method,
            config,
            seed,
            config_label(test_config),
            scores["accuracy"],
            scores["balanced_accuracy"],
            len(labels),
        )
    return rows, pd.concat(matrices, ignore_index=True)


def collect_results(
    classification_data_summary: dict[str, Any], *run_metrics: list[dict[str, Any]], runs: list[Any]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The Task 1 table (one row per method x test configuration x seed) and its mean/std over seeds.

    ``runs``: the :class:`mtneuro.run_grid.RunSpec` of each ``run_metrics`` entry.
    """
    from mtneuro import run_grid  # Kedro is only needed here, not to train (e.g. in benchmarks)

    frames = [pd.DataFrame(rows) for rows in run_metrics]
    table = run_grid.collect_rows(runs, frames, classification_data_summary["source"])
    order = {m: i for i, m in enumerate(method_names())}
    table = table.sort_values(["method", "config", "seed"], key=lambda s: s.map(order) if s.name == "method" else s)
    table = table.reset_index(drop=True)
    grouped = table.groupby(["source", "method", "config"], sort=False)
    summary = grouped.agg(
        accuracy_mean=("accuracy", "mean"),
        accuracy_std=("accuracy", "std"),
        balanced_accuracy_mean=("balanced_accuracy", "mean"),
        balanced_accuracy_std=("balanced_accuracy", "std"),
        seeds=("seed", "nunique"),
        train_seconds_mean=("train_seconds", "mean"),
    ).reset_index()
    log.info(
        "Task 1 accuracy (mean over seeds):\n%s",
        summary.pivot(index="method", columns="config", values="accuracy_mean")
        .reindex([m for m in method_names() if m in set(summary["method"])])
        .round(3)
        .to_string(),
    )
    return table, summary


def collect_confusion_matrices(
    classification_data_summary: dict[str, Any], *run_matrices: pd.DataFrame, runs: list[Any]
) -> pd.DataFrame:
    """Every run's confusion matrices in one table: source, method, train_config, seed, config
    (the test configuration), true_region and one ``pred_<region>`` count column per region."""
    frames = []
    for run, matrix in zip(runs, run_matrices, strict=True):
        frame = matrix.copy()
        frame.insert(0, "seed", int(run.seed))
        frame.insert(0, "train_config", config_label(run.config))
        frame.insert(0, "method", run.method)
        frame.insert(0, "source", classification_data_summary["source"])
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


#: Columns of ``task1_training_histories`` before the per-step values (shared by every task).
HISTORY_KEYS: tuple[str, ...] = histories.HISTORY_KEYS
#: What counts a training history's steps: networks per epoch, PCA per number of components,
#: NMF per solver iterations.
HISTORY_STEPS: tuple[str, ...] = histories.HISTORY_STEPS


def collect_training_histories(
    classification_data_summary: dict[str, Any], *run_histories: Mapping[str, Any], runs: list[Any]
) -> pd.DataFrame:
    """Every run's training curve in one long table (:func:`mtneuro.histories.collect_histories`):
    source, method, train_config, seed, ``step_kind`` (``epoch`` for networks; ``components`` for
    PCA and ``iterations`` for NMF, whose curves are the reconstruction error), ``step`` and the
    values each step records (``loss``, ``lr``, ``seconds``, ...; absent ones NaN). Runs without a
    curve (the controls) have no rows."""
    return histories.collect_histories(runs, run_histories, classification_data_summary["source"], config_label)
