"""The phantom's structures in a window (cells, capillaries, large vessels, bundles) and the pixel labels.

* Cells (3D ellipsoids) are candidates placed per global grid cell of ``CELL_GRID`` voxels,
  with random numbers hashed from ``(seed, grid cell, slot)``.
* Capillaries are level sets of two (coarse + fine) wave fields, their width modulated by a slow
  density field; large vessels are tubes through the whole depth (:func:`.fields.large_vessels`).
* The smooth gray-value fields (base, texture, grain, streaks, bundle gain) are kept with the
  structures (:class:`Structures`), so the three channels of a cube-sized read share one
  generation (:func:`cached_structures`; :func:`clear_cache` frees it).

Pixel labels are dense only inside the four main cubes (0 elsewhere, as on BossDB); with
``dense=True`` everything drawn is labelled, for validation (mapping truth), never for training.
"""

from __future__ import annotations

import itertools
import math
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from mtneuro import spec
from mtneuro.volumes.base import Window
from mtneuro.volumes.phantom.fields import PhantomModel, interp, lattice, phantom_model, waves_on_grid
from mtneuro.volumes.phantom.layout import area_index, blend, edge_distance, main_cube_mask
from mtneuro.volumes.phantom.params import (
    BRIGHTNESS_STD,
    CAPILLARY_DIST_CLIP,
    CAPILLARY_MIN_RADIUS,
    CAPILLARY_MIN_SINE,
    CAPILLARY_RADIUS_FACTOR,
    CELL_DARKNESS,
    CELL_GRID,
    CELL_MARGIN,
    CELL_SIZE_SPREAD,
    CELL_SLOTS,
    CELL_Z_POWER,
    DENSITY_CLIP,
    EDGE_BRIGHTENING,
    EDGE_DECAY,
    EDGE_GAIN,
    EDGE_RISE,
    GAIN_STD,
    NO_PAD,
    PAD,
    RIM_WIDTH,
    area_values,
)
from mtneuro.volumes.phantom.streams import hash3, uniform_points

#: The hashed streams of a cell candidate, in the order of ``u[0] .. u[7]`` in :func:`render_cells`.
_CELL_STREAMS = (
    "cell_z",
    "cell_y",
    "cell_x",
    "cell_accept",
    "cell_size",
    "cell_elongation",
    "cell_angle",
    "cell_darkness",
)


@dataclass
class Structures:
    """Microstructure of a window (padded by PAD), shared by the three channels."""

    window: Window  # the padded window
    area: np.ndarray  # uint8 area index
    vessel: np.ndarray  # bool: capillaries and large-vessel lumen
    lumen: np.ndarray  # bool: large-vessel lumen
    wall: np.ndarray  # bool: large-vessel wall
    cell: np.ndarray  # float32 cell darkness profile (0 outside cells)
    axon: np.ndarray  # bool
    # The smooth fields are scalars when they are constant over the window (see interp).
    axon_core: np.ndarray | np.float32  # float32 in [0, 1]: depth inside the bundle
    smooth: np.ndarray | np.float32  # float32 tissue gray value incl. texture (before structures, drift)
    axon_gain: np.ndarray | np.float32  # float32 brightness of bundles
    contrast: np.ndarray | np.float32  # float32 darkness scale of cells and capillaries
    grain: np.ndarray | np.float32  # float32 amplitude of the voxel noise
    gain: np.ndarray | np.float32  # float32 brightness gain (slow field), applied around MID
    offset: np.ndarray | np.float32  # float32 brightness offset (tissue edges + slow field)


