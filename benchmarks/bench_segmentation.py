"""Task 2 throughput: training images/s of the pipeline's training loop vs model-only throughput.

For one 2D and one 3D model of a profile (default: the paper profile, ``conf/paper``), on
whatever device ``training.accelerator`` resolves to (a GPU when present, else the CPU):

* **pipeline** -- the real training loop of ``train_and_evaluate``: ``PatchDataset`` (random
  crop, flips, rotations, normalisation) -> DataLoader (``training.dataloader`` workers / pinned
  memory) -> Lightning ``Trainer.fit`` of ``SegmentationModule`` (Dice + CE, AdamW, the
  profile's precision), on synthetic uint8 slices of the profile's size;
* **model only** -- the same network, batch, loss, optimizer and precision on one batch kept
  on the device (no data loading, no Lightning): forward + backward + step in a loop.

Images/s counts 2D slices (a 3D sample of ``depth`` slices counts ``depth`` images). The ratio
pipeline / model-only shows how much the input pipeline and Lightning cost. Inference
(sliding-window) throughput of each model is printed too.

Usage::

    uv run python benchmarks/bench_segmentation.py                      # paper profile, unet + unet3d
    uv run python benchmarks/bench_segmentation.py --env base --steps 10
    uv run python benchmarks/bench_segmentation.py --models manet,vnet --steps 30 --json out.json
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT / "src"))

from mtneuro.config import ProjectParameters, TrainingParameters
from mtneuro.config.segmentation import SegmentationParameters
from mtneuro.pipelines.segmentation.engine import (
    Block,
    PatchDataset,
    SegmentationModule,
    predict_block,
)
from mtneuro.pipelines.segmentation.nodes import SETTINGS
from mtneuro.segmentation_models import build_segmentation_model, run_settings
from mtneuro.training import (
    build_trainer,
    dataloader_kwargs,
    inference_autocast,
    resolve_accelerator,
    resolve_device,
    resolve_precision,
    seed_everything,
)


def load_parameters(env: str) -> ProjectParameters:
    """The typed parameters of ``conf/base`` with ``conf/<env>`` merged over them, read by the
    project's own config loader (so the benchmark sees exactly what ``kedro run --env`` sees)."""
    from kedro.framework.startup import bootstrap_project

    from mtneuro.config import load_parameters as load

    bootstrap_project(PROJECT)
    return load(PROJECT / "conf", None if env == "base" else env)


