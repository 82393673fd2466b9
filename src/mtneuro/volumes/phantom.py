"""Built-in synthetic phantom of the prasad2020 volume: ``phantom://prasad2020/<channel>``.

The phantom stands in for the real X-ray microCT volume (BossDB) so that every pipeline runs
without network access. It has the real volume's shape ``(720, 1420, 5805)``, voxel size
(1.17 um) and dtypes (``image`` uint8, ``roi_labels`` and ``pixel_labels`` uint64).

Everything is generated lazily, window by window, from the seed and *global* coordinates:
reading a window gives exactly the voxels that a larger read would hold there.

* Smooth random fields (fibre bundles, capillary level sets, brightness texture) are evaluated
  on a global coarse lattice (every ``_STEP`` voxels) and linearly interpolated.
* Cells (3D ellipsoids) are candidates placed per global grid cell of ``_CELL_GRID`` voxels,
  with random numbers hashed from ``(seed, grid cell, slot)``.
* Large vessels are 3D tubes (polylines) drawn per seed on a jittered lattice over the whole
  section, at the same density in every brain area and in every cube (main or extra): each runs
  obliquely through the depth, so it crosses a cube-sized window in a part of its slices. No
  vessel is tied to one cube, so a large vessel tells nothing about the region.
* Voxel noise is a hash of the global coordinates; the blur runs on a padded window.

Layout (seed-independent): the brain areas lie in bands across ``x`` like the real slab, with
smoothly wiggling borders (at most ``_WIGGLE`` = 50 voxels from the nominal x, varying with y
and z), see :data:`AREAS` and :func:`region_x_range`; :func:`safe_region_box` gives a box that
lies entirely inside an area. Nominal x ranges: hypothalamus [150, 1150), ZI [1150, 2250),
TRN [2250, 2550), VP [2550, 3450), internal capsule [3450, 3560), STR [3560, 4230), corpus
callosum [4230, 4380), CTX [4380, 5750). Area values follow
:data:`mtneuro.spec.BRAIN_AREA_VALUES`. The tissue outline (traced on the real section z = 309)
spans y ~ [50, 1390]; outside it the image is dark and both label channels are 0.

``sample_sections(z_indices, level)`` returns sections subsampled by ``2**level`` in y and x;
it is analytic (milliseconds) for ``roi_labels``. The microstructure of the last cube-sized
read is kept so that the three channels of a cube are generated once; :func:`clear_cache`
frees it.

Microstructure (vessel / cell / axon fractions, cells per 128x128 image, cell size, nearest
neighbour distance, vessel profiles per image and their size, per-image spread of the vessel and
axon fractions) is calibrated on the real masks, and the gray values (region means, texture, fine
fibre streaks, bright cell rims) on the real section z = 309; :mod:`mtneuro.volumes.calibration`
defines the statistics and ``docs/phantom-calibration.md`` gives the numbers. The brightness
drift between cubes of one region (a gradient along y, a little along x and z) is set to the
variation measured inside CTX on the real section, not more.

Pixel labels are dense only inside the four main cubes (0 elsewhere, as on BossDB); the image
shows the structures everywhere. ``dense_labels=True`` (pixel_labels only) labels everything
drawn, for validation (mapping truth), never for training.
"""

from __future__ import annotations

import itertools
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from mtneuro import spec
from mtneuro.volumes.base import SOURCE_PARAMETER, VolumeSource, VolumeSourceError, Window
from mtneuro.volumes.registry import register_scheme

CHANNELS: tuple[str, ...] = ("image", "roi_labels", "pixel_labels")
DTYPES: dict[str, np.dtype] = {
    "image": np.dtype(np.uint8),
    "roi_labels": np.dtype(np.uint64),
    "pixel_labels": np.dtype(np.uint64),
}
DATASET = "prasad2020"

# --------------------------------------------------------------------------------------------
# Layout
# --------------------------------------------------------------------------------------------

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
_AREA_VALUES = np.array([0] + [spec.BRAIN_AREA_VALUES[a] for a in AREAS], dtype=np.uint64)
#: Nominal x of the border between AREAS[i] and AREAS[i+1].
_BORDERS: tuple[float, ...] = (1150.0, 2250.0, 2550.0, 3450.0, 3560.0, 4230.0, 4380.0)
#: Largest distance (voxels) of a border from its nominal x.
_WIGGLE = 50.0
_BORDER_PHASES = (
    (0.3, 1.9, 4.1),
    (2.2, 0.7, 5.0),
    (4.4, 3.1, 1.2),
    (1.1, 5.5, 2.6),
    (3.7, 2.4, 0.2),
    (5.9, 4.6, 3.3),
    (0.9, 1.4, 4.8),
)

#: Tissue outline (traced on the real section z = 309): x extent and top/bottom y by x.
_TISSUE_X = (150.0, 5750.0)
_TOP_XP = (150, 450, 750, 1500, 2400, 2850, 3300, 3900, 4500, 5100, 5500, 5750)
_TOP_FP = (700, 390, 235, 295, 340, 325, 265, 190, 130, 65, 45, 300)
_BOT_XP = (150, 450, 600, 1500, 2100, 3000, 3900, 4500, 5250, 5600, 5750)
_BOT_FP = (760, 1150, 1220, 1265, 1345, 1360, 1300, 1315, 1365, 1390, 1000)
_EDGE_WIGGLE = 12.0


def region_x_range(name: str) -> tuple[float, float]:
    """Nominal ``[x_lo, x_hi)`` of a brain area; its true borders lie within ``_WIGGLE`` of it."""
    i = AREAS.index(name)
    lo = _TISSUE_X[0] if i == 0 else _BORDERS[i - 1]
    hi = _TISSUE_X[1] if i == len(AREAS) - 1 else _BORDERS[i]
    return (lo, hi)


def safe_region_box(name: str) -> dict[str, tuple[int, int]]:
    """A conservative box (z, y, x half-open) that lies entirely inside the area ``name``.

    x is the nominal range shrunk by the border wiggle, y the tissue band over that x range
    shrunk by the edge wiggle; z is the whole volume.
    """
    lo, hi = region_x_range(name)
    x0, x1 = math.ceil(lo + _WIGGLE + 1), math.floor(hi - _WIGGLE - 1)
    xs = np.arange(x0, x1)
    top = np.interp(xs, _TOP_XP, _TOP_FP).max() + _EDGE_WIGGLE + 1
    bot = np.interp(xs, _BOT_XP, _BOT_FP).min() - _EDGE_WIGGLE - 1
    return {"z": (0, spec.VOLUME_SHAPE[0]), "y": (math.ceil(top), int(bot)), "x": (x0, x1)}


def _borders(Z: np.ndarray, Y: np.ndarray) -> list[np.ndarray]:
    """x of each area border at (z, y) (broadcastable float arrays)."""
    out = []
    for b, (p1, p2, p3) in zip(_BORDERS, _BORDER_PHASES):
        w = (
            0.5 * np.sin(2 * np.pi * Y / 1100.0 + p1)
            + 0.3 * np.sin(2 * np.pi * Z / 900.0 + p2)
            + 0.2 * np.sin(2 * np.pi * (Y / 450.0 + Z / 700.0) + p3)
        )
        out.append(b + _WIGGLE * w)
    return out


