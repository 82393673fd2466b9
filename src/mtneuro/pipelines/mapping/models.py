"""The trained models a brain map is made with, taken from the tasks' run indexes.

The mapping pipeline never reads a task's per-run datasets: it reads ``segmentation_runs`` and
``frozen_encoders`` (see :mod:`mtneuro.datasets.run_index`), which load only the runs asked for.

The region model is chosen by *validation* accuracy (``mapping.regions.model: best``): on the
labelled slices that lie outside the run's training set and outside every test set of Task 1
(:func:`validation_slices`). With the default splits (Task 1 trains on train + val) that is,
for the ROI-C1 runs, the ROI-C3 extra training cubes: other positions of the same brain areas,
which is what a map far from the training cubes needs. ROI-C3 runs train on those cubes too and
have no validation slices left; they map only when named.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from mtneuro.config.classification import ClassificationParameters
from mtneuro.config.mapping import MappingParameters

from .engine import MappingError, RegionModel
from .nodes import microstructure_candidates, select_microstructure_model

log = logging.getLogger(__name__)


def _run(index: Mapping[str, Any], run: str, task: str, parameter: str) -> Any:
    if run not in index:
        raise MappingError(
            f"{parameter} names the {task} run {run!r}, which the {task} run index does not hold; run the "
            f"{task} pipeline with it first (the index holds {sorted(index)})."
        )
    return index[run]


def chosen_microstructure_run(mapping: MappingParameters, task2_segmentation: pd.DataFrame | None) -> str:
    """``<model>.<setting>.seed<k>`` of the Task 2 run to map with (``mapping.microstructure``)."""
    m = mapping.microstructure
    names: dict[str, Any] = {name: name for name in microstructure_candidates(mapping)}
    chosen = str(select_microstructure_model(task2_segmentation, mapping, **names))
    return f"{chosen}.{m.setting}.seed{m.seed}"


def choose_microstructure_model(
    segmentation_runs: Mapping[str, Any], mapping: MappingParameters, task2_segmentation: pd.DataFrame | None = None
) -> Any:
    """The Task 2 network to map with (``mapping.microstructure``): the named model, or the best
    candidate by mean IoU in ``task2_segmentation``; only the chosen network is loaded."""
    run = chosen_microstructure_run(mapping, task2_segmentation)
    return _run(segmentation_runs, run, "segmentation", "mapping.microstructure")["trained_model"]


def microstructure_test_predictions(
    segmentation_runs: Mapping[str, Any], mapping: MappingParameters, task2_segmentation: pd.DataFrame | None = None
) -> dict[str, Any]:
    """The Task 2 test predictions of the mapped network (to check the map against them)."""
    run = chosen_microstructure_run(mapping, task2_segmentation)
    return {
        "run": run,
        "predictions": _run(segmentation_runs, run, "segmentation", "mapping.microstructure")["test_predictions"],
    }


# --- the region model ----------------------------------------------------------------------------


def _task1_configs(classification: ClassificationParameters) -> set[str]:
    evaluate_on = classification.evaluate_on
    return {str(k) for k in evaluate_on} | {str(c) for v in evaluate_on.values() for c in v}


def validation_slices(split_index: pd.DataFrame, config: str, classification: ClassificationParameters) -> pd.DataFrame:
    """Rows ``cube_id, z, label`` of the Task 1 slices outside the training set of a run trained
    on ``config`` and outside every Task 1 test set (``classification.data``'s splits)."""
    train_splits = [str(s) for s in classification.data.train_splits]
    test_splits = [str(s) for s in classification.data.test_splits]
    rows = split_index[split_index["config"].isin(sorted(_task1_configs(classification)))]
    key = ["cube_id", "z"]
    training = rows[(rows["config"] == config) & rows["split"].isin(train_splits)][key]
    tested = rows[rows["split"].isin(test_splits)][key]
    excluded = pd.concat([training, tested]).drop_duplicates()
    candidates = rows[~rows["split"].isin(test_splits)][[*key, "label"]].drop_duplicates(key)
    merged = candidates.merge(excluded, on=key, how="left", indicator=True)
    return merged[merged["_merge"] == "left_only"][[*key, "label"]].sort_values(key).reset_index(drop=True)


def _validation_images(
    cubes: Mapping[str, Any], slices: pd.DataFrame, step: int
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    images, labels, used = [], [], []
    for cube_id, group in slices.groupby("cube_id", sort=True):
        z = group["z"].to_numpy()[::step]
        images.append(np.asarray(cubes[cube_id].image)[z])
        labels.append(group["label"].to_numpy()[::step].astype(np.int64))
        used.append(str(cube_id))
    if not images:
        return np.zeros((0, 1, 1), np.uint8), np.zeros(0, np.int64), []
    return np.concatenate(images), np.concatenate(labels), used


def _run_config(run: str) -> str:
    return run.split(".")[1]


def _chosen_region_run(mapping: MappingParameters, runs: list[str], accuracy: Mapping[str, float]) -> tuple[str, str]:
    """The region run to map with and the rule that chose it: the named run, or the candidate
    with the best validation accuracy (ties: the first in ``runs``)."""
    if mapping.regions.model != "best":
        return mapping.regions.model, "named in mapping.regions.model"
    scored = {run: acc for run, acc in accuracy.items() if not np.isnan(acc)}
    if not scored:
        raise MappingError(
            "No candidate region model has validation slices (slices outside its training set and every "
            "test set): name a run in mapping.regions.model, e.g. "
            f"{runs[0]!r}, or leave 'val' out of classification.data.train_splits."
        )
    return max(scored, key=lambda run: (scored[run], -runs.index(run))), (
        "best validation accuracy among mapping.regions.candidates"
    )


def choose_region_model(
    frozen_encoders: Mapping[str, Any],
    cubes: Mapping[str, Any],
    split_index: pd.DataFrame,
    mapping: MappingParameters,
    classification: ClassificationParameters,
) -> tuple[Any, Any, dict[str, Any]]:
    """The Task 1 encoder and read-out to map with, and how they were chosen.

    ``mapping.regions.model``: ``best`` (the run of ``candidates`` with the highest validation
    accuracy, :func:`validation_slices`; ties: the first in the index's order) or a run name.
    The selection record (``run``, ``rule``, each candidate's ``validation_accuracy``) goes into
    the store's metadata and ``mapping_validation``.
    """
    r = mapping.regions
    methods = set(r.candidates)
    runs = [run for run in frozen_encoders if run.split(".")[0] in methods] if r.model == "best" else [r.model]
    if r.model != "best":
        _run(frozen_encoders, r.model, "classification", "mapping.regions.model")
    if not runs:
        raise MappingError(
            f"mapping.regions.candidates {sorted(methods)} match no run of the Task 1 run index "
            f"({sorted(frozen_encoders)}); list trained methods or name a run in mapping.regions.model."
        )
    per_config: dict[str, tuple[np.ndarray, np.ndarray, list[str]]] = {}
    accuracy: dict[str, float] = {}
    artefacts: dict[str, tuple[Any, Any]] = {}
    for run in runs:
        config = _run_config(run)
        if config not in per_config:
            per_config[config] = _validation_images(
                cubes, validation_slices(split_index, config, classification), r.validation_slice_step
            )
        images, labels, _ = per_config[config]
        if len(labels) or r.model != "best":  # a candidate without validation slices is never loaded
            encoder, readout = frozen_encoders[run]["frozen_encoder"], frozen_encoders[run]["readout"]
            artefacts[run] = (encoder, readout)
        if len(labels):
            predicted = RegionModel(encoder, readout, run).predict(images, r.batch_size)
            accuracy[run] = float(np.mean(predicted == labels))
        else:
            accuracy[run] = float("nan")
        log.info("mapping: region model %s, validation accuracy %.3f (%d slices)", run, accuracy[run], len(labels))
    chosen, rule = _chosen_region_run(mapping, runs, accuracy)
    encoder, readout = artefacts[chosen]
    _, labels, used = per_config[_run_config(chosen)]
    selection = {
        "run": chosen,
        "rule": rule,
        "validation_accuracy": accuracy,
        "validation_slices": len(labels),
        "validation_cubes": used,
    }
    log.info("mapping: region model %s (%s, validation accuracy %.3f)", chosen, rule, accuracy[chosen])
    return encoder, readout, selection
