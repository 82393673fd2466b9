"""Task 1 nodes: brain-region classification of single sections (benchmark spec section 3).

Pure functions, no I/O: the catalog loads ``cubes``/``split_index`` and saves every result.
One run = (method, training configuration, seed). Training configurations are ``roi_c1``
(the main cubes' train(+val) slices; its models are tested on ROI-C1 and ROI-C2) and ``roi_c3``
(plus the extra training cubes; tested on ROI-C3), see ``evaluate_on`` in the parameters.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.decomposition import NMF, PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix, precision_recall_fscore_support
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mtneuro import models, spec, ssl, training
from mtneuro.cubes import Cube, describe_source

log = logging.getLogger(__name__)

#: Split-index configurations Task 1 reads, and their names in result tables.
CONFIG_LABELS: dict[str, str] = {"roi_c1": "ROI-C1", "roi_c2": "ROI-C2", "roi_c3": "ROI-C3"}
DECOMPOSITION_METHODS: tuple[str, ...] = ("pca", "nmf")
METHODS: tuple[str, ...] = (*ssl.NETWORK_METHODS, *DECOMPOSITION_METHODS)
#: Parameter blocks a method's settings inherit from, most general first (see method_settings).
_INHERITS: dict[str, tuple[str, ...]] = {
    "supervised": ("network_training", "supervised"),
    "mixup": ("network_training", "supervised", "mixup"),
    "byol": ("network_training", "byol"),
    "myow": ("network_training", "byol", "myow"),
    "myow_merged": ("network_training", "byol", "myow", "myow_merged"),
    "pca": ("decomposition", "pca"),
    "nmf": ("decomposition", "nmf"),
}


class ClassificationError(ValueError):
    """A parameter or input of the classification pipeline is inconsistent."""


# --------------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------------



def method_settings(params: Mapping[str, Any], method: str) -> dict[str, Any]:
    """A method's resolved settings: its parameter blocks merged, most general first.

    ``mixup`` inherits ``supervised``; ``myow`` inherits ``byol``; ``myow_merged`` inherits
    ``myow``; all network methods start from ``network_training`` (and ``augmentation``), PCA/NMF from
    ``decomposition``. A block of ``method_overrides`` (e.g. from ``--params``) is applied last.
    """
    if method not in _INHERITS:
        raise ClassificationError(f"Unknown classification method {method!r}; expected one of {list(_INHERITS)}")
    settings: dict[str, Any] = {}
    if method in ssl.NETWORK_METHODS:
        settings["augmentation"] = dict(params.get("augmentation", {}))
    for block in _INHERITS[method]:
        settings = training.deep_merge(settings, params.get(block))
    return training.deep_merge(settings, (params.get("method_overrides") or {}).get(method) or {})


def hardware_settings(params: Mapping[str, Any], hardware: Mapping[str, Any] | None) -> dict[str, Any]:
    """The shared ``training`` block with this task's ``classification.hardware`` overrides."""
    return training.deep_merge(hardware, params.get("hardware"))


def config_label(config: str) -> str:
    return CONFIG_LABELS.get(config, config)


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


