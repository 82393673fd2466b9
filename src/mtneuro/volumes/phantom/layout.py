"""Where things are in the phantom (seed-independent): brain areas, their borders, the tissue outline.

The areas lie in bands across ``x`` like the real slab, with smoothly wiggling borders (at most
``WIGGLE`` = 50 voxels from the nominal x, varying with y and z). Nominal x ranges: hypothalamus
[150, 1150), ZI [1150, 2250), TRN [2250, 2550), VP [2550, 3450), internal capsule [3450, 3560),
STR [3560, 4230), corpus callosum [4230, 4380), CTX [4380, 5750). Area values follow
:data:`mtneuro.spec.BRAIN_AREA_VALUES`. The tissue outline (traced on the real section z = 309)
spans y ~ [50, 1390]; outside it the image is dark and both label channels are 0.

Per-area parameters are blended smoothly across the borders (:func:`blend`, :func:`memberships`).
"""

from __future__ import annotations

import math

import numpy as np

from mtneuro import spec
from mtneuro.volumes.base import Window

#: Brain areas from low to high x (index 1..8; index 0 = outside the tissue).
AREAS: tuple[str, ...] = (
    "hypothalamus",
    "ZI",
    "TRN",
    "VP",
    "internal_capsule",
    "STR",
    "corpus_callosum",
    "CTX",
)
AREA_VALUES = np.array([0] + [spec.BRAIN_AREA_VALUES[a] for a in AREAS], dtype=np.uint64)
#: Nominal x of the border between AREAS[i] and AREAS[i+1].
BORDERS: tuple[float, ...] = (1150.0, 2250.0, 2550.0, 3450.0, 3560.0, 4230.0, 4380.0)
#: Largest distance (voxels) of a border from its nominal x.
WIGGLE = 50.0
BORDER_PHASES = (
    (0.3, 1.9, 4.1),
    (2.2, 0.7, 5.0),
    (4.4, 3.1, 1.2),
    (1.1, 5.5, 2.6),
    (3.7, 2.4, 0.2),
    (5.9, 4.6, 3.3),
    (0.9, 1.4, 4.8),
)

#: Tissue outline (traced on the real section z = 309): x extent and top/bottom y by x.
TISSUE_X = (150.0, 5750.0)
TOP_XP = (150, 450, 750, 1500, 2400, 2850, 3300, 3900, 4500, 5100, 5500, 5750)
TOP_FP = (700, 390, 235, 295, 340, 325, 265, 190, 130, 65, 45, 300)
BOT_XP = (150, 450, 600, 1500, 2100, 3000, 3900, 4500, 5250, 5600, 5750)
BOT_FP = (760, 1150, 1220, 1265, 1345, 1360, 1300, 1315, 1365, 1390, 1000)
EDGE_WIGGLE = 12.0


def region_x_range(name: str) -> tuple[float, float]:
    """Nominal ``[x_lo, x_hi)`` of a brain area; its true borders lie within ``WIGGLE`` of it."""
    i = AREAS.index(name)
    lo = TISSUE_X[0] if i == 0 else BORDERS[i - 1]
    hi = TISSUE_X[1] if i == len(AREAS) - 1 else BORDERS[i]
    return (lo, hi)


def safe_region_box(name: str) -> dict[str, tuple[int, int]]:
    """A conservative box (z, y, x half-open) that lies entirely inside the area ``name``.

    x is the nominal range shrunk by the border wiggle, y the tissue band over that x range
    shrunk by the edge wiggle; z is the whole volume.
    """
    lo, hi = region_x_range(name)
    x0, x1 = math.ceil(lo + WIGGLE + 1), math.floor(hi - WIGGLE - 1)
    xs = np.arange(x0, x1)
    top = np.interp(xs, TOP_XP, TOP_FP).max() + EDGE_WIGGLE + 1
    bot = np.interp(xs, BOT_XP, BOT_FP).min() - EDGE_WIGGLE - 1
    return {"z": (0, spec.VOLUME_SHAPE[0]), "y": (math.ceil(top), int(bot)), "x": (x0, x1)}


def borders(Z: np.ndarray, Y: np.ndarray) -> list[np.ndarray]:
    """x of each area border at (z, y) (broadcastable float arrays)."""
    out = []
    for b, (p1, p2, p3) in zip(BORDERS, BORDER_PHASES):
        w = (
            0.5 * np.sin(2 * np.pi * Y / 1100.0 + p1)
            + 0.3 * np.sin(2 * np.pi * Z / 900.0 + p2)
            + 0.2 * np.sin(2 * np.pi * (Y / 450.0 + Z / 700.0) + p3)
        )
        out.append(b + WIGGLE * w)
    return out