def render_cells(model: PhantomModel, win: Window) -> np.ndarray:
    """Cell darkness profile in win: ellipsoids from per-grid-cell hashed candidates."""
    out = np.zeros(win.shape, dtype=np.float32)
    g = CELL_GRID
    ranges = [
        np.arange((lo - CELL_MARGIN) // g, (hi + CELL_MARGIN - 1) // g + 1)
        for lo, hi in ((win.z0, win.z1), (win.y0, win.y1), (win.x0, win.x1))
    ]
    gz, gy, gx, slot = np.meshgrid(*ranges, np.arange(CELL_SLOTS), indexing="ij")
    keys = np.stack([gz.ravel(), gy.ravel(), gx.ravel(), slot.ravel()], axis=1)
    u = [uniform_points(model.seed, stream, keys) for stream in _CELL_STREAMS]
    cz = (keys[:, 0] + u[0]) * g
    cy = (keys[:, 1] + u[1]) * g
    cx = (keys[:, 2] + u[2]) * g
    # keep candidates near the window
    near = (
        (cz > win.z0 - CELL_MARGIN)
        & (cz < win.z1 + CELL_MARGIN)
        & (cy > win.y0 - CELL_MARGIN)
        & (cy < win.y1 + CELL_MARGIN)
        & (cx > win.x0 - CELL_MARGIN)
        & (cx < win.x1 + CELL_MARGIN)
    )
    cz, cy, cx = cz[near], cy[near], cx[near]
    u = [a[near] for a in u]
    area = area_index(cz, cy, cx)
    rate = np.array([0.0, *area_values("cell_rate")])[area]
    keep = u[3] < rate * 1e-6 * g**3 / CELL_SLOTS
    if keep.any():
        score = np.full(keep.shape, -1.0)
        score[keep] = model.axon_score(cz[keep], cy[keep], cx[keep])
        keep &= score < -0.15  # no cell bodies inside fibre bundles
    cz, cy, cx, area = cz[keep], cy[keep], cx[keep], area[keep]
    u = [a[keep] for a in u]
    if len(cz) == 0:
        return out
    r = np.array([0.0, *area_values("cell_r")])[area]
    rzf = np.array([0.0, *area_values("cell_rz")])[area]
    size = r * np.exp(CELL_SIZE_SPREAD * (2.0 * u[4] - 1.0) * math.sqrt(3.0))
    elong = np.exp(0.2 * (2.0 * u[5] - 1.0) * math.sqrt(3.0))
    a_ax, b_ax, c_ax = size * elong, size / elong, size * rzf
    theta = np.pi * u[6]
    dark = 0.75 + 0.25 * u[7]
    # bright rim (phase contrast of the membrane): a shell of RIM_WIDTH voxels, stored as
    # negative values (brightening in the image, not a cell in the labels)
    rim = np.array([0.0, *area_values("rim")])[area] / CELL_DARKNESS
    rim_q = (1.0 + RIM_WIDTH / size) ** 2  # outer edge of the shell in units of qq
    cos_t, sin_t = np.cos(theta), np.sin(theta)
    reach = np.ceil(np.maximum(a_ax, b_ax) + RIM_WIDTH).astype(int)
    reach_z = np.ceil(c_ax * rim_q ** (1.0 / CELL_Z_POWER)).astype(int)
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
            s2 = s * s
            zterm = s2
            for _ in range(CELL_Z_POWER // 2 - 1):  # |z / c| ** CELL_Z_POWER by products (even power)
                zterm = zterm * s2
            qq = p * p + q * q + zterm
            rq = rim_q[chunk, None]
            # the rim is the fringe of the membrane in the section plane: only beside the body
            # (|z| within its half-height), no bright polar caps above and below it, which showed
            # in a section as bright disks with no cell
            inside = (
                (qq < rq)
                & ((qq < 1.0) | (s < 1.0))
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


def render_vessels(model: PhantomModel, win: Window) -> tuple[np.ndarray, np.ndarray]:
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


def structures(seed: int, window: Window, pad: tuple[int, int, int] = PAD) -> Structures:
    """Everything drawn in ``window`` padded by ``pad``: the inputs of the image and the labels."""
    model = phantom_model(seed)
    pz, py, px = pad
    win = Window(window.z0 - pz, window.z1 + pz, window.y0 - py, window.y1 + py, window.x0 - px, window.x1 + px)
    zs = np.arange(win.z0, win.z1)
    ys = np.arange(win.y0, win.y1)
    xs = np.arange(win.x0, win.x1)
    # coarse lattice
    lz, Zl = lattice(win.z0, win.z1)
    ly, Yl = lattice(win.y0, win.y1)
    lx, Xl = lattice(win.x0, win.x1)
    lats = (lz, ly, lx)
    Z3, Y3, X3 = Zl[:, None, None], Yl[None, :, None], Xl[None, None, :]
    shape = win.shape
    cap_w = blend(area_values("capillary"), Z3, Y3, X3)
    vessel_var = blend(area_values("vessel_var"), Z3, Y3, X3)
    if vessel_var.any():  # slow modulation of the capillary density (log-normal, bounded tail)
        density = np.clip(model.vessel_density(Z3, Y3, X3), -DENSITY_CLIP, DENSITY_CLIP)
        cap_w = cap_w * np.exp(vessel_var * density)
    vessel = capillaries(model, cap_w, blend(area_values("fine_capillary"), Z3, Y3, X3), (Z3, Y3, X3), lats, zs, ys, xs)
    score: Any = interp(model.axon_score(Z3, Y3, X3), lats, zs, ys, xs)
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
    tex = hash3(seed, "texture", np.arange(lz, lz + len(Zl)), np.arange(ly, ly + len(Yl)), np.arange(lx, lx + len(Xl)))
    tex = (tex.astype(np.float64) / 2147483648.0 - 1.0) * math.sqrt(3.0)
    smooth_lat = blend(area_values("base"), Z3, Y3, X3) + blend(area_values("texture"), Z3, Y3, X3) * tex
    smooth = interp(smooth_lat, lats, zs, ys, xs)
    axon_gain = interp(blend(area_values("axon_gain"), Z3, Y3, X3), lats, zs, ys, xs)
    grain = interp(blend(area_values("grain"), Z3, Y3, X3), lats, zs, ys, xs)
    streak_amp = interp(blend(area_values("streak"), Z3, Y3, X3), lats, zs, ys, xs)
    if np.ndim(streak_amp) or float(streak_amp) != 0.0:
        streaks = waves_on_grid(model.streaks, zs, ys, xs)
        streaks *= streak_amp
        smooth = smooth + streaks
        del streaks
    contrast = interp(blend(area_values("contrast"), Z3, Y3, X3), lats, zs, ys, xs)
    d = np.maximum(edge_distance(Z3, Y3, X3), 0.0)
    edge = (1.0 - np.exp(-d / EDGE_RISE)) * np.exp(-d / EDGE_DECAY)
    offset = interp(EDGE_BRIGHTENING * edge + BRIGHTNESS_STD * model.brightness(Z3, Y3, X3), lats, zs, ys, xs)
    gain = interp(1.0 + EDGE_GAIN * edge + GAIN_STD * model.gain(Z3, Y3, X3), lats, zs, ys, xs)
    area = area_index(zs[:, None, None].astype(np.float64), ys[None, :, None].astype(np.float64), xs[None, None, :])
    lumen, wall = render_vessels(model, win)
    vessel |= lumen
    cell = render_cells(model, win)
    return Structures(
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
        gain=gain,
        offset=offset,
    )


def capillaries(model: PhantomModel, cap_w, fine, lattice_xyz, lats, zs, ys, xs) -> np.ndarray:
    """The capillary network: round tubes around the curves where two random fields both vanish.

    Each field mixes a coarse and a fine wave field (``fine`` per lattice point). The tube is the
    set of voxels within radius R of the zero curve, R = sqrt(6 / pi) * cap_w / G (G the fields'
    rms gradient): the volume fraction is that of the slabs |f1|, |f2| < cap_w they replace, but
    a capillary has one calibre (at least ``CAPILLARY_MIN_RADIUS``) and a round cross-section,
    so its profiles are compact, not the slivers and 1-3 px shards two thin slabs cut into. The
    distance is the Gauss-Newton step to the curve, |x|^2 with x = -J^T (J J^T)^-1 (f1, f2) and
    J the two gradients, written with the distances d1, d2 to the two zero sheets
    (f / |gradient|, linear near a sheet, so they interpolate well from the lattice) and the
    cosine c between the sheets.
    """
    Z3, Y3, X3 = lattice_xyz
    f: list[Any] = []
    g: list[list[Any]] = []
    rms2: list[Any] = []
    norm = np.sqrt((1.0 - fine) ** 2 + fine**2)
    for coarse_waves, fine_waves in ((model.cap1, model.fine1), (model.cap2, model.fine2)):
        field, coarse_grad = coarse_waves.with_gradient(Z3, Y3, X3)
        field = (1.0 - fine) * field
        grad: list[Any] = [(1.0 - fine) * c for c in coarse_grad]
        r2 = ((1.0 - fine) * coarse_waves.rms_gradient) ** 2
        if np.any(fine):  # per lattice point: where fine == 0 the fine network adds nothing
            f_fine, g_fine = fine_waves.with_gradient(Z3, Y3, X3)
            field = field + fine * f_fine
            grad = [c + fine * cf for c, cf in zip(grad, g_fine)]
            r2 = r2 + (fine * fine_waves.rms_gradient) ** 2
        f.append(field / norm)
        g.append([c / norm for c in grad])
        rms2.append(r2 / norm**2)
    # distance (in tube radii) to each field's zero sheet, and the cosine between the sheets
    d = []
    for k in range(2):
        gn = np.sqrt(sum(c * c for c in g[k]))
        radius = np.maximum(CAPILLARY_RADIUS_FACTOR * cap_w / np.sqrt(rms2[k]), CAPILLARY_MIN_RADIUS)
        dk = f[k] / (np.maximum(gn, 1e-6) * radius)
        np.clip(dk, -CAPILLARY_DIST_CLIP, CAPILLARY_DIST_CLIP, out=dk)
        d.append(interp(dk, lats, zs, ys, xs))
        g[k] = [c / np.maximum(gn, 1e-6) for c in g[k]]
    cos = np.asarray(interp(sum(c1 * c2 for c1, c2 in zip(g[0], g[1])), lats, zs, ys, xs), dtype=np.float32)
    # squared distance to the curve where both vanish, (d1^2 + d2^2 - 2 c d1 d2) / (1 - c^2), below
    # 1: the numerator below the denominator (in place: full-size arrays)
    d1, d2 = (np.asarray(v, dtype=np.float32) for v in d)
    cross = d1 * d2
    cross *= cos
    cross *= np.float32(-2.0)
    d1 *= d1
    d2 *= d2
    d1 += d2
    d1 += cross
    del cross, d2
    cos *= cos
    np.subtract(np.float32(1.0), cos, out=cos)
    np.maximum(cos, np.float32(CAPILLARY_MIN_SINE**2), out=cos)
    return d1 < cos


CACHE: dict[tuple[int, Window], Structures] = {}
CACHE_LOCK = threading.Lock()


def cached_structures(seed: int, window: Window) -> Structures:
    """The structures of ``window`` (padded by ``PAD``), kept for the other channels of the same read."""
    key = (seed, window)
    with CACHE_LOCK:
        hit = CACHE.get(key)
    if hit is not None:
        return hit
    st = structures(seed, window)
    with CACHE_LOCK:
        CACHE.clear()
        CACHE[key] = st
    return st


def clear_cache() -> None:
    """Drop the microstructure kept from the last cube-sized read (a few hundred MB)."""
    with CACHE_LOCK:
        CACHE.clear()


def crop_pad(a: np.ndarray) -> np.ndarray:
    """The window's own voxels of an array of the padded window."""
    pz, py, px = PAD
    return a[pz : a.shape[0] - pz, py : a.shape[1] - py, px : a.shape[2] - px]


def pixel_labels(seed: int, window: Window, dense: bool = False) -> np.ndarray:
    """Pixel labels of a window: inside the main cubes only (as on BossDB), or everywhere (``dense``)."""
    inside = None if dense else main_cube_mask(window)
    out = np.zeros(window.shape, dtype=np.uint64)
    if inside is None and not dense:
        return out
    with CACHE_LOCK:
        st = CACHE.get((seed, window))
    if st is not None or window.shape[0] >= 32:
        # Cube-sized reads share the (padded) structures with the image of the same window.
        st = cached_structures(seed, window)
        crop = crop_pad
    else:  # small reads: labels need no blur padding
        st = structures(seed, window, pad=NO_PAD)

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
