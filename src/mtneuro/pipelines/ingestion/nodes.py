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
from mtneuro.cubes import Cube, CubeSpec, SectionOverview, SectionRequest
from mtneuro.errors import MtneuroError
from mtneuro.volumes import Window

log = logging.getLogger(__name__)


class IngestionError(MtneuroError, ValueError):
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


def plan_region_overview(volume: VolumeParameters, ingestion: IngestionParameters) -> SectionRequest:
    """Request a few coarse sections of the region channel (never its full resolution).

    The sections are spread over the z extent of the source's real shape (the dataset reads it
    when it opens the channel), so volumes of any depth can be ingested.
    """
    extra = ingestion.extra_cubes
    return SectionRequest(
        uri=volume.channel_uris()["roi_labels"],
        options=volume.source_options(),
        sections=int(extra.overview_sections),
        level=int(extra.overview_level),
    )


def _overlaps(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    return all(a[2 * i] < b[2 * i + 1] and b[2 * i] < a[2 * i + 1] for i in range(3))


def separation(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    """Largest gap, in voxels, between two boxes ``(z0, z1, y0, y1, x0, x1)`` along z, y or x (0: touching)."""
    return max(max(0, b[2 * i] - a[2 * i + 1], a[2 * i] - b[2 * i + 1]) for i in range(3))


def _main_box(box: Any) -> tuple[int, int, int, int, int, int]:
    return (int(box.z[0]), int(box.z[1]), int(box.y[0]), int(box.y[1]), int(box.x[0]), int(box.x[1]))


def check_main_cubes(
    region_overview: SectionOverview, volume: VolumeParameters, ingestion: IngestionParameters
) -> None:
    """Fail before any download when a main cube lies outside the volume or outside its region.

    The region check uses the coarse sections of the region channel inside the cube's z range
    (a 16 GB download at paper size is not needed to find a wrong ``volume.region_label_values``).
    """
    shape = tuple(int(s) for s in region_overview.volume_shape)
    boxes = ingestion.main_cubes.by_region()
    for region, box in boxes.items():
        for axis, (lo, hi), size in zip("zyx", (box.z, box.y, box.x), shape):
            if hi > size:
                raise IngestionError(
                    f"Main cube main_{region} does not fit the volume: {axis} = [{lo}, {hi}) but the source "
                    f"{region_overview.uri} has shape (z, y, x) = {shape} ({axis} must lie in [0, {size})). "
                    f"Set 'ingestion.main_cubes.{region}' to a box inside the volume."
                )
    values = volume.region_values()
    min_fraction = float(ingestion.min_cube_region_fraction)
    scale = 2 ** int(region_overview.level)
    sections = np.asarray(region_overview.sections)
    z_indices = np.asarray(region_overview.z_indices)
    for region, window in main_cube_windows(ingestion).items():
        inside = (z_indices >= window.z0) & (z_indices < window.z1)
        if not inside.any():
            continue  # no coarse section in its z range: the full-resolution check comes later
        y0, y1 = window.y0 // scale, max(window.y0 // scale + 1, -(-window.y1 // scale))
        x0, x1 = window.x0 // scale, max(window.x0 // scale + 1, -(-window.x1 // scale))
        patch = sections[inside, y0:y1, x0:x1]
        own = float(np.isin(patch, values[region]).mean()) if patch.size else 0.0
        if own < min_fraction:
            found, counts = np.unique(patch, return_counts=True)
            hist = ", ".join(f"{int(v)}: {c / patch.size:.0%}" for v, c in zip(found, counts))
            raise IngestionError(
                f"Main cube main_{region} is meant to show {region}, but on the coarse sections of "
                f"{region_overview.uri} (z = {z_indices[inside].tolist()}, level {region_overview.level}) "
                f"only {own:.0%} of its window carries the {region} label values {values[region]} "
                f"(labels found: {{{hist}}}; at least {min_fraction:.0%} needed, "
                "'ingestion.min_cube_region_fraction'). Nothing was downloaded. Check "
                f"'volume.region_label_values' (value -> region mapping) and 'ingestion.main_cubes.{region}'."
            )


def choose_extra_cubes(
    region_overview: SectionOverview, volume: VolumeParameters, ingestion: IngestionParameters
) -> pd.DataFrame:
    """Pick ``per_region`` extra cubes per region from coarse region labels, deterministically.

    First checks the main cubes against the volume and the region map (:func:`check_main_cubes`).
    A position qualifies when, on every sampled section inside its z range, at least
    ``min_region_fraction`` of the cube's footprint carries the region's label (values of
    ``ignore_label_values`` never count). Held-out cubes never touch training data: every test
    extra keeps ``min_separation`` voxels (the largest gap along z, y or x) from the *full*
    ``main_cubes`` boxes and from every train extra; train extras (training data like the main
    cubes) only must not overlap the main boxes; no two extras overlap. The first
    ``train_per_region`` cubes of a region are ROI-C3 training cubes, the others ROI-C2/C3 test
    cubes (placed first, as they carry the stricter constraint). ``pinned`` coordinates replace
    the choice for the cubes they name (and must keep the same distances).

    The table records each cube's box, the margin enforced (``min_separation``) and its actual
    distance (``separation``): for a test cube to the nearest training cube (main box or train
    extra), for a train extra to the nearest test extra; and for every extra its distance to the
    nearest *full* main-cube box (``main_separation``). A train extra may lie closer than the
    margin to a main cube (both are training data): only held-out cubes keep it. Distances from
    the stored cube windows (``window_zyx``) of the main cubes are larger still, as those are
    centre crops of the full boxes.
    """
    check_main_cubes(region_overview, volume, ingestion)
    extra = ingestion.extra_cubes
    size, depth = int(ingestion.cube_size_yx), int(extra.depth)
    shape = tuple(int(s) for s in region_overview.volume_shape)
    if depth > shape[0] or size > min(shape[1], shape[2]):
        raise IngestionError(
            f"Extra cubes of {depth} x {size} x {size} voxels do not fit the volume of shape (z, y, x) = {shape} "
            f"({region_overview.uri}). Lower 'ingestion.extra_cubes.depth' / 'ingestion.cube_size_yx'."
        )
    mains: list[tuple[int, ...]] = [_main_box(b) for b in ingestion.main_cubes.by_region().values()]
    placement = _Placement(mains, int(extra.min_separation))
    rng = np.random.default_rng(int(extra.seed))
    values = volume.region_values()
    ignored = [int(v) for v in extra.ignore_label_values]
    for region in spec.REGIONS:
        counted = [v for v in values[region] if v not in ignored]
        candidates = _candidate_positions(region_overview, counted, depth, size, float(extra.min_region_fraction))
        _place_region(placement, region, counted, candidates, rng.permutation(len(candidates)), ingestion, shape)
    table = _extra_cube_table(placement)
    log.info("Extra cubes:\n%s", table.to_string(index=False))
    return table


def _candidate_positions(
    region_overview: SectionOverview, counted: list[int], depth: int, size: int, min_fraction: float
) -> list[tuple[int, int, int]]:
    """Corners ``(z0, y0, x0)`` (every ``depth // 2`` slices, on the coarse grid) whose footprint is
    at least ``min_fraction`` inside the region (``counted`` values) on every section of its z range."""
    scale = 2 ** int(region_overview.level)
    sections = np.asarray(region_overview.sections)
    z_indices = np.asarray(region_overview.z_indices)
    nz = int(region_overview.volume_shape[0])
    foot = max(1, size // scale)
    mask = np.isin(sections, counted).astype(np.float64)
    # integral image per section -> fraction of each coarse footprint inside the region
    integral = np.pad(mask.cumsum(1).cumsum(2), ((0, 0), (1, 0), (1, 0)))
    frac = (
        integral[:, foot:, foot:]
        - integral[:, :-foot, foot:]
        - integral[:, foot:, :-foot]
        + integral[:, :-foot, :-foot]
    ) / (foot * foot)
    candidates = []
    for z0 in range(0, nz - depth + 1, max(1, depth // 2)):
        inside = (z_indices >= z0) & (z_indices < z0 + depth)
        if not inside.any():
            continue
        ok = (frac[inside] >= min_fraction).all(axis=0)
        ys, xs = np.nonzero(ok)
        candidates += [(z0, int(y) * scale, int(x) * scale) for y, x in zip(ys, xs)]
    return candidates


class _Placement:
    """The extra cubes placed so far (box, use, table row) and the distances they must keep."""

    def __init__(self, mains: list[tuple[int, ...]], margin: int) -> None:
        self.mains, self.margin = mains, margin
        self.placed: list[tuple[tuple[int, ...], str]] = []
        self.rows: list[dict[str, Any]] = []

    def conflict(self, box: tuple[int, ...], use: str) -> str:
        """Why ``box`` cannot be an extra cube of ``use`` (``""``: it can).

        Held-out (test) cubes keep ``margin`` from every training cube: the full main boxes and
        the train extras. Train extras are training data like the main cubes: they only must
        not overlap them. No two extras overlap.
        """
        for m in self.mains:
            if _overlaps(box, m):
                return f"it overlaps the main cube box {list(m)}"
            if use == "test" and separation(box, m) < self.margin:
                return f"it lies {separation(box, m)} voxels from the main cube box {list(m)}"
        for other, other_use in self.placed:
            if _overlaps(box, other):
                return f"it overlaps the extra cube {list(other)}"
            if other_use != use and separation(box, other) < self.margin:
                return f"it lies {separation(box, other)} voxels from the {other_use} extra cube {list(other)}"
        return ""

    def add(self, cube_id: str, region: str, use: str, is_pinned: bool, box: tuple[int, ...]) -> None:
        self.placed.append((box, use))
        self.rows.append(
            {
                "cube_id": cube_id,
                "region": region,
                "use": use,
                "pinned": is_pinned,
                **dict(zip(("z0", "z1", "y0", "y1", "x0", "x1"), box)),
                "min_separation": self.margin,
            }
        )


def _place_region(
    placement: _Placement,
    region: str,
    counted: list[int],
    candidates: list[tuple[int, int, int]],
    order: np.ndarray,
    ingestion: IngestionParameters,
    shape: tuple[int, ...],
) -> None:
    """Place the ``per_region`` extra cubes of ``region``: pinned ones where pinned, the others at
    the first free candidates in ``order``; test cubes first (they keep the margin from training)."""
    extra = ingestion.extra_cubes
    n_train, size, depth = int(extra.train_per_region), int(ingestion.cube_size_yx), int(extra.depth)
    chosen = 0
    for k in [*range(n_train, int(extra.per_region)), *range(n_train)]:
        cube_id = f"extra_{region}_{k}"
        use = "train" if k < n_train else "test"
        if cube_id in extra.pinned:
            p = extra.pinned[cube_id]
            box: tuple[int, ...] = (
                int(p.z0),
                int(p.z0) + depth,
                int(p.y0),
                int(p.y0) + size,
                int(p.x0),
                int(p.x0) + size,
            )
            why = placement.conflict(box, use)
            if why:
                raise IngestionError(
                    f"The pinned cube {cube_id} {list(box)} is too close to a training or test cube: {why} "
                    f"(at least {placement.margin} voxels needed, 'ingestion.extra_cubes.min_separation'). Move "
                    f"'ingestion.extra_cubes.pinned.{cube_id}'."
                )
            placement.add(cube_id, region, use, True, box)
            continue
        while chosen < len(order):
            z0, y0, x0 = candidates[order[chosen]]
            chosen += 1
            box = (z0, z0 + depth, y0, y0 + size, x0, x0 + size)
            if box[3] <= shape[1] and box[5] <= shape[2] and not placement.conflict(box, use):
                placement.add(cube_id, region, use, False, box)
                break
        else:
            raise IngestionError(
                f"Could not place {cube_id}: no free {depth}x{size}x{size} window with at least "
                f"{float(extra.min_region_fraction):.0%} {region} labels (values {counted}) that keeps "
                f"{placement.margin} voxels from the main cubes and from the extra cubes of the other use. Lower "
                "'ingestion.extra_cubes.min_region_fraction' or 'ingestion.extra_cubes.min_separation', "
                "check 'volume.region_label_values', or pin coordinates in 'ingestion.extra_cubes.pinned'."
            )


#: Columns of ``extra_cubes``.
EXTRA_CUBE_COLUMNS = (
    "cube_id",
    "region",
    "use",
    "pinned",
    *("z0", "z1", "y0", "y1", "x0", "x1"),
    *("min_separation", "separation", "main_separation"),
)


def _extra_cube_table(placement: _Placement) -> pd.DataFrame:
    """One row per extra cube (by region, then number), with its distances to the nearest cube it
    must keep away from (``separation``) and to the nearest full main box (``main_separation``)."""
    mains, placed = placement.mains, placement.placed
    training = mains + [b for b, u in placed if u == "train"]
    tested = [b for b, u in placed if u == "test"]
    for r, (box, use) in zip(placement.rows, placed):
        r["separation"] = min(separation(box, o) for o in (training if use == "test" else tested))
        r["main_separation"] = min(separation(box, m) for m in mains)
    rows = sorted(placement.rows, key=lambda r: (spec.REGIONS.index(r["region"]), int(r["cube_id"].rsplit("_", 1)[1])))
    return pd.DataFrame(rows, columns=list(EXTRA_CUBE_COLUMNS))


# --- cube requests ----------------------------------------------------------------------------


def plan_cubes(
    extra_cube_coordinates: pd.DataFrame, volume: VolumeParameters, ingestion: IngestionParameters
) -> dict[str, CubeSpec]:
    """Requests for the 4 main cubes (all channels) and the extra cubes (no pixel labels).

    Fails when ``extra_cube_coordinates`` was chosen for other parameters (e.g. a cached table
    from before a change of ``cube_size_yx``, with ``--only-missing-outputs``): cubes of two
    sizes are never mixed.
    """
    extra = ingestion.extra_cubes
    expected = {
        "y1 - y0": ("cube_size_yx", int(ingestion.cube_size_yx)),
        "x1 - x0": ("cube_size_yx", int(ingestion.cube_size_yx)),
        "z1 - z0": ("extra_cubes.depth", int(extra.depth)),
    }
    table = extra_cube_coordinates
    stale = [
        f"{column} = {sorted(set(table.eval(column).astype(int)))} but 'ingestion.{key}' = {value}"
        for column, (key, value) in expected.items()
        if len(table) and not (table.eval(column) == value).all()
    ]
    if "min_separation" not in table or (
        len(table) and not (table["min_separation"] == int(extra.min_separation)).all()
    ):
        stale.append(f"it was not chosen with 'ingestion.extra_cubes.min_separation' = {extra.min_separation}")
    if stale:
        raise IngestionError(
            "extra_cube_coordinates was chosen for other parameters (" + "; ".join(stale) + "). Re-run the "
            "whole ingestion pipeline (kedro run --pipeline=ingestion, without --only-missing-outputs)."
        )
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