def synthetic_blocks(size: int, depth: int, cubes: int = 4, num_classes: int = 3) -> list[Block]:
    rng = np.random.default_rng(0)
    return [
        Block(
            f"main_{i}",
            "CTX",
            np.arange(depth),
            rng.integers(0, 256, (depth, size, size), dtype=np.uint8),
            rng.integers(0, num_classes, (depth, size, size), dtype=np.uint8),
        )
        for i in range(cubes)
    ]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bench_model(
    model: str,
    segmentation: SegmentationParameters,
    training: TrainingParameters,
    steps: int,
    warmup: int,
    setting: str,
) -> dict:
    run = run_settings(segmentation, model)
    train, evaluation = run.train, run.evaluation
    label = SETTINGS[setting]
    dims = run.spatial_dims
    depth = train.depth if dims == 3 else 1
    crop = train.crop_yx
    batch = train.batch_size
    roi = evaluation.roi_yx
    accelerator = resolve_accelerator(training.accelerator)
    device = resolve_device(training)
    precision = resolve_precision(training.precision, accelerator)
    seed_everything(0)

    # --- pipeline: dataset -> dataloader -> Lightning fit, timed over `steps` after warm-up
    blocks = synthetic_blocks(
        max(crop, roi), max(depth * (steps + warmup) * batch // 4 + depth, 8), 4, label.num_classes
    )
    net = build_segmentation_model(model, label.num_classes, **run.kwargs)
    dataset = PatchDataset(blocks, dims=dims, depth=depth, crop_yx=crop, mean=0.5, std=0.25)
    sampler = torch.utils.data.RandomSampler(dataset, replacement=True, num_samples=(steps + warmup) * batch)
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=batch,
        sampler=sampler,
        drop_last=True,
        **dataloader_kwargs(training.dataloader, accelerator),
    )
    module = SegmentationModule(net, lr=train.lr, scheduler="none")

    from lightning.pytorch.callbacks import Callback

    class StepTimer(Callback):
        """Wall time from the start of step ``warmup`` to the end of the last step (the data
        loading of the timed steps included, Lightning's set-up and tear-down excluded)."""

        start = end = 0.0

        def on_train_batch_start(self, trainer, pl_module, batch_, batch_idx):
            if batch_idx == warmup:
                _sync(device)
                StepTimer.start = time.perf_counter()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch_, batch_idx):
            if batch_idx == warmup + steps - 1:
                _sync(device)
                StepTimer.end = time.perf_counter()

    trainer = build_trainer(training.model_copy(update={"progress_bar": False}), max_epochs=1, callbacks=[StepTimer()])
    trainer.fit(module, loader)
    pipeline_s = StepTimer.end - StepTimer.start
    pipeline_ips = steps * batch * depth / pipeline_s

    # --- model only: same network, loss, optimizer and precision on one resident batch
    seed_everything(0)
    net = build_segmentation_model(model, label.num_classes, **run.kwargs).to(device).train()
    loss_fn = SegmentationModule(net, lr=1e-3).loss
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3)
    shape = (batch, 1, crop, crop) if dims == 2 else (batch, 1, depth, crop, crop)
    x = torch.randn(shape, device=device)
    y = torch.randint(0, label.num_classes, shape, device=device)
    autocast = inference_autocast(training, device)
    for i in range(steps + warmup):
        if i == warmup:
            _sync(device)
            start = time.perf_counter()
        with autocast:
            loss = loss_fn(net(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    _sync(device)
    model_s = time.perf_counter() - start
    model_ips = steps * batch * depth / model_s

    # --- inference: sliding windows over a (depth x roi x roi) test block
    net.eval()
    test_depth = max(2 * depth, 16)
    image = np.random.default_rng(1).integers(0, 256, (test_depth, roi, roi), dtype=np.uint8)
    kwargs = dict(
        dims=dims,
        mean=0.5,
        std=0.25,
        roi_yx=roi,
        depth=train.depth,
        device=device,
        sw_batch_size=evaluation.sw_batch_size,
        slices_per_batch=evaluation.slices_per_batch,
    )
    predict_block(net, image, autocast=inference_autocast(training, device), **kwargs)
    _sync(device)
    start = time.perf_counter()
    predict_block(net, image, autocast=inference_autocast(training, device), **kwargs)
    _sync(device)
    infer_ips = test_depth / (time.perf_counter() - start)

    return {
        "model": model,
        "dims": run.dims,
        "setting": label.label,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "precision": precision,
        "batch_size": batch,
        "input": list(shape[1:]),
        "steps": steps,
        "encoder": run.encoder_name or "",
        "params_millions": round(sum(p.numel() for p in net.parameters()) / 1e6, 2),
        "pipeline_images_per_s": round(pipeline_ips, 2),
        "model_only_images_per_s": round(model_ips, 2),
        "pipeline_over_model_only": round(pipeline_ips / model_ips, 3),
        "inference_images_per_s": round(infer_ips, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="paper", help="configuration environment (paper, base, tiny)")
    parser.add_argument("--models", default="unet,unet3d", help="comma-separated models (one 2D, one 3D by default)")
    parser.add_argument("--setting", default="seg_3class", choices=sorted(SETTINGS))
    parser.add_argument("--steps", type=int, default=30, help="timed training steps")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    args = parser.parse_args()

    warnings.filterwarnings("ignore")
    logging.basicConfig(level=logging.WARNING)
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "mtneuro"):
        logging.getLogger(name).setLevel(logging.ERROR)
    params = load_parameters(args.env)
    segmentation = params.segmentation
    # the task's overrides of the shared training block, as train_and_evaluate applies them
    training = params.training.merged(segmentation.training, ("segmentation", "training"))
    if torch.cuda.is_available():
        # throughput, not bit-for-bit repeatability (nll_loss2d has no deterministic CUDA kernel)
        torch.backends.cudnn.benchmark = True
        training = training.model_copy(update={"deterministic": False})
    results = []
    for model in args.models.split(","):
        result = bench_model(model.strip(), segmentation, training, args.steps, args.warmup, args.setting)
        results.append(result)
        print(
            f"{result['model']:13s} {result['dims']} on {result['device_name']} ({result['precision']}, batch "
            f"{result['batch_size']}, input {result['input']}): pipeline {result['pipeline_images_per_s']:.1f} images/s, "
            f"model-only {result['model_only_images_per_s']:.1f} images/s "
            f"(ratio {result['pipeline_over_model_only']:.2f}); inference {result['inference_images_per_s']:.1f} images/s",
            flush=True,
        )
    print(json.dumps({"env": args.env, "torch": torch.__version__, "results": results}, indent=2))
    if args.json:
        args.json.write_text(json.dumps({"env": args.env, "results": results}, indent=2))


if __name__ == "__main__":
    main()
