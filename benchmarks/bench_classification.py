"""Task 1 training throughput: the full training loop vs. the model alone.

Runs one method of a profile (default: MYOW-merged with the paper's settings) for a few epochs
through the same code the pipeline uses (:func:`mtneuro.classification_methods._network.fit_network`: Lightning, data
loader, batch augmentations, momentum target, mining) and prints its images/s next to

* the training step alone on random tensors already on the device (same batch size, same
  precision; no data loading, no augmentation), and
* the encoder alone: forward + backward of the ResNet on random tensors of the same batch.

The gap between the first and the others is the cost of the input pipeline and the framework.
Runs on a GPU when one is present (settings from the ``training`` block, ``auto`` by default),
else on the CPU. Examples::

    uv run python benchmarks/bench_classification.py                      # paper profile, myow_merged
    uv run python benchmarks/bench_classification.py --env base --method byol --epochs 2
    uv run python benchmarks/bench_classification.py --env tiny --images 64 --steps 3   # smoke test
    uv run python benchmarks/bench_classification.py --out results.json

Measured 2026-11-25 on one NVIDIA H100 (bf16-mixed), paper profile, myow_merged, 256x256, batch 128,
1200 images, 3 epochs: full loop 1292 images/s (epochs 2-3), training step alone 1515 images/s,
encoder forward+backward alone 4321 images/s. On this project's 2-core CPU, base profile, byol,
32x32, width 16, one thread: about 510 / 545 / 1440 images/s.

Images are random textures of the profile's image size unless ``--data-root`` points at a folder
the ingestion pipeline wrote (``<data-root>/02_intermediate/cubes``, ``03_primary/split_index``),
in which case the ROI-C1 training images are used. Throughput does not depend on the content.
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
import torch

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT / "src"))

from mtneuro import models, spec, training
from mtneuro.classification_methods import MethodSpec, _network, get_method, method_names, method_settings
from mtneuro.classification_methods._byol_network import momentum_update
from mtneuro.config import ProjectParameters, TrainingParameters
from mtneuro.config.classification import ClassificationParameters, NetworkSettings
from mtneuro.pipelines.classification import nodes

NETWORK_METHODS = [m for m in method_names() if get_method(m).network]


def load_parameters(env: str) -> ProjectParameters:
    """The typed parameters of ``conf/base`` soft-merged with ``conf/<env>``, as ``kedro run --env`` sees them."""
    from kedro.framework.startup import bootstrap_project

    from mtneuro.config import load_parameters as load

    bootstrap_project(PROJECT)  # the project's config loader settings (soft merge of environments)
    return load(PROJECT / "conf", env)


def training_images(
    params: ClassificationParameters, n_images: int, data_root: str | None, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """uint8 or float images (N, S, S) at the profile's prepared size, and labels."""
    size = int(params.data.prepared_size)
    if data_root:
        import pandas as pd

        from mtneuro.datasets.cube_store import CubeStoreDataset

        cubes = CubeStoreDataset(path=f"{data_root}/02_intermediate/cubes").load()
        index_files = sorted(glob.glob(f"{data_root}/03_primary/split_index.parquet/*/split_index.parquet"))
        split_index = pd.read_parquet(index_files[-1] if index_files else f"{data_root}/03_primary/split_index.parquet")
        data, _ = nodes.prepare_images(cubes, split_index, params)
        x, y = nodes.select_images(data, "roi_c1", params.data.train_splits, 1)
        reps = int(np.ceil(n_images / len(x)))
        return np.concatenate([x] * reps)[:n_images], np.concatenate([y] * reps)[:n_images]
    rng = np.random.default_rng(seed)
    from scipy import ndimage

    base = rng.standard_normal((n_images, size, size)).astype(np.float32)
    x = ndimage.gaussian_filter(base, (0, 1.5, 1.5))
    x = np.clip(0.5 + 0.15 * x / x.std(), 0, 1).astype(np.float32)
    return x, rng.integers(0, len(spec.REGIONS), n_images)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _autocast(precision: str, device: torch.device) -> Any:
    import contextlib

    if device.type != "cuda" or precision.startswith("32"):
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=torch.bfloat16 if precision.startswith("bf16") else torch.float16)


