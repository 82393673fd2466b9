"""How far first-order intensity alone tells the Task 1 regions apart: real section vs phantom.

Two figures (issue 24, section 1):

* **Tile protocol** on section z = 309: the four main-cube footprints of a profile (the centre
  ``ingestion.cube_size_yx`` of each box, ``ingestion.main_cubes``) cut into square tiles; the
  top half of each footprint trains, the bottom half tests; four statistics per tile (mean,
  std, 10th and 90th percentile) and a standardised logistic regression. On the real section
  (``shared/data/prasad2020-sample/image_z309.png``) and on the phantom's section at the same
  place (quantised to the real section's 19-level palette too, since the real PNG carries it).
* **Task 1 controls** on the phantom's actual Task 1 images: ``intensity_baseline`` (the Table 1
  control) and PCA, run by the pipeline's own nodes (``prepare_images``, ``fit_decomposition``,
  ``fit_linear_readout``, ``evaluate_run``) with the profile's slice steps and splits, trained on
  ROI-C1 / ROI-C3 and tested like every Task 1 method (seed 0; both are seed-free but for PCA's
  read-out). Needs the cubes of an ingestion run (``--data-root``); ``--regenerate`` generates
  their images again with the current phantom code at the same windows (about a minute),
  so the phantom can be tuned without re-running ingestion.

* **Whole-area tiles** (``--area-tiles``): the same classifier on 128-px tiles of section
  z = 309 over each region's whole brain area (not only the footprint), area-averaged to 64 px
  like a base-profile Task 1 image, split in two halves along x; real against phantom. The
  Task 1 images' scale, as far as one real section can show it.

Also prints the region means of the footprints and the brightness profile of the whole real
section along y and x (tissue only), against the phantom's.

Run: ``uv run python benchmarks/intensity_separability.py --data-root data [--regenerate] [--seed 0] [--env base]``
(``--data-root`` omitted: the tile protocol only). Prints the load average beside the timings.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

import numpy as np

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT / "benchmarks"))

from probe_task1 import load_inputs, load_parameters, run_one

from mtneuro import spec
from mtneuro.classification_methods.intensity_baseline import gray_level_statistics
from mtneuro.cubes import Cube
from mtneuro.pipelines.classification import nodes
from mtneuro.pipelines.ingestion.nodes import main_cube_windows
from mtneuro.pipelines.reporting import calibration
from mtneuro.volumes import Window, phantom
from mtneuro.volumes.phantom import PhantomVolume

REAL_SECTION = PROJECT.parent / "shared" / "data" / "prasad2020-sample" / "image_z309.png"
SECTION_Z = 309
TILE_SIZES = (32, 64)
#: Task 1 methods the controls part runs: the intensity control and PCA (the bar it must stay near).
CONTROL_METHODS = ("intensity_baseline", "pca")
#: Whole-area tiles: the base profile's section size (128 px), prepared size (64 px), and the
#: distance kept from the tissue edges (px).
AREA_TILE = 128
PREPARED = 64
AREA_TILE_MIN_EDGE = 200.0


def intensity_statistics(images: np.ndarray) -> np.ndarray:
    """(N, 4): mean, std, 10th and 90th percentile of each image (N, H, W), as ``intensity_baseline``."""
    return gray_level_statistics(np.asarray(images).reshape(len(images), -1), [10, 90])


def intensity_accuracy(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray) -> float:
    """Standardised logistic regression on the 4 statistics: test accuracy."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
    clf.fit(x_train, y_train)
    return float(clf.score(x_test, y_test))


