"""Mapping nodes: choose the models, plan the brain map, check it against truth, draw it.

The map itself is written by the catalog dataset ``brain_map``
(:class:`mtneuro.datasets.ome_zarr_store.OmeZarrMapDataset`): :func:`plan_brain_map` returns a
:class:`~mtneuro.datasets.ome_zarr_store.MapRequest` (lazy: the volume is a Dask array, nothing is
read), and the dataset computes and writes it block by block, resumably.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from mtneuro import spec
from mtneuro.config.ingestion import IngestionParameters
from mtneuro.config.mapping import MappingBox, MappingParameters
from mtneuro.config.volume import VolumeParameters
from mtneuro.datasets.ome_zarr_store import BrainMap, MapLayer, MapRequest
from mtneuro.features import get_feature
from mtneuro.training import thread_limit
from mtneuro.volumes import VolumeSource, Window, open_volume

from . import engine
from .engine import MappingError, MicrostructureNetwork, RegionModel
from .truth import dense_pixel_labels

log = logging.getLogger(__name__)

VALIDATION_COLUMNS = ("metric", "class", "value", "source")


# --- volume ------------------------------------------------------------------------------


def open_channel(volume: VolumeParameters, channel: str, **extra: Any) -> VolumeSource:
    """One channel of the configured source (``volume.source``, ``volume.uris``, ``volume.options``)."""
    return open_volume(volume.channel_uris()[channel], **volume.source_options(), **extra)


def mapping_window(mapping: MappingParameters, volume_shape: tuple[int, int, int]) -> Window:
    """The window to map (``mapping.window``): the slab, the full volume or an explicit box."""
    nz, ny, nx = volume_shape
    if mapping.window == "full":
        return Window(0, nz, 0, ny, 0, nx)
    if mapping.window == "slab":
        z0, z1 = mapping.slab.z0, mapping.slab.z0 + mapping.slab.depth
        if z1 > nz:
            raise MappingError(f"Parameter 'mapping.slab': slices [{z0}, {z1}) exceed the volume's {nz} slices")
        return Window(z0, z1, 0, ny, 0, nx)
    box: MappingBox = mapping.window
    window = Window(box.z[0], box.z[1], box.y[0], box.y[1], box.x[0], box.x[1])
    for axis, hi, n in zip("zyx", (window.z1, window.y1, window.x1), volume_shape, strict=True):
        if hi > n:
            raise MappingError(f"Parameter 'mapping.window.{axis}' ends at {hi}, beyond the volume ({n})")
    return window


# --- models ------------------------------------------------------------------------------


def microstructure_candidates(mapping: MappingParameters) -> list[str]:
    """Models whose networks the pipeline loads: the named one, or every candidate for ``best``."""
    m = mapping.microstructure
    return list(m.candidates) if m.model == "best" else [m.model]


def select_microstructure_model(
    task2_segmentation: pd.DataFrame | None, mapping: MappingParameters, **models: Any
) -> Any:
    """The network to map with: ``microstructure.model``, or the best candidate by mean IoU.

    ``models`` are keyword arguments ``<model name>=network`` (or anything standing for it,
    e.g. its name, as :func:`mtneuro.pipelines.mapping.models.choose_microstructure_model`
    passes); the best is the highest ``iou`` of the ``mean`` rows of ``task2_segmentation`` at
    ``microstructure.setting`` and ``seed`` (ties: the first candidate).
    """
    m = mapping.microstructure
    if m.model != "best":
        return models[m.model]
    if task2_segmentation is None:
        raise MappingError("mapping.microstructure.model = best needs the table task2_segmentation")
    table = task2_segmentation
    rows = table[
        (table["class"] == "mean")
        & (table["config"] == m.setting)
        & (table["seed"] == m.seed)
        & (table["model"].isin(list(models)))
    ]
    if rows.empty:
        raise MappingError(
            f"task2_segmentation has no mean row for the candidates {sorted(models)} at setting {m.setting}, "
            f"seed {m.seed} (parameters 'mapping.microstructure.candidates', 'setting', 'seed')"
        )
    order = {name: i for i, name in enumerate(m.candidates)}
    best = rows.assign(_order=rows["model"].map(order)).sort_values(["iou", "_order"], ascending=[False, True]).iloc[0]
    log.info(
        "mapping: microstructure model %s (mean IoU %.3f at %s, seed %d)", best["model"], best["iou"], m.setting, m.seed
    )
    return models[str(best["model"])]


def _weights_digest(net: Any) -> str:
    digest = hashlib.sha256()
    state = net.state_dict() if hasattr(net, "state_dict") else {}
    for key in sorted(state):
        digest.update(key.encode())
        digest.update(state[key].detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def _readout_digest(readout: Any) -> str:
    import pickle

    return hashlib.sha256(pickle.dumps(readout)).hexdigest()[:16]


# --- the request -------------------------------------------------------------------------


def _json_safe(value: Any) -> Any:
    """``value`` with NaN floats as None (JSON has no NaN)."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _label_names(names: Mapping[int, str], colours: Mapping[Any, tuple[int, int, int, int]], by_name: bool) -> dict:
    return {int(v): (n, tuple(colours[n] if by_name else colours[v])) for v, n in names.items()}


