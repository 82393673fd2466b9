"""Phantom versus real prasad2020: the one definition of the statistics that compare them.

The phantom (:mod:`mtneuro.volumes.phantom`) is the only data the project runs on without
BossDB, so its images and masks are held against the real section z = 309 and the real masks
(package data in ``reference/``, CC BY 4.0, see its README). Everything here is a pure function:

* **Image statistics** of one 2-D uint8 crop (:func:`image_statistics`): mean gray level, local
  standard deviation (texture), fine texture (band-pass energy: grain and fine fibre streaks),
  orientation coherence (how streaky the fine texture is) and cell-rim contrast (bright rims
  around dark cell bodies). The real section was published as a palette PNG with 19 gray
  levels; phantom crops are first quantised to the same palette (:func:`quantise`), so both sides
  carry the same quantisation, and the texture statistics are taken after a Gaussian smoothing
  (sigma 1) that removes most of the quantisation steps.
* **Mask statistics** of a stack of 128 x 128 label images (:func:`mask_statistics`): the
  project's semantic features (:mod:`mtneuro.features`, averaged over images), pixel fractions,
  vessel connected components per image and their size, and the per-image spread of the vessel
  and axon fractions.
* :func:`phantom_vs_real_table` and :func:`plot_phantom_vs_real` for the report.

It lives on the reporting side, where it is used (the report's phantom-vs-real table and
figure, and the calibration tests); the phantom itself (:mod:`mtneuro.volumes.phantom`) does not
import it. Heavy imports (pandas, matplotlib) stay local to the report functions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from io import BytesIO
from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage

from mtneuro import spec
from mtneuro.features.image import CELL_CONNECTIVITY, LabelImage

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

#: Relative tolerance of every statistic (issue #10: within 15 % of the real value).
TOLERANCE = 0.15

#: Absolute slack per statistic, used where the real value is (near) zero (e.g. the axon fraction
#: of CTX): a statistic is within tolerance when ``|phantom - real| <= max(TOLERANCE * |real|, floor)``.
ABSOLUTE_FLOOR: dict[str, float] = {
    "axon_percent": 0.5,
    "axon_percent_spread": 0.5,
}

#: Image statistics (name -> description with unit), in table order.
IMAGE_STATISTICS: dict[str, str] = {
    "mean_intensity": "mean gray level of the crop",
    "local_std": "mean standard deviation in 7 x 7 windows (Gaussian sigma 1 first), gray levels",
    "fine_texture": "std of the band-pass image (Gaussian sigma 1 minus sigma 3), gray levels",
    "coherence": "orientation coherence of the band-pass structure tensor (0 isotropic .. 1 streaks)",
    "rim_contrast": "mean of the ring 2-4 px outside dark cell-sized blobs minus the crop median, gray levels",
}
#: Mask statistics (name -> description with unit), in table order.
MASK_STATISTICS: dict[str, str] = {
    "vessel_percent": "vessel pixels, % of all pixels",
    "cell_percent": "cell pixels, % of all pixels",
    "axon_percent": "axon pixels, % of all pixels",
    "cell_count": "cells per 128 x 128 image (feature cell_count)",
    "mean_cell_area": "mean cell area, px (feature mean_cell_area, mean over images)",
    "mean_nn_distance": "mean nearest-neighbour distance of cell centroids, px (feature mean_nn_distance)",
    "vessel_components": "4-connected vessel components per image",
    "vessel_component_area": "mean area of a vessel component, px (pooled)",
    "vessel_percent_spread": "std over images of the vessel %, points",
    "axon_percent_spread": "std over images of the axon %, points",
}
#: Statistics of the whole section (region ``all``).
SECTION_STATISTICS: dict[str, str] = {
    "region_mean_spread": "largest minus smallest region mean gray level",
}
#: Mask statistics that only mean something where a region has axons.
_AXON_ONLY = ("axon_percent_spread",)
#: Regions whose real masks hold myelinated axons (CTX and ZI have none).
AXON_REGIONS = ("STR", "VP")

_QUANT_SMOOTH = 1.0
_LOCAL_WINDOW = 7
_BAND = (1.0, 3.0)
_TENSOR_SIGMA = 3.0
_BLOB_SMOOTH = 1.5
_BLOB_DEPTH = 15.0  # a blob is darker than the crop median by this much (after smoothing)
_BLOB_AREA = (12, 160)  # cell-sized blobs, px
_RIM = (1.5, 4.5)  # ring around a blob: distance from it, px


# --------------------------------------------------------------------------------------------
# Reference data (package data)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RealReference:
    """The real data the phantom is compared with (package data ``reference/``).

    ``crops``: region -> (256, 256) uint8 crop of the section z = 309 at the region's main-cube
    box; ``masks``: region -> (32, 128, 128) uint8 real label images; ``palette``: the 19 gray
    levels of the published section.
    """

    crops: dict[str, np.ndarray]
    masks: dict[str, np.ndarray]
    palette: np.ndarray


REFERENCE_PACKAGE = "mtneuro.pipelines.reporting"
REFERENCE_DIR = "reference"
CROPS_FILE = "image_z309_roi_crops.npz"
MASKS_FILE = "pixel_labels_128.npz"


def load_reference() -> RealReference:
    """Load the real reference from the installed package (works from a wheel)."""
    root = resources.files(REFERENCE_PACKAGE).joinpath(REFERENCE_DIR)
    with np.load(BytesIO(root.joinpath(CROPS_FILE).read_bytes())) as crops_npz:
        crops = {r: np.asarray(crops_npz[r]) for r in spec.REGIONS}
        palette = np.asarray(crops_npz["palette"])
    with np.load(BytesIO(root.joinpath(MASKS_FILE).read_bytes())) as masks_npz:
        masks = {r: np.asarray(masks_npz[r]) for r in spec.REGIONS}
    return RealReference(crops=crops, masks=masks, palette=palette)


# --------------------------------------------------------------------------------------------
# Image statistics
# --------------------------------------------------------------------------------------------


def quantise(image: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """Each gray value replaced by the nearest level of ``palette`` (ties to the lower level)."""
    levels = np.sort(np.asarray(palette, dtype=np.float64))
    lut = levels[np.abs(np.arange(256)[:, None] - levels[None, :]).argmin(axis=1)]
    return lut[np.asarray(image, dtype=np.uint8)].astype(np.uint8)


def _check_image(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 2 or min(image.shape) < 32:
        raise ValueError(f"Expected one 2-D image of at least 32 x 32 pixels, got shape {image.shape}")
    return image.astype(np.float64)


def local_std(image: np.ndarray) -> float:
    """Mean standard deviation in 7 x 7 windows of the image smoothed with sigma 1."""
    g = ndimage.gaussian_filter(_check_image(image), _QUANT_SMOOTH, mode="reflect")
    m = ndimage.uniform_filter(g, _LOCAL_WINDOW, mode="reflect")
    m2 = ndimage.uniform_filter(g * g, _LOCAL_WINDOW, mode="reflect")
    return float(np.sqrt(np.clip(m2 - m * m, 0.0, None)).mean())


def _band(image: np.ndarray) -> np.ndarray:
    img = _check_image(image)
    return ndimage.gaussian_filter(img, _BAND[0]) - ndimage.gaussian_filter(img, _BAND[1])


def fine_texture(image: np.ndarray) -> float:
    """Standard deviation of the band-pass image (sigma 1 minus sigma 3)."""
    return float(_band(image).std())


def coherence(image: np.ndarray) -> float:
    """Energy-weighted orientation coherence of the band-pass image's structure tensor.

    ``(l1 - l2) / (l1 + l2)`` of the tensor smoothed with sigma 3, pooled: 0 for isotropic
    texture, towards 1 where the fine texture runs in streaks of one direction.
    """
    b = _band(image)
    gy, gx = np.gradient(b)
    jxx = ndimage.gaussian_filter(gx * gx, _TENSOR_SIGMA)
    jyy = ndimage.gaussian_filter(gy * gy, _TENSOR_SIGMA)
    jxy = ndimage.gaussian_filter(gx * gy, _TENSOR_SIGMA)
    aniso = np.sqrt((jxx - jyy) ** 2 + 4.0 * jxy**2)
    return float(aniso.sum() / max((jxx + jyy).sum(), 1e-12))


def dark_blobs(image: np.ndarray) -> np.ndarray:
    """Label image of cell-sized dark blobs (smoothed sigma 1.5, darker than the median by 15)."""
    g = ndimage.gaussian_filter(_check_image(image), _BLOB_SMOOTH)
    dark = g < np.median(g) - _BLOB_DEPTH
    lab, n = ndimage.label(dark)
    if n == 0:
        return lab
    areas = np.bincount(lab.ravel(), minlength=n + 1)
    keep = (areas >= _BLOB_AREA[0]) & (areas <= _BLOB_AREA[1])
    keep[0] = False
    # blobs touching the border are cut: their rim is unknown
    border = np.unique(np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]]))
    keep[border] = False
    out, _ = ndimage.label(keep[lab])
    return out


def rim_contrast(image: np.ndarray) -> float:
    """Mean gray level 2-4 px outside dark cell-sized blobs minus the crop median.

    The ring is measured with the Euclidean distance from the blobs (distance in (1.5, 4.5]);
    positive where cell bodies have bright rims, NaN without blobs.
    """
    img = _check_image(image)
    blobs = dark_blobs(image) > 0
    if not blobs.any():
        return float("nan")
    distance = ndimage.distance_transform_edt(~blobs)
    ring = (distance > _RIM[0]) & (distance <= _RIM[1])
    return float(img[ring].mean() - np.median(img))


def image_statistics(images: np.ndarray, palette: np.ndarray | None = None) -> dict[str, float]:
    """The :data:`IMAGE_STATISTICS` of a crop ``(H, W)`` or a stack ``(N, H, W)`` (mean over crops).

    With ``palette`` the crops are quantised to it first (:func:`quantise`): pass the real
    palette for phantom crops, nothing for the real ones (already quantised).
    """
    stack = np.asarray(images)
    if stack.ndim == 2:
        stack = stack[None]
    if stack.ndim != 3 or stack.dtype != np.uint8:
        raise ValueError(f"Expected uint8 images (H, W) or (N, H, W), got {stack.dtype} {stack.shape}")
    if palette is not None:
        stack = quantise(stack, palette)
    per = {
        "mean_intensity": [float(im.mean()) for im in stack],
        "local_std": [local_std(im) for im in stack],
        "fine_texture": [fine_texture(im) for im in stack],
        "coherence": [coherence(im) for im in stack],
        "rim_contrast": [rim_contrast(im) for im in stack],
    }
    return {k: float(np.nanmean(v)) if np.isfinite(v).any() else float("nan") for k, v in per.items()}


# --------------------------------------------------------------------------------------------
# Variation of one region across the section (drift between cubes)
# --------------------------------------------------------------------------------------------

#: Pooling of the section maps (px) and tile size / step (px) of the drift measurement.
DRIFT_POOL = 8
DRIFT_TILE = 256
DRIFT_STEP = 128


def pooled_maps(section: np.ndarray, pool: int = DRIFT_POOL) -> dict[str, np.ndarray]:
    """``pool`` x ``pool`` block means of the gray level and of the local std (see :func:`local_std`).

    Small enough to ship; a tile mean of a map equals the statistic of that tile of the section
    (up to the filters' border handling). Both sides are cropped to a multiple of ``pool``.
    """
    img = _check_image(section)
    g = ndimage.gaussian_filter(img, _QUANT_SMOOTH, mode="reflect")
    m = ndimage.uniform_filter(g, _LOCAL_WINDOW, mode="reflect")
    m2 = ndimage.uniform_filter(g * g, _LOCAL_WINDOW, mode="reflect")
    sd = np.sqrt(np.clip(m2 - m * m, 0.0, None))
    h, w = (img.shape[0] // pool) * pool, (img.shape[1] // pool) * pool

    def pooled(a: np.ndarray) -> np.ndarray:
        return a[:h, :w].reshape(h // pool, pool, w // pool, pool).mean(axis=(1, 3)).astype(np.float32)

    return {"mean": pooled(img), "local_std": pooled(sd)}


def drift_statistics(
    maps: Mapping[str, np.ndarray], pool: int = DRIFT_POOL, tile: int = DRIFT_TILE, step: int = DRIFT_STEP
) -> dict[str, float]:
    """How one region's mean gray level and texture vary across the section.

    Over ``tile`` x ``tile`` tiles every ``step`` px of the pooled maps: the std of the tile means,
    the least-squares slopes of the tile means along y and x (gray levels per 1000 px), and the
    std of the tiles' local std relative to its mean.
    """
    t, st = tile // pool, step // pool
    mean, sd = np.asarray(maps["mean"]), np.asarray(maps["local_std"])
    rows = [
        (y + t / 2, x + t / 2, mean[y : y + t, x : x + t].mean(), sd[y : y + t, x : x + t].mean())
        for y in range(0, mean.shape[0] - t + 1, st)
        for x in range(0, mean.shape[1] - t + 1, st)
    ]
    if len(rows) < 3:
        raise ValueError(f"drift_statistics: maps {mean.shape} hold fewer than 3 tiles of {tile} px")
    a = np.array(rows)
    design = np.c_[np.ones(len(a)), a[:, 0] - a[:, 0].mean(), a[:, 1] - a[:, 1].mean()] * [1.0, pool, pool]
    coef = np.linalg.lstsq(design, a[:, 2], rcond=None)[0]
    return {
        "tile_mean_std": float(a[:, 2].std()),
        "tile_mean_y_slope": float(1000.0 * coef[1]),
        "tile_mean_x_slope": float(1000.0 * coef[2]),
        "tile_local_std_cv": float(a[:, 3].std() / a[:, 3].mean()),
    }


# --------------------------------------------------------------------------------------------
# A cube's training slices against its test slices
# --------------------------------------------------------------------------------------------

#: Per-section statistics compared between a main cube's training and test slices (issue 24: a
#: cube's test slices must look like its training slices): the Task 1 control's four gray-level
#: statistics (``intensity_baseline``) of the section area-averaged by :data:`SPLIT_POOL` (a
#: base-profile Task 1 image: 128 px to 64 px), and the vessel and axon fractions of its labels.
SPLIT_STATISTICS: tuple[str, ...] = ("mean", "std", "p10", "p90", "vessel_percent", "axon_percent")
SPLIT_POOL = 2


def section_split_statistics(images: np.ndarray, labels: np.ndarray, pool: int = SPLIT_POOL) -> np.ndarray:
    """(N, 6): the :data:`SPLIT_STATISTICS` of each section of a cube (images and labels (N, H, W))."""
    from mtneuro.classification_methods.intensity_baseline import gray_level_statistics

    images, labels = np.asarray(images), np.asarray(labels)
    n, h, w = images.shape
    if labels.shape != images.shape or h % pool or w % pool:
        raise ValueError(f"Expected images and labels of one shape (N, H, W), H and W multiples of {pool}")
    pooled = images.astype(np.float64).reshape(n, h // pool, pool, w // pool, pool).mean(axis=(2, 4))
    gray = gray_level_statistics(pooled.reshape(n, -1), [10.0, 90.0])
    fractions = [100.0 * (labels == value).mean(axis=(1, 2)) for value in (spec.VESSEL, spec.AXON)]
    return np.column_stack([gray, *fractions])


def split_shift(
    statistics: np.ndarray, z: np.ndarray, train: tuple[int, int], test: tuple[int, int]
) -> dict[str, float]:
    """Per statistic: (mean over the test slices - mean over the training slices) / sd over the
    training slices (0 where the statistic does not vary, e.g. no axons). ``z``: each row's slice;
    ``train``, ``test``: half-open z ranges."""
    z = np.asarray(z)
    tr = (z >= train[0]) & (z < train[1])
    te = (z >= test[0]) & (z < test[1])
    if not tr.any() or not te.any():
        raise ValueError(f"split_shift: no slices in train {train} or test {test}")
    sd = statistics[tr].std(axis=0)
    diff = statistics[te].mean(axis=0) - statistics[tr].mean(axis=0)
    shift = np.where(sd > 1e-9, diff / np.where(sd > 1e-9, sd, 1.0), 0.0)
    return dict(zip(SPLIT_STATISTICS, (float(v) for v in shift)))


# --------------------------------------------------------------------------------------------
# Mask statistics
# --------------------------------------------------------------------------------------------

_FOUR = ndimage.generate_binary_structure(2, 1)


def vessel_components(labels: np.ndarray) -> np.ndarray:
    """Areas (px) of the 4-connected vessel components of one label image."""
    lab, n = ndimage.label(np.asarray(labels) == spec.VESSEL, structure=_FOUR)
    return np.bincount(lab.ravel(), minlength=n + 1)[1:]


def mask_statistics(masks: np.ndarray) -> dict[str, float]:
    """The :data:`MASK_STATISTICS` of a stack of label images ``(N, H, W)`` (0..3)."""
    from mtneuro.features import get_feature

    masks = np.asarray(masks)
    if masks.ndim != 3 or len(masks) < 2:
        raise ValueError(f"Expected a stack of at least 2 label images (N, H, W), got shape {masks.shape}")
    images = [LabelImage(m, CELL_CONNECTIVITY) for m in masks]

    def feature(name: str) -> np.ndarray:
        f = get_feature(name)
        return np.array([f(im) for im in images], dtype=np.float64)

    vessel = 100.0 * feature("vessel_fraction")
    axon = 100.0 * feature("axon_fraction")
    comps = [vessel_components(m) for m in masks]
    pooled = np.concatenate(comps) if comps else np.zeros(0)
    return {
        "vessel_percent": float(vessel.mean()),
        "cell_percent": 100.0 * float(np.mean(masks == spec.CELL)),
        "axon_percent": float(axon.mean()),
        "cell_count": float(feature("cell_count").mean()),
        "mean_cell_area": float(np.nanmean(feature("mean_cell_area"))),
        "mean_nn_distance": float(np.nanmean(feature("mean_nn_distance"))),
        "vessel_components": float(np.mean([len(c) for c in comps])),
        "vessel_component_area": float(pooled.mean()) if len(pooled) else float("nan"),
        "vessel_percent_spread": float(vessel.std()),
        "axon_percent_spread": float(axon.std()),
    }


def quadrants(slices: np.ndarray) -> np.ndarray:
    """The four 128 x 128 quadrants of each 256 x 256 slice, ``(4 N, 128, 128)`` (as the real masks)."""
    s = np.asarray(slices)
    if s.ndim != 3 or s.shape[1:] != (256, 256):
        raise ValueError(f"Expected slices (N, 256, 256), got shape {s.shape}")
    return s.reshape(len(s), 2, 128, 2, 128).transpose(0, 1, 3, 2, 4).reshape(-1, 128, 128)


# --------------------------------------------------------------------------------------------
# Held-out statistics: never used to tune the phantom
# --------------------------------------------------------------------------------------------

#: Statistics the phantom was never tuned on (issue 24: the claim of the calibration is how these
#: compare, not the tuned ones). Image statistics of each crop (quantised like the tuned ones),
#: mask statistics of the stack of 128-px label images.
HELD_OUT_STATISTICS: dict[str, str] = {
    "autocorrelation_length": "radius (px) where the radially averaged autocorrelation of the crop (sigma 1) falls to 1/e",
    "dark_tail": "% of pixels darker than the crop median by more than 40 gray levels",
    "bright_tail": "% of pixels brighter than the crop median by more than 40 gray levels",
    "low_spread": "crop median minus its 10th percentile, gray levels (sigma 1)",
    "high_spread": "90th percentile minus the crop median, gray levels (sigma 1)",
    "vessel_component_median": "median area of a 4-connected vessel component, px (pooled)",
    "cell_area_p90": "90th percentile of the 4-connected cell areas, px (pooled)",
    "cell_count_spread": "std over images of the cells per image",
    "axon_thickness": "mean over axon pixels of twice their distance to the nearest non-axon pixel, px",
}
_TAIL = 40.0


def autocorrelation_length(image: np.ndarray) -> float:
    """Radius (px) where the radially averaged autocorrelation of the image (smoothed with sigma 1,
    mean removed, zero-padded FFT) first falls below 1/e."""
    g = ndimage.gaussian_filter(_check_image(image), _QUANT_SMOOTH)
    g -= g.mean()
    h, w = g.shape
    f = np.fft.rfft2(g, s=(2 * h, 2 * w))
    acf = np.fft.irfft2(np.abs(f) ** 2, s=(2 * h, 2 * w))
    acf = np.fft.fftshift(acf)
    cy, cx = h, w
    yy, xx = np.indices(acf.shape)
    r = np.rint(np.hypot(yy - cy, xx - cx)).astype(int)
    radial = np.bincount(r.ravel(), acf.ravel()) / np.maximum(np.bincount(r.ravel()), 1)
    radial /= radial[0]
    below = np.flatnonzero(radial[: min(h, w) // 2] < math.exp(-1.0))
    return float(below[0]) if len(below) else float("nan")


def held_out_image_statistics(images: np.ndarray, palette: np.ndarray | None = None) -> dict[str, float]:
    """The image part of :data:`HELD_OUT_STATISTICS` of a crop or stack (mean over crops)."""
    stack = np.asarray(images)
    if stack.ndim == 2:
        stack = stack[None]
    if palette is not None:
        stack = quantise(stack, palette)
    rows = []
    for im in stack:
        img = _check_image(im)
        g = ndimage.gaussian_filter(img, _QUANT_SMOOTH)
        med = float(np.median(img))
        p10, p50, p90 = np.percentile(g, [10, 50, 90])
        rows.append(
            {
                "autocorrelation_length": autocorrelation_length(im),
                "dark_tail": 100.0 * float(np.mean(img < med - _TAIL)),
                "bright_tail": 100.0 * float(np.mean(img > med + _TAIL)),
                "low_spread": float(p50 - p10),
                "high_spread": float(p90 - p50),
            }
        )
    return {k: float(np.nanmean([row[k] for row in rows])) for k in rows[0]}


def held_out_mask_statistics(masks: np.ndarray) -> dict[str, float]:
    """The mask part of :data:`HELD_OUT_STATISTICS` of a stack of label images ``(N, H, W)``."""
    masks = np.asarray(masks)
    vessel_areas = np.concatenate([vessel_components(m) for m in masks])
    cell_areas, counts, thickness = [], [], []
    for m in masks:
        lab, n = ndimage.label(m == spec.CELL, structure=_FOUR)
        counts.append(n)
        cell_areas.append(np.bincount(lab.ravel(), minlength=n + 1)[1:])
        axon = m == spec.AXON
        if axon.any():
            thickness.append(2.0 * ndimage.distance_transform_edt(axon)[axon])
    cells = np.concatenate(cell_areas)
    return {
        "vessel_component_median": float(np.median(vessel_areas)) if len(vessel_areas) else float("nan"),
        "cell_area_p90": float(np.percentile(cells, 90)) if len(cells) else float("nan"),
        "cell_count_spread": float(np.std(counts)),
        "axon_thickness": float(np.concatenate(thickness).mean()) if thickness else float("nan"),
    }


def held_out_table(
    phantom: Mapping[str, RegionSample],
    real: Mapping[str, RegionSample],
    palette: np.ndarray,
    tolerance: float = TOLERANCE,
) -> pd.DataFrame:
    """Like :func:`phantom_vs_real_table` for :data:`HELD_OUT_STATISTICS` (axon thickness only
    where the real region has axons)."""

    def stats(sample: RegionSample, pal: np.ndarray | None) -> dict[str, float]:
        return {**held_out_image_statistics(sample.crops, pal), **held_out_mask_statistics(sample.masks)}

    rows = []
    for region in spec.REGIONS:
        p, r = stats(phantom[region], palette), stats(real[region], None)
        for name in HELD_OUT_STATISTICS:
            if name == "axon_thickness" and region not in AXON_REGIONS:
                continue
            rows.append((name, region, p[name], r[name]))
    return _comparison_table(rows, HELD_OUT_STATISTICS, tolerance)


# --------------------------------------------------------------------------------------------
# Phantom versus real
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RegionSample:
    """What one side (phantom or real) shows of one region: image crops and label images."""

    crops: np.ndarray  # (N, H, W) uint8
    masks: np.ndarray  # (M, 128, 128) uint8 labels 0..3


def region_statistics(sample: RegionSample, region: str, palette: np.ndarray | None) -> dict[str, float]:
    """Image and mask statistics of one region (axon-only statistics dropped where there are none)."""
    stats = {**image_statistics(sample.crops, palette), **mask_statistics(sample.masks)}
    if region not in AXON_REGIONS:
        for name in _AXON_ONLY:
            stats.pop(name)
    return stats


def within_tolerance(statistic: str, phantom: float, real: float, tolerance: float = TOLERANCE) -> bool:
    """``|phantom - real| <= max(tolerance * |real|, ABSOLUTE_FLOOR[statistic])`` (False for NaN)."""
    if not (math.isfinite(phantom) and math.isfinite(real)):
        return False
    return abs(phantom - real) <= max(tolerance * abs(real), ABSOLUTE_FLOOR.get(statistic, 0.0))


def phantom_vs_real_table(
    phantom: Mapping[str, RegionSample],
    real: Mapping[str, RegionSample],
    palette: np.ndarray,
    tolerance: float = TOLERANCE,
) -> pd.DataFrame:
    """One row per (statistic, region): ``statistic, region, phantom, real, relative_difference,
    within_tolerance, description``. Phantom crops are quantised to ``palette`` first.

    ``phantom`` and ``real`` map each region of :data:`mtneuro.spec.REGIONS` to a
    :class:`RegionSample`; region ``all`` rows hold :data:`SECTION_STATISTICS`.
    """

    missing = [r for r in spec.REGIONS if r not in phantom or r not in real]
    if missing:
        raise ValueError(f"phantom_vs_real_table: no sample for region(s) {', '.join(missing)}")
    p_stats = {r: region_statistics(phantom[r], r, palette) for r in spec.REGIONS}
    r_stats = {r: region_statistics(real[r], r, None) for r in spec.REGIONS}
    descriptions = {**IMAGE_STATISTICS, **MASK_STATISTICS, **SECTION_STATISTICS}
    rows = []
    for name in (*IMAGE_STATISTICS, *MASK_STATISTICS):
        for region in spec.REGIONS:
            if name in r_stats[region]:
                rows.append((name, region, p_stats[region][name], r_stats[region][name]))

    def spread(stats: dict[str, dict[str, float]]) -> float:
        means = [stats[r]["mean_intensity"] for r in spec.REGIONS]
        return float(max(means) - min(means))

    rows.append(("region_mean_spread", "all", spread(p_stats), spread(r_stats)))
    return _comparison_table(rows, descriptions, tolerance)


def plot_phantom_vs_real(
    phantom: Mapping[str, RegionSample],
    real: Mapping[str, RegionSample],
    table: pd.DataFrame,
    palette: np.ndarray,
) -> Figure:
    """Figure: a crop of each region (real above phantom), gray-value histograms, the table."""
    from matplotlib.figure import Figure

    regions = list(spec.REGIONS)
    fig = Figure(figsize=(4.0 * len(regions), 16.0), layout="constrained")
    grid = fig.add_gridspec(4, len(regions), height_ratios=[1.0, 1.0, 0.8, 1.9])
    bins = [float(b) for b in range(0, 257, 4)]
    for j, region in enumerate(regions):
        real_crop = np.asarray(real[region].crops)[0]
        ph_crop = quantise(np.asarray(phantom[region].crops)[0], palette)
        for i, (name, crop) in enumerate((("real", real_crop), ("phantom", ph_crop))):
            ax = fig.add_subplot(grid[i, j])
            ax.imshow(crop, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
            ax.set_title(f"{region} {name} (mean {crop.mean():.0f})", fontsize=10)
            ax.set_xticks([])
            ax.set_yticks([])
        ax = fig.add_subplot(grid[2, j])
        ax.hist(np.asarray(real[region].crops).ravel(), bins=bins, density=True, alpha=0.6, label="real")
        ax.hist(
            quantise(np.asarray(phantom[region].crops), palette).ravel(),
            bins=bins,
            density=True,
            alpha=0.6,
            label="phantom (quantised)",
        )
        ax.set_xlabel("gray level")
        ax.set_title(f"{region} histogram", fontsize=10)
        if j == 0:
            ax.legend(fontsize=8)
    ax = fig.add_subplot(grid[3, :])
    ax.axis("off")
    shown = table[["statistic", "region", "phantom", "real", "relative_difference", "within_tolerance"]]
    cells = [
        [s, r, f"{p:.3g}", f"{q:.3g}", "" if not math.isfinite(d) else f"{100 * d:+.0f}%", "yes" if w else "NO"]
        for s, r, p, q, d, w in shown.itertuples(index=False)
    ]
    half = (len(cells) + 1) // 2
    columns = ["statistic", "region", "phantom", "real", "rel. diff", "within"]
    for k, part in enumerate((cells[:half], cells[half:])):
        if not part:
            continue
        sub = ax.inset_axes((0.5 * k, 0.0, 0.49, 1.0))
        sub.axis("off")
        tab = sub.table(cellText=part, colLabels=columns, loc="upper center", cellLoc="left")
        tab.auto_set_font_size(False)
        tab.set_fontsize(7)
    fig.suptitle("Phantom vs real prasad2020 (section z = 309, real masks); phantom quantised to the 19-level palette")
    return fig


def samples_from_reference(reference: RealReference, centre: int | None = None) -> dict[str, RegionSample]:
    """The real side of :func:`phantom_vs_real_table`; ``centre``: only the centre ``centre`` px of
    each region's section crop (a profile's cube geometry, ``ingestion.cube_size_yx``). The real
    masks are 128-px images whatever the geometry."""
    return {
        r: RegionSample(crops=centre_crop(reference.crops[r], centre)[None], masks=reference.masks[r])
        for r in spec.REGIONS
    }


def centre_crop(image: np.ndarray, centre: int | None) -> np.ndarray:
    """The centre ``centre`` x ``centre`` px of the last two axes (all of it for None)."""
    if centre is None:
        return image
    h, w = image.shape[-2:]
    if not 0 < centre <= min(h, w):
        raise ValueError(f"centre must be in 1..{min(h, w)}, got {centre}")
    y0, x0 = (h - centre) // 2, (w - centre) // 2
    return image[..., y0 : y0 + centre, x0 : x0 + centre]


#: Slices of the phantom compared with the real section (its z and three more in the main cubes).
PHANTOM_IMAGE_Z: tuple[int, ...] = (309, 189, 249, 369)
#: Slices whose four quadrants give the phantom's 32 label images per region (like the real 32).
PHANTOM_MASK_Z: tuple[int, ...] = (130, 170, 210, 250, 290, 330, 370, 410)


def phantom_samples(
    seed: int = 0,
    image_z: Sequence[int] = PHANTOM_IMAGE_Z,
    mask_z: Sequence[int] = PHANTOM_MASK_Z,
    centre: int | None = None,
) -> dict[str, RegionSample]:
    """The phantom side of :func:`phantom_vs_real_table`: crops and quadrant masks of each main cube.

    ``centre`` (128: the base profile's cubes): the centre ``centre`` px of each box only; the
    masks are then the 128-px centre of four times as many slices (spread over ``mask_z``'s
    range) instead of four quadrants of each, so both sides keep 32 label images per region.
    """
    from mtneuro.volumes.base import Window
    from mtneuro.volumes.phantom import PhantomVolume

    image = PhantomVolume("image", seed=seed)
    labels = PhantomVolume("pixel_labels", seed=seed)
    out = {}
    for region, (_, (y0, y1), (x0, x1)) in spec.MAIN_CUBES.items():
        if centre is not None:
            c = min(int(centre), 128)
            dy, dx = (y1 - y0 - int(centre)) // 2, (x1 - x0 - int(centre)) // 2
            y0, y1, x0, x1 = y0 + dy, y0 + dy + int(centre), x0 + dx, x0 + dx + int(centre)
        crops = np.stack([image.read(Window(int(z), int(z) + 1, y0, y1, x0, x1))[0] for z in image_z])
        if centre is None:
            slices = np.stack([labels.read(Window(int(z), int(z) + 1, y0, y1, x0, x1))[0] for z in mask_z])
            masks = quadrants(slices.astype(np.uint8))
        else:
            zs = np.linspace(min(mask_z), max(mask_z), 4 * len(mask_z)).round().astype(int)
            masks = np.stack(
                [centre_crop(labels.read(Window(int(z), int(z) + 1, y0, y1, x0, x1))[0], c) for z in zs]
            ).astype(np.uint8)
        out[region] = RegionSample(crops=crops, masks=masks)
    return out


def _comparison_table(
    rows: list[tuple[str, str, float, float]], descriptions: Mapping[str, str], tolerance: float
) -> pd.DataFrame:
    """Phantom against real, one row per (statistic, region), with the relative difference and
    whether it is within ``tolerance`` (the form of both calibration tables)."""
    import pandas as pd

    table = pd.DataFrame(rows, columns=["statistic", "region", "phantom", "real"])
    table["relative_difference"] = (table["phantom"] - table["real"]) / table["real"].abs().where(table["real"] != 0)
    table["within_tolerance"] = [
        within_tolerance(s, p, r, tolerance) for s, p, r in zip(table["statistic"], table["phantom"], table["real"])
    ]
    table["description"] = table["statistic"].map(descriptions)
    return table
