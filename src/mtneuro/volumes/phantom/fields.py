"""The smooth random fields of one seed and their evaluation on a window.

* :class:`Waves`: sums of cosines (wave vectors and phases drawn once per seed), evaluated on a
  global coarse lattice (every ``STEP`` voxels) and trilinearly interpolated (:func:`interp`),
  or exactly per voxel for the fine streaks (:func:`waves_on_grid`).
* :class:`PhantomModel`: every global random choice of a seed (capillary level sets, fibre
  families and their warp, slow density fields, streaks, large vessels), each from its named
  stream (:mod:`.streams`); :func:`phantom_model` keeps one per seed.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from mtneuro import spec
from mtneuro.volumes.phantom.layout import AREAS, memberships
from mtneuro.volumes.phantom.params import (
    AREA_PARAMS,
    BRIGHTNESS_WAVELENGTH,
    BRIGHTNESS_WAVES,
    CAPILLARY_KZ,
    CAPILLARY_WAVELENGTH,
    CAPILLARY_WAVES,
    DENSITY_WAVELENGTH,
    DENSITY_WAVES,
    FIBRE_KZ,
    FIBRE_WARP,
    FIBRE_WARP_WAVELENGTH,
    FIBRE_WAVES,
    FIBRES,
    FINE_CAPILLARY_WAVELENGTH,
    LARGE_VESSEL_RADIUS,
    LARGE_VESSEL_SPACING,
    LARGE_VESSEL_TILT,
    SLOW_KZ,
    STEP,
    STREAK_DIRECTION,
    STREAK_PAR,
    STREAK_PERP,
    VESSEL_DENSITY_KZ,
    VESSEL_DENSITY_WAVELENGTH,
)
from mtneuro.volumes.phantom.streams import stream_rng


@dataclass(frozen=True)
class Waves:
    k: np.ndarray  # (K, 3) wave vectors (z, y, x), radians per voxel
    phase: np.ndarray  # (K,)

    def __call__(self, Z, Y, X) -> np.ndarray:
        out: Any = 0.0
        for (kz, ky, kx), ph in zip(self.k, self.phase):
            out = out + np.cos(kz * Z + ky * Y + kx * X + ph)
        return out * math.sqrt(2.0 / len(self.phase))

    def with_gradient(self, Z, Y, X) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """The field and its gradient (d/dz, d/dy, d/dx) on the grid Z x Y x X (broadcastable
        axes (nz, 1, 1), (1, ny, 1), (1, 1, nx)), exact, float64.

        As in :func:`waves_on_grid`: cos(a + b) and sin(a + b) with a = a(z, y), b = b(x) are
        products of (z y, 2K) and (2K, x) matrices, one BLAS product for all four arrays.
        """
        z = np.asarray(Z, dtype=np.float64).reshape(-1)
        y = np.asarray(Y, dtype=np.float64).reshape(-1)
        x = np.asarray(X, dtype=np.float64).reshape(-1)
        a = self.k[:, 0] * z[:, None, None] + self.k[:, 1] * y[None, :, None] + self.phase  # (nz, ny, K)
        ca, sa = np.cos(a).reshape(-1, len(self.phase)), np.sin(a).reshape(-1, len(self.phase))
        bx = np.outer(self.k[:, 2], x)  # (K, nx)
        right = np.concatenate([np.cos(bx), np.sin(bx)], axis=0) * math.sqrt(2.0 / len(self.phase))
        left = [np.concatenate([ca, -sa], axis=1)]  # cos(a + b)
        for i in range(3):  # -k_i sin(a + b)
            left.append(np.concatenate([-self.k[:, i] * sa, -self.k[:, i] * ca], axis=1))
        out = np.stack(left) @ right  # (4, nz ny, nx)
        out = out.reshape(4, len(z), len(y), len(x))
        return out[0], (out[1], out[2], out[3])

    @property
    def rms_gradient(self) -> float:
        """Root mean square of the field's gradient norm (the field has unit variance)."""
        return float(np.sqrt(np.mean(np.sum(self.k**2, axis=1))))


