"""The cost of the real paper run (``kedro run --env=paper``), projected from its dry run.

The dry run (``kedro run --env=paper_dry``, issue 20) trains every network of the paper profile
for ``training.dry_run_steps`` optimizer steps at the paper's sizes and records, per epoch of
each training, its seconds, the optimizer steps taken and the steps of a full epoch
(``task1_training_histories`` / ``task2_training_histories``). From those this script projects
each stage at full epochs:

* on this CPU: seconds per step x steps per full epoch x the paper's epochs x its seeds;
* on one GPU: from the NVIDIA H100 figures recorded in ``benchmarks/README.md`` (Task 1: the full
  training loop, 1292 images/s at 256 px, batch 128; Task 2: U-Net/EfficientNet-b7 136.9
  images/s, 3D U-Net 1823 slices/s; other models scaled by their CPU step time against these) --
  projections, not measurements, unless ``--gpu-json`` gives figures measured on a GPU;
* on N GPUs with the Dask runner: the trainings packed greedily (longest first) on N GPUs, one
  training per GPU at a time.

The other stages (ingestion, evaluation, probing, the brain map, reports) are what the dry run
measured (``--log``: its ``info.log`` time table); the dry run bounds evaluation and the map, so
those rows are lower bounds. ``--check`` trains the smallest Task 1 method (supervised) for one
real epoch (or ``--check-images`` images of it) at paper size on this CPU and prints the ratio
of that measured time to the projection. Examples::

    uv run kedro run --env=paper_dry --params data_root=/tmp/dry/data     # writes info.log
    uv run python benchmarks/paper_cost.py --data-root /tmp/dry/data --log info.log --gpus 1 4 8
    uv run python benchmarks/paper_cost.py --data-root /tmp/dry/data --check --check-images 384
"""

from __future__ import annotations

import argparse
import heapq
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT / "src"))
sys.path.insert(0, str(PROJECT / "benchmarks"))

#: One NVIDIA H100, bf16-mixed (benchmarks/README.md, "Recorded figures (2026-11-25)").
H100_TASK1_IMAGES_PER_S = 1292.0  # paper profile, 256 x 256, batch 128, full training loop
H100_TASK2_IMAGES_PER_S = {"2D": ("unet", 136.9), "3D": ("unet3d", 1823.0)}  # reference model, images (slices)/s
HISTORIES = {"task1": "task1_training_histories.csv", "task2": "task2_training_histories.csv"}
_STAGE_LINE = re.compile(r"^(\S+)\s+(\d+)\s+([\d.]+)\s+[\d.]+ %$")


def load_parameters(env: str) -> Any:
    from kedro.framework.startup import bootstrap_project

    from mtneuro.config import load_parameters as load

    bootstrap_project(PROJECT)
    return load(PROJECT / "conf", env)


def measured_trainings(data_root: Path) -> pd.DataFrame:
    """One row per network training of the dry run: task, method, config, seed, seconds, steps,
    steps of a full epoch (as the dry run's data had it)."""
    frames = []
    for task, name in HISTORIES.items():
        path = data_root / "08_reporting" / name
        table = pd.read_csv(path) if path.is_file() else _run_histories(data_root, task)
        if table.empty:
            continue
        table = table[(table["step_kind"] == "epoch") & table.get("steps", pd.Series(dtype=float)).notna()]
        if table.empty:
            continue
        grouped = table.groupby(["method", "train_config", "seed"], as_index=False).agg(
            seconds=("seconds", "sum"), steps=("steps", "sum"), epoch_steps=("epoch_steps", "max")
        )
        frames.append(grouped.assign(task=task))
    if not frames:
        raise SystemExit(f"no network training with step counts in {data_root / '08_reporting'}")
    runs = pd.concat(frames, ignore_index=True)
    return runs[runs["steps"] > 0].reset_index(drop=True)


def _run_histories(data_root: Path, task: str) -> pd.DataFrame:
    """The epoch records of every finished training's ``training_history.json`` (a dry run that
    has not reached its collected history tables yet, or was stopped part-way)."""
    folder = data_root / "07_model_output" / ("classification" if task == "task1" else "segmentation")
    rows = []
    for path in sorted(folder.glob("*/*/seed*/training_history.json")):
        method, config, seed = path.parts[-4], path.parts[-3], int(path.parts[-2].removeprefix("seed"))
        latest = max(path.glob(f"*/{path.name}"), default=None) if path.is_dir() else path  # versioned: the latest
        if latest is None:
            continue
        for record in json.loads(latest.read_text()).get("epochs") or []:
            if "steps" in record:
                rows.append({"method": method, "train_config": config, "seed": seed, "step_kind": "epoch", **record})
    return pd.DataFrame(rows, columns=None if rows else ["method", "train_config", "seed", "step_kind", "steps"])


