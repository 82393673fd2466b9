"""Ingestion nodes: pure functions that plan what to read and check what was read.

Reading happens in the catalog datasets (:mod:`mtneuro.datasets.cube_store`): the nodes return
requests, the datasets fulfil and cache them.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from mtneuro import spec
from mtneuro.config.ingestion import IngestionParameters
from mtneuro.config.volume import VolumeParameters
from mtneuro.cubes import Cube, CubeSpec
from mtneuro.volumes import Window

log = logging.getLogger(__name__)


class IngestionError(ValueError):
    """Cubes that cannot be placed, or that do not show what they should."""


# --- main cubes -------------------------------------------------------------------------------


def _centre_crop(lo: int, hi: int, size: int, name: str) -> tuple[int, int]:
    if size > hi - lo or size <= 0:
        raise IngestionError(f"Parameter 'ingestion.cube_size_yx' = {size} must lie in [1, {hi - lo}] ({name}).")
    start = lo + (hi - lo - size) // 2
    return start, start + size


def main_cube_windows(ingestion: IngestionParameters) -> dict[str, Window]:
    """Window of each main cube: the spec box, centre-cropped in y and x to ``cube_size_yx``."""
    size = int(ingestion.cube_size_yx)
    windows = {}
    for region, box in ingestion.main_cubes.by_region().items():
        (z0, z1), (y0, y1), (x0, x1) = box.z, box.y, box.x
        yy = _centre_crop(y0, y1, size, f"main cube {region}")
        xx = _centre_crop(x0, x1, size, f"main cube {region}")
        windows[region] = Window(int(z0), int(z1), *yy, *xx)
    return windows


# --- extra cubes ------------------------------------------------------------------------------


def plan_region_overview(volume: VolumeParameters, ingestion: IngestionParameters) -> dict[str, Any]:
    """Request a few coarse sections of the region channel (never its full resolution)."""
    extra = ingestion.extra_cubes
    n = int(extra.overview_sections)
    z_lo, z_hi = 0, spec.VOLUME_SHAPE[0]
    z_indices = np.linspace(z_lo, z_hi - 1, n + 2)[1:-1].round().astype(int).tolist()
    return {
        "uri": volume.channel_uris()["roi_labels"],
        "options": volume.source_options(),
        "z_indices": z_indices,
        "level": int(extra.overview_level),
    }


def _overlaps(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    return all(a[2 * i] < b[2 * i + 1] and b[2 * i] < a[2 * i + 1] for i in range(3))


def choose_extra_cubes(
    region_overview: dict[str, Any], volume: VolumeParameters, ingestion: IngestionParameters
) -> pd.DataFrame:
    """Pick ``per_region`` extra cubes per region from coarse region labels, deterministically.

    A position qualifies when, on every sampled section inside its z range, at least
    ``min_region_fraction`` of the cube's footprint carries the region's label; cubes overlap
    neither the main cubes nor each other. The first ``train_per_region`` cubes of a region are
    ROI-C3 training cubes, the others ROI-C2/C3 test cubes. ``pinned`` coordinates replace the
    choice for the cubes they name.
    """
    extra = ingestion.extra_cubes
    per_region = int(extra.per_region)
    n_train = int(extra.train_per_region)  # < per_region (checked by the parameters)
    size = int(ingestion.cube_size_yx)
    depth = int(extra.depth)
    min_fraction = float(extra.min_region_fraction)
    pinned = extra.pinned
    level = int(region_overview["level"])
    scale = 2**level
    sections = np.asarray(region_overview["sections"])
    z_indices = np.asarray(region_overview["z_indices"])
    shape = region_overview["volume_shape"]
    values = volume.region_values()
    rng = np.random.default_rng(int(extra.seed))

    taken = [tuple(w.to_list()) for w in main_cube_windows(ingestion).values()]
    stride_z = max(1, depth // 2)
    z_starts = list(range(0, shape[0] - depth + 1, stride_z))
    foot = max(1, size // scale)
    rows = []
    for region in spec.REGIONS:
        mask = np.isin(sections, values[region]).astype(np.float64)
        # integral image per section -> fraction of each coarse footprint inside the region
        integral = np.pad(mask.cumsum(1).cumsum(2), ((0, 0), (1, 0), (1, 0)))
        frac = (
            integral[:, foot:, foot:]
            - integral[:, :-foot, foot:]
            - integral[:, foot:, :-foot]
            + integral[:, :-foot, :-foot]
        ) / (foot * foot)
        candidates = []
        for z0 in z_starts:
            inside = (z_indices >= z0) & (z_indices < z0 + depth)
            if not inside.any():
                continue
            ok = (frac[inside] >= min_fraction).all(axis=0)
            ys, xs = np.nonzero(ok)
            candidates += [(z0, int(y) * scale, int(x) * scale) for y, x in zip(ys, xs)]
        order = rng.permutation(len(candidates))
        chosen = 0
        for k in range(per_region):
            cube_id = f"extra_{region}_{k}"
            use = "train" if k < n_train else "test"
            if cube_id in pinned:
                p = pinned[cube_id]
                box = (int(p.z0), int(p.z0) + depth, int(p.y0), int(p.y0) + size, int(p.x0), int(p.x0) + size)
                rows.append(
                    {
                        "cube_id": cube_id,
                        "region": region,
                        "use": use,
                        "pinned": True,
                        **dict(zip(("z0", "z1", "y0", "y1", "x0", "x1"), box)),
                    }
                )
                taken.append(box)
                continue
            placed = False
            while chosen < len(order):
                z0, y0, x0 = candidates[order[chosen]]
                chosen += 1
                box = (z0, z0 + depth, y0, y0 + size, x0, x0 + size)
                if box[3] > shape[1] or box[5] > shape[2] or any(_overlaps(box, t) for t in taken):
                    continue
                rows.append(
                    {
                        "cube_id": cube_id,
                        "region": region,
                        "use": use,
                        "pinned": False,
                        **dict(zip(("z0", "z1", "y0", "y1", "x0", "x1"), box)),
                    }
                )
                taken.append(box)
                placed = True
                break
            if not placed:
                raise IngestionError(
                    f"Could not place {cube_id}: no free {depth}x{size}x{size} window with at least "
                    f"{min_fraction:.0%} {region} labels (values {values[region]}). Lower "
                    "'ingestion.extra_cubes.min_region_fraction', check 'volume.region_label_values', "
                    "or pin coordinates in 'ingestion.extra_cubes.pinned'."
                )
    table = pd.DataFrame(rows, columns=["cube_id", "region", "use", "pinned", "z0", "z1", "y0", "y1", "x0", "x1"])
    log.info("Extra cubes:\n%s", table.to_string(index=False))
    return table


# --- cube requests ----------------------------------------------------------------------------


def plan_cubes(
    extra_cube_coordinates: pd.DataFrame, volume: VolumeParameters, ingestion: IngestionParameters
) -> dict[str, CubeSpec]:
    """Requests for the 4 main cubes (all channels) and the extra cubes (no pixel labels)."""
    uris = volume.channel_uris()
    options = volume.source_options()
    cubes = {
        f"main_{region}": CubeSpec(f"main_{region}", region, "main", window, dict(uris), options)
        for region, window in main_cube_windows(ingestion).items()
    }
    extra_uris = {c: uris[c] for c in ("image", "roi_labels")}
    for row in extra_cube_coordinates.itertuples(index=False):
        window = Window(row.z0, row.z1, row.y0, row.y1, row.x0, row.x1)
        cubes[row.cube_id] = CubeSpec(row.cube_id, row.region, "extra", window, dict(extra_uris), options)
    return cubes


# --- checks and splits ------------------------------------------------------------------------


def label_histograms(cubes: dict[str, Cube], volume: VolumeParameters, ingestion: IngestionParameters) -> pd.DataFrame:
    """Histogram of region and microstructure labels per cube; fails if a cube misses its region.

    Logged for every cube so that a wrong ``volume.region_label_values`` mapping shows at once.
    """
    values = volume.region_values()
    min_fraction = float(ingestion.min_cube_region_fraction)
    rows = []
    for cube_id, cube in sorted(cubes.items()):
        roi_vals, roi_counts = np.unique(cube.roi_labels, return_counts=True)
        total = cube.roi_labels.size
        for v, c in zip(roi_vals, roi_counts):
            rows.append(
                {
                    "cube_id": cube_id,
                    "region": cube.region,
                    "channel": "roi_labels",
                    "value": int(v),
                    "voxels": int(c),
                    "fraction": c / total,
                }
            )
        if cube.pixel_labels is not None:
            px_vals, px_counts = np.unique(cube.pixel_labels, return_counts=True)
            for v, c in zip(px_vals, px_counts):
                rows.append(
                    {
                        "cube_id": cube_id,
                        "region": cube.region,
                        "channel": "pixel_labels",
                        "value": int(v),
                        "voxels": int(c),
                        "fraction": c / total,
                    }
                )
        own = np.isin(cube.roi_labels, values[cube.region]).mean()
        hist = ", ".join(f"{int(v)}: {c / total:.1%}" for v, c in zip(roi_vals, roi_counts))
        log.info(
            "Cube %s (%s): region labels {%s}; %.1f%% carry %s values %s",
            cube_id,
            cube.region,
            hist,
            100 * own,
            cube.region,
            values[cube.region],
        )
        if own == 0 or own < min_fraction:
            raise IngestionError(
                f"Cube {cube_id} is meant to show {cube.region} but only {own:.1%} of its voxels carry "
                f"the {cube.region} label values {values[cube.region]} (labels found: {{{hist}}}). Check "
                "'volume.region_label_values' (value -> region mapping) and the cube coordinates in "
                "'ingestion.main_cubes' / 'ingestion.extra_cubes.pinned'."
            )
        if cube.spec.role == "main" and cube.pixel_labels is not None and not cube.pixel_labels.any():
            log.warning("Main cube %s has no microstructure label at all; check 'volume.uris' pixel_labels", cube_id)
    return pd.DataFrame(rows)


def _split_of(z_abs: np.ndarray, splits: dict[str, list[int]]) -> np.ndarray:
    out = np.full(z_abs.shape, "", dtype=object)
    for name, (lo, hi) in splits.items():
        out[(z_abs >= lo) & (z_abs < hi)] = name
    return out


def build_split_index(
    cubes: dict[str, Cube],
    cube_label_histograms: pd.DataFrame,
    extra_cube_coordinates: pd.DataFrame,
    ingestion: IngestionParameters,
) -> pd.DataFrame:
    """Which cube slices are train / val / test for every task configuration.

    ``cube_label_histograms`` is an input only so that the index is built after the checks.
    """
    del cube_label_histograms
    splits = {k: [int(v) for v in getattr(ingestion.splits, k)] for k in ("train", "val", "test")}
    frames = []

    def add(config: str, cube: Cube, split: np.ndarray | str) -> None:
        depth = cube.image.shape[0]
        z = np.arange(depth)
        frame = pd.DataFrame(
            {
                "config": config,
                "cube_id": cube.cube_id,
                "region": cube.region,
                "label": spec.REGION_INDEX[cube.region],
                "z": z,
                "z_abs": z + cube.z_offset,
                "split": split,
            }
        )
        frames.append(frame[frame["split"] != ""])

    mains = [c for c in cubes.values() if c.spec.role == "main"]
    extras = [c for c in cubes.values() if c.spec.role == "extra"]
    use = dict(zip(extra_cube_coordinates["cube_id"], extra_cube_coordinates["use"]))
    for cube in mains:
        main_split = _split_of(np.arange(cube.image.shape[0]) + cube.z_offset, splits)
        for config in ("roi_c1", "seg_3class"):
            add(config, cube, main_split)
        if cube.region != "ZI":
            add("seg_4class", cube, main_split)
        add("probing", cube, "all")
        train_val = np.where(np.isin(main_split, ["train", "val"]), main_split, "")
        for config in ("roi_c2", "roi_c3"):
            add(config, cube, train_val)
    for cube in extras:
        if use[cube.cube_id] == "test":
            add("roi_c2", cube, "test")
            add("roi_c3", cube, "test")
        else:
            add("roi_c3", cube, "train")
    index = pd.concat(frames, ignore_index=True)
    summary = index.groupby(["config", "split"]).size().unstack(fill_value=0)
    log.info("Split index (slices per config and split):\n%s", summary.to_string())
    return index
