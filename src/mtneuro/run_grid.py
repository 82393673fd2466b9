"""The run grid: which (method, configuration, seed) runs a task pipeline contains.

Every task reads its grid from its parameter block (``methods``/``models``, ``configs``,
``seeds``) and gets one Kedro node (or a small namespaced sub-pipeline) per run, so that
``kedro viz`` shows the grid and a parallel runner can execute independent runs side by side.

Grids are static pipelines: ``register_pipelines`` builds them from the typed parameters of the
active configuration (:mod:`mtneuro.config`), and each task's ``create_pipeline(parameters)``
expands its grid with :func:`expand_grid`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial, update_wrapper
from typing import Any

import pandas as pd
from kedro.pipeline import Pipeline


@dataclass(frozen=True)
class RunSpec:
    """One run of a task: a method (or model) trained on one configuration with one seed."""

    task: str
    method: str
    config: str
    seed: int

    @property
    def namespace(self) -> str:
        """Kedro namespace of the run's nodes and datasets, e.g. ``classification.byol.roi_c1.seed0``."""
        return f"{self.task}.{self.method}.{self.config}.seed{self.seed}"

    @property
    def key(self) -> str:
        """The run within its task, e.g. ``byol.roi_c1.seed0``: its key in the task's run index."""
        return f"{self.method}.{self.config}.seed{self.seed}"

    def as_row(self) -> dict[str, Any]:
        return {"method": self.method, "config": self.config, "seed": self.seed}


def expand_grid(task: str, methods: Iterable[str], configs: Iterable[str], seeds: Iterable[int] | int) -> list[RunSpec]:
    """All runs of a task; ``seeds`` is a list of seeds or a count (seeds 0..n-1)."""
    seed_list = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    return [RunSpec(task, m, c, s) for m, c, s in itertools.product(methods, configs, seed_list)]


def grid_pipeline(
    runs: Iterable[RunSpec],
    make_run_pipeline: Callable[[RunSpec], Pipeline],
    shared_inputs: Iterable[str],
    parameters: Iterable[str] = (),
) -> Pipeline:
    """One namespaced copy of ``make_run_pipeline(run)`` per run, sharing the given inputs."""
    pipes = [
        Pipeline(
            make_run_pipeline(run),
            namespace=run.namespace,
            inputs=set(shared_inputs),
            parameters=set(parameters),
        )
        for run in runs
    ]
    return sum(pipes, Pipeline([]))


def bind(func: Callable[..., Any], **kwargs: Any) -> Callable[..., Any]:
    """``func`` with keyword arguments fixed (a run's method, seed, ...), keeping its name,
    after which Kedro names the node."""
    return update_wrapper(partial(func, **kwargs), func)


def reference_inputs(runs: Iterable[RunSpec], members: Iterable[str]) -> list[str]:
    """The ``<run>.<member>@reference`` datasets an index node reads, run by run."""
    return [f"{run.namespace}.{member}@reference" for run in runs for member in members]


def make_indexer(runs: Iterable[RunSpec], members: Iterable[str]) -> Callable[..., dict[str, dict[str, Any]]]:
    """A node function turning the references of :func:`reference_inputs` into a run index
    (``{run.key: {member: reference}}``, saved by :class:`mtneuro.datasets.run_index.RunIndexDataset`)."""
    run_list, member_list = list(runs), list(members)

    def index_runs(*references: Any) -> dict[str, dict[str, Any]]:
        if len(references) != len(run_list) * len(member_list):
            raise ValueError(f"Expected {len(run_list) * len(member_list)} references, got {len(references)}")
        it = iter(references)
        return {run.key: {member: next(it) for member in member_list} for run in run_list}

    return index_runs


def collect_rows(runs: list[RunSpec], results: Iterable[Any], source: str) -> pd.DataFrame:
    """Stack per-run results (a dict for one row, or a DataFrame of rows) into one table.

    ``source`` names the data source (phantom/BossDB/...) so that every report says what
    produced its numbers.
    """
    frames = []
    for run, result in zip(runs, results, strict=True):
        frame = result.copy() if isinstance(result, pd.DataFrame) else pd.DataFrame([result])
        for key, value in reversed(list(run.as_row().items())):
            if key not in frame.columns:
                frame.insert(0, key, value)
        frame.insert(0, "source", source)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
