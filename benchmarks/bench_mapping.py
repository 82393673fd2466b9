"""Speed and memory of the brain map (issue #13), with the base profile's networks (random weights:
speed does not depend on them) on the phantom.

    uv run python benchmarks/bench_mapping.py [--slices 32] [--precision auto] [--repeats 2]
    uv run python benchmarks/bench_mapping.py --slab [--slices 32]     # the whole default slab
    uv run python benchmarks/bench_mapping.py --rss                    # peak RSS vs window size

Default mode: one block of the default slab (``--slices`` x 1420 x 2048 at x = 2048, with the
profile's halo) and, in the same process, the time of each stage of ``engine.compute_block``:

* read: the block's input (block + halo) from the phantom through Dask;
* segment (the microstructure map): normalise, sliding-window inference, argmax, per slice;
* model-only: forward passes of the same network on the block's core (no halo, no reading), same
  batch (one slice), workers, precision and device; measured alternately with ``segment``
  (``--repeats`` pairs) so that the ratio holds on a shared machine;
* regions (Task 1 patches), features (per tile).

``--slab`` maps the whole default window (``mapping.window`` of the base profile, ``--slices``
deep) with ``plan_brain_map`` + the store writer and prints its wall time and peak RSS.
``--rss`` runs ``--slab`` in two subprocesses on windows of 2 and 3 blocks of the same shape and
prints how peak RSS scales: the full volume uses the same blocks, so its estimate follows.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from mtneuro import models, spec
from mtneuro.config import load_parameters
from mtneuro.config.mapping import MappingParameters
from mtneuro.pipelines.mapping import engine, nodes
from mtneuro.segmentation_models import build_segmentation_model
from mtneuro.training import thread_limit
from mtneuro.volumes import Window, open_volume

PROJECT = Path(__file__).resolve().parents[1]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load_avg() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def mapping_block(slices: int, overrides: dict | None = None):
    """The base profile's ``mapping`` with ``slices``-deep slab, blocks and chunks."""
    params = load_parameters(PROJECT / "conf", "base")
    raw = params.mapping.model_dump(mode="json")
    raw["slab"]["depth"] = slices
    for key in ("shape_zyx", "chunks_zyx", "read_chunks_zyx"):
        raw["blocks"][key][0] = slices
    for key, value in (overrides or {}).items():
        raw[key] = {**raw[key], **value} if isinstance(value, dict) and isinstance(raw[key], dict) else value
    return MappingParameters.model_validate(raw), params


def build_models(params, device: torch.device):
    """The base profile's Task 2 U-Net and Task 1 encoder + linear read-out, random weights."""
    torch.manual_seed(0)
    kwargs = dict(params.segmentation.model_settings["unet"].kwargs)  # encoder_depth 4, decoder 64..16
    net = build_segmentation_model("unet", 4, encoder_name="resnet18", encoder_weights=None, **kwargs)
    net = net.eval().to(device)
    net.metadata = {"model": "unet", "dims": 2, "mean": 0.45, "std": 0.12, "classes": list(spec.PIXEL_CLASSES.values())}
    enc = params.classification.encoder
    arch = {
        "name": enc.name,
        "in_channels": enc.in_channels,
        "representation_dim": enc.representation_dim,
        "width": enc.width,
        "stem": enc.stem,
    }
    meta = {
        "architecture": arch,
        "input": {"size": enc.input_size, "normalisation": {"mode": "training_set", "mean": 0.45, "std": 0.12}},
    }
    encoder = models.ResNetFrozenEncoder(models.build_task1_encoder(arch), meta, device=str(device))
    rng = np.random.default_rng(0)
    weights = rng.normal(size=(4, enc.representation_dim)).astype(np.float32)
    readout = models.LinearReadout(weights, np.zeros(4, np.float32), [0, 1, 2, 3])
    return net, encoder, readout