def tissue_edges(Z: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Top and bottom y of the tissue at (z, x) (broadcastable)."""
    xf = np.asarray(X, dtype=np.float64)
    top = np.interp(xf, TOP_XP, TOP_FP) + EDGE_WIGGLE * np.sin(2 * np.pi * Z / 700.0 + 0.3 + xf / 900.0)
    bot = np.interp(xf, BOT_XP, BOT_FP) + EDGE_WIGGLE * np.sin(2 * np.pi * Z / 800.0 + 1.7 + xf / 1300.0)
    return top, bot


def edge_distance(Z: np.ndarray, Y: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Distance (voxels, along y) to the nearer of the tissue's top and bottom edges (negative outside)."""
    top, bot = tissue_edges(Z, X)
    return np.minimum(Y - top, bot - Y)


def tissue(Z: np.ndarray, Y: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Boolean tissue mask; Z, Y, X broadcastable (X must not vary along Z/Y axes alone)."""
    xf = np.asarray(X, dtype=np.float64)
    top, bot = tissue_edges(Z, xf)
    Ya = np.asarray(Y)
    if (
        Ya.size
        and np.min(xf) >= TISSUE_X[0]
        and np.max(xf) < TISSUE_X[1]
        and np.min(Ya) >= np.max(top)
        and np.max(Ya) < np.min(bot)
    ):
        return np.ones(np.broadcast_shapes(np.shape(Z), np.shape(Y), np.shape(X)), dtype=bool)
    return (Y >= top) & (Y < bot) & (X >= TISSUE_X[0]) & (X < TISSUE_X[1])  # noqa: SIM300


def area_index(Z: np.ndarray, Y: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Area index (0 outside tissue, 1..8 = AREAS) at broadcastable coordinates."""
    Z = np.asarray(Z, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    X = np.asarray(X)
    shape = np.broadcast_shapes(np.shape(Z), np.shape(Y), np.shape(X))
    idx = np.ones(shape, dtype=np.uint8)
    if idx.size == 0:
        return idx
    xmin, xmax = np.min(X), np.max(X)
    for b in borders(Z, Y):
        if xmin >= np.max(b):  # the whole window lies beyond this border
            idx += np.uint8(1)
        elif xmax >= np.min(b):
            idx += X >= b  # noqa: SIM300
    idx[~tissue(Z, Y, X)] = 0
    return idx


BLEND_WIDTH = 20.0


def steps(Z, Y, X, width: float = BLEND_WIDTH) -> list[np.ndarray]:
    """Smooth 0 -> 1 step across each border (exactly 0 / 1 farther than ``width`` from it)."""
    out = []
    for b in borders(Z, Y):
        t = np.clip((X - b + width) / (2.0 * width), 0.0, 1.0)
        out.append(t * t * (3.0 - 2.0 * t))
    return out


def blend(values: tuple[float, ...], Z, Y, X) -> np.ndarray:
    """Per-area parameter, blended smoothly across the area borders."""
    out = np.full(np.broadcast_shapes(np.shape(Z), np.shape(Y), np.shape(X)), values[0], dtype=np.float64)
    for i, st in enumerate(steps(Z, Y, X)):
        step = values[i + 1] - values[i]
        if step != 0.0:
            out = out + step * st
    return out


def memberships(Z, Y, X) -> list[np.ndarray]:
    """Soft membership of each area (sums to 1)."""
    sig = steps(Z, Y, X)
    mem = [1.0 - sig[0]]
    for i in range(len(sig) - 1):
        mem.append(sig[i] - sig[i + 1])
    mem.append(sig[-1])
    return mem


def main_cube_mask(window: Window) -> np.ndarray | None:
    """Boolean mask of the main cubes' voxels in window (None if it touches none)."""
    mask = None
    for (z0, z1), (y0, y1), (x0, x1) in spec.MAIN_CUBES.values():
        lo = (max(z0, window.z0), max(y0, window.y0), max(x0, window.x0))
        hi = (min(z1, window.z1), min(y1, window.y1), min(x1, window.x1))
        if all(a < b for a, b in zip(lo, hi)):
            if mask is None:
                mask = np.zeros(window.shape, dtype=bool)
            mask[
                lo[0] - window.z0 : hi[0] - window.z0,
                lo[1] - window.y0 : hi[1] - window.y0,
                lo[2] - window.x0 : hi[2] - window.x0,
            ] = True
    return mask


def roi_labels(zs: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Brain-area values (uint64) on the grid zs x ys x xs (1D integer arrays)."""
    idx = area_index(zs[:, None, None].astype(np.float64), ys[None, :, None].astype(np.float64), xs[None, None, :])
    return AREA_VALUES[idx]
