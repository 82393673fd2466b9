"""Training histories: every run's training curve (loss, learning rate, ... per epoch) of a task
in one long table, the same for every task (``task1_training_histories``,
``task2_training_histories``; the report draws them with one chart function).

A run's history is ``{"epochs": [record, ...], ...}``, a record per step: networks' records come
from :class:`mtneuro.training.EpochHistoryModule` (``epoch``, ``loss``, ``seconds``, ``lr``, ...);
PCA's are per number of components and NMF's per solver iterations. No Kedro here (benchmarks
and notebooks import the task nodes without it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

import pandas as pd


class Run(Protocol):
    """What a history row names of its run (:class:`mtneuro.run_grid.RunSpec`)."""

    @property
    def method(self) -> str: ...
    @property
    def config(self) -> str: ...
    @property
    def seed(self) -> int: ...


#: Columns of a task's training-history table (``task1_training_histories``,
#: ``task2_training_histories``) before the per-step values.
HISTORY_KEYS: tuple[str, ...] = ("source", "method", "train_config", "seed", "step_kind", "step")
#: What counts a training history's steps: networks per epoch, PCA per number of components,
#: NMF per solver iterations.
HISTORY_STEPS: tuple[str, ...] = ("epoch", "components", "iterations")


def collect_histories(
    runs: Sequence[Run],
    histories: Iterable[Mapping[str, Any]],
    source: str | None = None,
    config_label: Callable[[str], str] = str,
) -> pd.DataFrame:
    """Every run's training curve in one long table (:data:`HISTORY_KEYS`, then the values each
    step records: ``loss``, ``lr``, ``seconds``, ...; absent ones NaN). ``method`` is the run's
    method (or model), ``train_config`` its configuration as ``config_label`` names it,
    ``step_kind`` what counts the steps (:data:`HISTORY_STEPS`). A history is
    ``{"epochs": [record, ...], ...}``; ``source`` (the data source) defaults to each history's
    own ``source``. Runs without a curve (nothing trained) have no rows."""
    rows = []
    for run, history in zip(runs, histories, strict=True):
        for k, record in enumerate(history.get("epochs") or []):
            kind = next((key for key in HISTORY_STEPS if key in record), "step")
            values = {key: v for key, v in record.items() if key not in (*HISTORY_STEPS, "step")}
            rows.append(
                {
                    "source": source if source is not None else history.get("source", "unknown"),
                    "method": run.method,
                    "train_config": config_label(run.config),
                    "seed": int(run.seed),
                    "step_kind": kind,
                    "step": int(record.get(kind, k)),
                    **values,
                }
            )
    return pd.DataFrame(rows, columns=None if rows else list(HISTORY_KEYS))