def bench_block(args: argparse.Namespace) -> None:
    device = torch.device(args.device)
    mapping, params = mapping_block(args.slices)
    net, encoder, readout = build_models(params, device)
    precision = engine.mapping_precision(args.precision or mapping.compute.precision, device.type)
    workers = args.workers or mapping.compute.workers
    threads = args.threads or mapping.compute.torch_threads
    torch.set_num_threads(threads)
    model = engine.MicrostructureNetwork.from_trained(net, "unet")
    prepared = model.net  # what the map runs: batch norms folded into the convolutions
    if device.type != "cpu":
        inner = model.net

        class OnDevice(torch.nn.Module):  # inputs to the device, logits back to the CPU
            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return inner(x.to(device)).cpu()

        model.net = OnDevice()
        model.net.multiple = inner.multiple  # type: ignore[assignment]
    settings = engine.BlockSettings(
        halo_yx=mapping.microstructure.halo_yx,
        halo_z=0,
        slices_per_batch=mapping.microstructure.slices_per_batch,
        workers=workers,
        patch_size=mapping.regions.patch_size,
        stride=mapping.regions.stride,
        region_batch_size=mapping.regions.batch_size,
        tile_size=mapping.features.tile_size,
        connectivity=mapping.features.cell_connectivity,
        feature_names=tuple(mapping.features.names),
        precision=precision,
    )
    source = open_volume("phantom://prasad2020/image", seed=0)
    reader = engine.BlockReader(source, mapping.blocks.read_chunks_zyx)
    ny = source.shape[1]
    block = Window(mapping.slab.z0, mapping.slab.z0 + args.slices, 0, ny, args.x0, args.x0 + args.block_x)
    core = int(np.prod(block.shape))
    region = RegionsOnly(encoder, readout)
    print(f"load average before: {load_avg()}")
    print(
        f"device {device} precision {precision} workers {workers} x {threads} torch threads; block {block.shape} "
        f"halo {settings.halo_yx}; core voxels {core}"
    )
    timings: dict[str, list[float]] = {}

    def timed(name: str, fn):
        t0 = time.perf_counter()
        out = fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        timings.setdefault(name, []).append(time.perf_counter() - t0)
        return out

    data, origin = timed(
        "read",
        lambda: engine.block_input(reader, block, engine.block_halo(model, settings), engine.block_multiple(model)),
    )
    sl = (
        slice(None),
        slice(block.y0 - origin[1], block.y1 - origin[1]),
        slice(block.x0 - origin[2], block.x1 - origin[2]),
    )
    x_core = np.ascontiguousarray(data[sl])
    from mtneuro.pipelines.segmentation.engine import normalise

    def model_only(network: torch.nn.Module = prepared) -> None:
        network.to(memory_format=torch.channels_last)

        def fwd(i: int) -> None:
            x = torch.from_numpy(normalise(x_core[i : i + 1], 0.45, 0.12))[:, None]
            x = x.contiguous(memory_format=torch.channels_last).to(device)
            with torch.inference_mode(), engine.inference_context(precision, device.type):
                network(x).argmax(1).cpu()

        if workers > 1:
            with ThreadPoolExecutor(workers) as pool:
                list(pool.map(fwd, range(x_core.shape[0])))
        else:
            for i in range(x_core.shape[0]):
                fwd(i)

    with thread_limit(threads):
        model_only()  # warm-up (oneDNN kernels for these shapes)
        for _ in range(args.repeats):
            labels = timed("segment", lambda: engine.segment(model, data, 1, workers, precision))
            timed("model-only", model_only)
        timed("model-only, batch norms not folded", lambda: model_only(net))
        micro = np.ascontiguousarray(labels[sl])
        timed("regions", lambda: engine.classify_regions(region, data, origin, block, source.shape, settings))
        timed("features", lambda: engine.tile_features(micro, settings))
    seg_ratios = [m / s for s, m in zip(timings["segment"], timings["model-only"], strict=True)]
    best = {k: min(v) for k, v in timings.items()}
    for name, values in timings.items():
        print(
            f"  {name:36s} " + " ".join(f"{v:6.1f}" for v in values) + f" s   ({core / min(values) / 1e6:.2f} Mvoxel/s)"
        )
    stages = best["read"] + best["segment"] + best["regions"] + best["features"]
    rate_map, rate_model = core / best["segment"], core / best["model-only"]
    print(
        f"model-only   {rate_model / 1e6:.2f} Mvoxel/s (forward of the map's network on the core, same batch, "
        f"workers, precision, device; {core / best['model-only, batch norms not folded'] / 1e6:.2f} Mvoxel/s "
        "as trained, batch norms not folded)"
    )
    print(
        f"microstructure map {rate_map / 1e6:.2f} Mvoxel/s (halo + sliding window + argmax + crop): ratio to "
        f"model-only {min(seg_ratios):.2f}..{max(seg_ratios):.2f} (target >= 0.8)"
    )
    print(
        f"whole block (read + segment + regions + features) {core / stages / 1e6:.2f} Mvoxel/s, ratio "
        f"{(core / stages) / rate_model:.2f}; shares: "
        + ", ".join(f"{k} {best[k] / stages:.0%}" for k in ("read", "segment", "regions", "features"))
    )
    slab = args.slices * spec.VOLUME_SHAPE[1] * spec.VOLUME_SHAPE[2]
    full = int(np.prod(spec.VOLUME_SHAPE))
    print(
        f"projected at the whole-block rate: default slab ({args.slices} slices) {slab / (core / stages):.0f} s, "
        f"whole volume {full / (core / stages) / 3600:.2f} h; microstructure alone on this {device.type}: "
        f"whole volume {full / rate_map / 3600:.2f} h"
    )
    print(f"peak RSS {peak_rss_mb():.0f} MB; load average after: {load_avg()}")


