"""Every GPU figure of the project in one script (issue 20, item 4): about 8 minutes on one GPU.

1. every training loop against its model-only step on device tensors (goal >= 0.9): each Task 1
   network method (``bench_classification.py``) and each Task 2 model (``bench_segmentation.py``),
   paper profile;
2. 1, 2 and 4 base-profile trainings packed on one GPU (separate processes, as the Dask runner
   packs them): total images/s;
3. the paper's dry run (``kedro run --env=paper_dry``, one seed) on the GPU: wall time;
4. the brain map's throughput against the model-only forward (``bench_mapping.py``).

It only runs the existing benchmarks (each in its own process, so one failure does not stop the
rest) and gathers their figures into one JSON (``--out``) and a printed summary. ``--small``
runs the same checks on tiny settings (a CPU smoke test of the script; the dry run is then the
tiny profile's run). Examples::

    uv run python benchmarks/gpu_check.py --out gpu_check.json            # on the GPU machine
    uv run python benchmarks/gpu_check.py --small --out /tmp/gpu_check.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parents[1]
BENCH = PROJECT / "benchmarks"
TASK1_METHODS = ("supervised", "mixup", "byol", "myow", "myow_merged")
TASK2_MODELS = ("unet", "manet", "fpn", "unetplusplus", "pan", "pspnet", "unet3d", "vnet", "highresnet")
GOAL = 0.9


def _python(script: str, *args: str) -> list[str]:
    return [sys.executable, str(BENCH / script), *args]


def _run(command: list[str], timeout: float) -> tuple[int, str, float]:
    start = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=PROJECT, capture_output=True, text=True, timeout=timeout)
        return done.returncode, done.stdout + done.stderr, time.perf_counter() - start
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return 124, out, time.perf_counter() - start


def task1_loops(env: str, images: int, epochs: int, steps: int, work: Path, timeout: float) -> list[dict[str, Any]]:
    results = []
    for method in TASK1_METHODS:
        out = work / f"task1_{method}.json"
        args = ("--env", env, "--method", method, "--epochs", str(epochs), "--images", str(images))
        code, text, _ = _run(
            _python("bench_classification.py", *args, "--steps", str(steps), "--out", str(out)), timeout
        )
        if code != 0 or not out.is_file():
            results.append({"method": method, "error": text[-1500:]})
            continue
        figures = json.loads(out.read_text())
        ratio = figures["pipeline_images_per_s"] / figures["train_step_images_per_s"]
        results.append(
            {
                "method": method,
                "pipeline_images_per_s": figures["pipeline_images_per_s"],
                "model_only_images_per_s": figures["train_step_images_per_s"],
                "ratio": ratio,
                "device": figures["device"],
            }
        )
    return results


def task2_loops(env: str, models: tuple[str, ...], steps: int, work: Path, timeout: float) -> list[dict[str, Any]]:
    out = work / "task2.json"
    args = ("--env", env, "--models", ",".join(models), "--steps", str(steps), "--warmup", "1", "--json", str(out))
    code, text, _ = _run(_python("bench_segmentation.py", *args), timeout)
    if code != 0 or not out.is_file():
        return [{"model": ",".join(models), "error": text[-1500:]}]
    return [
        {
            "model": r["model"],
            "dims": r["dims"],
            "pipeline_images_per_s": r["pipeline_images_per_s"],
            "model_only_images_per_s": r["model_only_images_per_s"],
            "ratio": r["pipeline_over_model_only"],
            "device": r["device_name"],
        }
        for r in json.loads(out.read_text())["results"]
    ]


def packed(
    env: str, counts: tuple[int, ...], images: int, epochs: int, work: Path, timeout: float
) -> list[dict[str, Any]]:
    """``k`` Task 1 trainings at once (one process each, sharing the device): their total images/s."""
    results = []
    for k in counts:
        outs = [work / f"packed_{k}_{i}.json" for i in range(k)]
        args = ("--env", env, "--method", "byol", "--epochs", str(epochs), "--images", str(images), "--steps", "2")
        commands = [
            _python("bench_classification.py", *args, "--seed", str(i), "--out", str(o)) for i, o in enumerate(outs)
        ]
        with ThreadPoolExecutor(k) as pool:
            done = list(pool.map(lambda c: _run(c, timeout), commands))
        if any(code != 0 for code, _, _ in done) or not all(o.is_file() for o in outs):
            results.append({"trainings": k, "error": next(t for c, t, _ in done if c != 0)[-1500:] if done else ""})
            continue
        rates = [json.loads(o.read_text())["pipeline_images_per_s"] for o in outs]
        results.append({"trainings": k, "images_per_s_each": rates, "total_images_per_s": sum(rates)})
    return results


def dry_run(env: str, params: str, work: Path, timeout: float) -> dict[str, Any]:
    root = work / "dry-run-data"
    command = [sys.executable, "-m", "kedro", "run", f"--env={env}", "--params", f"data_root={root}{params}"]
    environment = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}"}
    start = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=PROJECT, capture_output=True, text=True, timeout=timeout, env=environment)
        code, text = done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired:
        code, text = 124, ""
    result: dict[str, Any] = {"env": env, "returncode": code, "wall_s": time.perf_counter() - start}
    if code != 0:
        result["error"] = text[-1500:]
    return result


_RATIO = re.compile(r"ratio to model-only ([\d.]+)\.\.([\d.]+)")
_RATE = re.compile(r"model-only\s+([\d.]+) Mvoxel/s")


def mapping(slices: int, block_x: int, timeout: float) -> dict[str, Any]:
    args = ("--slices", str(slices), "--block-x", str(block_x), "--repeats", "1")
    code, text, _ = _run(_python("bench_mapping.py", *args), timeout)
    ratio, rate = _RATIO.search(text), _RATE.search(text)
    if code != 0 or ratio is None:
        return {"error": text[-1500:]}
    return {
        "slices": slices,
        "block_x": block_x,
        "map_over_model_only": float(ratio.group(1)),
        "model_only_mvoxel_per_s": float(rate.group(1)) if rate else None,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", action="store_true", help="tiny settings: a smoke test on a CPU")
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    parser.add_argument("--skip", nargs="*", default=[], choices=["task1", "task2", "packed", "dry_run", "mapping"])
    args = parser.parse_args(argv)

    import torch

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU ({platform.machine()})"
    if args.small:
        env, images, epochs, steps, models = "tiny", 64, 2, 2, ("unet", "unet3d")
        counts, dry_env, dry_params, map_args, timeout = (1, 2), "tiny", "", (2, 256), 600.0
    else:
        env, images, epochs, steps, models = "paper", 1200, 2, 20, TASK2_MODELS
        counts, dry_env = (1, 2, 4), "paper_dry"
        dry_params, map_args, timeout = ",classification.seeds=[0],segmentation.seeds=1", (32, 2048), 600.0
    result: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "device": device}
    result["small"] = bool(args.small)
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        work = Path(tmp)
        if "task1" not in args.skip:
            result["task1_loops"] = task1_loops(env, images, epochs, steps, work, timeout)
        if "task2" not in args.skip:
            result["task2_loops"] = task2_loops(env, models, steps, work, timeout)
        if "packed" not in args.skip:
            base = "tiny" if args.small else "base"
            result["packed"] = packed(base, counts, 256 if args.small else 2400, epochs, work, timeout)
        if "dry_run" not in args.skip:
            result["dry_run"] = dry_run(dry_env, dry_params, work, 3 * timeout)
        if "mapping" not in args.skip:
            result["mapping"] = mapping(*map_args, timeout)
    _print(result)
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))
    return result


def _print(result: dict[str, Any]) -> None:
    print(f"GPU check, {result['date']}, {result['device']}{' (--small)' if result['small'] else ''}")
    for row in result.get("task1_loops", []) + result.get("task2_loops", []):
        name = row.get("method") or row.get("model")
        if "error" in row:
            print(f"  {name:13s} FAILED: {row['error'][-300:]}")
            continue
        flag = "ok" if row["ratio"] >= GOAL else f"below {GOAL}"
        print(
            f"  {name:13s} loop {row['pipeline_images_per_s']:9.1f} images/s, model-only "
            f"{row['model_only_images_per_s']:9.1f}: ratio {row['ratio']:.2f} ({flag})"
        )
    for row in result.get("packed", []):
        print(
            f"  {row['trainings']} packed trainings: total {row.get('total_images_per_s', float('nan')):.1f} images/s"
        )
    if "dry_run" in result:
        dry = result["dry_run"]
        print(f"  dry run ({dry['env']}): exit {dry['returncode']}, {dry['wall_s']:.0f} s")
    if "mapping" in result:
        row = result["mapping"]
        print(f"  brain map / model-only forward: {row.get('map_over_model_only', 'FAILED')}")


if __name__ == "__main__":
    main()
