"""Speed of the synthetic phantom: seconds per 256 x 256 x 360 cube, per channel and for all three.

Run: ``uv run python benchmarks/bench_phantom.py [--seed 0] [--repeat 1] [--region CTX]``

"All three channels" reads image, roi_labels and pixel_labels of the same window one after the
other, the way ingestion reads a main cube (the channels share the generated microstructure).
Per-channel numbers are measured with a cold cache, i.e. each channel on its own.
"""

from __future__ import annotations

import argparse
import time

from mtneuro import spec
from mtneuro.volumes import Window, open_volume, phantom
from mtneuro.volumes.phantom.fields import phantom_model

CHANNELS = ("image", "roi_labels", "pixel_labels")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--region", default="CTX", choices=spec.REGIONS)
    args = ap.parse_args()

    (z0, z1), (y0, y1), (x0, x1) = spec.MAIN_CUBES[args.region]
    window = Window(z0, z1, y0, y1, x0, x1)
    vols = {c: open_volume(spec.PHANTOM_URIS[c], seed=args.seed) for c in CHANNELS}
    phantom_model(args.seed)  # global random choices of the seed, built once per process

    print(f"phantom seed {args.seed}, main cube {args.region} {window.to_list()} shape {window.shape}")
    nbytes = {}
    per_channel = {c: [] for c in CHANNELS}
    all_three = []
    for _ in range(args.repeat):
        for c in CHANNELS:
            phantom.clear_cache()
            t = time.perf_counter()
            data = vols[c].read(window)
            per_channel[c].append(time.perf_counter() - t)
            nbytes[c] = data.nbytes
            del data
        phantom.clear_cache()
        t = time.perf_counter()
        for c in CHANNELS:
            vols[c].read(window)
        all_three.append(time.perf_counter() - t)

    total_bytes = sum(nbytes.values())
    for c in CHANNELS:
        s = min(per_channel[c])
        print(
            f"  {c:13s} {s:7.2f} s/cube  {nbytes[c] / 1e6 / s:8.1f} MB/s  ({nbytes[c] / 1e6:.0f} MB, {vols[c].dtype})"
        )
    s = min(all_three)
    print(f"  {'all three':13s} {s:7.2f} s/cube  {total_bytes / 1e6 / s:8.1f} MB/s  ({total_bytes / 1e6:.0f} MB)")


if __name__ == "__main__":
    main()