class RegionsOnly(engine.RegionModel):
    def __init__(self, encoder, readout) -> None:
        super().__init__(encoder, readout, "bench")


def bench_slab(args: argparse.Namespace) -> None:
    """The whole window through plan_brain_map and the store writer (as ``kedro run`` writes it)."""
    from mtneuro.datasets.ome_zarr_store import write_map

    overrides = {}
    if args.window:
        z, y, x = ([int(v) for v in part.split(":")] for part in args.window.split(","))
        overrides["window"] = {"z": z, "y": y, "x": x}
    mapping, params = mapping_block(args.slices, overrides)
    net, encoder, readout = build_models(params, torch.device("cpu"))
    request = nodes.plan_brain_map(net, encoder, readout, mapping, params.volume)  # the phantom, seed 0
    print(f"load average before: {load_avg()}; {len(request.blocks)} blocks", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        stats = write_map(request, Path(tmp) / "brain_map.ome.zarr", progress=lambda m: print(" ", m, flush=True))
        seconds = time.perf_counter() - t0
    voxels = sum(int(np.prod([s.stop - s.start for s in b[""]])) for b in request.blocks.values())
    print(
        f"mapped {voxels} voxels in {seconds:.0f} s ({voxels / seconds / 1e6:.2f} Mvoxel/s, "
        f"{stats['computed']} blocks incl. pyramids and metadata); peak RSS {peak_rss_mb():.0f} MB; "
        f"load average after: {load_avg()}"
    )


def bench_rss(args: argparse.Namespace) -> None:
    """Peak RSS of windows of 2 and 3 blocks of the same shape (the slab's middle block column,
    2 and 3 x ``--slices`` deep), each in its own process: how memory grows with the window once
    the first block has warmed the allocator and caches (1 block: ~0.9 GB less)."""
    z0 = 344
    results = []
    for depth in (2 * args.slices, 3 * args.slices):
        window = f"{z0}:{z0 + depth},0:1420,2048:4096"
        cmd = [sys.executable, __file__, "--slab", "--slices", str(args.slices), "--window", window]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        line = [ln for ln in out.splitlines() if "peak RSS" in ln][-1]
        print(f"  --slab --window {window}: {line}", flush=True)
        rss = float(line.split("peak RSS ")[1].split(" MB")[0])
        voxels = depth * 1420 * 2048
        results.append((voxels, rss))
        print(f"window {window}: {voxels / 1e6:.0f} Mvoxels, peak RSS {rss:.0f} MB", flush=True)
    (v1, r1), (v2, r2) = results
    slope = (r2 - r1) / (v2 - v1)
    full = int(np.prod(spec.VOLUME_SHAPE))
    print(
        f"peak RSS grows {slope * 1e6:.2f} MB per Mvoxel of window (same block shape); whole volume "
        f"({full / 1e9:.1f} Gvoxels, {full / (v2 - v1):.0f} such blocks) estimate {r2 + max(slope, 0) * (full - v2):.0f} MB"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--slices", type=int, default=32)
    ap.add_argument("--block-x", type=int, default=2048)
    ap.add_argument("--x0", type=int, default=2048)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch threads per worker (0: the profile's)")
    ap.add_argument("--workers", type=int, default=0, help="slices segmented at once (0: the profile's)")
    ap.add_argument("--precision", default="", help="auto, fp32 or bf16 (default: the profile's)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--slab", action="store_true", help="map the whole default window and write the store")
    ap.add_argument("--window", default="", help="with --slab: z0:z1,y0:y1,x0:x1 instead of the slab")
    ap.add_argument("--rss", action="store_true", help="peak RSS of windows of 2 and 3 blocks")
    args = ap.parse_args()
    if args.rss:
        bench_rss(args)
    elif args.slab:
        bench_slab(args)
    else:
        bench_block(args)


if __name__ == "__main__":
    main()