def waves_on_grid(waves: Waves, zs: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
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


def random_unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.normal(size=(n, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def fibre_waves(rng: np.random.Generator, direction, perp, par, kz: float = 1.0) -> Waves:
    d = np.asarray(direction, dtype=np.float64)
    d /= np.linalg.norm(d)
    u = random_unit(rng, FIBRE_WAVES)
    u -= (u @ d)[:, None] * d[None, :]
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    lam_perp = np.exp(rng.uniform(np.log(perp[0]), np.log(perp[1]), FIBRE_WAVES))
    lam_par = np.exp(rng.uniform(np.log(par[0]), np.log(par[1]), FIBRE_WAVES))
    sign = rng.choice([-1.0, 1.0], FIBRE_WAVES)
    k = 2 * np.pi * (u / lam_perp[:, None] + sign[:, None] * d[None, :] / lam_par[:, None])
    k[:, 0] *= kz
    return Waves(k, rng.uniform(0, 2 * np.pi, FIBRE_WAVES))


def iso_waves(rng: np.random.Generator, n: int, lam: tuple[float, float], kz: float = 1.0) -> Waves:
    u = random_unit(rng, n)
    u[:, 0] *= kz  # kz < 1: level sets vary slowly along z (tubes tend to run across sections)
    lengths = rng.uniform(lam[0], lam[1], n)
    return Waves(2 * np.pi * u / lengths[:, None], rng.uniform(0, 2 * np.pi, n))


class PhantomModel:
    """All random choices of one seed that are global (waves, large vessels)."""

    def __init__(self, seed: int):
        self.seed = int(seed)
        self.cap1 = iso_waves(self._rng("capillary_1"), CAPILLARY_WAVES, CAPILLARY_WAVELENGTH, CAPILLARY_KZ)
        self.cap2 = iso_waves(self._rng("capillary_2"), CAPILLARY_WAVES, CAPILLARY_WAVELENGTH, CAPILLARY_KZ)
        warp = self._rng("fibre_warp")
        self.warp = [iso_waves(warp, 3, FIBRE_WARP_WAVELENGTH) for _ in range(3)]
        self.fibres = {name: fibre_waves(self._rng(f"fibre_{name}"), *FIBRES[name], kz=FIBRE_KZ) for name in FIBRES}
        self.vessels = large_vessels(self._rng("large_vessels"))
        #: (z, y, x) bounding box of each vessel, radius included (skips vessels far from a window)
        self.vessel_boxes = np.array(
            [np.concatenate([p.min(axis=0) - r - 3.0, p.max(axis=0) + r + 3.0]) for p, r in self.vessels]
        ).reshape(-1, 6)
        fine = FINE_CAPILLARY_WAVELENGTH
        self.fine1 = iso_waves(self._rng("fine_capillary_1"), CAPILLARY_WAVES, fine, CAPILLARY_KZ)
        self.fine2 = iso_waves(self._rng("fine_capillary_2"), CAPILLARY_WAVES, fine, CAPILLARY_KZ)
        self.vessel_density = iso_waves(
            self._rng("vessel_density"), DENSITY_WAVES, VESSEL_DENSITY_WAVELENGTH, VESSEL_DENSITY_KZ
        )
        self.axon_density = iso_waves(self._rng("axon_density"), DENSITY_WAVES, DENSITY_WAVELENGTH, SLOW_KZ)
        self.streaks = fibre_waves(self._rng("streaks"), STREAK_DIRECTION, STREAK_PERP, STREAK_PAR)
        self.brightness = iso_waves(self._rng("brightness"), BRIGHTNESS_WAVES, BRIGHTNESS_WAVELENGTH)
        self.gain = iso_waves(self._rng("gain"), BRIGHTNESS_WAVES, BRIGHTNESS_WAVELENGTH)

    def _rng(self, stream: str) -> np.random.Generator:
        return stream_rng(self.seed, stream)

    # Fibre score S: bundle where S > 0.
    def axon_score(self, Z, Y, X) -> np.ndarray:
        warp_amp = FIBRE_WARP / math.sqrt(2.0 / 3.0) / math.sqrt(3.0)
        Zw = Z + warp_amp * self.warp[0](Z, Y, X)
        Yw = Y + warp_amp * self.warp[1](Z, Y, X)
        Xw = X + warp_amp * self.warp[2](Z, Y, X)
        mem = memberships(Z, Y, X)
        shape = np.broadcast_shapes(np.shape(Z), np.shape(Y), np.shape(X))
        score = np.zeros(shape, dtype=np.float64)
        cache: dict[str, np.ndarray] = {}
        density: np.ndarray | None = None
        for area, m in zip(AREAS, mem):
            p = AREA_PARAMS[area]
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


def large_vessels(rng: np.random.Generator) -> list[tuple[np.ndarray, float]]:
    """Large vessels (polyline (z, y, x), radius): one per jittered lattice cell, everywhere alike.

    Each tube runs through the whole depth, tilted so that it moves 0.5-1.2 voxels in the section
    plane per slice (it crosses a 128-voxel window in ~100-250 slices), in a random direction,
    with a slow wander. The density is the same in every brain area and does not know where the
    cubes are: no region owns a large vessel (docs/task1-pattern.md).
    """
    out = []
    nz, ny, nx = spec.VOLUME_SHAPE
    s = LARGE_VESSEL_SPACING
    z = np.arange(-40.0, nz + 41.0, 20.0)
    t = (z - z[0]) / (z[-1] - z[0])
    dz = z - nz / 2
    for cy in np.arange(-s, ny + s, s):
        for cx in np.arange(-s, nx + s, s):
            y0, x0 = cy + rng.uniform(0.1, 0.9) * s, cx + rng.uniform(0.1, 0.9) * s
            angle = rng.uniform(0.0, 2 * np.pi)
            tilt = rng.uniform(*LARGE_VESSEL_TILT)
            radius = float(rng.uniform(*LARGE_VESSEL_RADIUS))
            phase = rng.uniform(0.0, 2 * np.pi, 2)
            y = y0 + tilt * np.sin(angle) * dz + 15.0 * np.sin(np.pi * 1.5 * t + phase[0])
            x = x0 + tilt * np.cos(angle) * dz + 15.0 * np.sin(np.pi * 2.0 * t + phase[1])
            out.append((np.stack([z, y, x], axis=1), radius))
    return out


MODELS: dict[int, PhantomModel] = {}
MODEL_LOCK = threading.Lock()


def phantom_model(seed: int) -> PhantomModel:
    with MODEL_LOCK:
        if seed not in MODELS:
            MODELS[seed] = PhantomModel(seed)
        return MODELS[seed]


def lattice(lo: int, hi: int) -> tuple[int, np.ndarray]:
    """Lattice indices covering voxels [lo, hi) (global), and their coordinates."""
    a = lo // STEP
    b = (hi - 1) // STEP + 1
    return a, np.arange(a, b + 1, dtype=np.float64) * STEP


def interp_axis(arr: np.ndarray, axis: int, lat0: int, coords: np.ndarray) -> np.ndarray:
    i0 = coords // STEP - lat0
    w = ((coords % STEP) / STEP).astype(np.float32)
    a = np.take(arr, i0, axis=axis)
    b = np.take(arr, i0 + 1, axis=axis)
    shape = [1, 1, 1]
    shape[axis] = len(coords)
    b -= a
    b *= w.reshape(shape)
    a += b
    return a


def interp(lat: np.ndarray, lats: tuple[int, int, int], zs, ys, xs) -> np.ndarray | np.float32:
    """Trilinear interpolation from the global lattice to voxels zs x ys x xs.

    A lattice field that is constant over the window is returned as a scalar (interpolating it
    would give exactly that value everywhere).
    """
    lat = np.asarray(lat, dtype=np.float32)
    if lat.min() == lat.max():
        return np.float32(lat.flat[0])
    out = interp_axis(lat, 2, lats[2], xs)
    out = interp_axis(out, 1, lats[1], ys)
    # z last, slab by slab: a + (b - a) * w, the same arithmetic as interp_axis
    i0 = zs // STEP - lats[0]
    w = ((zs % STEP) / STEP).astype(np.float32)
    diff = out[1:] - out[:-1]
    res = np.empty((len(zs), *out.shape[1:]), dtype=np.float32)
    for k in range(len(zs)):
        np.multiply(diff[i0[k]], w[k], out=res[k])
        res[k] += out[i0[k]]
    return res
