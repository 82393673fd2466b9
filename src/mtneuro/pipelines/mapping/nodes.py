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
from typing import Any

import numpy as np
import pandas as pd
import torch

from mtneuro import spec
from mtneuro.config import block_value
from mtneuro.config.mapping import MappingBox, MappingParameters
from mtneuro.datasets.ome_zarr_store import BrainMap, MapLayer, MapRequest
from mtneuro.features import get_feature
from mtneuro.training import thread_limit
from mtneuro.volumes import VolumeSource, Window, open_volume

from . import engine
from .engine import MappingError, RegionModel, SegmentationModel
from .truth import dense_pixel_labels

log = logging.getLogger(__name__)

VALIDATION_COLUMNS = ("metric", "class", "value", "source")


def as_parameters(mapping: MappingParameters | Mapping[str, Any]) -> MappingParameters:
    """The typed block (Kedro's validation hands it typed; tests may pass the raw dict)."""
    return mapping if isinstance(mapping, MappingParameters) else MappingParameters.model_validate(dict(mapping))


# --- volume ------------------------------------------------------------------------------


def open_channel(volume: Any, channel: str, **extra: Any) -> VolumeSource:
    """One channel of the configured source (``volume.source``, ``volume.uris``, ``volume.options``)."""
    source = block_value(volume, "source")
    uris = block_value(volume, "uris")
    uri = block_value(block_value(uris, source), channel)
    return open_volume(str(uri), **source_options(volume), **extra)


def source_options(volume: Any) -> dict[str, Any]:
    """Options of the configured source (``VolumeParameters.source_options()``, or the raw dict's)."""
    if hasattr(volume, "source_options"):
        return dict(volume.source_options())
    options = block_value(block_value(volume, "options"), block_value(volume, "source")) or {}
    return {k: v for k, v in dict(options).items() if v is not None}


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
    mapping = as_parameters(mapping)
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


def _label_names(names: Mapping[int, str], colours: Mapping[Any, tuple[int, int, int, int]], by_name: bool) -> dict:
    return {int(v): (n, tuple(colours[n] if by_name else colours[v])) for v, n in names.items()}


