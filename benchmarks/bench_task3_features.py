"""Task 3 features of 5760 quadrants (1440 slices of 256 x 256): the authors' algorithm against this project.

Run: ``uv run python benchmarks/bench_task3_features.py [--repeat 3] [--slices 360]``

The stack: four cubes of ``--slices`` 256 x 256 slices, one per region, built from the real
128 x 128 label masks of ``tests/data/prasad2020`` (32 per region): quadrant ``q`` of slice ``z``
is mask ``(4 z + q) mod 32`` of its region. The masks are separate images, not consecutive
sections, so few cells continue from one slice to the next; the 3D labelling still runs over
the whole cube.

Timed, best of ``--repeat``, one thread (BLAS/OpenMP capped; every path here is single-threaded):

(a) the authors' algorithm, re-implemented from its description (MTNeuro ``annots/features.py``:
    ``extract_cell_stats``, ``extract_axon_stats``, ``extract_blood_stats``): per cube, cc3d's
    6-connected 3D labelling of the cell voxels (here ``scipy.ndimage.label``, same components),
    the labels cut into 4 quadrants per slice, then a Python loop over quadrants with
    ``skimage.measure.regionprops`` (count, centroids, mean area over the regions), a
    ``sklearn`` KDTree query with k = 2 (mean over both columns, as they average it; 64 below two
    cells), and two more loops of ``regionprops`` on the axon and vessel masks for the pixel
    percentages (a quadrant without vessels gets 0 instead of their crash);
(b) this project's batched path: :class:`mtneuro.features.stack.LabelStack` per cube and every
    registered feature of every quadrant read from it (what ``build_probing_dataset`` does);
(c) this project's per-image path, for reference: ``label_cells_3d`` per cube, then
    ``image_features`` on each quadrant and its cut of the 3D labels.

(b) and (c) must give the same features (checked here: equal, or within 1e-12, or both NaN).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy import ndimage
from skimage import measure
from sklearn.neighbors import KDTree
from threadpoolctl import threadpool_limits

from mtneuro import features as feat
from mtneuro import spec
from mtneuro.features.stack import LabelStack

MASKS = Path(__file__).resolve().parents[1] / "tests" / "data" / "prasad2020" / "pixel_labels_128.npz"
QUADRANT = 128


def build_cubes(slices: int) -> list[np.ndarray]:
    masks = np.load(MASKS)
    cubes = []
    for region in spec.REGIONS:
        images = masks[region]
        z = np.arange(slices)
        q = [images[(4 * z + k) % len(images)] for k in range(4)]
        top, bottom = np.concatenate(q[:2], axis=2), np.concatenate(q[2:], axis=2)
        cubes.append(np.ascontiguousarray(np.concatenate([top, bottom], axis=1)))
    return cubes


def quadrants(stack: np.ndarray) -> np.ndarray:
    """``(4 Z, 128, 128)``: top-left, top-right, bottom-left, bottom-right of every slice."""
    z = stack.shape[0]
    return stack.reshape(z, 2, QUADRANT, 2, QUADRANT).transpose(0, 1, 3, 2, 4).reshape(4 * z, QUADRANT, QUADRANT)


def authors_cube(cube: np.ndarray) -> np.ndarray:
    """(a) for one cube: rows of (cell count, NN mean, mean area, axon %, vessel %) per quadrant."""
    labelled, _ = ndimage.label(cube == spec.CELL, structure=ndimage.generate_binary_structure(3, 1))
    cells = quadrants(labelled)
    out = np.zeros((len(cells), 5))
    for i, image in enumerate(cells):
        props = measure.regionprops(image)
        out[i, 0] = len(props)
        if len(props) < 2:
            out[i, 1] = 64.0
            continue
        centroids = np.array([p.centroid for p in props])
        distances = KDTree(centroids, leaf_size=30, metric="euclidean").query(centroids, k=2)[0]
        out[i, 1] = distances.mean()
        out[i, 2] = sum(p.area for p in props) / len(props)
    for column, value in ((3, spec.AXON), (4, spec.VESSEL)):
        masks = quadrants(np.where(cube == value, value, 0).astype(np.uint32))
        for i, image in enumerate(masks):
            props = measure.regionprops(image)
            out[i, column] = props[0].area / image.size * 100 if props else 0.0
    return out


def project_batched(cube: np.ndarray) -> list[dict[str, float]]:
    stack = LabelStack(cube, QUADRANT, feat.CELL_CONNECTIVITY)
    names = feat.feature_names()
    return [
        feat.feature_values(stack.image(z, k), names) for z in range(cube.shape[0]) for k in range(len(stack.units))
    ]


def project_per_image(cube: np.ndarray) -> list[dict[str, float]]:
    ids = feat.label_cells_3d(cube)
    rows = []
    for z in range(cube.shape[0]):
        for y0, x0, h, w in feat.tiles(*cube.shape[1:], QUADRANT):
            cut = (z, slice(y0, y0 + h), slice(x0, x0 + w))
            rows.append(feat.image_features(cube[cut], feat.CELL_CONNECTIVITY, None, ids[cut]))
    return rows


def best_of(repeat: int, run: Callable[[], object]) -> tuple[float, float, object]:
    """Best wall-clock and best CPU seconds of ``repeat`` runs, and the last result."""
    walls, cpus, result = [], [], None
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        result = run()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return min(walls), min(cpus), result


def same(a: list[dict[str, float]], b: list[dict[str, float]]) -> bool:
    for row_a, row_b in zip(a, b, strict=True):
        for name, x in row_a.items():
            y = row_b[name]
            if not ((np.isnan(x) and np.isnan(y)) or abs(x - y) <= 1e-12):
                return False
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--slices", type=int, default=360, help="slices per cube (4 cubes)")
    args = ap.parse_args()
    cubes = build_cubes(args.slices)
    n_slices = sum(len(c) for c in cubes)
    print(f"stack: 4 cubes x {args.slices} slices of 256 x 256 from the real masks ({4 * n_slices} quadrants)")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; {os.cpu_count()} CPUs")
    feat.feature_names()  # import the feature modules outside the timings
    with threadpool_limits(limits=1):
        authors = best_of(args.repeat, lambda: [authors_cube(c) for c in cubes])
        fast = best_of(args.repeat, lambda: [r for c in cubes for r in project_batched(c)])
        slow = best_of(args.repeat, lambda: [r for c in cubes for r in project_per_image(c)])
    assert isinstance(fast[2], list) and isinstance(slow[2], list)
    print("threads: 1 (threadpoolctl cap; scipy labelling, regionprops and the loops are single-threaded)")
    print("                                wall s    CPU s   ratio to (b), wall / CPU")
    for label, (wall, cpu, _) in (
        ("(a) authors' algorithm", authors),
        ("(b) project, batched", fast),
        ("(c) project, per image", slow),
    ):
        print(f"{label:28s} {wall:8.2f} {cpu:8.2f}   {wall / fast[0]:5.1f}x / {cpu / fast[1]:5.1f}x")
    print(f"(b) == (c) on every feature of every quadrant: {same(fast[2], slow[2])}")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
