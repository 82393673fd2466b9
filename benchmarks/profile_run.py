"""Where a run's time goes: the per-stage and top-10 per-node time table of one profile, the
start-up (seconds to the first node) and the peak memory.

    uv run python benchmarks/profile_run.py                       # the default profile, all pipelines
    uv run python benchmarks/profile_run.py --env tiny --pipelines ingestion,classification
    uv run python benchmarks/profile_run.py --startup             # seconds to a user error and to the first node

The run goes to a temporary data root (``--data-root`` to choose one) through a real
KedroSession, so the table is the one ``mtneuro.timing.RunTimesHook`` writes to ``info.log``.
Other work on the machine slows every figure: the load average is printed with them.
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()

import argparse
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min) / {five:.1f} (5 min) on {os.cpu_count()} cores"


def _params(text: str) -> dict[str, object]:
    """``a.b=1,c=x`` as Kedro's --params reads it (values parsed as YAML)."""
    import yaml

    result: dict[str, object] = {}
    for item in filter(None, text.split(",")):
        key, _, value = item.partition("=")
        result[key.strip()] = yaml.safe_load(value)
    return result


def profile(
    env: str | None, pipelines: list[str], params: dict[str, object], data_root: Path, runner: str | None = None
) -> None:
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    from mtneuro.timing import RUN_TIMES_HOOK, peak_rss_bytes

    bootstrap_project(PROJECT)
    runtime = {"data_root": str(data_root), **params}
    # The runner `kedro run` picks without --runner (dask.yml default_runner: the Dask runner on
    # 2 or more cores), unless --runner names one: session.run alone would run sequentially.
    from kedro.utils import load_obj

    from mtneuro.cli import choose_runner

    runner_path = runner or choose_runner(env, None)
    runner_class = load_obj(runner_path, "kedro.runner") if runner_path else None
    print(f"runner: {runner_path or 'SequentialRunner'}")
    with KedroSession.create(project_path=PROJECT, env=env, runtime_params=runtime) as session:
        session.run(pipeline_names=pipelines or None, runner=runner_class() if runner_class else None)
    times = RUN_TIMES_HOOK.last
    assert times is not None
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    print(f"\nprofile {env or 'base'}, pipelines {','.join(pipelines) or 'all'}, data root {data_root}")
    print(_load())
    if times.first_node_at is not None:
        print(f"start-up: {times.first_node_at - STARTED:.1f} s from the script's start to the first node")
    print(f"peak RSS {peak_rss_bytes() / 1e9:.2f} GB (largest child process {children / 1e9:.2f} GB)")
    print(times.table())


def _timed(command: list[str]) -> tuple[float, int, str]:
    started = time.perf_counter()
    run = subprocess.run(command, cwd=PROJECT, capture_output=True, text=True)
    lines = [line for line in (run.stdout + run.stderr).splitlines() if line.strip()]
    return time.perf_counter() - started, run.returncode, lines[-1] if lines else ""


def startup(env: str | None) -> None:
    """Seconds from ``kedro run`` to a user error, and to the first node (tiny ingestion)."""
    kedro = [sys.executable, "-m", "kedro", "run", *([f"--env={env}"] if env else [])]
    print(_load())
    cases = {
        "misspelt pipeline (--pipelines=clasification)": [*kedro, "--pipelines=clasification"],
        "misspelt parameter (classification.nosuchkey=1)": [*kedro, "--params", "classification.nosuchkey=1"],
    }
    for label, command in cases.items():
        seconds, code, last = _timed(command)
        print(f"{label:<50} {seconds:6.1f} s  exit {code}  {last[:70]}")
    with tempfile.TemporaryDirectory() as root:
        command = [*kedro, "--pipelines=ingestion", "--params", f"data_root={root}"]
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=PROJECT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert process.stdout is not None
        first = None
        for line in process.stdout:
            if first is None and "Completed node:" in line:
                first = time.perf_counter() - started
        process.wait()
        print(
            f"{'first node finished (--pipelines=ingestion)':<50} {first or float('nan'):6.1f} s  exit {process.returncode}"
        )
    print(_load())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default=None, help="Kedro environment (default: the base profile)")
    parser.add_argument("--pipelines", default="", help="comma-separated pipeline names (default: all)")
    parser.add_argument("--params", default="", help="runtime parameters, as kedro run --params")
    parser.add_argument(
        "--data-root", type=Path, default=None, help="where the run writes (default: a temporary folder)"
    )
    parser.add_argument(
        "--runner",
        default=None,
        help="as kedro run --runner (default: the one kedro run picks, dask.yml default_runner)",
    )
    parser.add_argument("--startup", action="store_true", help="time user errors and the first node instead")
    args = parser.parse_args()
    if args.startup:
        startup(args.env)
        return
    pipelines = [p for p in args.pipelines.split(",") if p]
    if args.data_root is not None:
        profile(args.env, pipelines, _params(args.params), args.data_root, args.runner)
        return
    with tempfile.TemporaryDirectory(prefix="mtneuro-profile-") as root:
        profile(args.env, pipelines, _params(args.params), Path(root), args.runner)


if __name__ == "__main__":
    main()
