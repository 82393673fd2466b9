"""Speed of the microstructure map: voxels/s of block-wise mapping vs model-only forward passes.

    uv run python benchmarks/bench_mapping.py [--slices 2] [--device cpu|cuda] [--threads 1] [--workers 2]

Maps ``--slices`` slices of one default block (1420 x 2048, the plane's rows, halo 160) of the
base profile's U-Net (random weights: speed does not depend on them) and times:

* map: read the block's input through Dask (phantom), segment every slice, crop the halo;
* model-only: forward passes of the same network on the block's core (no halo), same batch
  (one slice) and device.

Prints both, their ratio (target >= 0.8) and the projected time of the default slab (32 x 1420 x
5805) and of the whole volume (720 x 1420 x 5805) at the measured map rate.
"""

from __future__ import annotations

import argparse
import resource
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from mtneuro import spec
from mtneuro.pipelines.mapping import engine
from mtneuro.segmentation_models import build_segmentation_model
from mtneuro.volumes import Window, open_volume


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--slices", type=int, default=2)
    ap.add_argument("--block-x", type=int, default=2048)
    ap.add_argument("--x0", type=int, default=2048)
    ap.add_argument("--halo", type=int, default=160)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    net = (
        build_segmentation_model(
            "unet", 4, encoder_name="resnet18", encoder_weights=None, encoder_depth=4, decoder_channels=[64, 32, 16, 16]
        )
        .eval()
        .to(device)
    )
    net.metadata = {"model": "unet", "dims": 2, "mean": 0.45, "std": 0.12, "classes": list(spec.PIXEL_CLASSES.values())}
    model = engine.SegmentationModel.from_trained(net, "unet")
    source = open_volume("phantom://prasad2020/image", seed=0)
    image = engine.lazy_volume(source, (args.slices, 512, 1024))
    ny = source.shape[1]
    block = Window(344, 344 + args.slices, 0, ny, args.x0, args.x0 + args.block_x)
    core = int(np.prod(block.shape))

    net_fn = model.net

    class OnDevice(torch.nn.Module):  # inputs to the device, labels back to the CPU
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return net_fn(x.to(device)).cpu()

    model.net = OnDevice()
    model.net.multiple = getattr(net_fn, "multiple", (1, 1))
    # warm-up
    with torch.no_grad():
        net_fn(torch.zeros(1, 1, 256, 256, device=device))
    t0 = time.perf_counter()
    data, origin = engine.block_input(image, block, source.shape, (0, args.halo, args.halo), (1, 16, 16))
    t_read = time.perf_counter() - t0
    t1 = time.perf_counter()
    labels = engine.segment(model, data, 1, args.workers)
    t_seg = time.perf_counter() - t1
    map_seconds = time.perf_counter() - t0
    x = torch.from_numpy(
        (
            data[:, block.y0 - origin[1] : block.y1 - origin[1], block.x0 - origin[2] : block.x1 - origin[2]].astype(
                np.float32
            )
            / 255
            - 0.45
        )
        / 0.12
    )
    pad = (-x.shape[-1]) % 16, (-x.shape[-2]) % 16

    @torch.no_grad()
    def fwd(i: int) -> None:
        xi = torch.nn.functional.pad(x[i : i + 1, None], (0, pad[0], 0, pad[1]), mode="replicate").to(device)
        net_fn(xi).argmax(1).cpu()

    t2 = time.perf_counter()
    if args.workers > 1:
        with ThreadPoolExecutor(args.workers) as pool:
            list(pool.map(fwd, range(x.shape[0])))
    else:
        for i in range(x.shape[0]):
            fwd(i)
    model_seconds = time.perf_counter() - t2
    if device.type == "cuda":
        torch.cuda.synchronize()
    rate, model_rate = core / map_seconds, core / model_seconds
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    slab = 32 * spec.VOLUME_SHAPE[1] * spec.VOLUME_SHAPE[2]
    full = int(np.prod(spec.VOLUME_SHAPE))
    print(f"device {device} threads {args.threads} workers {args.workers}; block {block.shape} core voxels {core}")
    print(f"read (phantom via Dask) {t_read:.1f} s, segment {t_seg:.1f} s; labels {labels.shape}")
    print(f"map        {rate / 1e6:.3f} Mvoxel/s  (read + halo + segment + crop)")
    print(f"model-only {model_rate / 1e6:.3f} Mvoxel/s  (forward on the core, same batch and device)")
    print(
        f"ratio map / model-only: {rate / model_rate:.2f} (target >= 0.8); "
        f"segment-only ratio {core / t_seg / model_rate:.2f}"
    )
    print(
        f"projected: default slab (32 slices) {slab / rate / 60:.1f} min, whole volume {full / rate / 3600:.2f} h "
        f"on this {device.type}; peak RSS {rss:.0f} MB"
    )


if __name__ == "__main__":
    main()