def tiles(crop: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Square tiles of a 2-D crop: those of the top half, those of the bottom half."""
    ny, nx = crop.shape[0] // size, crop.shape[1] // size
    grid = crop[: ny * size, : nx * size].reshape(ny, size, nx, size).swapaxes(1, 2)
    return grid[: ny // 2].reshape(-1, size, size), grid[ny // 2 :].reshape(-1, size, size)


def tile_protocol(crops: dict[str, np.ndarray], size: int) -> float:
    """Top-half-train / bottom-half-test accuracy of the 4-statistic classifier on the footprints."""
    parts = [[], [], [], []]
    for label, region in enumerate(spec.REGIONS):
        top, bottom = tiles(crops[region], size)
        for k, t in ((0, top), (2, bottom)):
            parts[k].append(intensity_statistics(t))
            parts[k + 1].append(np.full(len(t), label))
    return intensity_accuracy(*(np.concatenate(p) for p in parts))


def area_tiles(z: int, size: int = AREA_TILE, min_edge: float = AREA_TILE_MIN_EDGE) -> list[tuple[str, int, int]]:
    """(region, y0, x0) of every ``size``-px tile (half-overlapping) of section ``z`` lying wholly in
    one Task 1 region's own brain area (phantom layout, traced on the real section) and at least
    ``min_edge`` px from the tissue edges (beyond the edge brightening)."""
    from mtneuro.volumes.phantom.layout import AREAS, area_index, edge_distance

    out = []
    for y0 in range(0, spec.VOLUME_SHAPE[1] - size + 1, size // 2):
        for x0 in range(0, spec.VOLUME_SHAPE[2] - size + 1, size // 2):
            ys = np.arange(y0, y0 + size, 8.0)[:, None]
            xs = np.arange(x0, x0 + size, 8.0)[None, :]
            area = area_index(np.float64(z), ys, xs)
            if area.min() != area.max() or area.flat[0] == 0 or edge_distance(np.float64(z), ys, xs).min() < min_edge:
                continue
            name = AREAS[int(area.flat[0]) - 1]
            if name in spec.REGIONS:
                out.append((name, y0, x0))
    return out


def area_tile_protocol(crops: list[np.ndarray], tile_list: list[tuple[str, int, int]]) -> tuple[float, np.ndarray]:
    """4-statistic accuracy over the regions' whole areas at the Task 1 image scale.

    Each tile is area-averaged to ``PREPARED`` px (as ``prepare_images`` makes a base-profile
    section); each region's tiles are split at their median x, one half trains and the other
    tests, both ways (mean of the two). Returns the accuracy and the (N, 4) statistics.
    """
    from mtneuro import models

    stats = intensity_statistics(models.resize_images(np.stack(crops), PREPARED)[:, 0].numpy() * 255.0)
    labels = np.array([spec.REGIONS.index(t[0]) for t in tile_list])
    xs = np.array([t[2] for t in tile_list])
    first = np.zeros(len(tile_list), dtype=bool)
    for k in range(len(spec.REGIONS)):
        idx = np.flatnonzero(labels == k)
        first[idx[xs[idx] < np.median(xs[idx])]] = True
    accuracy = [intensity_accuracy(stats[a], labels[a], stats[~a], labels[~a]) for a in (first, ~first)]
    return float(np.mean(accuracy)), stats


def real_section(path: Path = REAL_SECTION) -> np.ndarray:
    from PIL import Image

    if not path.is_file():
        raise SystemExit(f"Real section not found: {path} (pass --real-section PATH to image_z309.png)")
    return np.asarray(Image.open(path).convert("L"))


def phantom_section_crops(windows: dict[str, Window], seed: int) -> dict[str, np.ndarray]:
    image = PhantomVolume("image", seed=seed)
    return {r: image.read(Window(SECTION_Z, SECTION_Z + 1, w.y0, w.y1, w.x0, w.x1))[0] for r, w in windows.items()}


def section_profiles(sub: np.ndarray, step: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean gray level of the tissue (> 40) per 100-px band along y and along x.

    ``sub`` is the section subsampled by ``step`` in y and x.
    """
    sub = sub.astype(np.float64)
    tissue = sub > 40
    band = 100 // step

    def profile(axis: int) -> np.ndarray:
        n = sub.shape[axis] // band
        out = np.full(n, np.nan)
        for i in range(n):
            sl = [slice(None), slice(None)]
            sl[axis] = slice(i * band, (i + 1) * band)
            values = sub[tuple(sl)][tissue[tuple(sl)]]
            if values.size > 50:
                out[i] = values.mean()
        return out

    return profile(0), profile(1)


def phantom_section(seed: int, step: int = 8) -> np.ndarray:
    """The phantom's section z = 309 subsampled by ``step`` (full-resolution generation in tiles)."""
    level = int(np.log2(step))
    return PhantomVolume("image", seed=seed).sample_sections([SECTION_Z], level)[0]


def regenerated_cubes(cubes: dict[str, Cube], seed: int) -> dict[str, Cube]:
    """The ingested cubes with their image channel generated again by the current phantom code.

    Same windows (so the same split index, slices and labels); labels are not regenerated (the
    Task 1 images need only the image channel). For tuning the phantom without an ingestion run.
    """
    image = PhantomVolume("image", seed=seed)
    out = {}
    for cube_id, cube in cubes.items():
        out[cube_id] = dataclasses.replace(cube, image=image.read(cube.spec.window))
        phantom.clear_cache()
    return out


def task1_controls(
    data_root: Path, env: str, methods: tuple[str, ...] = CONTROL_METHODS, seed: int = 0, regenerate: int | None = None
) -> list[dict]:
    """Task 1 result rows of ``methods`` (seed ``seed``) on the profile's prepared images.

    The pipeline's own nodes (``prepare_images``, ``fit_decomposition``, ``fit_linear_readout``,
    ``evaluate_run``, via ``probe_task1.run_one``) on the cubes of an ingestion run, so the images,
    slice steps and splits are those ``intensity_baseline`` sees in a Kedro run. ``regenerate``:
    phantom seed whose images replace the ingested ones (:func:`regenerated_cubes`).
    """
    params = load_parameters(env, {}, {})
    cubes, split_index = load_inputs(data_root)
    if regenerate is not None:
        cubes = regenerated_cubes(cubes, regenerate)
    data, _ = nodes.prepare_images(cubes, split_index, params.classification)
    rows = []
    for method in methods:
        for config in params.classification.configs:
            rows.extend(run_one(data, params, method, config, seed))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="base", help="configuration environment (footprints, Task 1 settings)")
    parser.add_argument("--seed", type=int, default=0, help="phantom seed")
    parser.add_argument("--data-root", type=Path, default=None, help="data folder of an ingestion run (Task 1 part)")
    parser.add_argument(
        "--regenerate", action="store_true", help="Task 1 part: generate the cubes' images again (current phantom code)"
    )
    parser.add_argument(
        "--area-tiles", action="store_true", help="also the whole-area 128-px tile protocol (phantom: ~2 min)"
    )
    parser.add_argument("--profiles", action="store_true", help="also print the whole-section brightness profiles")
    parser.add_argument("--real-section", type=Path, default=REAL_SECTION, help="the real section z = 309 (PNG)")
    args = parser.parse_args(argv)

    params = load_parameters(args.env, {}, {})
    windows = main_cube_windows(params.ingestion)
    palette = calibration.load_reference().palette
    real = real_section(args.real_section)
    real_crops = {r: real[w.y0 : w.y1, w.x0 : w.x1] for r, w in windows.items()}
    phantom_crops = phantom_section_crops(windows, args.seed)
    quantised = {r: calibration.quantise(c, palette) for r, c in phantom_crops.items()}

    size = next(iter(windows.values())).shape[1]
    print(f"# section z = {SECTION_Z}, {args.env} footprints ({size} px), phantom seed {args.seed}")
    print("region means   " + "  ".join(f"{r} {real_crops[r].mean():6.1f}" for r in spec.REGIONS) + "  (real)")
    print("               " + "  ".join(f"{r} {phantom_crops[r].mean():6.1f}" for r in spec.REGIONS) + "  (phantom)")
    for tile in TILE_SIZES:
        if tile > size // 2:
            continue
        r, p, q = (tile_protocol(crops, tile) for crops in (real_crops, phantom_crops, quantised))
        print(f"tile protocol {tile:3d} px: real {r:.3f}  phantom {p:.3f}  phantom quantised {q:.3f}")

    if args.area_tiles:
        tile_list = area_tiles(SECTION_Z)
        counts = "/".join(str(sum(t[0] == r for t in tile_list)) for r in spec.REGIONS)
        real_acc, real_stats = area_tile_protocol(
            [real[y : y + AREA_TILE, x : x + AREA_TILE] for _, y, x in tile_list], tile_list
        )
        image = PhantomVolume("image", seed=args.seed)
        crops = [
            calibration.quantise(
                image.read(Window(SECTION_Z, SECTION_Z + 1, y, y + AREA_TILE, x, x + AREA_TILE))[0], palette
            )
            for _, y, x in tile_list
        ]
        phantom_acc, phantom_stats = area_tile_protocol(crops, tile_list)
        print(
            f"whole-area tiles {AREA_TILE} px -> {PREPARED} px ({counts} tiles {'/'.join(spec.REGIONS)}, "
            f">= {AREA_TILE_MIN_EDGE:.0f} px from the edges, halves split at the median x): "
            f"real {real_acc:.3f}  phantom quantised {phantom_acc:.3f}"
        )
        labels = np.array([spec.REGIONS.index(t[0]) for t in tile_list])
        for name, stats in (("real", real_stats), ("phantom", phantom_stats)):
            print(
                f"  {name:8s}"
                + "  ".join(
                    f"{r} "
                    + "/".join(
                        f"{stats[labels == k, j].mean():.0f}+-{stats[labels == k, j].std():.1f}" for j in range(4)
                    )
                    for k, r in enumerate(spec.REGIONS)
                )
                + "  (mean/std/p10/p90 of the tiles: mean +- sd)"
            )

    if args.profiles:
        step = 8
        ry, rx = section_profiles(real[::step, ::step], step)
        py, px = section_profiles(phantom_section(args.seed, step), step)
        print("mean tissue gray per 100 px along y (real / phantom):")
        print("  " + " ".join(f"{a:5.0f}" for a in ry))
        print("  " + " ".join(f"{a:5.0f}" for a in py))
        print("mean tissue gray per 100 px along x (real / phantom):")
        print("  " + " ".join(f"{a:5.0f}" for a in rx))
        print("  " + " ".join(f"{a:5.0f}" for a in px))

    if args.data_root is not None:
        start = time.perf_counter()
        source = f"regenerated at seed {args.seed}" if args.regenerate else "as ingested"
        rows = task1_controls(args.data_root, args.env, seed=0, regenerate=args.seed if args.regenerate else None)
        print(f"# Task 1 controls, {args.env} profile, images {source} (load average {os.getloadavg()[0]:.1f})")
        for row in rows:
            recall = "/".join(f"{row[f'recall_{r}']:.2f}" for r in spec.REGIONS)
            print(
                f"Task 1 {row['method']:>18}: train {row['train_config']} -> test {row['config']}: "
                f"accuracy {row['accuracy']:.3f}  recall {'/'.join(spec.REGIONS)} {recall}"
            )
        print(f"# {time.perf_counter() - start:.0f} s (load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