def prepare_images(
    cubes: dict[str, Cube], split_index: pd.DataFrame, params: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Every section Task 1 uses, resized once to ``data.prepared_size`` (float32 in [0, 1]).

    Returns the model input (``images`` (N, S, S), ``index`` = the split-index rows of
    ROI-C1/C2/C3 with the ``row`` of their image, ``source``) and a JSON summary.
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
    size = min(int(params["data"]["prepared_size"]), raw_size)
    unique = index[["cube_id", "z"]].drop_duplicates().sort_values(["cube_id", "z"]).reset_index(drop=True)
    unique["row"] = np.arange(len(unique))
    images = np.empty((len(unique), size, size), dtype=np.float32)
    with training.thread_limit((params.get("hardware") or {}).get("torch_threads")):
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
    log.info("Task 1 images: %d sections of %s resized to %dx%d (source %s)", len(unique), summary["raw_shape_yx"], size, size, source)
    data = {"images": images, "index": index.reset_index(drop=True), "size": size, "raw_size": raw_size, "source": source}
    return data, summary


def select_images(
    data: Mapping[str, Any], config: str, splits: list[str] | tuple[str, ...], slice_step: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, S, S) and class indices (N,) of a configuration's splits, every ``slice_step``-th slice."""
    index = data["index"]
    rows = index[(index["config"] == config) & index["split"].isin(list(splits))]
    if int(slice_step) > 1:
        rows = rows[rows["z"] % int(slice_step) == 0]
    if rows.empty:
        raise ClassificationError(f"No images for config {config!r}, splits {list(splits)} (slice step {slice_step})")
    rows = rows.sort_values(["cube_id", "z"])
    return data["images"][rows["row"].to_numpy()], rows["label"].to_numpy().astype(np.int64)


def _check_input_size(data: Mapping[str, Any], size: int, key: str) -> None:
    """Models trained on prepared images must see what their frozen encoder makes of raw sections."""
    prepared, raw = int(data.get("size", size)), int(data.get("raw_size", data.get("size", size)))
    if size > prepared and prepared < raw:
        raise ClassificationError(
            f"{key} = {size} exceeds classification.data.prepared_size = {prepared} (sections are {raw} pixels): "
            "raise data.prepared_size to at least the largest input size"
        )


def _training_images(data: Mapping[str, Any], params: Mapping[str, Any], config: str) -> tuple[np.ndarray, np.ndarray]:
    d = params["data"]
    return select_images(data, config, d.get("train_splits", ["train", "val"]), int(d.get("train_slice_step", 1)))


def _input_metadata(x: torch.Tensor, size: int, mode: str) -> dict[str, Any]:
    """How a model's inputs are made from uint8 sections; ``mode``: training_set | per_image | none."""
    if mode == "training_set":
        norm = {"mode": mode, "mean": float(x.mean()), "std": float(x.std().clamp_min(1e-6)),
                "formula": "(x - mean) / std", "statistics": "training images of the run"}
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
    method: str, config: str, seed: int, data: Mapping[str, Any], settings: Mapping[str, Any], n_train: int
) -> dict[str, Any]:
    return {
        "format_version": models.TASK1_ENCODER_FORMAT,
        "task": "classification",
        "method": method,
        "train_config": config,
        "seed": int(seed),
        "source": data.get("source", "unknown"),
        "classes": list(spec.REGIONS),
        "n_train": int(n_train),
        "train_settings": dict(settings),
    }


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------


def _train_network(
    data: Mapping[str, Any], params: Mapping[str, Any], hardware: Mapping[str, Any], method: str, config: str, seed: int
) -> tuple[models.ResNetFrozenEncoder, ssl.RepresentationLearner, dict[str, Any]]:
    settings = method_settings(params, method)
    architecture = {k: v for k, v in params["encoder"].items() if k not in ("input_size", "normalisation")}
    architecture.setdefault("name", "resnet18")
    size = int(params["encoder"]["input_size"])
    _check_input_size(data, size, "encoder.input_size")
    images, labels = _training_images(data, params, config)
    x = models.resize_images(images, size)
    input_meta = _input_metadata(x, size, str(params["encoder"].get("normalisation", "training_set")))
    x = models.preprocess_images(images, input_meta)
    module, history = ssl.fit_network(
        method, x, torch.as_tensor(labels), architecture, settings, hardware_settings(params, hardware), seed,
        n_classes=len(spec.REGIONS),
    )
    metadata = {**_run_metadata(method, config, seed, data, settings, len(x)), "architecture": architecture, "input": input_meta}
    metadata["train_history"] = {k: v for k, v in history.items() if k != "epochs"}
    return models.ResNetFrozenEncoder(module.encoder, metadata), module, {**history, "config": config, "seed": int(seed)}


def train_supervised(
    classification_images: dict[str, Any],
    params: dict[str, Any],
    hardware: dict[str, Any],
    *,
    method: str,
    config: str,
    seed: int,
) -> tuple[models.ResNetFrozenEncoder, models.LinearReadout, dict[str, Any]]:
    """Supervised (or mixup) ResNet-18: the frozen encoder, its own linear head as read-out, the history."""
    if method not in ssl.SUPERVISED_METHODS:
        raise ClassificationError(f"train_supervised trains {ssl.SUPERVISED_METHODS}, not {method!r}")
    encoder, module, history = _train_network(classification_images, params, hardware, method, config, seed)
    linear = module.head[-1]
    readout = models.LinearReadout(linear.weight.detach().numpy(), linear.bias.detach().numpy(), list(range(len(spec.REGIONS))))
    return encoder, readout, history


