"""The phantom's gray values: structures to a uint8 image.

Tissue gray value and texture per area, brighter bundles, dark cells with bright rims, dark
capillaries and large-vessel lumen, the brightness across the section (brighter near the tissue
edges, a slow stationary field, :func:`slice_drift` per section),
then a 3D blur, an in-plane phase-contrast halo and voxel noise. The blur runs on the padded
window, so a window's voxels do not depend on the window.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from mtneuro.volumes.base import Window
from mtneuro.volumes.phantom.params import (
    BLUR_RADIUS,
    BLUR_SIGMA,
    CAPILLARY_LEVEL,
    CELL_DARKNESS,
    HALO,
    HALO_RADIUS,
    HALO_SIGMA,
    LUMEN_LEVEL,
    MID,
    OUTSIDE,
    PAD,
    POST_NOISE,
    SLICE_GAIN,
    SLICE_OFFSETS,
    WALL_GAIN,
)
from mtneuro.volumes.phantom.render import cached_structures, crop_pad
from mtneuro.volumes.phantom.streams import hash3


def slice_drift(Z: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gain and offset of whole sections (source flicker), slowly varying along x; (nz, 1, nx)."""
    gain = 1.0 + SLICE_GAIN * np.sin(2 * np.pi * (Z / 97.0 + X / 2300.0) + 2.3)
    offset = SLICE_OFFSETS[0] * np.sin(2 * np.pi * (Z / 61.0 + X / 1900.0) + 1.1) + SLICE_OFFSETS[1] * np.sin(
        2 * np.pi * (Z / 149.0 - X / 2700.0) + 4.0
    )
    return gain, offset


def _at(field, mask: np.ndarray):
    """``field[mask]`` for a per-voxel array or a scalar field."""
    return field[mask] if np.ndim(field) else field


def render_image(seed: int, window: Window) -> np.ndarray:
    """The uint8 image of ``window``: structures to gray values, drift, blur, halo, noise."""
    st = cached_structures(seed, window)
    win = st.window
    zs = np.arange(win.z0, win.z1)
    ys = np.arange(win.y0, win.y1)
    xs = np.arange(win.x0, win.x1)
    # one hash per voxel: low 16 bits -> noise before the blur, high 16 bits -> after it
    h = hash3(seed, "voxel_noise", zs, ys, xs)
    img = (h & np.uint32(0xFFFF)).astype(np.float32)
    img *= np.float32(2.0 * math.sqrt(3.0) / 65535.0)
    img -= np.float32(math.sqrt(3.0))
    img *= st.grain
    img += st.smooth
    if st.axon.any():
        img += st.axon_gain * (0.7 + 0.3 * st.axon_core) * st.axon
    img -= np.float32(CELL_DARKNESS) * st.cell * st.contrast
    img[st.wall] += np.float32(WALL_GAIN)
    cap = st.vessel & ~st.lumen
    img[cap] -= _at(st.contrast, cap) * (img[cap] - np.float32(CAPILLARY_LEVEL))
    img[st.lumen] = np.float32(LUMEN_LEVEL)
    slice_gain, slice_offset = slice_drift(zs[:, None, None].astype(np.float64), xs[None, None, :].astype(np.float64))
    img -= np.float32(MID)
    img *= st.gain
    img *= slice_gain.astype(np.float32)
    img += st.offset
    img += (slice_offset + MID).astype(np.float32)
    img[st.area == 0] = np.float32(OUTSIDE)
    img = ndimage.gaussian_filter(img, BLUR_SIGMA, truncate=BLUR_RADIUS / BLUR_SIGMA, mode="nearest")
    pz, py, px = PAD
    img = img[pz : img.shape[0] - pz]
    # phase-contrast halo: bright rims around dark objects, dark rims around bright ones
    halo = ndimage.gaussian_filter(
        img, (0.0, HALO_SIGMA, HALO_SIGMA), truncate=HALO_RADIUS / HALO_SIGMA, mode="nearest"
    )
    img -= halo
    img *= np.float32(1.0 + HALO)
    img += halo
    del halo
    img = img[:, py : img.shape[1] - py, px : img.shape[2] - px]
    post = crop_pad(h)
    post >>= np.uint32(16)
    noise = post.astype(np.float32)
    del h, post
    noise *= np.float32(2.0 * math.sqrt(3.0) * POST_NOISE / 65535.0)
    noise -= np.float32(math.sqrt(3.0) * POST_NOISE)
    img += noise
    np.clip(img, 0.0, 255.0, out=img)
    return np.rint(img).astype(np.uint8)