def _tissue(Z: np.ndarray, Y: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Boolean tissue mask; Z, Y, X broadcastable (X must not vary along Z/Y axes alone)."""
    xf = np.asarray(X, dtype=np.float64)
    top = np.interp(xf, _TOP_XP, _TOP_FP) + _EDGE_WIGGLE * np.sin(2 * np.pi * Z / 700.0 + 0.3 + xf / 900.0)
    bot = np.interp(xf, _BOT_XP, _BOT_FP) + _EDGE_WIGGLE * np.sin(2 * np.pi * Z / 800.0 + 1.7 + xf / 1300.0)
    Ya = np.asarray(Y)
    if (
        Ya.size
        and np.min(xf) >= _TISSUE_X[0]
        and np.max(xf) < _TISSUE_X[1]
        and np.min(Ya) >= np.max(top)
        and np.max(Ya) < np.min(bot)
    ):
        return np.ones(np.broadcast_shapes(np.shape(Z), np.shape(Y), np.shape(X)), dtype=bool)
    return (Y >= top) & (Y < bot) & (X >= _TISSUE_X[0]) & (X < _TISSUE_X[1])  # noqa: SIM300


def _area_index(Z: np.ndarray, Y: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Area index (0 outside tissue, 1..8 = AREAS) at broadcastable coordinates."""
    Z = np.asarray(Z, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    X = np.asarray(X)
    shape = np.broadcast_shapes(np.shape(Z), np.shape(Y), np.shape(X))
    idx = np.ones(shape, dtype=np.uint8)
    if idx.size == 0:
        return idx
    xmin, xmax = np.min(X), np.max(X)
    for b in _borders(Z, Y):
        if xmin >= np.max(b):  # the whole window lies beyond this border
            idx += np.uint8(1)
        elif xmax >= np.min(b):
            idx += X >= b  # noqa: SIM300
    idx[~_tissue(Z, Y, X)] = 0
    return idx


_BLEND_WIDTH = 20.0


def _steps(Z, Y, X, width: float = _BLEND_WIDTH) -> list[np.ndarray]:
    """Smooth 0 -> 1 step across each border (exactly 0 / 1 farther than ``width`` from it)."""
    out = []
    for b in _borders(Z, Y):
        t = np.clip((X - b + width) / (2.0 * width), 0.0, 1.0)
        out.append(t * t * (3.0 - 2.0 * t))
    return out


def _blend(values: tuple[float, ...], Z, Y, X) -> np.ndarray:
    """Per-area parameter, blended smoothly across the area borders."""
    out = np.full(np.broadcast_shapes(np.shape(Z), np.shape(Y), np.shape(X)), values[0], dtype=np.float64)
    for i, st in enumerate(_steps(Z, Y, X)):
        step = values[i + 1] - values[i]
        if step != 0.0:
            out = out + step * st
    return out


def _memberships(Z, Y, X) -> list[np.ndarray]:
    """Soft membership of each area (sums to 1)."""
    sig = _steps(Z, Y, X)
    mem = [1.0 - sig[0]]
    for i in range(len(sig) - 1):
        mem.append(sig[i] - sig[i + 1])
    mem.append(sig[-1])
    return mem


# --------------------------------------------------------------------------------------------
# Microstructure parameters per area (order of AREAS), calibrated on the real masks
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _AreaParams:
    cell_rate: float  # candidate cells per 1e6 voxels (before rejection inside bundles)
    cell_r: float  # mean in-plane semi-axis (voxels)
    cell_rz: float  # z semi-axis relative to cell_r
    capillary: float  # level-set half-width of the capillary network (fraction of field std)
    axon_family: str | None  # fibre field, None = no myelinated bundles
    axon_threshold: float  # bundle where field > threshold (field ~ N(0, 1))
    base: float  # tissue gray value (before drift)
    texture: float  # amplitude of the mottled tissue texture (4-voxel scale)
    grain: float  # amplitude of the voxel noise before the blur (fine texture)
    axon_gain: float  # brightness of bundles over the tissue
    contrast: float  # darkness of cells and capillaries (1 = the global levels)
    rim: float  # brightness of the rim around cell bodies (gray levels before the blur)
    streak: float  # amplitude of the fine fibre streaks (gray levels)
    fine_capillary: float  # weight of the finer capillary network (0 coarse .. 1 fine)
    vessel_var: float  # relative modulation of the capillary width by a slow field (image-to-image spread)
    axon_var: float  # modulation of the bundle threshold by a slow field (image-to-image spread)


_PARAMS: dict[str, _AreaParams] = {
    # cells: rate, r, rz | capillary | fibres: family, threshold | gray: base, texture, grain,
    # axon gain, contrast | rim, streak | fine capillary, vessel var, axon var.
    # Main areas calibrated on the real masks and the real section z = 309 (docs/phantom-calibration.md).
    "hypothalamus": _AreaParams(
        60.0, 4.6, 1.1, 0.16, "HYP", 1.28, 126.0, 12.0, 28.0, 30.0, 0.8, 14.0, 5.0, 0.5, 0.3, 0.3
    ),
    "ZI": _AreaParams(74.0, 4.8, 1.1, 0.2, None, 9.0, 129.0, 19.0, 46.0, 30.0, 0.65, 72.0, 12.0, 0.65, 0.72, 0.0),
    "TRN": _AreaParams(55.0, 4.6, 1.1, 0.16, "TRN", 0.52, 125.0, 13.0, 32.0, 26.0, 1.0, 14.0, 5.0, 0.5, 0.3, 0.3),
    "VP": _AreaParams(108.0, 4.3, 1.1, 0.18, "VP", -0.5, 126.5, 14.0, 31.0, 26.0, 1.0, 42.0, 9.0, 0.38, 0.42, 0.6),
    "internal_capsule": _AreaParams(
        15.0, 3.0, 1.1, 0.12, "IC", -0.84, 125.0, 10.0, 25.0, 34.0, 1.0, 10.0, 5.0, 0.0, 0.3, 0.0
    ),
    "STR": _AreaParams(92.0, 4.0, 1.1, 0.165, "STR", 1.0, 121.0, 13.1, 22.0, 34.0, 1.0, 60.0, 9.5, 0.0, 0.0, 0.55),
    "corpus_callosum": _AreaParams(
        15.0, 3.0, 1.1, 0.12, "CC", -1.04, 125.0, 10.0, 25.0, 34.0, 1.0, 10.0, 3.0, 0.0, 0.3, 0.0
    ),
    "CTX": _AreaParams(93.0, 3.43, 1.1, 0.15, None, 9.0, 124.5, 14.0, 23.0, 34.0, 1.15, 37.0, 6.0, 0.0, 0.05, 0.0),
}


def _param(name: str) -> tuple[float, ...]:
    return tuple(float(getattr(_PARAMS[a], name)) for a in AREAS)


#: Fibre families: direction (z, y, x), perpendicular / parallel wavelength ranges.
_FIBRES: dict[str, tuple[tuple[float, float, float], tuple[float, float], tuple[float, float]]] = {
    "STR": ((0.15, -0.25, 1.0), (60.0, 150.0), (400.0, 1000.0)),
    "VP": ((0.2, -0.45, 1.0), (45.0, 120.0), (250.0, 700.0)),
    "IC": ((0.6, 0.3, 1.0), (30.0, 80.0), (300.0, 800.0)),
    "CC": ((0.2, 1.0, 0.1), (25.0, 60.0), (300.0, 800.0)),
    "TRN": ((0.3, 1.0, 0.3), (40.0, 90.0), (250.0, 700.0)),
    "HYP": ((0.3, 0.6, 1.0), (50.0, 120.0), (300.0, 800.0)),
}
_FIBRE_WAVES = 16
_CAPILLARY_WAVES = 16
#: Coarse capillary network (CTX, STR: ~13 vessel profiles of ~20-25 px per 128 x 128 image) and
#: the finer one mixed in by ``fine_capillary`` (ZI: ~37 profiles per image).
_CAPILLARY_WAVELENGTH = (46.0, 78.0)
_FINE_CAPILLARY_WAVELENGTH = (22.0, 38.0)
_CAPILLARY_KZ = 0.5
#: Slow fields modulating the capillary width and the bundle threshold (per-image spread).
_DENSITY_WAVELENGTH = (150.0, 400.0)
_DENSITY_WAVES = 6
#: The slow capillary field (~N(0, 1)) is clipped at this many standard deviations: the vessel
#: fraction grows with the square of the capillary width, so an unbounded tail would let a few
#: patches fill with vessels.
_DENSITY_CLIP = 2.0
#: The capillary density field varies on a shorter scale than the bundle field (a 256-voxel cube
#: holds several patches, so one cube's mean vessel fraction scatters less between seeds while
#: its 128-px quadrants still differ) and faster along z (the real ZI/VP vessel fractions change
#: from slice to slice). Its effect on the gray values is small, so test and training slices
#: still look alike.
_VESSEL_DENSITY_WAVELENGTH = (90.0, 220.0)
_VESSEL_DENSITY_KZ = 1.5
#: The slow fields and the fibre bundles vary this much slower along z than in the section
#: plane, so that a main cube's test slices (z 420-470) look like its training slices: the
#: between-image spread comes from y and x; along z one cube drifts little (as the real
#: section's tiles drift little over a cube's width, docs/phantom-calibration.md).
_SLOW_KZ = 0.15
_FIBRE_KZ = 2.5
#: Large vessels: one per lattice cell of this many voxels in (y, x), jittered; radius range
#: (voxels) and the in-plane distance travelled per slice (tilt) of the tube.
_LARGE_VESSEL_SPACING = 450.0
_LARGE_VESSEL_RADIUS = (4.0, 8.0)
_LARGE_VESSEL_TILT = (0.5, 1.2)
#: Fine fibre streaks: a family of waves across the streak direction (z, y, x).
_STREAK_DIRECTION = (0.2, -0.45, 1.0)
_STREAK_WAVES = 6
_STREAK_PERP = (5.0, 9.0)
_STREAK_PAR = (60.0, 200.0)
#: Cell rims: width (voxels) of the bright shell around each cell body.
_RIM_WIDTH = 2.5

# Coarse lattice step of the smooth fields, blur, padding.
_STEP = 4
_BLUR_SIGMA = 1.0
_BLUR_RADIUS = 4  # truncation radius of the 3D blur
_HALO_SIGMA = 2.0  # in-plane scale of the phase-contrast halo (unsharp mask)
_HALO_RADIUS = 6
_HALO = 1.2
_PAD = (_BLUR_RADIUS, _BLUR_RADIUS + _HALO_RADIUS, _BLUR_RADIUS + _HALO_RADIUS)  # z, y, x
_NO_PAD = (0, 0, 0)
_CELL_GRID = 64
_MAX_BLOCK = 48_000_000  # voxels generated at once (bounds the memory of a read)
_CELL_SLOTS = 48
_CELL_MARGIN = 16  # > largest cell semi-axis

# Gray values.
_OUTSIDE = 6.0
_CAPILLARY_LEVEL = 35.0
_LUMEN_LEVEL = 14.0
_WALL_GAIN = 22.0
_CELL_DARKNESS = 85.0
_POST_NOISE = 5.0
_MID = 125.0


#: Brightness drift across the section, measured on the real section z = 309 inside CTX (256 x 256
#: tiles, docs/phantom-calibration.md): the mean falls by ~25 gray levels per 1000 voxels in y and
#: hardly changes along x; the texture (local std) varies by ~6 %.
_DRIFT_Y_SLOPE = -0.008
_DRIFT_Y_CENTRE = 710.0


def _drift(X: np.ndarray, Y: np.ndarray, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gain and offset of the gray values: a gradient along y, slow along x, slice-wise along z."""
    gain = (
        1.0
        + 0.07 * np.sin(2 * np.pi * X / 1700.0 + 0.9)
        + 0.06 * np.sin(2 * np.pi * Y / 1300.0 + 2.0)
        + 0.03 * np.sin(2 * np.pi * (Z / 97.0 + X / 2300.0) + 2.3)
    )
    offset = (
        _DRIFT_Y_SLOPE * (Y - _DRIFT_Y_CENTRE)
        + 4.5 * np.sin(2 * np.pi * X / 2300.0 + 0.4)
        + 3.0 * np.sin(2 * np.pi * Y / 900.0 + 4.54)
        + 2.0 * np.sin(2 * np.pi * (Z / 61.0 + X / 1900.0) + 1.1)
        + 1.5 * np.sin(2 * np.pi * (Z / 149.0 - X / 2700.0) + 4.0)
    )
    return gain, offset


# --------------------------------------------------------------------------------------------
# Hashing
# --------------------------------------------------------------------------------------------

_M1 = np.uint32(0x7FEB352D)
_M2 = np.uint32(0x846CA68B)


def _mix32(h: np.ndarray) -> np.ndarray:
    """lowbias32 integer hash, in place on a uint32 array (returned)."""
    h ^= h >> np.uint32(16)
    h *= _M1
    h ^= h >> np.uint32(15)
    h *= _M2
    h ^= h >> np.uint32(16)
    return h


def _u32(values) -> np.ndarray:
    return (np.asarray(values, dtype=np.int64) & 0xFFFFFFFF).astype(np.uint32)


def _hash3(seed: int, salt: int, zs: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """uint32 hash of every (z, y, x) of the grid zs x ys x xs (1D integer arrays)."""
    key = _mix32(_u32([seed * 1000003 + salt * 7919 + 12345]))[0]
    hz = _mix32(_u32(zs) ^ key)
    hzy = _mix32(hz[:, None] + _mix32(_u32(ys) * np.uint32(0x9E3779B1))[None, :])
    h = hzy[:, :, None] + _u32(xs)[None, None, :]
    return _mix32(h)


def _uniform_points(seed: int, salt: int, keys: np.ndarray) -> np.ndarray:
    """Uniform [0, 1) float64 for each row of integer keys (n, k)."""
    h = _mix32(_u32(np.full(keys.shape[0], seed * 1000003 + salt * 7919 + 777)))
    for j in range(keys.shape[1]):
        h = _mix32(h + _mix32(_u32(keys[:, j]) + np.uint32(0x9E3779B9 * (j + 1) & 0xFFFFFFFF)))
    return h.astype(np.float64) / 4294967296.0


# --------------------------------------------------------------------------------------------
# Smooth fields
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Waves:
    k: np.ndarray  # (K, 3) wave vectors (z, y, x), radians per voxel
    phase: np.ndarray  # (K,)

    def __call__(self, Z, Y, X) -> np.ndarray:
        out: Any = 0.0
        for (kz, ky, kx), ph in zip(self.k, self.phase):
            out = out + np.cos(kz * Z + ky * Y + kx * X + ph)
        return out * math.sqrt(2.0 / len(self.phase))


def _waves_on_grid(waves: _Waves, zs: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """``waves`` at every voxel of the grid zs x ys x xs (float32).

    cos(a + b) = cos a cos b - sin a sin b with a = a(z, y), b = b(x): a product of a (z, y, 2K)
    and a (2K, x) matrix, summed in float64 (slab by slab) and rounded to float32, so that a
    voxel's value does not depend on the window (beyond float64 rounding).
    """
    z = zs.astype(np.float64)[:, None, None]
    y = ys.astype(np.float64)[None, :, None]
    a = waves.k[:, 0] * z + waves.k[:, 1] * y + waves.phase  # (nz, ny, K)
    left = np.concatenate([np.cos(a), -np.sin(a)], axis=-1)
    bx = np.outer(waves.k[:, 2], xs.astype(np.float64))  # (K, nx)
    right = np.concatenate([np.cos(bx), np.sin(bx)], axis=0) * math.sqrt(2.0 / len(waves.phase))
    out = np.empty((len(zs), len(ys), len(xs)), dtype=np.float32)
    ny, nx = len(ys), len(xs)
    for z0 in range(0, len(zs), 16):
        slab = left[z0 : z0 + 16]
        out[z0 : z0 + 16] = (slab.reshape(-1, slab.shape[-1]) @ right).reshape(len(slab), ny, nx)
    return out


def _random_unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.normal(size=(n, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _fibre_waves(rng: np.random.Generator, direction, perp, par, kz: float = 1.0) -> _Waves:
    d = np.asarray(direction, dtype=np.float64)
    d /= np.linalg.norm(d)
    u = _random_unit(rng, _FIBRE_WAVES)
    u -= (u @ d)[:, None] * d[None, :]
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    lam_perp = np.exp(rng.uniform(np.log(perp[0]), np.log(perp[1]), _FIBRE_WAVES))
    lam_par = np.exp(rng.uniform(np.log(par[0]), np.log(par[1]), _FIBRE_WAVES))
    sign = rng.choice([-1.0, 1.0], _FIBRE_WAVES)
    k = 2 * np.pi * (u / lam_perp[:, None] + sign[:, None] * d[None, :] / lam_par[:, None])
    k[:, 0] *= kz
    return _Waves(k, rng.uniform(0, 2 * np.pi, _FIBRE_WAVES))


def _iso_waves(rng: np.random.Generator, n: int, lam: tuple[float, float], kz: float = 1.0) -> _Waves:
    u = _random_unit(rng, n)
    u[:, 0] *= kz  # kz < 1: level sets vary slowly along z (tubes tend to run across sections)
    lengths = rng.uniform(lam[0], lam[1], n)
    return _Waves(2 * np.pi * u / lengths[:, None], rng.uniform(0, 2 * np.pi, n))


class _Model:
    """All random choices of one seed that are global (waves, large vessels)."""

    def __init__(self, seed: int):
        self.seed = int(seed)
        base = np.random.SeedSequence([self.seed, 20200358])
        # children are independent of how many are spawned: new streams go after the old ones
        rngs = [np.random.default_rng(s) for s in base.spawn(4 + len(_FIBRES) + 6)]
        self.cap1 = _iso_waves(rngs[0], _CAPILLARY_WAVES, _CAPILLARY_WAVELENGTH, _CAPILLARY_KZ)
        self.cap2 = _iso_waves(rngs[1], _CAPILLARY_WAVES, _CAPILLARY_WAVELENGTH, _CAPILLARY_KZ)
        self.warp = [_iso_waves(rngs[2], 3, (500.0, 1200.0)) for _ in range(3)]
        self.fibres = {
            name: _fibre_waves(rngs[4 + i], *_FIBRES[name], kz=_FIBRE_KZ) for i, name in enumerate(sorted(_FIBRES))
        }
        self.vessels = _large_vessels(rngs[3])
        #: (z, y, x) bounding box of each vessel, radius included (skips vessels far from a window)
        self.vessel_boxes = np.array(
            [np.concatenate([p.min(axis=0) - r - 3.0, p.max(axis=0) + r + 3.0]) for p, r in self.vessels]
        ).reshape(-1, 6)
        extra = rngs[4 + len(_FIBRES) :]
        self.fine1 = _iso_waves(extra[0], _CAPILLARY_WAVES, _FINE_CAPILLARY_WAVELENGTH, _CAPILLARY_KZ)
        self.fine2 = _iso_waves(extra[1], _CAPILLARY_WAVES, _FINE_CAPILLARY_WAVELENGTH, _CAPILLARY_KZ)
        self.vessel_density = _iso_waves(extra[2], _DENSITY_WAVES, _VESSEL_DENSITY_WAVELENGTH, _VESSEL_DENSITY_KZ)
        self.axon_density = _iso_waves(extra[3], _DENSITY_WAVES, _DENSITY_WAVELENGTH, _SLOW_KZ)
        self.streaks = _fibre_waves(extra[4], _STREAK_DIRECTION, _STREAK_PERP, _STREAK_PAR)

    # Fibre score S: bundle where S > 0.
    def axon_score(self, Z, Y, X) -> np.ndarray:
        warp_amp = 60.0 / math.sqrt(2.0 / 3.0) / math.sqrt(3.0)
        Zw = Z + warp_amp * self.warp[0](Z, Y, X)
        Yw = Y + warp_amp * self.warp[1](Z, Y, X)
        Xw = X + warp_amp * self.warp[2](Z, Y, X)
        mem = _memberships(Z, Y, X)
        shape = np.broadcast_shapes(np.shape(Z), np.shape(Y), np.shape(X))
        score = np.zeros(shape, dtype=np.float64)
        cache: dict[str, np.ndarray] = {}
        density: np.ndarray | None = None
        for area, m in zip(AREAS, mem):
            p = _PARAMS[area]
            # Where an area's membership is negligible its field is not evaluated; the rule is
            # per point (not per window) so that every window gives the same values.
            far = m < 1e-7
            if p.axon_family is None or bool(np.all(far)):
                score += m * -3.0
                continue
            if p.axon_family not in cache:
                cache[p.axon_family] = self.fibres[p.axon_family](Zw, Yw, Xw)
            threshold: Any = p.axon_threshold
            if p.axon_var:
                if density is None:
                    density = self.axon_density(Z, Y, X)
                threshold = threshold + p.axon_var * density
            score += np.where(far, m * -3.0, m * (cache[p.axon_family] - threshold))
        return score


def _large_vessels(rng: np.random.Generator) -> list[tuple[np.ndarray, float]]:
    """Large vessels (polyline (z, y, x), radius): one per jittered lattice cell, everywhere alike.

    Each tube runs through the whole depth, tilted so that it moves 0.5-1.2 voxels in the section
    plane per slice (it crosses a 128-voxel window in ~100-250 slices), in a random direction,
    with a slow wander. The density is the same in every brain area and does not know where the
    cubes are: no region owns a large vessel (docs/task1-pattern.md).
    """
    out = []
    nz, ny, nx = spec.VOLUME_SHAPE
    s = _LARGE_VESSEL_SPACING
    z = np.arange(-40.0, nz + 41.0, 20.0)
    t = (z - z[0]) / (z[-1] - z[0])
    dz = z - nz / 2
    for cy in np.arange(-s, ny + s, s):
        for cx in np.arange(-s, nx + s, s):
            y0, x0 = cy + rng.uniform(0.1, 0.9) * s, cx + rng.uniform(0.1, 0.9) * s
            angle = rng.uniform(0.0, 2 * np.pi)
            tilt = rng.uniform(*_LARGE_VESSEL_TILT)
            radius = float(rng.uniform(*_LARGE_VESSEL_RADIUS))
            phase = rng.uniform(0.0, 2 * np.pi, 2)
            y = y0 + tilt * np.sin(angle) * dz + 15.0 * np.sin(np.pi * 1.5 * t + phase[0])
            x = x0 + tilt * np.cos(angle) * dz + 15.0 * np.sin(np.pi * 2.0 * t + phase[1])
            out.append((np.stack([z, y, x], axis=1), radius))
    return out


_MODELS: dict[int, _Model] = {}
_MODEL_LOCK = threading.Lock()


def _model(seed: int) -> _Model:
    with _MODEL_LOCK:
        if seed not in _MODELS:
            _MODELS[seed] = _Model(seed)
        return _MODELS[seed]


# --------------------------------------------------------------------------------------------
# Window generation
# --------------------------------------------------------------------------------------------


def _lattice(lo: int, hi: int) -> tuple[int, np.ndarray]:
    """Lattice indices covering voxels [lo, hi) (global), and their coordinates."""
    a = lo // _STEP
    b = (hi - 1) // _STEP + 1
    return a, np.arange(a, b + 1, dtype=np.float64) * _STEP


def _interp_axis(arr: np.ndarray, axis: int, lat0: int, coords: np.ndarray) -> np.ndarray:
    i0 = coords // _STEP - lat0
    w = ((coords % _STEP) / _STEP).astype(np.float32)
    a = np.take(arr, i0, axis=axis)
    b = np.take(arr, i0 + 1, axis=axis)
    shape = [1, 1, 1]
    shape[axis] = len(coords)
    b -= a
    b *= w.reshape(shape)
    a += b
    return a


def _interp(lat: np.ndarray, lats: tuple[int, int, int], zs, ys, xs) -> np.ndarray | np.float32:
    """Trilinear interpolation from the global lattice to voxels zs x ys x xs.

    A lattice field that is constant over the window is returned as a scalar (interpolating it
    would give exactly that value everywhere).
    """
    lat = np.asarray(lat, dtype=np.float32)
    if lat.min() == lat.max():
        return np.float32(lat.flat[0])
    out = _interp_axis(lat, 2, lats[2], xs)
    out = _interp_axis(out, 1, lats[1], ys)
    # z last, slab by slab: a + (b - a) * w, the same arithmetic as _interp_axis
    i0 = zs // _STEP - lats[0]
    w = ((zs % _STEP) / _STEP).astype(np.float32)
    diff = out[1:] - out[:-1]
    res = np.empty((len(zs), *out.shape[1:]), dtype=np.float32)
    for k in range(len(zs)):
        np.multiply(diff[i0[k]], w[k], out=res[k])
        res[k] += out[i0[k]]
    return res


@dataclass
class _Structures:
    """Microstructure of a window (padded by _PAD), shared by the three channels."""

    window: Window  # the padded window
    area: np.ndarray  # uint8 area index
    vessel: np.ndarray  # bool: capillaries and large-vessel lumen
    lumen: np.ndarray  # bool: large-vessel lumen
    wall: np.ndarray  # bool: large-vessel wall
    cell: np.ndarray  # float32 cell darkness profile (0 outside cells)
    axon: np.ndarray  # bool
    # The smooth fields are scalars when they are constant over the window (see _interp).
    axon_core: np.ndarray | np.float32  # float32 in [0, 1]: depth inside the bundle
    smooth: np.ndarray | np.float32  # float32 tissue gray value incl. texture (before structures, drift)
    axon_gain: np.ndarray | np.float32  # float32 brightness of bundles
    contrast: np.ndarray | np.float32  # float32 darkness scale of cells and capillaries
    grain: np.ndarray | np.float32  # float32 amplitude of the voxel noise


def _render_cells(model: _Model, win: Window) -> np.ndarray:
    """Cell darkness profile in win: ellipsoids from per-grid-cell hashed candidates."""
    out = np.zeros(win.shape, dtype=np.float32)
    g = _CELL_GRID
    ranges = [
        np.arange((lo - _CELL_MARGIN) // g, (hi + _CELL_MARGIN - 1) // g + 1)
        for lo, hi in ((win.z0, win.z1), (win.y0, win.y1), (win.x0, win.x1))
    ]
    gz, gy, gx, slot = np.meshgrid(*ranges, np.arange(_CELL_SLOTS), indexing="ij")
    keys = np.stack([gz.ravel(), gy.ravel(), gx.ravel(), slot.ravel()], axis=1)
    u = [_uniform_points(model.seed, 100 + j, keys) for j in range(8)]
    cz = (keys[:, 0] + u[0]) * g
    cy = (keys[:, 1] + u[1]) * g
    cx = (keys[:, 2] + u[2]) * g
    # keep candidates near the window
    near = (
        (cz > win.z0 - _CELL_MARGIN)
        & (cz < win.z1 + _CELL_MARGIN)
        & (cy > win.y0 - _CELL_MARGIN)
        & (cy < win.y1 + _CELL_MARGIN)
        & (cx > win.x0 - _CELL_MARGIN)
        & (cx < win.x1 + _CELL_MARGIN)
    )
    cz, cy, cx = cz[near], cy[near], cx[near]
    u = [a[near] for a in u]
    area = _area_index(cz, cy, cx)
    rate = np.array([0.0, *_param("cell_rate")])[area]
    keep = u[3] < rate * 1e-6 * g**3 / _CELL_SLOTS
    if keep.any():
        score = np.full(keep.shape, -1.0)
        score[keep] = model.axon_score(cz[keep], cy[keep], cx[keep])
        keep &= score < -0.15  # no cell bodies inside fibre bundles
    cz, cy, cx, area = cz[keep], cy[keep], cx[keep], area[keep]
    u = [a[keep] for a in u]
    if len(cz) == 0:
        return out
    r = np.array([0.0, *_param("cell_r")])[area]
    rzf = np.array([0.0, *_param("cell_rz")])[area]
    size = r * np.exp(0.25 * (2.0 * u[4] - 1.0) * math.sqrt(3.0))
    elong = np.exp(0.2 * (2.0 * u[5] - 1.0) * math.sqrt(3.0))
    a_ax, b_ax, c_ax = size * elong, size / elong, size * rzf
    theta = np.pi * u[6]
    dark = 0.75 + 0.25 * u[7]
    # bright rim (phase contrast of the membrane): a shell of _RIM_WIDTH voxels, stored as
    # negative values (brightening in the image, not a cell in the labels)
    rim = np.array([0.0, *_param("rim")])[area] / _CELL_DARKNESS
    rim_q = (1.0 + _RIM_WIDTH / size) ** 2  # outer edge of the shell in units of qq
    cos_t, sin_t = np.cos(theta), np.sin(theta)
    reach = np.ceil(np.maximum(a_ax, b_ax) + _RIM_WIDTH).astype(int)
    reach_z = np.ceil(c_ax * rim_q**0.25).astype(int)
    # the centre is rounded to a voxel, so offsets within reach + 1 of it cover the shell;
    # the value of a voxel is the largest cell value there, else the strongest rim (order-free)
    flat = out.reshape(-1)
    inner_idx: list[np.ndarray] = []
    inner_val: list[np.ndarray] = []
    for R, Rz in sorted(set(zip(reach.tolist(), reach_z.tolist()))):
        sel = np.where((reach == R) & (reach_z == Rz))[0]
        off = np.arange(-R - 1, R + 2)
        offz = np.arange(-Rz - 1, Rz + 2)
        oz, oy, ox = (o.ravel() for o in np.meshgrid(offz, off, off, indexing="ij"))
        ball = (oz / (Rz + 1)) ** 2 + (oy**2 + ox**2) / (R + 1) ** 2 <= 1.0
        oz, oy, ox = oz[ball], oy[ball], ox[ball]
        for chunk in np.array_split(sel, max(1, len(sel) * len(oz) // 2_000_000 + 1)):
            if len(chunk) == 0:
                continue
            vz = np.rint(cz[chunk])[:, None].astype(np.int64) + oz[None, :]
            vy = np.rint(cy[chunk])[:, None].astype(np.int64) + oy[None, :]
            vx = np.rint(cx[chunk])[:, None].astype(np.int64) + ox[None, :]
            dz = vz - cz[chunk, None]
            dy = vy - cy[chunk, None]
            dx = vx - cx[chunk, None]
            p = (dx * cos_t[chunk, None] + dy * sin_t[chunk, None]) / a_ax[chunk, None]
            q = (-dx * sin_t[chunk, None] + dy * cos_t[chunk, None]) / b_ax[chunk, None]
            s = np.abs(dz / c_ax[chunk, None])
            qq = p * p + q * q + s**4
            rq = rim_q[chunk, None]
            inside = (
                (qq < rq)
                & (vz >= win.z0)
                & (vz < win.z1)
                & (vy >= win.y0)
                & (vy < win.y1)
                & (vx >= win.x0)
                & (vx < win.x1)
            )
            qin = qq[inside]
            cell = qin < 1.0
            idx = ((vz[inside] - win.z0) * win.shape[1] + (vy[inside] - win.y0)) * win.shape[2] + (vx[inside] - win.x0)
            val = (dark[chunk, None] * (0.7 + 0.3 * np.sqrt(np.clip(1.0 - qq, 0.0, 1.0))))[inside]
            inner_idx.append(idx[cell])
            inner_val.append(val[cell].astype(np.float32))
            # rim: strongest at the cell surface, fading to 0 at the shell's outer edge
            t = (np.sqrt(qin[~cell]) - 1.0) / (np.sqrt(np.broadcast_to(rq, qq.shape)[inside][~cell]) - 1.0)
            rim_val = -(np.broadcast_to(rim[chunk, None], qq.shape)[inside][~cell] * (1.0 - t))
            np.minimum.at(flat, idx[~cell], rim_val.astype(np.float32))
    for idx, val in zip(inner_idx, inner_val):
        np.maximum.at(flat, idx, val)
    return out


def _render_vessels(model: _Model, win: Window) -> tuple[np.ndarray, np.ndarray]:
    lumen = np.zeros(win.shape, dtype=bool)
    wall = np.zeros(win.shape, dtype=bool)
    lo = np.array([win.z0, win.y0, win.x0], dtype=np.float64)
    hi = np.array([win.z1, win.y1, win.x1], dtype=np.float64)
    boxes = model.vessel_boxes
    near = np.all(boxes[:, :3] < hi, axis=1) & np.all(boxes[:, 3:] > lo, axis=1)
    for i in np.flatnonzero(near):
        pts, radius = model.vessels[i]
        reach = radius + 3.0
        for a, b in itertools.pairwise(pts):
            blo = np.maximum(np.floor(np.minimum(a, b) - reach), lo).astype(int)
            bhi = np.minimum(np.ceil(np.maximum(a, b) + reach) + 1, hi).astype(int)
            if np.any(bhi <= blo):
                continue
            Z = np.arange(blo[0], bhi[0], dtype=np.float64)[:, None, None] - a[0]
            Y = np.arange(blo[1], bhi[1], dtype=np.float64)[None, :, None] - a[1]
            X = np.arange(blo[2], bhi[2], dtype=np.float64)[None, None, :] - a[2]
            d = b - a
            t = np.clip((Z * d[0] + Y * d[1] + X * d[2]) / float(d @ d), 0.0, 1.0)
            dist2 = (Z - t * d[0]) ** 2 + (Y - t * d[1]) ** 2 + (X - t * d[2]) ** 2
            sl = tuple(slice(int(s0 - o), int(s1 - o)) for s0, s1, o in zip(blo, bhi, lo))
            lumen[sl] |= dist2 < radius**2
            wall[sl] |= dist2 < (radius + 2.5) ** 2
    wall &= ~lumen
    return lumen, wall


def _structures(seed: int, window: Window, pad: tuple[int, int, int] = _PAD) -> _Structures:
    model = _model(seed)
    pz, py, px = pad
    win = Window(window.z0 - pz, window.z1 + pz, window.y0 - py, window.y1 + py, window.x0 - px, window.x1 + px)
    zs = np.arange(win.z0, win.z1)
    ys = np.arange(win.y0, win.y1)
    xs = np.arange(win.x0, win.x1)
    # coarse lattice
    lz, Zl = _lattice(win.z0, win.z1)
    ly, Yl = _lattice(win.y0, win.y1)
    lx, Xl = _lattice(win.x0, win.x1)
    lats = (lz, ly, lx)
    Z3, Y3, X3 = Zl[:, None, None], Yl[None, :, None], Xl[None, None, :]
    shape = win.shape
    cap_w = _blend(_param("capillary"), Z3, Y3, X3)
    vessel_var = _blend(_param("vessel_var"), Z3, Y3, X3)
    if vessel_var.any():  # slow modulation of the capillary density (log-normal, bounded tail)
        density = np.clip(model.vessel_density(Z3, Y3, X3), -_DENSITY_CLIP, _DENSITY_CLIP)
        cap_w = cap_w * np.exp(vessel_var * density)
    fine = _blend(_param("fine_capillary"), Z3, Y3, X3)
    norm = np.sqrt((1.0 - fine) ** 2 + fine**2) * cap_w
    vessel: Any = None
    for coarse_waves, fine_waves in ((model.cap1, model.fine1), (model.cap2, model.fine2)):
        field = (1.0 - fine) * coarse_waves(Z3, Y3, X3)
        if fine.any():  # per lattice point: where fine == 0 the fine network adds nothing
            field = field + fine * fine_waves(Z3, Y3, X3)
        v = np.abs(_interp(field / norm, lats, zs, ys, xs)) < 1.0
        vessel = v if vessel is None else vessel & v
        del v, field
    score: Any = _interp(model.axon_score(Z3, Y3, X3), lats, zs, ys, xs)
    axon: np.ndarray
    axon_core: np.ndarray | np.float32
    if np.ndim(score) == 0:  # no fibre area near the window
        axon = np.full(shape, bool(score > 0.0))
        axon_core = np.float32(min(max(float(score) / 0.6, 0.0), 1.0))
    else:
        axon = score > 0.0
        score *= np.float32(1.0 / 0.6)
        np.clip(score, 0.0, 1.0, out=score)
        axon_core = score
    tex = _hash3(seed, 7, np.arange(lz, lz + len(Zl)), np.arange(ly, ly + len(Yl)), np.arange(lx, lx + len(Xl)))
    tex = (tex.astype(np.float64) / 2147483648.0 - 1.0) * math.sqrt(3.0)
    smooth_lat = _blend(_param("base"), Z3, Y3, X3) + _blend(_param("texture"), Z3, Y3, X3) * tex
    smooth = _interp(smooth_lat, lats, zs, ys, xs)
    axon_gain = _interp(_blend(_param("axon_gain"), Z3, Y3, X3), lats, zs, ys, xs)
    grain = _interp(_blend(_param("grain"), Z3, Y3, X3), lats, zs, ys, xs)
    streak_amp = _interp(_blend(_param("streak"), Z3, Y3, X3), lats, zs, ys, xs)
    if np.ndim(streak_amp) or float(streak_amp) != 0.0:
        streaks = _waves_on_grid(model.streaks, zs, ys, xs)
        streaks *= streak_amp
        smooth = smooth + streaks
        del streaks
    contrast = _interp(_blend(_param("contrast"), Z3, Y3, X3), lats, zs, ys, xs)
    area = _area_index(zs[:, None, None].astype(np.float64), ys[None, :, None].astype(np.float64), xs[None, None, :])
    lumen, wall = _render_vessels(model, win)
    vessel |= lumen
    cell = _render_cells(model, win)
    return _Structures(
        window=win,
        area=area,
        vessel=vessel,
        lumen=lumen,
        wall=wall,
        cell=cell,
        axon=axon,
        axon_core=axon_core,
        smooth=smooth,
        axon_gain=axon_gain,
        contrast=contrast,
        grain=grain,
    )


_CACHE: dict[tuple[int, Window], _Structures] = {}
_CACHE_LOCK = threading.Lock()


def _cached_structures(seed: int, window: Window) -> _Structures:
    key = (seed, window)
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
    if hit is not None:
        return hit
    st = _structures(seed, window)
    with _CACHE_LOCK:
        _CACHE.clear()
        _CACHE[key] = st
    return st


def clear_cache() -> None:
    """Drop the microstructure kept from the last cube-sized read (a few hundred MB)."""
    with _CACHE_LOCK:
        _CACHE.clear()


def _crop(a: np.ndarray) -> np.ndarray:
    pz, py, px = _PAD
    return a[pz : a.shape[0] - pz, py : a.shape[1] - py, px : a.shape[2] - px]


def _at(field, mask: np.ndarray):
    """``field[mask]`` for a per-voxel array or a scalar field."""
    return field[mask] if np.ndim(field) else field


def _image(seed: int, window: Window) -> np.ndarray:
    st = _cached_structures(seed, window)
    win = st.window
    zs = np.arange(win.z0, win.z1)
    ys = np.arange(win.y0, win.y1)
    xs = np.arange(win.x0, win.x1)
    # one hash per voxel: low 16 bits -> noise before the blur, high 16 bits -> after it
    h = _hash3(seed, 1, zs, ys, xs)
    img = (h & np.uint32(0xFFFF)).astype(np.float32)
    img *= np.float32(2.0 * math.sqrt(3.0) / 65535.0)
    img -= np.float32(math.sqrt(3.0))
    img *= st.grain
    img += st.smooth
    if st.axon.any():
        img += st.axon_gain * (0.7 + 0.3 * st.axon_core) * st.axon
    img -= np.float32(_CELL_DARKNESS) * st.cell * st.contrast
    img[st.wall] += np.float32(_WALL_GAIN)
    cap = st.vessel & ~st.lumen
    img[cap] -= _at(st.contrast, cap) * (img[cap] - np.float32(_CAPILLARY_LEVEL))
    img[st.lumen] = np.float32(_LUMEN_LEVEL)
    gain, offset = _drift(
        xs[None, None, :].astype(np.float64), ys[None, :, None].astype(np.float64), zs[:, None, None].astype(np.float64)
    )
    img -= np.float32(_MID)
    img *= gain.astype(np.float32)
    img += (offset + _MID).astype(np.float32)
    img[st.area == 0] = np.float32(_OUTSIDE)
    img = ndimage.gaussian_filter(img, _BLUR_SIGMA, truncate=_BLUR_RADIUS / _BLUR_SIGMA, mode="nearest")
    pz, py, px = _PAD
    img = img[pz : img.shape[0] - pz]
    # phase-contrast halo: bright rims around dark objects, dark rims around bright ones
    halo = ndimage.gaussian_filter(
        img, (0.0, _HALO_SIGMA, _HALO_SIGMA), truncate=_HALO_RADIUS / _HALO_SIGMA, mode="nearest"
    )
    img -= halo
    img *= np.float32(1.0 + _HALO)
    img += halo
    del halo
    img = img[:, py : img.shape[1] - py, px : img.shape[2] - px]
    post = _crop(h)
    post >>= np.uint32(16)
    noise = post.astype(np.float32)
    del h, post
    noise *= np.float32(2.0 * math.sqrt(3.0) * _POST_NOISE / 65535.0)
    noise -= np.float32(math.sqrt(3.0) * _POST_NOISE)
    img += noise
    np.clip(img, 0.0, 255.0, out=img)
    return np.rint(img).astype(np.uint8)


def _main_cube_mask(window: Window) -> np.ndarray | None:
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


def _pixel_labels(seed: int, window: Window, dense: bool = False) -> np.ndarray:
    """Pixel labels of a window: inside the main cubes only (as on BossDB), or everywhere (``dense``)."""
    inside = None if dense else _main_cube_mask(window)
    out = np.zeros(window.shape, dtype=np.uint64)
    if inside is None and not dense:
        return out
    with _CACHE_LOCK:
        st = _CACHE.get((seed, window))
    if st is not None or window.shape[0] >= 32:
        # Cube-sized reads share the (padded) structures with the image of the same window.
        st = _cached_structures(seed, window)
        crop = _crop
    else:  # small reads: labels need no blur padding
        st = _structures(seed, window, pad=_NO_PAD)

        def crop(a: np.ndarray) -> np.ndarray:
            return a

    lab = np.zeros(window.shape, dtype=np.uint8)
    lab[crop(st.axon)] = spec.AXON
    lab[crop(st.cell) > 0] = spec.CELL
    lab[crop(st.vessel)] = spec.VESSEL
    lab[crop(st.area) == 0] = spec.BACKGROUND
    if inside is not None:
        lab[~inside] = 0
    out[...] = lab
    return out


def _roi_labels(zs: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    idx = _area_index(zs[:, None, None].astype(np.float64), ys[None, :, None].astype(np.float64), xs[None, None, :])
    return _AREA_VALUES[idx]


# --------------------------------------------------------------------------------------------
# The volume source
# --------------------------------------------------------------------------------------------


class PhantomVolume(VolumeSource):
    """One channel of the synthetic prasad2020 phantom (see the module docstring)."""

    def __init__(self, channel: str, seed: int | None = 0, uri: str | None = None, dense_labels: bool = False):
        if channel not in CHANNELS:
            raise VolumeSourceError(
                f"Unknown phantom channel {channel!r}: expected one of {', '.join(CHANNELS)} "
                f"(phantom://{DATASET}/<channel>). Check the parameter '{SOURCE_PARAMETER}' "
                "and the channel URIs under 'volume.uris'."
            )
        if dense_labels and channel != "pixel_labels":
            raise VolumeSourceError(
                f"The phantom option dense_labels applies to the pixel_labels channel only, not {channel!r}."
            )
        self.channel = channel
        self.seed = 0 if seed is None else int(seed)
        self.uri = uri or f"phantom://{DATASET}/{channel}"
        #: Labels of everything the phantom draws, not only inside the main cubes: validation
        #: truth (mapping), never training data.
        self.dense_labels = bool(dense_labels)

    def __repr__(self) -> str:
        dense = ", dense_labels=True" if self.dense_labels else ""
        return f"PhantomVolume({self.uri!r}, seed={self.seed}{dense})"

    @property
    def shape(self) -> tuple[int, int, int]:
        return spec.VOLUME_SHAPE

    @property
    def dtype(self) -> np.dtype:
        return DTYPES[self.channel]

    @property
    def voxel_size(self) -> tuple[float, float, float]:
        return spec.VOXEL_SIZE_UM

    def _read(self, window: Window) -> np.ndarray:
        nz, ny, nx = window.shape
        if nz * ny * nx > _MAX_BLOCK:  # bound the memory: generate in blocks (same voxels)
            out = np.empty(window.shape, dtype=self.dtype)
            bz = max(1, _MAX_BLOCK // (ny * nx))
            by = ny if bz > 1 else max(1, _MAX_BLOCK // nx)
            for z0 in range(window.z0, window.z1, bz):
                z1 = min(window.z1, z0 + bz)
                for y0 in range(window.y0, window.y1, by):
                    y1 = min(window.y1, y0 + by)
                    out[z0 - window.z0 : z1 - window.z0, y0 - window.y0 : y1 - window.y0] = self._read_block(
                        Window(z0, z1, y0, y1, window.x0, window.x1)
                    )
            return out
        return self._read_block(window)

    def _read_block(self, window: Window) -> np.ndarray:
        if self.channel == "roi_labels":
            return _roi_labels(
                np.arange(window.z0, window.z1), np.arange(window.y0, window.y1), np.arange(window.x0, window.x1)
            )
        if self.channel == "image":
            return _image(self.seed, window)
        return _pixel_labels(self.seed, window, self.dense_labels)

    def sample_sections(self, z_indices: Sequence[int], level: int) -> np.ndarray:
        """Sections at ``z_indices``, keeping every ``2**level``-th voxel in y and x.

        Returns ``(len(z_indices), ceil(1420 / 2**level), ceil(5805 / 2**level))``. Cheap for
        ``roi_labels`` (analytic); the other channels are generated at full resolution in tiles.
        """
        zs = self.check_sections(z_indices, level)
        step = 2 ** int(level)
        _, ny, nx = self.shape
        ys = np.arange(0, ny, step)
        xs = np.arange(0, nx, step)
        if self.channel == "roi_labels":
            return _roi_labels(zs, ys, xs)
        out = np.zeros((len(zs), len(ys), len(xs)), dtype=self.dtype)
        for i, z in enumerate(zs):
            if self.channel == "pixel_labels" and not self.dense_labels:  # labelled only inside the main cubes
                tiles = [(y0, y1, x0, x1) for (z0, z1), (y0, y1), (x0, x1) in spec.MAIN_CUBES.values() if z0 <= z < z1]
            else:
                tiles = [
                    (y0, min(ny, y0 + 512), x0, min(nx, x0 + 2048))
                    for y0 in range(0, ny, 512)
                    for x0 in range(0, nx, 2048)
                ]
            for y0, y1, x0, x1 in tiles:
                oy, ox = (y0 + step - 1) // step, (x0 + step - 1) // step  # first kept row / column
                if oy * step >= y1 or ox * step >= x1:
                    continue
                block = self.read(Window(int(z), int(z) + 1, oy * step, y1, ox * step, x1))[0]
                part = block[::step, ::step]
                out[i, oy : oy + part.shape[0], ox : ox + part.shape[1]] = part
        return out


@register_scheme("phantom")
def open_phantom(uri: str, seed: int | None = 0, dense_labels: bool = False, **_options: object) -> PhantomVolume:
    """Open ``phantom://prasad2020/<channel>``; ``seed`` picks the microstructure, other options are ignored.

    ``dense_labels=True`` (``pixel_labels`` only) labels every structure the phantom draws, also
    outside the main cubes: for validating maps against truth, never for training.
    """
    scheme, _, rest = uri.partition("://")
    dataset, _, channel = rest.strip("/").partition("/")
    if scheme != "phantom" or dataset != DATASET:
        raise VolumeSourceError(
            f"Unknown phantom volume {uri!r}: expected phantom://{DATASET}/<channel> with channel "
            f"one of {', '.join(CHANNELS)}. Set the parameter '{SOURCE_PARAMETER}'."
        )
    if channel not in CHANNELS:
        raise VolumeSourceError(
            f"Unknown phantom channel {channel!r} in {uri!r}: expected one of {', '.join(CHANNELS)}. "
            f"Set the parameter '{SOURCE_PARAMETER}' (or the channel URIs under 'volume.uris')."
        )
    return PhantomVolume(channel, seed=seed, uri=uri, dense_labels=bool(dense_labels))