def plan_brain_map(
    microstructure_model: torch.nn.Module,
    region_encoder: Any,
    region_readout: Any,
    mapping: MappingParameters,
    volume: VolumeParameters,
    region_model_selection: Mapping[str, Any] | None = None,
) -> MapRequest:
    """The brain map to write: layers, blocks and the lazy computation of each block.

    Nothing is read here: the image is a lazy Dask array over the volume source.
    ``region_model_selection`` (from :func:`~mtneuro.pipelines.mapping.models.choose_region_model`)
    names the region run and how it was chosen; it is recorded in the store's metadata.
    """
    source = open_channel(volume, "image")
    reader = engine.BlockReader(source, mapping.blocks.read_chunks_zyx)
    window = mapping_window(mapping, reader.shape)  # type: ignore[arg-type]
    seg_name = str((getattr(microstructure_model, "metadata", {}) or {}).get("model", "model"))
    segmentation = MicrostructureNetwork.from_trained(microstructure_model, seg_name)
    selection = dict(region_model_selection or {"run": mapping.regions.model, "rule": "given"})
    regions = RegionModel(region_encoder, region_readout, str(selection["run"]))
    settings = block_settings(mapping)
    blocks_zyx = tuple(min(b, s) for b, s in zip(mapping.blocks.shape_zyx, window.shape, strict=True))
    windows = engine.block_windows(window, blocks_zyx)
    blocks = {key: _block_regions(b, window, settings) for key, b in windows.items()}
    threads = mapping.compute.torch_threads

    def compute(key: str) -> dict[str, np.ndarray]:
        with thread_limit(threads):
            return engine.compute_block(windows[key], window, reader, segmentation, regions, settings)

    def prepare() -> None:
        with thread_limit(threads):
            radius = engine.check_halo(segmentation, settings.halo_yx)
        log.info("mapping: receptive-field radius of %s is %d voxels (halo %d)", seg_name, radius, settings.halo_yx)

    fingerprint = _map_fingerprint(
        mapping,
        window,
        source,
        reader.shape,
        volume,
        seg_name,
        settings,
        regions.name,
        microstructure_model,
        region_encoder,
        region_readout,
    )
    log.info(
        "mapping: window %s (%d voxels) in %d blocks of %s",
        window.to_list(),
        int(np.prod(window.shape)),
        len(blocks),
        list(blocks_zyx),
    )
    return MapRequest(
        layers=map_layers(window, tuple(float(v) for v in source.voxel_size), mapping, settings),
        blocks=blocks,
        compute_block=compute,
        levels=mapping.pyramid.levels,
        downsample_z=mapping.pyramid.downsample_z,
        ngff_version=mapping.ngff_version,
        fingerprint=fingerprint,
        attributes=_map_attributes(mapping, window, source, seg_name, regions.name, selection, settings),
        prepare=prepare,
        viewer=mapping.viewer.model_dump(mode="json"),
    )


def _map_fingerprint(
    mapping: MappingParameters,
    window: Window,
    source: VolumeSource,
    volume_shape: tuple[int, ...],
    volume: VolumeParameters,
    seg_name: str,
    settings: engine.BlockSettings,
    region_model: str,
    microstructure_model: Any,
    region_encoder: Any,
    region_readout: Any,
) -> dict[str, Any]:
    """What the map's blocks depend on: a store written with another fingerprint starts again."""
    return {
        "window": window.to_list(),
        "source": source.uri,
        "volume_shape": list(volume_shape),
        "options": {k: str(v) for k, v in sorted(volume.source_options().items())},
        "microstructure": {
            "model": seg_name,
            "weights": _weights_digest(microstructure_model),
            "precision": settings.precision,
        },
        "regions": {
            "model": region_model,
            "encoder": _weights_digest(getattr(region_encoder, "network", region_encoder)),
            "readout": _readout_digest(region_readout),
        },
        "parameters": mapping.model_dump(mode="json", exclude={"validation", "compute", "viewer"}),
    }


def block_settings(mapping: MappingParameters) -> engine.BlockSettings:
    """What computing one block needs from ``mapping`` (halo, batches, region patches, features,
    precision, smoothing, tissue mask)."""
    r = mapping.regions
    return engine.BlockSettings(
        halo_yx=mapping.microstructure.halo_yx,
        halo_z=mapping.microstructure.halo_z,
        slices_per_batch=mapping.microstructure.slices_per_batch,
        workers=mapping.compute.workers,
        patch_size=r.patch_size,
        stride=r.stride,
        region_batch_size=r.batch_size,
        tile_size=mapping.features.tile_size,
        connectivity=mapping.features.cell_connectivity,
        feature_names=tuple(get_feature(n).name for n in mapping.features.names),
        precision=engine.mapping_precision(mapping.compute.precision),
        majority_filter=r.majority_filter,
        tissue_threshold=mapping.tissue.threshold,
        tissue_window=mapping.tissue.window_yx if mapping.tissue.mask else 0,
    )