def train_self_supervised(
    classification_images: dict[str, Any],
    params: dict[str, Any],
    hardware: dict[str, Any],
    *,
    method: str,
    config: str,
    seed: int,
) -> tuple[models.ResNetFrozenEncoder, dict[str, Any]]:
    """BYOL / MYOW / MYOW-merged ResNet-18 on the training images (labels unused): frozen encoder + history."""
    if method not in ssl.SSL_METHODS:
        raise ClassificationError(f"train_self_supervised trains {ssl.SSL_METHODS}, not {method!r}")
    encoder, _, history = _train_network(classification_images, params, hardware, method, config, seed)
    return encoder, history


def fit_decomposition(
    classification_images: dict[str, Any],
    params: dict[str, Any],
    hardware: dict[str, Any],
    *,
    method: str,
    config: str,
    seed: int,
) -> tuple[models.DecompositionFrozenEncoder, dict[str, Any]]:
    """PCA or NMF (``n_components`` of ``input_size`` downsampled images): frozen encoder + history.

    History: PCA's reconstruction error (mean squared, per pixel) as components are added; NMF's
    reconstruction error after each block of iterations (both are the "loss going down").
    """
    if method not in DECOMPOSITION_METHODS:
        raise ClassificationError(f"fit_decomposition fits {DECOMPOSITION_METHODS}, not {method!r}")
    with training.thread_limit(hardware_settings(params, hardware).get("torch_threads")):
        return _fit_decomposition(classification_images, params, method, config, seed)


