"""The run grid: which (method, configuration, seed) runs a task pipeline contains.

Every task reads its grid from its parameter block (``methods``/``models``, ``configs``,
``seeds``) and gets one Kedro node (or a small namespaced sub-pipeline) per run, so that
``kedro viz`` shows the grid and a parallel runner can execute independent runs side by side.

Pipelines are built when Kedro registers them, before nodes see parameters; the hook
:class:`mtneuro.hooks.RunGridHook` hands this module the parameters of the active environment
(``--env=paper``, ``--params``) and asks Kedro to rebuild the pipelines when they change.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from kedro.pipeline import Pipeline

_active_parameters: dict[str, Any] | None = None
_parameters_used_for_pipelines: dict[str, Any] | None = None


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

    def as_row(self) -> dict[str, Any]:
        return {"method": self.method, "config": self.config, "seed": self.seed}


def set_active_parameters(parameters: Mapping[str, Any]) -> bool:
    """Record the parameters of the active Kedro context; True if pipelines must be rebuilt."""
    global _active_parameters
    _active_parameters = dict(parameters)
    return _parameters_used_for_pipelines is not None and _parameters_used_for_pipelines != _active_parameters


def project_parameters() -> dict[str, Any]:
    """Parameters of the active context, or of ``conf/base`` + ``conf/local`` outside a session."""
    global _parameters_used_for_pipelines
    if _active_parameters is None:
        from kedro.config import OmegaConfigLoader

        from mtneuro.settings import CONFIG_LOADER_ARGS

        conf = Path(__file__).resolve().parents[2] / "conf"
        params = dict(OmegaConfigLoader(conf_source=str(conf), **CONFIG_LOADER_ARGS)["parameters"])
    else:
        params = _active_parameters
    _parameters_used_for_pipelines = params
    return params


def task_parameters(task: str) -> dict[str, Any]:
    params = project_parameters()
    if task not in params:
        raise KeyError(f"Parameter block '{task}' is missing from conf/base/parameters_{task}.yml")
    return params[task]


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
