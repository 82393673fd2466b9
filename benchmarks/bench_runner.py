"""Wall time of the Task 2 grid with SequentialRunner against mtneuro.runners.DaskRunner.

Ingestion runs once (SequentialRunner) into a scratch data root; then the ``segmentation``
namespace (data preparation, every grid cell, table, figure) runs with each runner in turn on
the same inputs, through real KedroSessions. A run named ``<runner>+mlflow`` has the MLflow
tracking hook (store in the scratch folder), a run without it has not, which measures the
hook's overhead; ``--repeat`` interleaves the runs to even out a shared machine's load. The
tables of all runs are compared (``train_seconds`` aside): a runner changes no number.

    uv run python benchmarks/bench_runner.py                       # base profile, 2 workers
    uv run python benchmarks/bench_runner.py --env tiny --runs sequential,dask
    uv run python benchmarks/bench_runner.py --runs sequential,sequential+mlflow --repeat 3
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from kedro.framework.project import settings
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from kedro.runner import SequentialRunner

PROJECT = Path(__file__).resolve().parents[1]
TABLE = Path("08_reporting") / "task2_segmentation.csv"


def session_run(env: str | None, data_root: Path, runner: object, **kwargs: object) -> float:
    start = time.perf_counter()
    with KedroSession.create(project_path=PROJECT, env=env, runtime_params={"data_root": str(data_root)}) as session:
        session.run(runner=runner, **kwargs)
    return time.perf_counter() - start


def _import_project() -> None:
    """What the first node on a fresh worker pays: torch, Lightning and the model libraries."""
    import mtneuro.pipelines.segmentation.nodes  # noqa: F401


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default=None, help="Kedro environment (default: base profile)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--runs", default="sequential,dask,dask+mlflow")
    parser.add_argument(
        "--repeat", type=int, default=1, help="run the list this many times, interleaved (medians are reported)"
    )
    parser.add_argument("--data-root", type=Path, default=None, help="scratch folder (default: a temporary one)")
    args = parser.parse_args()
    os.chdir(PROJECT)
    bootstrap_project(PROJECT)  # once: bootstrapping again would reset settings.HOOKS
    root = args.data_root or Path(tempfile.mkdtemp(prefix="bench-runner-"))
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")

    from distributed import Client, LocalCluster

    from mtneuro.runners import DaskRunner
    from mtneuro.tracking import MLFLOW_HOOK, MlflowTrackingHook

    load_before = os.getloadavg()
    seconds = session_run(args.env, root, SequentialRunner(), pipeline_names=["ingestion"])
    print(f"ingestion (once, SequentialRunner): {seconds:.1f} s", flush=True)
    timings: dict[str, list[float]] = {}
    tables: dict[str, pd.DataFrame] = {}
    startup: dict[str, float] = {}
    project_hooks = tuple(settings.HOOKS)
    untracked_hooks = tuple(h for h in project_hooks if not isinstance(h, MlflowTrackingHook))
    for name in args.runs.split(",") * args.repeat:
        tracked = name.endswith("+mlflow")
        # The project registers the MLflow hook; a run without "+mlflow" runs without it.
        settings.HOOKS = (*untracked_hooks, *((MLFLOW_HOOK,) if tracked else ()))
        if name.startswith("sequential"):
            seconds = session_run(
                args.env, root, SequentialRunner(), pipeline_names=["segmentation"], namespaces=["segmentation"]
            )
        else:
            # The cluster starts, and its workers import the project, before the clock (as in a
            # cluster already running); that start-up is printed on its own.
            start = time.perf_counter()
            with (
                LocalCluster(
                    n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None
                ) as cluster,
                Client(cluster) as client,
            ):
                client.run(_import_project)
                startup[name] = time.perf_counter() - start
                hooks = [MlflowTrackingHook()] if tracked else []
                seconds = session_run(
                    args.env,
                    root,
                    DaskRunner(client=client, hooks=hooks),
                    pipeline_names=["segmentation"],
                    namespaces=["segmentation"],
                )
        timings.setdefault(name, []).append(seconds)
        tables[name] = pd.read_csv(root / TABLE).drop(columns="train_seconds")
        print(
            f"{name}: {seconds:.1f} s" + (f" (cluster start-up {startup[name]:.1f} s)" if name in startup else ""),
            flush=True,
        )
    settings.HOOKS = project_hooks
    results = {name: float(np.median(values)) for name, values in timings.items()}

    first = next(iter(tables.values()))
    same = all(first.equals(t) for t in tables.values())
    print(f"\nTask 2 grid ({len(first)} table rows), env {args.env or 'base'}, {os.cpu_count()} CPU cores")
    print(f"load average before/after: {load_before} / {os.getloadavg()}")
    print("| run | wall time (s), median | each run (s) | vs sequential | cluster start-up, imports (s) |")
    print("|---|---|---|---|---|")
    base = results.get("sequential")
    for name, value in results.items():
        up = f"{startup[name]:.1f}" if name in startup else ""
        each = ", ".join(f"{v:.1f}" for v in timings[name])
        print(f"| {name} | {value:.1f} | {each} | {f'{base / value:.2f}x' if base else ''} | {up} |")
    for plain in ("sequential", "dask"):
        if plain in results and f"{plain}+mlflow" in results:
            overhead = 100 * (results[f"{plain}+mlflow"] / results[plain] - 1)
            print(f"MLflow overhead ({plain}+mlflow vs {plain}, medians): {overhead:+.1f} %")
    print(f"identical tables (train_seconds aside): {same}")
    if any(n.endswith("+mlflow") for n in results):
        from mlflow.tracking import MlflowClient

        client = MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
        runs = client.search_runs([e.experiment_id for e in client.search_experiments()], max_results=10000)
        print(f"MLflow runs recorded: {len(runs)} ({os.environ['MLFLOW_TRACKING_URI']})")


if __name__ == "__main__":
    main()
