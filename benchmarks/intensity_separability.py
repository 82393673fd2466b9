"""How far first-order intensity alone tells the Task 1 regions apart: real section vs phantom.

Two figures (issue 24, section 1):

* **Tile protocol** on section z = 309: the four main-cube footprints of a profile (the centre
  ``ingestion.cube_size_yx`` of each box, ``ingestion.main_cubes``) cut into square tiles; the
  top half of each footprint trains, the bottom half tests; four statistics per tile (mean,
  std, 10th and 90th percentile) and a standardised logistic regression. On the real section
  (``shared/data/prasad2020-sample/image_z309.png``) and on the phantom's section at the same
  place (quantised to the real section's 19-level palette too, since the real PNG carries it).
* **Intensity classifier** on the phantom's actual Task 1 images: the same four statistics of
  every section as the classification pipeline prepares it (``nodes.prepare_images``,
  ``select_images`` with the profile's slice steps, ``evaluate_on``), trained on ROI-C1 / ROI-C3
  and tested like every Task 1 method. Needs the cubes of an ingestion run (``--data-root``).

Also prints the region means of the footprints and the brightness profile of the whole real
section along y and x (tissue only), against the phantom's.

Run: ``uv run python benchmarks/intensity_separability.py --data-root data [--seed 0] [--env base]``
(``--data-root`` omitted: the tile protocol only).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT / "benchmarks"))

from probe_task1 import load_inputs, load_parameters

from mtneuro import spec
from mtneuro.pipelines.classification import nodes
from mtneuro.pipelines.ingestion.nodes import main_cube_windows
from mtneuro.pipelines.reporting import calibration
from mtneuro.volumes import Window
from mtneuro.volumes.phantom import PhantomVolume

REAL_SECTION = PROJECT.parent / "shared" / "data" / "prasad2020-sample" / "image_z309.png"
SECTION_Z = 309
TILE_SIZES = (32, 64)


def intensity_statistics(images: np.ndarray) -> np.ndarray:
    """(N, 4): mean, std, 10th and 90th percentile of each image (N, H, W)."""
    flat = np.asarray(images, dtype=np.float64).reshape(len(images), -1)
    p10, p90 = np.percentile(flat, [10, 90], axis=1)
    return np.stack([flat.mean(axis=1), flat.std(axis=1), p10, p90], axis=1)


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


def task1_intensity(data_root: Path, env: str) -> dict[tuple[str, str], float]:
    """(train config, test config) -> accuracy of the 4-statistic classifier on the prepared Task 1 images."""
    params = load_parameters(env, {}, {})
    c = params.classification
    cubes, split_index = load_inputs(data_root)
    data, _ = nodes.prepare_images(cubes, split_index, c)
    out = {}
    for train_config in c.configs:
        images, labels = nodes.select_images(data, train_config, c.data.train_splits, c.data.train_slice_step)
        x_train = intensity_statistics(images)
        for test_config in c.evaluate_on[train_config]:
            step = int(c.data.test_slice_step[test_config])
            test_images, test_labels = nodes.select_images(data, test_config, c.data.test_splits, step)
            out[(train_config, test_config)] = intensity_accuracy(
                x_train, labels, intensity_statistics(test_images), test_labels
            )
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="base", help="configuration environment (footprints, Task 1 settings)")
    parser.add_argument("--seed", type=int, default=0, help="phantom seed")
    parser.add_argument("--data-root", type=Path, default=None, help="data folder of an ingestion run (Task 1 part)")
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
        for (train, test), acc in task1_intensity(args.data_root, args.env).items():
            print(f"Task 1 intensity classifier (4 statistics): train {train} -> test {test}: {acc:.3f}")


if __name__ == "__main__":
    main()
