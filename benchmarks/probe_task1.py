"""Task 1 accuracy and training time for a few runs at chosen settings, without a Kedro run.

Trains and tests Task 1 runs through the pipeline's own node functions (``prepare_images``,
``train_supervised`` / ``train_self_supervised`` / ``fit_decomposition``, ``fit_linear_readout``,
``evaluate_run``) on cubes that the ingestion pipeline wrote, with parameter overrides on top of
a configuration environment. It is how the budget evidence in ``docs/task1-pattern.md`` was
measured: one command per row, on the CPU or on a GPU (the ``training`` block decides, ``auto``
by default). Examples::

    uv run python benchmarks/probe_task1.py --data-root data --methods byol --seeds 0,1
    uv run python benchmarks/probe_task1.py --data-root data --methods byol,myow \\
        --set byol.epochs=40 --set method_overrides.byol.augmentation.brightness=0
    uv run python benchmarks/probe_task1.py --env paper --data-root /data/paper --methods myow_merged \\
        --configs roi_c1,roi_c3 --out myow_merged_paper.json

``--set KEY=VALUE`` sets a key of the ``classification`` block (dotted path, YAML value; repeat it);
``--set-training KEY=VALUE`` one of the shared ``training`` block. Prints one line per (run, test
configuration) and the mean over seeds.
"""

from __future__ import annotations

import argparse
import glob
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import yaml

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT / "src"))

from mtneuro.classification_methods import get_method
from mtneuro.config import ProjectParameters
from mtneuro.pipelines.classification import nodes


def _nested(assignments: list[str], option: str) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for item in assignments:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"{option} takes KEY=VALUE, not {item!r}")
        node = tree
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(value)
    return tree


def load_parameters(env: str, classification: dict[str, Any], training: dict[str, Any]) -> ProjectParameters:
    """The typed parameters of ``conf/base`` + ``conf/<env>`` with the overrides applied (and checked)."""
    from kedro.framework.startup import bootstrap_project

    from mtneuro.plugin_parameters import load_checked_parameters as load

    bootstrap_project(PROJECT)
    runtime: dict[str, Any] = {}
    if classification:
        runtime["classification"] = classification
    if training:
        runtime["training"] = training
    return load(PROJECT / "conf", env, runtime)


def load_inputs(data_root: Path) -> tuple[dict[str, Any], pd.DataFrame]:
    from mtneuro.datasets.cube_store import CubeStoreDataset

    cubes = CubeStoreDataset(path=str(data_root / "02_intermediate" / "cubes")).load()
    versions = sorted(glob.glob(str(data_root / "03_primary" / "split_index.parquet" / "*" / "split_index.parquet")))
    split_index = pd.read_parquet(versions[-1] if versions else data_root / "03_primary" / "split_index.parquet")
    return cubes, split_index


def save_images(data: nodes.ClassificationImages, path: Path, configs: list[str], z_step: int) -> None:
    """The prepared sections of ``configs`` at every ``z_step``-th slice, as uint8 (to carry to another machine)."""
    index = data.index
    index = index[index["config"].isin(configs) & (index["z"] % z_step == 0)].copy()
    rows = np.sort(index["row"].unique())
    renumber = np.full(len(data.images), -1, dtype=np.int64)
    renumber[rows] = np.arange(len(rows))
    index["row"] = renumber[index["row"].to_numpy()]
    images = np.round(data.images[rows] * 255).astype(np.uint8)
    meta = {"size": data.size, "raw_size": data.raw_size, "source": data.source}
    columns = {
        f"index_{c}": index[c].to_numpy() if pd.api.types.is_numeric_dtype(index[c]) else index[c].to_numpy(dtype=str)
        for c in index.columns
    }
    np.savez_compressed(path, images=images, meta=json.dumps(meta), **columns)
    print(f"wrote {path}: {len(rows)} sections of {configs}, every {z_step}th slice", flush=True)


def load_images(path: Path) -> nodes.ClassificationImages:
    with np.load(path, allow_pickle=False) as saved:
        meta = json.loads(str(saved["meta"]))
        index = pd.DataFrame({k[len("index_") :]: saved[k] for k in saved.files if k.startswith("index_")})
        images = saved["images"].astype(np.float32) / 255.0
    return nodes.ClassificationImages(images, index, **meta)