def model_only(
    method: MethodSpec,
    architecture: dict[str, Any],
    settings: NetworkSettings,
    size: int,
    hardware: TrainingParameters,
    steps: int,
    warmup: int,
) -> dict[str, float]:
    """images/s of (a) the full training step and (b) the encoder's forward+backward on random tensors."""
    device = torch.device(training.resolve_accelerator(hardware.accelerator))
    precision = training.resolve_precision(hardware.precision, device.type)
    batch = int(settings.batch_size)
    module: Any = _network.build_learner(
        method, architecture, settings, len(spec.REGIONS), steps_per_epoch=steps, epochs=1
    ).to(device)
    module.train()
    opt = torch.optim.SGD([p for p in module.parameters() if p.requires_grad], lr=0.01, momentum=0.9)
    x = torch.randn(batch, 1, size, size, device=device)
    views = torch.randn(2 * batch, 1, size, size, device=device)
    y = torch.randint(0, len(spec.REGIONS), (batch,), device=device)
    scaler = torch.amp.GradScaler("cuda", enabled=device.type == "cuda" and precision.startswith("16"))

    def train_step() -> None:
        with _autocast(precision, device):
            loss = module.classification_loss(x, y) if method.kind == "supervised" else module.ssl_loss(views)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        opt.zero_grad(set_to_none=True)
        if method.kind == "ssl":
            for name in module.momentum_modules:
                momentum_update(getattr(module, name), getattr(module, f"target_{name}"), 0.99)

    def encoder_step() -> None:
        with _autocast(precision, device):
            loss = module.encoder(x).float().square().mean()
        scaler.scale(loss).backward()
        opt.zero_grad(set_to_none=True)

    results = {}
    for name, step in (("train_step_images_per_s", train_step), ("encoder_fwd_bwd_images_per_s", encoder_step)):
        for _ in range(warmup):
            step()
        _sync(device)
        start = time.perf_counter()
        for _ in range(steps):
            step()
        _sync(device)
        results[name] = batch * steps / (time.perf_counter() - start)
    return results


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="paper", help="configuration environment (paper, base, tiny)")
    parser.add_argument("--method", default="myow_merged", choices=NETWORK_METHODS)
    parser.add_argument("--epochs", type=int, default=3, help="epochs of the full training loop")
    parser.add_argument("--images", type=int, default=1200, help="training images (ROI-C1 has 1200)")
    parser.add_argument("--steps", type=int, default=20, help="timed steps of the model-only figures")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps before the model-only figures")
    parser.add_argument("--batch-size", type=int, default=None, help="override the profile's batch size")
    parser.add_argument("--data-root", default=None, help="use ingested cubes from this data folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="also write the results as JSON here")
    args = parser.parse_args(argv)

    params = load_parameters(args.env)
    cls = params.classification
    hardware = nodes.hardware_settings(cls, params.training).merged({"progress_bar": False})
    method = get_method(args.method)
    overrides = {"epochs": args.epochs, **({"batch_size": args.batch_size} if args.batch_size else {})}
    settings: Any = method_settings(cls, args.method).model_copy(update=overrides)
    architecture = cls.encoder.architecture()
    size = int(cls.encoder.input_size)
    device = training.resolve_accelerator(hardware.accelerator)
    precision = training.resolve_precision(hardware.precision, device)

    images, labels = training_images(cls, args.images, args.data_root, args.seed)
    with training.thread_limit(hardware.torch_threads):
        x = models.resize_images(images, size)
        meta = {"size": size, "normalisation": {"mode": "training_set", "mean": float(x.mean()), "std": float(x.std())}}
        x = models.preprocess_images(images, meta)
        _, history = _network.fit_network(
            method, x, torch.as_tensor(labels), architecture, settings, hardware, args.seed, n_classes=len(spec.REGIONS)
        )
        per_epoch = [e["seconds"] for e in history["epochs"]]
        images_per_epoch = history["steps"] // max(1, len(per_epoch)) * history["batch_size"]
        steady = per_epoch[1:] or per_epoch
        alone = model_only(method, architecture, settings, size, hardware, args.steps, args.warmup)
        threads = torch.get_num_threads()

    result = {
        "env": args.env,
        "method": args.method,
        "device": torch.cuda.get_device_name(0)
        if device == "cuda"
        else f"CPU ({platform.processor() or platform.machine()}, {threads} torch threads)",
        "precision": precision,
        "input_size": size,
        "encoder_width": int(architecture["width"]),
        "batch_size": int(history["batch_size"]),
        "images": len(x),
        "epochs": args.epochs,
        "dataloader": training.dataloader_kwargs(hardware.dataloader, device),
        "pipeline_images_per_s": images_per_epoch / float(np.mean(steady)),
        "pipeline_images_per_s_incl_first_epoch": history["images_per_second"],
        **alone,
        "epoch_seconds": per_epoch,
        "final_loss": history["epochs"][-1]["loss"] if history["epochs"] else None,
    }
    print(
        f"\nTask 1 training throughput: {args.method}, profile '{args.env}', {result['device']}, {precision}, "
        f"{size}x{size} images, batch {result['batch_size']}, ResNet-18 width {result['encoder_width']}"
    )
    print(
        f"  full training loop (Lightning + loader + augmentation), epochs 2..{args.epochs}: "
        f"{result['pipeline_images_per_s']:10.1f} images/s"
    )
    print(
        f"  training step alone on random tensors (same batch)           : {result['train_step_images_per_s']:10.1f} images/s"
    )
    print(
        f"  encoder forward+backward alone on random tensors             : {result['encoder_fwd_bwd_images_per_s']:10.1f} images/s"
    )
    print(
        f"  (one image = one sample; SSL methods process two views of each)  epoch seconds: {[round(s, 2) for s in per_epoch]}"
    )
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