def project(runs: pd.DataFrame, paper: Any, dry: Any) -> pd.DataFrame:
    """Per (task, method, config): CPU seconds per step, full steps, and CPU / GPU hours of every
    seed of the paper profile."""
    from mtneuro.classification_methods import method_settings
    from mtneuro.segmentation_models import run_settings

    cls, seg = paper.classification, paper.segmentation
    # Task 1's dry run reads every k-th training section: a full epoch has k x its steps.
    slice_ratio = dry.classification.data.train_slice_step / cls.data.train_slice_step
    rows = []
    for (task, method, config), group in runs.groupby(["task", "method", "train_config"]):
        sec_per_step = float(group["seconds"].sum() / group["steps"].sum())
        if task == "task1":
            settings: Any = method_settings(cls, method)
            epochs, batch = int(settings.epochs), int(settings.batch_size)
            epoch_steps = float(group["epoch_steps"].max()) * slice_ratio
            seeds, dims, slices_per_sample = len(cls.seeds), "2D", 1
        else:
            run = run_settings(seg, method)
            epochs, batch = int(run.train.epochs), int(run.train.batch_size)
            epoch_steps = float(group["epoch_steps"].max())
            seeds, dims = len(seg.seeds), run.dims
            slices_per_sample = int(run.train.depth) if dims == "3D" else 1
        cpu_seconds = sec_per_step * epoch_steps * epochs
        rows.append(
            {
                "task": task,
                "method": method,
                "config": config,
                "dims": dims,
                "seeds": seeds,
                "epochs": epochs,
                "batch": batch,
                "steps_per_epoch": epoch_steps,
                "cpu_s_per_step": sec_per_step,
                "cpu_s_per_image": sec_per_step / (batch * slices_per_sample),
                "images_per_training": epoch_steps * epochs * batch * slices_per_sample,
                "cpu_h_per_training": cpu_seconds / 3600,
            }
        )
    table = pd.DataFrame(rows)
    table["gpu_h_per_training"] = [_gpu_seconds(row, table) / 3600 for row in table.itertuples()]
    table["cpu_h"] = table["cpu_h_per_training"] * table["seeds"]
    table["gpu_h"] = table["gpu_h_per_training"] * table["seeds"]
    return table


def _gpu_seconds(row: Any, table: pd.DataFrame) -> float:
    """One training on one H100: Task 1 at the recorded images/s; Task 2 at the reference model's
    images/s scaled by the CPU time per image (slice) against that model."""
    if row.task == "task1":
        return float(row.images_per_training) / H100_TASK1_IMAGES_PER_S
    reference, rate = H100_TASK2_IMAGES_PER_S[row.dims]
    ref = table[(table["task"] == "task2") & (table["method"] == reference)]
    scale = row.cpu_s_per_image / float(ref["cpu_s_per_image"].mean()) if not ref.empty else 1.0
    return float(row.images_per_training) / rate * scale


def makespan(hours: list[float], gpus: int) -> float:
    """Wall hours of independent trainings on ``gpus`` GPUs, longest first onto the least loaded."""
    loads = [0.0] * gpus
    heapq.heapify(loads)
    for h in sorted(hours, reverse=True):
        heapq.heappush(loads, heapq.heappop(loads) + h)
    return max(loads)


def other_stages(log: Path | None) -> dict[str, float]:
    """Seconds per stage of the dry run's time table (the last one in ``log``)."""
    if log is None or not log.is_file():
        return {}
    stages: dict[str, float] = {}
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("stage ") and "nodes" in line:
            stages = {}
        match = _STAGE_LINE.match(line.strip())
        if match:
            stages[match.group(1)] = float(match.group(3))
    return stages


def summary(table: pd.DataFrame, stages: dict[str, float], gpus: list[int]) -> pd.DataFrame:
    """Per stage: projected CPU hours, one-GPU hours and wall hours on each N of ``gpus``."""
    rows = []
    names = {"task1": "classification (Task 1 trainings)", "task2": "segmentation (Task 2 trainings)"}
    for task, group in table.groupby("task"):
        per_training = [h for row in group.itertuples() for h in [row.gpu_h_per_training] * int(row.seeds)]
        rows.append(
            {
                "stage": names[str(task)],
                "trainings": int(group["seeds"].sum()),
                "cpu_h": group["cpu_h"].sum(),
                **{f"gpu_x{n}_h": makespan(per_training, n) for n in gpus},
            }
        )
    measured = {k: v for k, v in stages.items() if k not in ("classification", "segmentation")}
    for stage, seconds in measured.items():
        rows.append(
            {"stage": f"{stage} (dry run, measured)", "trainings": 0, "cpu_h": seconds / 3600}
            | {f"gpu_x{n}_h": float("nan") for n in gpus}
        )
    result = pd.DataFrame(rows)
    total = {"stage": "all trainings", "trainings": int(result["trainings"].sum()), "cpu_h": result["cpu_h"].sum()}
    all_hours = [h for row in table.itertuples() for h in [row.gpu_h_per_training] * int(row.seeds)]
    total |= {f"gpu_x{n}_h": makespan(all_hours, n) for n in gpus}
    return pd.concat([result, pd.DataFrame([total])], ignore_index=True)