def _fit_decomposition(
    classification_images: dict[str, Any], params: dict[str, Any], method: str, config: str, seed: int
) -> tuple[models.DecompositionFrozenEncoder, dict[str, Any]]:
    settings = method_settings(params, method)
    size = int(settings.get("input_size", 64))
    _check_input_size(classification_images, size, f"{method}.input_size")
    images, _ = _training_images(classification_images, params, config)
    x = models.resize_images(images, size)
    input_meta = _input_metadata(x, size, "none")  # NMF needs non-negative inputs; PCA centres itself
    flat = x.reshape(len(x), -1).numpy().astype(np.float64)
    n_components = int(min(int(settings.get("n_components", 256)), *flat.shape))
    start = time.perf_counter()
    curve: list[dict[str, float]] = []
    if method == "pca":
        model = PCA(n_components=n_components, svd_solver=settings.get("svd_solver", "full"), random_state=int(seed)).fit(flat)
        centred_var = float(((flat - flat.mean(axis=0)) ** 2).sum(axis=1).mean())
        cum = np.cumsum(model.explained_variance_ratio_)
        for k in sorted({1, 2, 4, 8, 16, 32, 64, 128, 256, n_components} & set(range(1, n_components + 1))):
            curve.append({"components": k, "loss": centred_var * (1 - float(cum[k - 1])) / flat.shape[1]})
    else:
        chunks = max(1, int(settings.get("history_chunks", 4)))
        max_iter = int(settings.get("max_iter", 200))
        per_chunk = max(1, max_iter // chunks)
        model = NMF(n_components=n_components, init=settings.get("init", "nndsvda"), max_iter=per_chunk,
                    tol=float(settings.get("tol", 1e-4)), random_state=int(seed))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            w = model.fit_transform(flat)
            h = model.components_
            curve.append({"iterations": int(model.n_iter_), "loss": float(model.reconstruction_err_**2 / flat.size)})
            for _ in range(chunks - 1):
                model = NMF(n_components=n_components, init="custom", max_iter=per_chunk,
                            tol=float(settings.get("tol", 1e-4)), random_state=int(seed))
                w = model.fit_transform(flat, W=w, H=h)
                h = model.components_
                curve.append({"iterations": int(curve[-1]["iterations"] + model.n_iter_),
                              "loss": float(model.reconstruction_err_**2 / flat.size)})
    seconds = time.perf_counter() - start
    architecture = {"name": method, "n_components": n_components, "input_size": size}
    metadata = {
        **_run_metadata(method, config, seed, classification_images, settings, len(flat)),
        "architecture": architecture,
        "input": input_meta,
    }
    history = {"method": method, "config": config, "seed": int(seed), "n_train": len(flat), "train_seconds": seconds,
               "epochs": curve, "images_per_second": len(flat) / seconds if seconds > 0 else float("nan")}
    metadata["train_history"] = {k: v for k, v in history.items() if k != "epochs"}
    log.info("%s: %d components of %dx%d images fitted on %d images in %.1f s", method, n_components, size, size, len(flat), seconds)
    return models.DecompositionFrozenEncoder(model, metadata), history


def fit_linear_readout(
    frozen_encoder: models.FrozenEncoder,
    classification_images: dict[str, Any],
    params: dict[str, Any],
    hardware: dict[str, Any],
    *,
    config: str,
    seed: int,
) -> Any:
    """A linear classifier (standardised features + logistic regression) on the frozen representation
    of the same training images the encoder saw."""
    images, labels = _training_images(classification_images, params, config)
    settings = params.get("readout", {})
    classifier = make_pipeline(
        StandardScaler(),
        LogisticRegression(C=float(settings.get("C", 1.0)), max_iter=int(settings.get("max_iter", 1000)), random_state=int(seed)),
    )
    with training.thread_limit(hardware_settings(params, hardware).get("torch_threads")), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        features = frozen_encoder.embed(images)
        classifier.fit(features, labels)
    log.info("Linear read-out on %d x %d features: training accuracy %.3f", *features.shape, classifier.score(features, labels))
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


def evaluate_run(
    frozen_encoder: models.FrozenEncoder,
    readout: Any,
    training_history: dict[str, Any],
    classification_images: dict[str, Any],
    params: dict[str, Any],
    hardware: dict[str, Any],
    *,
    method: str,
    config: str,
    seed: int,
) -> tuple[list[dict[str, Any]], pd.DataFrame]:
    """Test a run on every configuration its training set serves (``evaluate_on``).

    Returns one result row per test configuration and the confusion matrices (rows: test
    configuration x true region, columns: predicted region counts).
    """
    evaluate_on = params.get("evaluate_on", {}).get(config, [config])
    test_splits = params["data"].get("test_splits", ["test"])
    steps = params["data"].get("test_slice_step", 1)
    rows, matrices = [], []
    for test_config in evaluate_on:
        step = int(steps.get(test_config, 1) if isinstance(steps, Mapping) else steps)
        images, labels = select_images(classification_images, test_config, test_splits, step)
        start = time.perf_counter()
        with training.thread_limit(hardware_settings(params, hardware).get("torch_threads")):
            predicted = np.asarray(readout.predict(frozen_encoder.embed(images))).astype(np.int64)
        seconds = time.perf_counter() - start
        scores = classification_scores(labels, predicted)
        rows.append(
            {
                "method": method,
                "config": config_label(test_config),
                "seed": int(seed),
                "train_config": config_label(config),
                **scores,
                "n_train": int(training_history.get("n_train", 0)),
                "n_test": len(labels),
                "test_slice_step": step,
                "input_size": int(frozen_encoder.metadata["input"]["size"]),
                "train_seconds": float(training_history.get("train_seconds", float("nan"))),
                "train_images_per_second": float(training_history.get("images_per_second", float("nan"))),
                "test_seconds": seconds,
            }
        )
        cm = confusion_matrix(labels, predicted, labels=list(range(len(spec.REGIONS))))
        frame = pd.DataFrame(cm, columns=[f"pred_{r}" for r in spec.REGIONS])
        frame.insert(0, "true_region", list(spec.REGIONS))
        frame.insert(0, "config", config_label(test_config))
        matrices.append(frame)
        log.info("%s %s seed %d on %s: accuracy %.3f, balanced %.3f (%d images)",
                 method, config, seed, config_label(test_config), scores["accuracy"], scores["balanced_accuracy"], len(labels))
    return rows, pd.concat(matrices, ignore_index=True)


def collect_results(
    classification_data_summary: dict[str, Any], *run_metrics: list[dict[str, Any]], runs: list[Any]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The Task 1 table (one row per method x test configuration x seed) and its mean/std over seeds.

    ``runs``: the :class:`mtneuro.run_grid.RunSpec` of each ``run_metrics`` entry.
    """
    from mtneuro import run_grid  # Kedro is only needed here, not to train (e.g. in benchmarks)

    frames = [pd.DataFrame(rows) for rows in run_metrics]
    table = run_grid.collect_rows(runs, frames, classification_data_summary.get("source", "unknown"))
    order = {m: i for i, m in enumerate(METHODS)}
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
    log.info("Task 1 accuracy (mean over seeds):\n%s",
             summary.pivot(index="method", columns="config", values="accuracy_mean").reindex(
                 [m for m in METHODS if m in set(summary["method"])]).round(3).to_string())
    return table, summary