def run_one(
    data: nodes.ClassificationImages, params: ProjectParameters, method: str, config: str, seed: int
) -> list[dict[str, Any]]:
    c, t = params.classification, params.training
    kind = get_method(method).kind
    start = time.perf_counter()
    if kind == "supervised":
        encoder, readout, history = nodes.train_supervised(data, c, t, method=method, config=config, seed=seed)
    else:
        if kind == "ssl":
            encoder, history = nodes.train_self_supervised(data, c, t, method=method, config=config, seed=seed)
        else:
            encoder, history = nodes.fit_decomposition(data, c, t, method=method, config=config, seed=seed)
        readout = nodes.fit_linear_readout(encoder, data, c, t, config=config, seed=seed)
    seconds = time.perf_counter() - start
    rows, _ = nodes.evaluate_run(encoder, readout, history, data, c, t, method=method, config=config, seed=seed)
    for row in rows:
        row["wall_seconds"] = seconds
    return rows


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="base", help="configuration environment (base, paper, tiny)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data-root", type=Path, help="data folder the ingestion pipeline wrote")
    source.add_argument("--images", type=Path, help="prepared sections written by --save-images")
    parser.add_argument("--save-images", type=Path, default=None, help="write the prepared sections here and stop")
    parser.add_argument("--save-configs", default="roi_c1,roi_c2,roi_c3", help="configurations --save-images keeps")
    parser.add_argument("--save-z-step", type=int, default=2, help="--save-images keeps every k-th slice")
    parser.add_argument("--methods", default="byol", help="comma-separated Task 1 methods")
    parser.add_argument("--configs", default="roi_c1", help="comma-separated training sets (roi_c1, roi_c3)")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds")
    parser.add_argument("--set", dest="sets", action="append", default=[], help="classification KEY=VALUE")
    parser.add_argument("--set-training", action="append", default=[], help="training KEY=VALUE")
    parser.add_argument("--label", default="", help="a name for this setting in the output")
    parser.add_argument("--out", type=Path, default=None, help="append the rows as JSON lines to this file")
    args = parser.parse_args(argv)

    params = load_parameters(args.env, _nested(args.sets, "--set"), _nested(args.set_training, "--set-training"))
    if args.images:
        data = load_images(args.images)
        summary = {"n_images": len(data.images), "prepared_size": data.size, "source": data.source}
    else:
        cubes, split_index = load_inputs(args.data_root)
        data, summary = nodes.prepare_images(cubes, split_index, params.classification)
        if args.save_images:
            save_images(data, args.save_images, args.save_configs.split(","), args.save_z_step)
            return pd.DataFrame()
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else platform.processor() or "cpu"
    print(
        f"# {args.label or 'probe'}: env {args.env}, {summary['n_images']} images at {summary['prepared_size']} px, "
        f"source {summary['source']}, device {device}, overrides {args.sets + args.set_training}",
        flush=True,
    )
    rows = []
    for method in args.methods.split(","):
        for config in args.configs.split(","):
            for seed in (int(s) for s in args.seeds.split(",")):
                for row in run_one(data, params, method, config, seed):
                    row["label"] = args.label
                    rows.append(row)
                    print(
                        f"{args.label:>12} {method:>12} {config:>6} seed {seed} -> {row['config']:>6}: "
                        f"accuracy {row['accuracy']:.3f}  recall CTX/STR/VP/ZI "
                        f"{row['recall_CTX']:.2f}/{row['recall_STR']:.2f}/{row['recall_VP']:.2f}/"
                        f"{row['recall_ZI']:.2f}  train {row['train_seconds']:.1f} s",
                        flush=True,
                    )
    table = pd.DataFrame(rows)
    means = table.groupby(["method", "train_config", "config"], sort=False)[["accuracy", "train_seconds"]].mean()
    print(means.round(3).to_string(), flush=True)
    if args.out:
        with args.out.open("a") as handle:
            for row in rows:
                handle.write(json.dumps({**row, "overrides": args.sets + args.set_training, "env": args.env}) + "\n")
    return table


if __name__ == "__main__":
    main()