def map_layers(
    window: Window, voxel: tuple[float, ...], mapping: MappingParameters, settings: engine.BlockSettings
) -> list[MapLayer]:
    """The layers of the store: the image, the label layers (microstructure, regions, regions
    before the majority filter where it is on, tissue) and the per-tile features."""
    origin_um = tuple(o * v for o, v in zip((window.z0, window.y0, window.x0), voxel, strict=True))
    chunks = tuple(min(c, s) for c, s in zip(mapping.blocks.chunks_zyx, window.shape, strict=True))
    blocks_zyx = tuple(min(b, s) for b, s in zip(mapping.blocks.shape_zyx, window.shape, strict=True))
    spatial: dict[str, Any] = {
        "axes": ("z", "y", "x"),
        "shape": window.shape,
        "chunks": chunks,
        "scale": voxel,
        "translation": origin_um,
    }

    def labels(path: str, names: Mapping[int, str], colours: Mapping[Any, Any], by_name: bool) -> MapLayer:
        return MapLayer(
            path=path, kind="label", dtype="uint8", label_names=_label_names(names, colours, by_name), **spatial
        )

    t = settings.tile_size
    n_features = len(settings.feature_names)
    tiles = (window.shape[0], -(-window.shape[1] // t), -(-window.shape[2] // t))
    return [
        MapLayer(path="", kind="image", dtype="uint8", channel_names=("image",), **spatial),
        labels("labels/microstructure", spec.PIXEL_CLASSES, spec.PIXEL_COLOURS, by_name=False),
        labels("labels/regions", engine.REGION_LABELS, spec.REGION_COLOURS, by_name=True),
        *(
            [labels("labels/regions_unsmoothed", engine.REGION_LABELS, spec.REGION_COLOURS, by_name=True)]
            if settings.majority_filter
            else []
        ),
        labels("labels/tissue", engine.TISSUE_LABELS, engine.TISSUE_COLOURS, by_name=True),
        MapLayer(
            path="features",
            kind="features",
            dtype="float32",
            axes=("c", "z", "y", "x"),
            shape=(n_features, *tiles),
            chunks=(n_features, blocks_zyx[0], blocks_zyx[1] // t, blocks_zyx[2] // t),
            scale=(1.0, voxel[0], voxel[1] * t, voxel[2] * t),
            translation=(
                0.0,
                origin_um[0],
                origin_um[1] + (t - 1) * voxel[1] / 2,
                origin_um[2] + (t - 1) * voxel[2] / 2,
            ),
            channel_names=settings.feature_names,
        ),
    ]


def _block_regions(block: Window, window: Window, settings: engine.BlockSettings) -> dict[str, tuple[slice, ...]]:
    """Where one block lies in each layer: voxels relative to the window; tiles in the features."""
    t = settings.tile_size
    rel = (
        slice(block.z0 - window.z0, block.z1 - window.z0),
        slice(block.y0 - window.y0, block.y1 - window.y0),
        slice(block.x0 - window.x0, block.x1 - window.x0),
    )
    feat = (
        slice(None),
        rel[0],
        slice(rel[1].start // t, -(-rel[1].stop // t)),
        slice(rel[2].start // t, -(-rel[2].stop // t)),
    )
    return {
        "": rel,
        "labels/microstructure": rel,
        "labels/regions": rel,
        **({"labels/regions_unsmoothed": rel} if settings.majority_filter else {}),
        "labels/tissue": rel,
        "features": feat,
    }


def _map_attributes(
    mapping: MappingParameters,
    window: Window,
    source: VolumeSource,
    seg_name: str,
    region_model: str,
    selection: Mapping[str, Any],
    settings: engine.BlockSettings,
) -> dict[str, Any]:
    """What the store records about how it was made (read back by validation and the report)."""
    return {
        "window_zyx": window.to_list(),
        "source": source.uri,
        "voxel_size_um": [float(v) for v in source.voxel_size],
        "microstructure_model": seg_name,
        "microstructure_setting": mapping.microstructure.setting,
        "microstructure_seed": mapping.microstructure.seed,
        "microstructure_precision": settings.precision,
        "region_model": region_model,
        "region_model_selection": _json_safe(dict(selection)),
        "region_stride": mapping.regions.stride,
        "region_majority_filter": mapping.regions.majority_filter,
        "tissue_mask": mapping.tissue.model_dump(mode="json"),
        "region_labels": {str(k): v for k, v in engine.REGION_LABELS.items()},
        "pixel_labels": {str(k): v for k, v in spec.PIXEL_CLASSES.items()},
        "features": list(settings.feature_names),
        "feature_tile_size": settings.tile_size,
    }


# --- validation --------------------------------------------------------------------------


def _training_boxes(ingestion: IngestionParameters) -> list[Window]:
    """The Task 2 training cubes (the main cubes, absolute)."""
    out = []
    for box in ingestion.main_cubes.by_region().values():
        (z0, z1), (y0, y1), (x0, x1) = box.z, box.y, box.x
        out.append(Window(int(z0), int(z1), int(y0), int(y1), int(x0), int(x1)))
    return out


def box_distance(a: Window, b: Window) -> float:
    """Euclidean distance (voxels) between two boxes (0 when they touch or overlap)."""
    gaps = [
        max(0, lo2 - hi1 + 1, lo1 - hi2 + 1)
        for lo1, hi1, lo2, hi2 in ((a.z0, a.z1, b.z0, b.z1), (a.y0, a.y1, b.y0, b.y1), (a.x0, a.x1, b.x0, b.x1))
    ]
    return float(np.sqrt(sum(g * g for g in gaps)))


#: Coarse sampling (voxels) of the region truth when boxes are checked for tissue.
_BOX_SAMPLE = 8

#: Distance bands of the microstructure validation boxes (docs/brain-maps.md section 9).
FAR, MID = "far", "mid"


@dataclass(frozen=True)
class ValidationBox:
    """A microstructure validation box and what it is scored as."""

    window: Window
    #: Brain area holding at least ``validation.min_area_fraction`` of its tissue ("unknown"
    #: without a region channel).
    area: str
    #: Distance (voxels) from the nearest training cube.
    distance: float
    #: ``FAR`` (>= ``min_distance_from_training``) or ``MID`` (>= ``mid_distance_from_training``).
    band: str

    @property
    def main_area(self) -> bool:
        """Whether a main cube lies in the box's area (the areas the target is about)."""
        return self.area in spec.REGIONS


def _box_truth(roi: VolumeSource | None, box: Window, ignored: set[int]) -> tuple[float, int]:
    """Tissue fraction (region truth not in ``ignored``) and the most frequent area value of a box's
    middle slice, sampled every ``_BOX_SAMPLE`` voxels (``(1.0, -1)`` without a region channel)."""
    if roi is None:
        return 1.0, -1
    z = (box.z0 + box.z1) // 2
    values = np.asarray(roi.read(Window(z, z + 1, box.y0, box.y1, box.x0, box.x1)))[0][::_BOX_SAMPLE, ::_BOX_SAMPLE]
    tissue_fraction, area, _ = _area_of(values, ignored)
    return tissue_fraction, area


def _area_of(values: np.ndarray, ignored: set[int]) -> tuple[float, int, float]:
    """Tissue fraction, most frequent area value and that area's fraction of the tissue."""
    tissue = ~np.isin(values, sorted(ignored))
    if not tissue.any():
        return 0.0, -1, 0.0
    found, counts = np.unique(values[tissue], return_counts=True)
    return float(tissue.mean()), int(found[counts.argmax()]), float(counts.max() / counts.sum())


def _starts(lo: int, hi: int, size: int, stride: int) -> range:
    return range(lo, max(lo, hi - size) + 1, stride)


def stratified_validation_boxes(
    window: Window,
    training: list[Window],
    mapping: MappingParameters,
    roi: VolumeSource | None = None,
) -> list[ValidationBox]:
    """Non-overlapping tissue boxes of the window, by brain area and distance band.

    Candidates (``box_yx`` in-plane, all slices of the window, every ``box_stride_yx`` voxels)
    hold at least ``min_tissue_fraction`` of tissue and ``min_area_fraction`` of it in one area
    (region truth of the window's middle slice, read once). A box is ``FAR`` at
    ``min_distance_from_training`` or more from every training cube, ``MID`` (main-cube areas
    only) at ``mid_distance_from_training`` or more; nearer boxes are not validation boxes. Per
    (band, area), boxes are taken in raster order without overlapping any box taken before, then
    at most ``max_boxes_per_area`` evenly spaced among them; at most ``max_boxes`` in all, taken in
    turn from each group (far main-cube areas first)."""
    v = mapping.validation
    s, stride = v.box_yx, v.box_stride_yx
    ignored = {int(x) for x in v.unlabelled_values}
    area_names = {value: name for name, value in spec.BRAIN_AREA_VALUES.items()}
    middle = None
    if roi is not None:
        z = (window.z0 + window.z1) // 2
        middle = np.asarray(roi.read(Window(z, z + 1, window.y0, window.y1, window.x0, window.x1)))[0]
    groups: dict[tuple[str, str], list[ValidationBox]] = {}
    taken: list[Window] = []
    for y0 in _starts(window.y0, window.y1, s, stride):
        for x0 in _starts(window.x0, window.x1, s, stride):
            box = Window(window.z0, window.z1, y0, min(y0 + s, window.y1), x0, min(x0 + s, window.x1))
            distance = min((box_distance(box, t) for t in training), default=float("inf"))
            if distance < min(v.mid_distance_from_training, v.min_distance_from_training):
                continue
            area = "unknown"
            if middle is not None:
                values = middle[
                    box.y0 - window.y0 : box.y1 - window.y0 : _BOX_SAMPLE,
                    box.x0 - window.x0 : box.x1 - window.x0 : _BOX_SAMPLE,
                ]
                tissue_fraction, value, area_fraction = _area_of(values, ignored)
                if tissue_fraction < v.min_tissue_fraction or area_fraction < v.min_area_fraction:
                    continue
                area = area_names.get(value, "unknown")
            band = FAR if distance >= v.min_distance_from_training else MID
            if band == MID and area not in spec.REGIONS:
                continue
            if any(_overlaps(box, t) for t in taken):
                continue
            taken.append(box)
            groups.setdefault((band, area), []).append(ValidationBox(box, area, distance, band))
    order = sorted(groups, key=lambda k: (k[0] != FAR, k[1] not in spec.REGIONS, k[1]))
    picked = {}
    for key in order:
        boxes = groups[key]
        if len(boxes) > v.max_boxes_per_area:
            idx = np.linspace(0, len(boxes) - 1, v.max_boxes_per_area).round().astype(int)
            boxes = [boxes[i] for i in idx]
        picked[key] = boxes
    out: list[ValidationBox] = []
    for i in range(v.max_boxes_per_area):
        for key in order:
            if i < len(picked[key]) and len(out) < v.max_boxes:
                out.append(picked[key][i])
    return out


def _overlaps(a: Window, b: Window) -> bool:
    return a.y0 < b.y1 and b.y0 < a.y1 and a.x0 < b.x1 and b.x0 < a.x1 and a.z0 < b.z1 and b.z0 < a.z1


def validation_boxes(
    window: Window,
    training: list[Window],
    mapping: MappingParameters,
    roi: VolumeSource | None = None,
) -> list[Window]:
    """The ``FAR`` boxes of :func:`stratified_validation_boxes` (every area)."""
    return [b.window for b in stratified_validation_boxes(window, training, mapping, roi) if b.band == FAR]


def _row(metric: str, cls: str, value: float, source: str) -> dict[str, Any]:
    return {"metric": metric, "class": cls, "value": float(value), "source": source}


def _ious(truth: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    out = {}
    for value, name in spec.PIXEL_CLASSES.items():
        t, p = truth == value, pred == value
        union = int(np.count_nonzero(t | p))
        out[name] = float(np.count_nonzero(t & p)) / union if union else float("nan")
    out["mean"] = float(np.nanmean(list(out.values())))
    return out


def _iou_rows(truth: np.ndarray, pred: np.ndarray, source: str) -> list[dict[str, Any]]:
    rows = [_row("microstructure_iou", name, iou, source) for name, iou in _ious(truth, pred).items()]
    rows.append(_row("microstructure_voxels", "all", truth.size, source))
    return rows


def tile_disagreement(cells: np.ndarray) -> tuple[int, int]:
    """``(differing, counted)``: labelled cells (> 0) of a 2D grid with at least one labelled
    8-neighbour, and those whose label is not among the most frequent labels of their 8
    neighbours (0 cells do not vote)."""
    cells = np.asarray(cells)
    labels = int(cells.max(initial=0))
    if labels == 0:
        return 0, 0
    padded = np.pad(cells, 1)
    ny, nx = cells.shape
    counts = np.zeros((labels + 1, ny, nx), dtype=np.int16)
    for dy in range(3):
        for dx in range(3):
            if dy == 1 and dx == 1:
                continue
            shifted = padded[dy : dy + ny, dx : dx + nx]
            for label in range(1, labels + 1):
                counts[label] += shifted == label
    voters = counts[1:].sum(axis=0)
    counted = (cells > 0) & (voters > 0)
    own = np.take_along_axis(counts, cells[None].astype(np.intp), axis=0)[0]
    differing = counted & (own < counts[1:].max(axis=0))
    return int(differing.sum()), int(counted.sum())


def _region_truth_lut(volume: VolumeParameters, ignored: set[int]) -> dict[int, int]:
    values = volume.region_values()
    return {v: i + 1 for i, r in enumerate(spec.REGIONS) for v in values[r] if v not in ignored}


@dataclass
class _RegionCounts:
    """Voxel counts behind the region rows, summed slice by slice over every ``step``-th voxel."""

    #: Layer suffix of the row names (``""``: as mapped, ``_unsmoothed``) -> layer name.
    variants: dict[str, str]
    #: Region truth value -> region label (1..4).
    lut: dict[int, int]
    #: Region truth values outside the tissue.
    ignored: set[int]
    #: Whether the map has a tissue layer (checked against the region truth).
    has_tissue: bool
    correct: dict[str, np.ndarray] = field(init=False)
    total: np.ndarray = field(init=False)
    differing: dict[str, int] = field(init=False)
    counted: dict[str, int] = field(init=False)
    outside: int = 0
    outside_labelled: dict[str, int] = field(default_factory=lambda: {"microstructure": 0, "regions": 0})
    tissue_tp: int = 0
    tissue_fp: int = 0
    tissue_fn: int = 0
    area_total: dict[int, int] = field(default_factory=dict)
    area_correct: dict[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(spec.REGIONS) + 1
        self.correct = {k: np.zeros(n, np.int64) for k in self.variants}
        self.total = np.zeros(n, np.int64)
        self.differing = dict.fromkeys(self.variants, 0)
        self.counted = dict.fromkeys(self.variants, 0)

    def add_slice(
        self, truth_raw: np.ndarray, sampled: Mapping[str, np.ndarray], centres: Mapping[str, np.ndarray]
    ) -> None:
        """One slice: the region truth (raw values), the sampled layers and the region cell centres."""
        regions = sampled[self.variants[""]]
        for value, label in self.lut.items():
            m = truth_raw == value
            self.area_total[value] = self.area_total.get(value, 0) + int(m.sum())
            self.area_correct[value] = self.area_correct.get(value, 0) + int((regions[m] == label).sum())
        truth = np.zeros(truth_raw.shape, np.int64)
        for value, label in self.lut.items():
            truth[truth_raw == value] = label
        non_tissue = np.isin(truth_raw, sorted(self.ignored))
        self.outside += int(non_tissue.sum())
        for layer in self.outside_labelled:
            self.outside_labelled[layer] += int(np.count_nonzero(sampled[layer][non_tissue]))
        if self.has_tissue:
            mask = sampled["tissue"] > 0
            self.tissue_tp += int((mask & ~non_tissue).sum())
            self.tissue_fp += int((mask & non_tissue).sum())
            self.tissue_fn += int((~mask & ~non_tissue).sum())
        n = len(self.total)
        for label in range(1, n):
            self.total[label] += int((truth == label).sum())
        for suffix, layer in self.variants.items():
            pred = sampled[layer]
            for label in range(1, n):
                m = truth == label
                self.correct[suffix][label] += int((pred[m] == label).sum())
            d, c = tile_disagreement(centres[layer])
            self.differing[suffix] += d
            self.counted[suffix] += c


def _region_rows(
    brain_map: BrainMap, window: Window, mapping: MappingParameters, volume: VolumeParameters, source_name: str
) -> list[dict[str, Any]]:
    """Region accuracy and recall (as mapped and, with the majority filter, unsmoothed), the tile
    disagreement with the 8 neighbours, and the tissue mask against the region truth."""
    step = mapping.validation.region_sample_step
    roi = open_channel(volume, "roi_labels")
    # Values outside the tissue (mapping.validation.unlabelled_values, e.g. 0, which the
    # authors' groupings count as CTX) are not region truth; on the phantom 0 is exactly outside.
    ignored = {int(v) for v in mapping.validation.unlabelled_values}
    variants = {"": "regions"}
    if "regions_unsmoothed" in brain_map.layers:
        variants["_unsmoothed"] = "regions_unsmoothed"
    has_tissue = "tissue" in brain_map.layers
    counts = _RegionCounts(variants, _region_truth_lut(volume, ignored), ignored, has_tissue)
    stride = int(brain_map.attributes.get("region_stride", step))
    # each layer read once, subsampled (a per-slice read would decompress every chunk row again)
    sampled = {
        name: np.asarray(brain_map.layers[name][0][:, ::step, ::step].compute())
        for name in {*counts.outside_labelled, *variants.values(), *(["tissue"] if has_tissue else [])}
    }
    centres = {
        name: np.asarray(brain_map.layers[name][0][:, stride // 2 :: stride, stride // 2 :: stride].compute())
        for name in variants.values()
    }
    for z in range(window.z0, window.z1):
        k = z - window.z0
        truth_raw = roi.read(Window(z, z + 1, window.y0, window.y1, window.x0, window.x1))[0][::step, ::step]
        counts.add_slice(truth_raw, {n: a[k] for n, a in sampled.items()}, {n: a[k] for n, a in centres.items()})
    return [
        *_region_accuracy_rows(counts, stride, step, source_name),
        *_area_rows(counts, step, source_name),
        *_outside_rows(counts, step, source_name),
    ]


def _region_accuracy_rows(counts: _RegionCounts, stride: int, step: int, source_name: str) -> list[dict[str, Any]]:
    """Accuracy, recall per region and tile disagreement of each variant; the voxels counted."""
    rows = []
    all_total = int(counts.total.sum())
    for suffix in counts.variants:
        what = "as mapped" if not suffix else "without the majority filter"
        src = f"{source_name} ({what})"
        correct = counts.correct[suffix]
        acc = float(correct.sum()) / all_total if all_total else float("nan")
        rows.append(_row(f"region_accuracy{suffix}", "all", acc, src))
        for label, name in engine.REGION_LABELS.items():
            total = counts.total[label]
            rows.append(
                _row(f"region_recall{suffix}", name, float(correct[label]) / total if total else float("nan"), src)
            )
        differing, counted = counts.differing[suffix], counts.counted[suffix]
        rows.append(
            _row(
                f"region_tile_disagreement{suffix}",
                "all",
                differing / counted if counted else float("nan"),
                f"{src}: fraction of {stride}-voxel region cells whose label is not the majority of their 8 neighbours",
            )
        )
    rows.append(_row("region_voxels", "all", all_total * step * step, source_name))
    return rows


def _area_rows(counts: _RegionCounts, step: int, source_name: str) -> list[dict[str, Any]]:
    """Per brain area (the source's raw values): areas of the main cubes vs areas that Task 1 never
    saw but whose group it must name (e.g. TRN -> VP, hypothalamus -> ZI)."""
    rows = []
    names = {v: k for k, v in spec.BRAIN_AREA_VALUES.items()}
    main_values = {spec.BRAIN_AREA_VALUES[r] for r in spec.REGIONS if r in spec.BRAIN_AREA_VALUES}
    area_total, area_correct = counts.area_total, counts.area_correct
    for value in sorted(area_total):
        if area_total[value]:
            rows.append(
                _row(
                    "region_recall_by_area",
                    names.get(value, str(value)),
                    area_correct[value] / area_total[value],
                    f"{source_name} (as mapped): {names.get(value, value)} counts as "
                    f"{engine.REGION_LABELS[counts.lut[value]]}; {area_total[value] * step * step} voxels",
                )
            )
    main_total = sum(area_total.get(v, 0) for v in main_values)
    if main_total:
        rows.append(
            _row(
                "region_accuracy_main_areas",
                "all",
                sum(area_correct.get(v, 0) for v in main_values) / main_total,
                f"{source_name} (as mapped): only the four areas of the main cubes (values {sorted(main_values)})",
            )
        )
    return rows


def _outside_rows(counts: _RegionCounts, step: int, source_name: str) -> list[dict[str, Any]]:
    """Labels outside the tissue, and the tissue mask's IoU against the region truth."""
    outside = counts.outside
    outside_src = f"{source_name}: voxels outside the tissue (region truth {sorted(counts.ignored)})"
    rows = [
        _row("non_tissue_labelled_fraction", layer, count / outside if outside else float("nan"), outside_src)
        for layer, count in counts.outside_labelled.items()
    ]
    rows.append(_row("non_tissue_voxels", "all", outside * step * step, outside_src))
    if counts.has_tissue:
        union = counts.tissue_tp + counts.tissue_fp + counts.tissue_fn
        rows.append(
            _row(
                "tissue_mask_iou",
                "tissue",
                counts.tissue_tp / union if union else float("nan"),
                f"{source_name}: labels/tissue vs region truth",
            )
        )
    return rows


def trained_areas(setting: str) -> set[str]:
    """The areas of the main cubes a Task 2 label setting trains on: all four, but ZI in
    ``seg_4class`` (its axons are not annotated; the split index leaves it out, as the authors do)."""
    return set(spec.REGIONS) - ({"ZI"} if setting == "seg_4class" else set())


def _microstructure_rows(
    brain_map: BrainMap,
    window: Window,
    mapping: MappingParameters,
    volume: VolumeParameters,
    ingestion: IngestionParameters,
    source_name: str,
) -> list[dict[str, Any]]:
    """Microstructure IoU on tissue boxes away from every training cube, by area and distance band.

    ``microstructure_iou`` (the target's numerator): far boxes in the areas of the mapped
    network's training cubes (:func:`trained_areas`), pooled; ``microstructure_iou_other_areas``:
    far boxes of every other area, pooled; ``microstructure_iou_mid``: the mid band of the
    training cubes' areas, pooled; per (band, area):
    ``microstructure_iou_by_area`` (far) / ``microstructure_iou_mid_by_area`` with classes
    ``AREA`` (mean) and ``AREA:class``, and ``microstructure[_mid]_boxes_by_area`` /
    ``microstructure[_mid]_distance_by_area`` (the boxes' count and nearest distance)."""
    roi = open_channel(volume, "roi_labels")
    v = mapping.validation
    boxes = stratified_validation_boxes(window, _training_boxes(ingestion), mapping, roi)
    if not boxes:
        log.warning(
            "mapping: no box of the window lies %d voxels from every training cube with %.0f %% tissue: no "
            "microstructure IoU",
            min(v.mid_distance_from_training, v.min_distance_from_training),
            100 * v.min_tissue_fraction,
        )
        return []
    micro = brain_map.layers["microstructure"][0]
    dense = v.dense_truth and source_name == "phantom"
    # The phantom's dense truth (its option dense_labels=True: every structure it draws, also
    # outside the main cubes); other sources: their pixel_labels (0 outside labelled cubes).
    labels = open_channel(volume, "pixel_labels", **({"dense_labels": True} if dense else {}))
    scored: list[tuple[ValidationBox, np.ndarray, np.ndarray]] = []
    for b in boxes:
        box = b.window
        truth = (dense_pixel_labels(labels, box) if dense else np.asarray(labels.read(box))).astype(np.uint8).ravel()
        pred = np.asarray(
            micro[
                box.z0 - window.z0 : box.z1 - window.z0,
                box.y0 - window.y0 : box.y1 - window.y0,
                box.x0 - window.x0 : box.x1 - window.x0,
            ].compute()
        ).ravel()
        scored.append((b, truth, pred))
    truth_name = "dense truth" if dense else "pixel_labels"
    trained = trained_areas(str(brain_map.attributes.get("microstructure_setting", "")))
    rows: list[dict[str, Any]] = []
    pools = (
        (
            "microstructure_iou",
            FAR,
            True,
            f">= {v.min_distance_from_training} voxels from every training cube, in the training cubes' areas",
        ),
        (
            "microstructure_iou_other_areas",
            FAR,
            False,
            f">= {v.min_distance_from_training} voxels from every training cube, in areas of no training cube",
        ),
        (
            "microstructure_iou_mid",
            MID,
            True,
            f"{v.mid_distance_from_training}-{v.min_distance_from_training} voxels from the training cubes, in their areas",
        ),
    )
    for metric, band, main, what in pools:
        chosen = [(t, p) for b, t, p in scored if b.band == band and (b.area in trained) == main]
        if not chosen:
            continue
        label = f"{source_name} ({truth_name}), {len(chosen)} boxes {what}, >= {v.min_tissue_fraction:.0%} tissue"
        t, p = np.concatenate([c[0] for c in chosen]), np.concatenate([c[1] for c in chosen])
        rows += [_row(metric, name, iou, label) for name, iou in _ious(t, p).items()]
        rows.append(_row(metric.replace("_iou", "_voxels"), "all", t.size, label))
    groups: dict[tuple[str, str], list[tuple[ValidationBox, np.ndarray, np.ndarray]]] = {}
    for item in scored:
        groups.setdefault((item[0].band, item[0].area), []).append(item)
    for (band, area), items in sorted(groups.items()):
        prefix = "microstructure" if band == FAR else "microstructure_mid"
        metric = f"{prefix.replace('microstructure', 'microstructure_iou')}_by_area"
        nearest = min(b.distance for b, _, _ in items)
        kind = (
            "a training cube's area"
            if area in trained
            else "main cube not in this setting's training"
            if items[0][0].main_area
            else "no cube lies in this area"
        )
        src = f"{source_name}: {len(items)} {band} boxes mostly in {area} ({kind}), nearest {nearest:.0f} voxels"
        ious = _ious(np.concatenate([t for _, t, _ in items]), np.concatenate([p for _, _, p in items]))
        rows.append(_row(metric, area, ious.pop("mean"), src))
        rows += [_row(metric, f"{area}:{name}", iou, src) for name, iou in ious.items()]
        rows.append(_row(f"{prefix}_boxes_by_area", area, len(items), src))
        rows.append(_row(f"{prefix}_distance_by_area", area, nearest, src))
    return rows


def _in_cube_rows(
    task2_segmentation: pd.DataFrame | None, brain_map: BrainMap, far: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The mapped network's Task 2 test IoU (in its cubes), the best 2D one, and far / best."""
    if task2_segmentation is None or task2_segmentation.empty:
        return []
    t = task2_segmentation
    setting = brain_map.attributes.get("microstructure_setting")
    model = brain_map.attributes.get("microstructure_model")
    seed = brain_map.attributes.get("microstructure_seed")
    at = t[(t["config"] == setting) & ((t["seed"] == seed) if seed is not None else True)]
    rows = []
    own = at[at["model"] == model]
    src = f"task2_segmentation: {model}, {setting}, seed {seed} (test slices of the main cubes)"
    for _, r in own.iterrows():
        rows.append(_row("microstructure_iou_in_cube", str(r["class"]), float(r["iou"]), src))
    means = at[(at["class"] == "mean") & (at["dims"].astype(str).str.upper() == "2D")]
    if means.empty:
        return rows
    best = means.sort_values("iou", ascending=False).iloc[0]
    rows.append(
        _row(
            "microstructure_iou_in_cube_best_2d",
            "mean",
            float(best["iou"]),
            f"task2_segmentation: best 2D model {best['model']}, {setting}, seed {seed}",
        )
    )
    ratios = (
        (
            "microstructure_iou",
            "microstructure_iou_far_over_best_2d",
            "far boxes, training cubes' areas (target >= 0.9)",
        ),
        ("microstructure_iou_other_areas", "microstructure_iou_other_areas_over_best_2d", "far boxes, other areas"),
        ("microstructure_iou_mid", "microstructure_iou_mid_over_best_2d", "mid-band boxes, training cubes' areas"),
    )
    for metric, name, what in ratios:
        mean = [r["value"] for r in far if r["metric"] == metric and r["class"] == "mean"]
        if mean and float(best["iou"]) > 0:
            rows.append(_row(name, "mean", mean[0] / float(best["iou"]), f"mean IoU of the {what} / best 2D in-cube"))
    return rows


def _selection_rows(selection: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    if not selection:
        return []
    accuracy = dict(selection.get("validation_accuracy", {}))
    src = (
        f"Task 1 validation slices ({selection.get('validation_slices', 0)} slices of "
        f"{', '.join(selection.get('validation_cubes', [])) or 'no cube'}; never test)"
    )
    # candidates without validation slices (e.g. ROI-C3 runs) have no row
    rows = [
        _row("region_model_validation_accuracy", run, acc, src) for run, acc in accuracy.items() if np.isfinite(acc)
    ]
    run = str(selection["run"])
    rows.append(_row("region_model_chosen", run, accuracy.get(run, float("nan")), str(selection.get("rule", ""))))
    if "section_patches" in selection:  # mapping.regions.model: section (section.py)
        rule = str(selection.get("rule", ""))
        rows.append(_row("region_model_section_patches", run, float(selection["section_patches"]), rule))
        for region, n in dict(selection.get("section_patches_per_class", {})).items():
            rows.append(_row("region_model_section_patches", region, float(n), rule))
        rows.append(
            _row(
                "region_model_section_train_accuracy",
                run,
                float(selection.get("section_train_accuracy", float("nan"))),
                "its own training patches (not held out; the map's region accuracy is the z-held-out measure)",
            )
        )
    return rows


def validate_brain_map(
    brain_map: BrainMap,
    mapping: MappingParameters,
    volume: VolumeParameters,
    ingestion: IngestionParameters,
    task2_segmentation: pd.DataFrame | None = None,
    region_model_selection: Mapping[str, Any] | None = None,
    task2_agreement: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The map against truth: region accuracy over the window (as mapped and unsmoothed), tile
    disagreement, labels outside the tissue, microstructure IoU on tissue boxes far from the
    training cubes (dense truth of the phantom; on other sources only where labelled) beside the
    in-cube Task 2 IoU, the region model's selection, and the agreement of the map with the Task 2
    test predictions (``task2_agreement``, :func:`compare_with_task2`)."""
    z0, z1, y0, y1, x0, x1 = brain_map.attributes["window_zyx"]
    window = Window(z0, z1, y0, y1, x0, x1)
    source_name = volume.source
    rows = _region_rows(brain_map, window, mapping, volume, source_name)
    far = _microstructure_rows(brain_map, window, mapping, volume, ingestion, source_name)
    rows += far + _in_cube_rows(task2_segmentation, brain_map, far) + _selection_rows(region_model_selection)
    table = pd.DataFrame(rows, columns=list(VALIDATION_COLUMNS))
    if task2_agreement is not None and len(task2_agreement):
        table = pd.concat([table, task2_agreement[list(VALIDATION_COLUMNS)]], ignore_index=True)
    log.info("mapping validation:\n%s", table.to_string(index=False))
    return table


# --- the map against the Task 2 test predictions ------------------------------------------


class WindowedSource(VolumeSource):
    """A box of another source as a volume of its own (outside the box does not exist)."""

    def __init__(self, source: VolumeSource, window: Window) -> None:
        self.source, self.window = source, window
        self.uri = f"{source.uri}#{window.to_list()}"
        self._shape = window.shape
        self._dtype, self._voxel_size = source.dtype, source.voxel_size

    def _read(self, window: Window) -> np.ndarray:
        w = self.window
        return np.asarray(
            self.source.read(
                Window(
                    w.z0 + window.z0,
                    w.z0 + window.z1,
                    w.y0 + window.y0,
                    w.y0 + window.y1,
                    w.x0 + window.x0,
                    w.x0 + window.x1,
                )
            )
        )


def map_microstructure(
    segmentation: MicrostructureNetwork, source: VolumeSource, box: Window, settings: engine.BlockSettings
) -> np.ndarray:
    """labels/microstructure of ``box`` as the map computes it (aligned input with the halo, the
    prepared network), without the tissue mask: the network's own output."""
    reader = engine.BlockReader(source, (box.shape[0], 1024, 1024))
    data, origin = engine.block_input(
        reader, box, engine.block_halo(segmentation, settings), engine.block_multiple(segmentation)
    )
    labels = engine.segment(segmentation, data, settings.slices_per_batch, settings.workers, settings.precision)
    core = tuple(
        slice(lo - o, hi - o)
        for lo, hi, o in zip((box.z0, box.y0, box.x0), (box.z1, box.y1, box.x1), origin, strict=True)
    )
    return labels[core]


def compare_with_task2(
    microstructure_model: torch.nn.Module,
    microstructure_test_predictions: Mapping[str, Any],
    mapping: MappingParameters,
    volume: VolumeParameters,
    ingestion: IngestionParameters,
) -> pd.DataFrame:
    """Agreement (fraction of voxels) of the map's microstructure with the Task 2 test predictions
    of the same network on the same slices of the main cubes:

    * ``same_input``: the map path (reading, alignment, normalisation, prepared network, label
      values) on the cube window alone, the input Task 2 segments: must agree voxel for voxel
      (up to bf16 rounding where the map computes in bf16);
    * ``with_context``: the map as written, whose input extends beyond the cube (Task 2 pads at
      the cube's border), over the whole cube window and ``interior`` (>= 32 voxels inside it).
    """
    segmentation = MicrostructureNetwork.from_trained(
        microstructure_model, str((getattr(microstructure_model, "metadata", {}) or {}).get("model", "model"))
    )
    run = str(microstructure_test_predictions.get("run", "?"))
    predictions = microstructure_test_predictions["predictions"]
    if segmentation.dims != 2:
        log.info("mapping: no Task 2 agreement check for a 3D network (%s)", run)
        return pd.DataFrame(columns=list(VALIDATION_COLUMNS))
    from mtneuro.pipelines.ingestion.nodes import main_cube_windows

    windows = {f"main_{r}": w for r, w in main_cube_windows(ingestion).items()}
    source = open_channel(volume, "image")
    settings = engine.BlockSettings.microstructure_only(
        mapping.microstructure.halo_yx,
        0,
        mapping.microstructure.slices_per_batch,
        1,
        engine.mapping_precision(mapping.compute.precision),
    )
    agree = {"same_input": [0, 0], "with_context": [0, 0], "with_context_interior": [0, 0]}
    margin = 32
    for cube_id, entry in sorted(predictions.items()):
        if cube_id not in windows:
            continue
        w = windows[cube_id]
        z = np.asarray(entry["z"], dtype=np.int64)
        task2 = segmentation.class_values[np.asarray(entry["prediction"]).astype(np.intp)]
        for run_z in _runs(z):
            i0 = int(np.searchsorted(z, run_z[0]))
            expected = task2[i0 : i0 + len(run_z)]
            box = Window(w.z0 + int(run_z[0]), w.z0 + int(run_z[-1]) + 1, w.y0, w.y1, w.x0, w.x1)
            alone = map_microstructure(
                segmentation,
                WindowedSource(source, box),
                Window(0, box.shape[0], 0, box.shape[1], 0, box.shape[2]),
                settings,
            )
            context = map_microstructure(segmentation, source, box, settings)
            inner = (slice(None), slice(margin, -margin), slice(margin, -margin))
            for key, got, want in (
                ("same_input", alone, expected),
                ("with_context", context, expected),
                ("with_context_interior", context[inner], expected[inner]),
            ):
                agree[key][0] += int((got == want).sum())
                agree[key][1] += int(want.size)
    src = f"labels/microstructure vs Task 2 test predictions of {run} (main-cube test slices)"
    rows = [_row("task2_agreement", key, hits / n if n else float("nan"), src) for key, (hits, n) in agree.items()]
    table = pd.DataFrame(rows, columns=list(VALIDATION_COLUMNS))
    log.info("mapping: map vs Task 2 test predictions:\n%s", table.to_string(index=False))
    return table


def _runs(z: np.ndarray) -> list[np.ndarray]:
    z = np.sort(z)
    breaks = np.flatnonzero(np.diff(z) != 1) + 1
    return [r for r in np.split(z, breaks) if r.size]


# --- figure ------------------------------------------------------------------------------


def plot_brain_map(brain_map: BrainMap, mapping_validation: pd.DataFrame) -> Any:
    """Overview: image, region map, microstructure (middle slice, a coarse level) and cell density."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    levels = len(brain_map.layers["image"])
    level = min(levels - 1, 2)
    image = brain_map.layers["image"][level]
    z = image.shape[0] // 2
    img = np.asarray(image[z].compute())
    reg = np.asarray(brain_map.layers["regions"][level][z].compute())
    mic = np.asarray(brain_map.layers["microstructure"][level][z].compute())
    names = list(brain_map.attributes.get("features", []))
    feat = brain_map.layers["features"][0]
    density = (
        np.asarray(feat[names.index("cell_count"), feat.shape[1] // 2].compute()) if "cell_count" in names else None
    )
    region_cmap = ListedColormap(
        [(0, 0, 0, 0)] + [tuple(c / 255 for c in spec.REGION_COLOURS[r]) for r in spec.REGIONS]
    )
    pixel_cmap = ListedColormap([tuple(c / 255 for c in spec.PIXEL_COLOURS[v]) for v in sorted(spec.PIXEL_COLOURS)])
    fig, axes = plt.subplots(4, 1, figsize=(12, 11), constrained_layout=True)
    z_abs = brain_map.attributes["window_zyx"][0] + z
    axes[0].imshow(img, cmap="gray")
    axes[0].set_title(f"image (z = {z_abs}, level {level})")
    axes[1].imshow(img, cmap="gray")
    axes[1].imshow(reg, cmap=region_cmap, vmin=0, vmax=len(spec.REGIONS), alpha=0.55, interpolation="nearest")
    acc = mapping_validation.query("metric == 'region_accuracy'")["value"]
    axes[1].set_title(
        "regions (Task 1): "
        + ", ".join(f"{i + 1} {r}" for i, r in enumerate(spec.REGIONS))
        + (f"; accuracy vs roi_labels {float(acc.iloc[0]):.3f}" if len(acc) else "")
    )
    axes[2].imshow(mic, cmap=pixel_cmap, vmin=0, vmax=3, interpolation="nearest")
    iou = mapping_validation.query("metric == 'microstructure_iou' and `class` == 'mean'")["value"]
    axes[2].set_title(
        "microstructure (Task 2): vessel red, cell green, axon blue"
        + (f"; mean IoU far from training cubes {float(iou.iloc[0]):.3f}" if len(iou) else "")
    )
    if density is not None:
        t = int(brain_map.attributes.get("feature_tile_size", 1))
        im = axes[3].imshow(density, cmap="magma", interpolation="nearest")
        fig.colorbar(im, ax=axes[3], shrink=0.8, label=f"cells per {t}x{t} tile")
        axes[3].set_title("cell density (features: cell_count per tile)")
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    return fig