def check_full_epoch(table: pd.DataFrame, images: int | None) -> dict[str, Any]:
    """One real epoch (or ``images`` images) of supervised training at paper size on this CPU
    against the dry run's projection for it."""
    import torch
    from bench_classification import training_images

    from mtneuro import models, spec
    from mtneuro.classification_methods import get_method, method_settings
    from mtneuro.classification_methods._network import fit_network
    from mtneuro.pipelines.classification import nodes

    params = load_parameters("paper")
    cls = params.classification
    hardware = nodes.hardware_settings(cls, params.training).merged({"progress_bar": False})
    settings: Any = method_settings(cls, "supervised").model_copy(update={"epochs": 1})
    rows = table[
        (table["task"] == "task1") & (table["method"] == "supervised") & (table["config"] == table["config"].min())
    ]
    if rows.empty:
        raise SystemExit("the dry run has no supervised training to check against")
    row = rows.iloc[0]
    n_images = int(images or round(row["steps_per_epoch"]) * int(row["batch"]))
    x_raw, labels = training_images(cls, n_images, None, 0)
    x = models.resize_images(x_raw, int(cls.encoder.input_size))
    meta = {
        "size": int(cls.encoder.input_size),
        "normalisation": {"mode": "training_set", "mean": float(x.mean()), "std": float(x.std())},
    }
    x = models.preprocess_images(x_raw, meta)
    start = time.perf_counter()
    _, history = fit_network(
        get_method("supervised"),
        x,
        torch.as_tensor(labels),
        cls.encoder.architecture(),
        settings,
        hardware,
        0,
        n_classes=len(spec.REGIONS),
    )
    measured = time.perf_counter() - start
    steps = int(history["steps"])
    projected = float(row["cpu_s_per_step"]) * steps
    return {
        "method": "supervised",
        "images": n_images,
        "steps": steps,
        "full_epoch_steps": float(row["steps_per_epoch"]),
        "measured_s": measured,
        "projected_s": projected,
        "measured_over_projected": measured / projected,
    }


def markdown(frame: pd.DataFrame, digits: int = 2) -> str:
    columns = list(frame.columns)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in frame.itertuples(index=False):
        cells = [f"{v:.{digits}f}" if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(c.replace("nan", "-") for c in cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", required=True, type=Path, help="the dry run's data root")
    parser.add_argument("--log", type=Path, default=None, help="the dry run's info.log (time per stage)")
    parser.add_argument("--gpus", type=int, nargs="+", default=[1, 4, 8], help="GPU counts of the Dask projection")
    parser.add_argument("--check", action="store_true", help="train one real supervised epoch and print the ratio")
    parser.add_argument("--check-images", type=int, default=None, help="images of the check (default: a full epoch)")
    parser.add_argument("--out", type=Path, default=None, help="also write the figures as JSON here")
    args = parser.parse_args(argv)

    paper, dry = load_parameters("paper"), load_parameters("paper_dry")
    table = project(measured_trainings(args.data_root), paper, dry)
    stages = summary(table, other_stages(args.log), args.gpus)
    print("Per training (CPU: measured step time x full steps; GPU: projected from the H100 figures):")
    print(markdown(table.drop(columns=["cpu_h", "gpu_h"])))
    print("\nPer stage, hours (GPU columns: projected from H100 figures, not measured; xN = N GPUs, Dask runner):")
    print(markdown(stages))
    result: dict[str, Any] = {"trainings": table.to_dict("records"), "stages": stages.to_dict("records")}
    if args.check:
        check = check_full_epoch(table, args.check_images)
        result["check"] = check
        print(
            f"\nCheck: supervised, {check['images']} images ({check['steps']} steps; a full epoch has "
            f"{check['full_epoch_steps']:.0f}): measured {check['measured_s']:.1f} s, projected "
            f"{check['projected_s']:.1f} s, ratio measured/projected {check['measured_over_projected']:.2f}"
        )
    if args.out:
        args.out.write_text(json.dumps(result, indent=2, default=float))
    return result


if __name__ == "__main__":
    main()