def plan_brain_map(
    microstructure_model: torch.nn.Module,
    region_encoder: Any,
    region_readout: Any,
    mapping: MappingParameters,
    volume: Any,
) -> MapRequest:
    """The brain map to write: layers, blocks and the lazy computation of each block.

    Nothing is read here: the image is a lazy Dask array over the volume source.
    """
    mapping = as_parameters(mapping)
    source = open_channel(volume, "image")
    reader = engine.BlockReader(source, mapping.blocks.read_chunks_zyx)
    shape = reader.shape
    window = mapping_window(mapping, shape)  # type: ignore[arg-type]
    seg_name = str((getattr(microstructure_model, "metadata", {}) or {}).get("model", "model"))
    segmentation = SegmentationModel.from_trained(microstructure_model, seg_name)
    r = mapping.regions
    regions = RegionModel(region_encoder, region_readout, f"{r.method}/{r.config}/seed{r.seed}")
    settings = engine.BlockSettings(
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
        precision=engine.resolve_precision(mapping.compute.precision),
    )
    voxel = tuple(float(v) for v in source.voxel_size)
    origin_um = tuple(o * v for o, v in zip((window.z0, window.y0, window.x0), voxel, strict=True))
    chunks = tuple(min(c, s) for c, s in zip(mapping.blocks.chunks_zyx, window.shape, strict=True))
    blocks_zyx = tuple(min(b, s) for b, s in zip(mapping.blocks.shape_zyx, window.shape, strict=True))
    t = settings.tile_size
    tiles = (window.shape[0], -(-window.shape[1] // t), -(-window.shape[2] // t))
    n_features = len(settings.feature_names)
    spatial: dict[str, Any] = {
        "axes": ("z", "y", "x"),
        "shape": window.shape,
        "chunks": chunks,
        "scale": voxel,
        "translation": origin_um,
    }
    layers = [
        MapLayer(path="", kind="image", dtype="uint8", channel_names=("image",), **spatial),
        MapLayer(
            path="labels/microstructure",
            kind="label",
            dtype="uint8",
            label_names=_label_names(spec.PIXEL_CLASSES, engine.PIXEL_COLOURS, by_name=False),
            **spatial,
        ),
        MapLayer(
            path="labels/regions",
            kind="label",
            dtype="uint8",
            label_names=_label_names(engine.REGION_LABELS, engine.REGION_COLOURS, by_name=True),
            **spatial,
        ),
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
    windows = engine.block_windows(window, blocks_zyx)
    blocks = {}
    for key, b in windows.items():
        rel = (
            slice(b.z0 - window.z0, b.z1 - window.z0),
            slice(b.y0 - window.y0, b.y1 - window.y0),
            slice(b.x0 - window.x0, b.x1 - window.x0),
        )
        feat = (
            slice(None),
            rel[0],
            slice(rel[1].start // t, -(-rel[1].stop // t)),
            slice(rel[2].start // t, -(-rel[2].stop // t)),
        )
        blocks[key] = {"": rel, "labels/microstructure": rel, "labels/regions": rel, "features": feat}
    threads = mapping.compute.torch_threads

    def compute(key: str) -> dict[str, np.ndarray]:
        with thread_limit(threads):
            return engine.compute_block(windows[key], window, reader, segmentation, regions, settings)

    def prepare() -> None:
        with thread_limit(threads):
            radius = engine.check_halo(segmentation, settings.halo_yx)
        log.info("mapping: receptive-field radius of %s is %d voxels (halo %d)", seg_name, radius, settings.halo_yx)

    fingerprint = {
        "window": window.to_list(),
        "source": source.uri,
        "volume_shape": list(shape),
        "options": {k: str(v) for k, v in sorted(source_options(volume).items())},
        "microstructure": {
            "model": seg_name,
            "weights": _weights_digest(microstructure_model),
            "precision": settings.precision,
        },
        "regions": {
            "model": regions.name,
            "encoder": _weights_digest(getattr(region_encoder, "network", region_encoder)),
            "readout": _readout_digest(region_readout),
        },
        "parameters": mapping.model_dump(mode="json", exclude={"validation", "compute"}),
    }
    attributes = {
        "window_zyx": window.to_list(),
        "source": source.uri,
        "voxel_size_um": list(voxel),
        "microstructure_model": seg_name,
        "microstructure_setting": mapping.microstructure.setting,
        "microstructure_precision": settings.precision,
        "region_model": regions.name,
        "region_labels": {str(k): v for k, v in engine.REGION_LABELS.items()},
        "pixel_labels": {str(k): v for k, v in spec.PIXEL_CLASSES.items()},
        "features": list(settings.feature_names),
        "feature_tile_size": t,
    }
    log.info(
        "mapping: window %s (%d voxels) in %d blocks of %s",
        window.to_list(),
        int(np.prod(window.shape)),
        len(blocks),
        list(blocks_zyx),
    )
    return MapRequest(
        layers=layers,
        blocks=blocks,
        compute_block=compute,
        levels=mapping.pyramid.levels,
        downsample_z=mapping.pyramid.downsample_z,
        ngff_version=mapping.ngff_version,
        fingerprint=fingerprint,
        attributes=attributes,
        prepare=prepare,
    )


# --- validation --------------------------------------------------------------------------


def _training_boxes(ingestion: Any) -> list[Window]:
    """The Task 2 training cubes (the main cubes, absolute)."""
    cubes = block_value(ingestion, "main_cubes")
    out = []
    for region in spec.REGIONS:
        box = block_value(cubes, region)
        (z0, z1), (y0, y1), (x0, x1) = (block_value(box, a) for a in ("z", "y", "x"))
        out.append(Window(int(z0), int(z1), int(y0), int(y1), int(x0), int(x1)))
    return out


def box_distance(a: Window, b: Window) -> float:
    """Euclidean distance (voxels) between two boxes (0 when they touch or overlap)."""
    gaps = [
        max(0, lo2 - hi1 + 1, lo1 - hi2 + 1)
        for lo1, hi1, lo2, hi2 in ((a.z0, a.z1, b.z0, b.z1), (a.y0, a.y1, b.y0, b.y1), (a.x0, a.x1, b.x0, b.x1))
    ]
    return float(np.sqrt(sum(g * g for g in gaps)))


def validation_boxes(window: Window, training: list[Window], mapping: MappingParameters) -> list[Window]:
    """Boxes (``validation.box_yx`` in-plane, all slices of the window) far from every training cube,
    evenly spaced among the eligible ones, at most ``validation.max_boxes``."""
    v = mapping.validation
    s = v.box_yx
    eligible = []
    for y0 in range(window.y0, window.y1, s):
        for x0 in range(window.x0, window.x1, s):
            box = Window(window.z0, window.z1, y0, min(y0 + s, window.y1), x0, min(x0 + s, window.x1))
            if all(box_distance(box, t) >= v.min_distance_from_training for t in training):
                eligible.append(box)
    if len(eligible) > v.max_boxes:
        picks = np.linspace(0, len(eligible) - 1, v.max_boxes).round().astype(int)
        eligible = [eligible[i] for i in picks]
    return eligible


def _iou_rows(truth: np.ndarray, pred: np.ndarray, source: str) -> list[dict[str, Any]]:
    rows, ious = [], []
    for value, name in spec.PIXEL_CLASSES.items():
        t, p = truth == value, pred == value
        union = int(np.count_nonzero(t | p))
        iou = float(np.count_nonzero(t & p)) / union if union else float("nan")
        ious.append(iou)
        rows.append({"metric": "microstructure_iou", "class": name, "value": iou, "source": source})
    rows.append({"metric": "microstructure_iou", "class": "mean", "value": float(np.nanmean(ious)), "source": source})
    rows.append({"metric": "microstructure_voxels", "class": "all", "value": float(truth.size), "source": source})
    return rows


def validate_brain_map(brain_map: BrainMap, mapping: MappingParameters, volume: Any, ingestion: Any) -> pd.DataFrame:
    """Region-map accuracy against ``roi_labels`` over the window, microstructure IoU far from the
    training cubes (dense truth of the phantom; on other sources only where labelled)."""
    mapping = as_parameters(mapping)
    z0, z1, y0, y1, x0, x1 = brain_map.attributes["window_zyx"]
    window = Window(z0, z1, y0, y1, x0, x1)
    source_name = str(block_value(volume, "source"))
    rows: list[dict[str, Any]] = []
    # Regions: every n-th voxel in y and x of every slice.
    step = mapping.validation.region_sample_step
    roi = open_channel(volume, "roi_labels")
    values = block_value(volume, "region_label_values")
    # Values outside the tissue (mapping.validation.unlabelled_values, e.g. 0, which the
    # authors' groupings count as CTX) are not region truth.
    ignored = {int(v) for v in mapping.validation.unlabelled_values}
    lut = {
        int(v): i + 1
        for i, r in enumerate(spec.REGIONS)
        for v in np.atleast_1d(block_value(values, r))
        if int(v) not in ignored
    }
    regions = brain_map.layers["regions"][0]
    correct = np.zeros(len(spec.REGIONS) + 1, np.int64)
    total = np.zeros(len(spec.REGIONS) + 1, np.int64)
    for z in range(window.z0, window.z1):
        truth_raw = roi.read(Window(z, z + 1, window.y0, window.y1, window.x0, window.x1))[0][::step, ::step]
        truth = np.zeros(truth_raw.shape, np.int64)
        for value, label in lut.items():
            truth[truth_raw == value] = label
        pred = np.asarray(regions[z - window.z0, ::step, ::step].compute())
        for label in range(1, len(spec.REGIONS) + 1):
            mask = truth == label
            total[label] += int(mask.sum())
            correct[label] += int((pred[mask] == label).sum())
    all_total = int(total.sum())
    rows.append(
        {
            "metric": "region_accuracy",
            "class": "all",
            "value": float(correct.sum()) / all_total if all_total else float("nan"),
            "source": source_name,
        }
    )
    for label, name in engine.REGION_LABELS.items():
        rows.append(
            {
                "metric": "region_recall",
                "class": name,
                "value": float(correct[label]) / total[label] if total[label] else float("nan"),
                "source": source_name,
            }
        )
    rows.append(
        {"metric": "region_voxels", "class": "all", "value": float(all_total * step * step), "source": source_name}
    )
    # Microstructure: boxes far from every training cube.
    boxes = validation_boxes(window, _training_boxes(ingestion), mapping)
    micro = brain_map.layers["microstructure"][0]
    truths, preds = [], []
    dense = mapping.validation.dense_truth and source_name == "phantom"
    # The phantom's dense truth (its option dense_labels=True: every structure it draws, also
    # outside the main cubes); other sources: their pixel_labels (0 outside labelled cubes).
    labels = open_channel(volume, "pixel_labels", **({"dense_labels": True} if dense else {}))
    for box in boxes:
        truth = dense_pixel_labels(labels, box) if dense else np.asarray(labels.read(box))
        pred = np.asarray(
            micro[
                box.z0 - window.z0 : box.z1 - window.z0,
                box.y0 - window.y0 : box.y1 - window.y0,
                box.x0 - window.x0 : box.x1 - window.x0,
            ].compute()
        )
        truths.append(truth.astype(np.uint8).ravel())
        preds.append(pred.ravel())
    boxes_label = (
        f"{source_name} ({'dense truth' if dense else 'pixel_labels'}), {len(boxes)} boxes >= "
        f"{mapping.validation.min_distance_from_training} voxels from the training cubes"
    )
    if boxes:
        rows += _iou_rows(np.concatenate(truths), np.concatenate(preds), boxes_label)
    else:
        log.warning(
            "mapping: no box of the window lies %d voxels from every training cube: no microstructure IoU",
            mapping.validation.min_distance_from_training,
        )
    table = pd.DataFrame(rows, columns=list(VALIDATION_COLUMNS))
    log.info("mapping validation:\n%s", table.to_string(index=False))
    return table


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
        [(0, 0, 0, 0)] + [tuple(c / 255 for c in engine.REGION_COLOURS[r]) for r in spec.REGIONS]
    )
    pixel_cmap = ListedColormap([tuple(c / 255 for c in engine.PIXEL_COLOURS[v]) for v in sorted(engine.PIXEL_COLOURS)])
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
