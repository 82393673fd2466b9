"""The trained models a brain map is made with, taken from the tasks' run indexes.

The mapping pipeline never reads a task's per-run datasets: it reads ``segmentation_runs`` and
``frozen_encoders`` (see :mod:`mtneuro.datasets.run_index`), which load only the runs asked for.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from mtneuro.config.mapping import MappingParameters

from .engine import MappingError
from .nodes import as_parameters, microstructure_candidates, select_microstructure_model


def _run(index: Mapping[str, Any], run: str, task: str, parameter: str) -> Any:
    if run not in index:
        raise MappingError(
            f"{parameter} names the {task} run {run!r}, which the {task} run index does not hold; run the "
            f"{task} pipeline with it first (the index holds {sorted(index)})."
        )
    return index[run]


def choose_microstructure_model(
    segmentation_runs: Mapping[str, Any], mapping: MappingParameters, task2_segmentation: pd.DataFrame | None = None
) -> Any:
    """The Task 2 network to map with (``mapping.microstructure``): the named model, or the best
    candidate by mean IoU in ``task2_segmentation``; only the chosen network is loaded."""
    mapping = as_parameters(mapping)
    m = mapping.microstructure
    names: dict[str, Any] = {name: name for name in microstructure_candidates(mapping)}
    chosen = str(select_microstructure_model(task2_segmentation, mapping, **names))
    run = f"{chosen}.{m.setting}.seed{m.seed}"
    return _run(segmentation_runs, run, "segmentation", "mapping.microstructure")["trained_model"]


def choose_region_model(frozen_encoders: Mapping[str, Any], mapping: MappingParameters) -> tuple[Any, Any]:
    """The Task 1 encoder and read-out of ``mapping.regions`` (method, training set, seed)."""
    r = as_parameters(mapping).regions
    artefacts = _run(frozen_encoders, f"{r.method}.{r.config}.seed{r.seed}", "classification", "mapping.regions")
    return artefacts["frozen_encoder"], artefacts["readout"]
