"""A region model for maps (``mapping.regions.model: section``): trained on the volume's own labels.

The region channel (``roi_labels``) labels every voxel of the volume, not only the Task 1
cubes, so a map's region network can learn every brain area the map crosses (the Task 1 cubes
show four; a slab through the middle of the volume also crosses hypothalamus, TRN, internal
capsule and corpus callosum, which the authors' grouping counts as ZI, VP, ZI and STR). The
patches come from slices held out from the mapped window (at least ``min_gap_z`` slices away),
across the whole plane, tissue only, drawn from a seed; the network is the Task 1 registry's
``supervised`` method trained by its own trainer (:func:`train_network_on_images`). The map's
region accuracy is then a z-held-out measure: other slices of the same areas, not other brains.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from mtneuro import spec
from mtneuro.classification_methods import method_settings
from mtneuro.config import TrainingParameters
from mtneuro.config.classification import ClassificationParameters
from mtneuro.config.mapping import MappingParameters
from mtneuro.config.volume import VolumeParameters
from mtneuro.pipelines.classification.nodes import (
    _method,
    hardware_settings,
    supervised_readout,
    train_network_on_images,
)
from mtneuro.volumes import Window

from .engine import MappingError, RegionModel
from .nodes import _region_truth_lut, mapping_window, open_channel

log = logging.getLogger(__name__)

#: What the region-model selection record calls a section model (``run`` of the record).
SECTION_RUN = "section.{method}.seed{seed}"


def section_requests(mapping: MappingParameters, window: Window, volume_shape: tuple[int, int, int]) -> list[Window]:
    """The volume reads the patches come from: per distance ``d``, ``depth`` slices below
    ``[z0 - d - depth, z0 - d)`` and above ``[z1 + d, z1 + d + depth)`` the mapped window (clipped
    to the volume; empty ones dropped), across the plane or ``extent_yx``."""
    s = mapping.regions.section
    nz, ny, nx = volume_shape
    y0, y1, x0, x1 = (0, ny, 0, nx) if s.extent_yx is None else (*s.extent_yx.y, *s.extent_yx.x)
    if y1 > ny or x1 > nx:
        raise MappingError(
            f"Parameter 'mapping.regions.section.extent_yx' ({[y0, y1]}, {[x0, x1]}) exceeds the volume's plane "
            f"({ny} x {nx}); shrink it or set it to null (the whole plane)."
        )
    requests = []
    for d in s.distances_z:
        for lo, hi in ((window.z0 - d - s.depth, window.z0 - d), (window.z1 + d, window.z1 + d + s.depth)):
            lo, hi = max(0, lo), min(nz, hi)
            if hi > lo:
                requests.append(Window(lo, hi, y0, y1, x0, x1))
    if not requests:
        raise MappingError(
            f"Parameter 'mapping.regions.model' is 'section', but no slice of the volume ({nz} slices) lies "
            f"{min(s.distances_z)} or more slices from the mapped window z [{window.z0}, {window.z1}) "
            "(mapping.regions.section.distances_z): a section model must not train on the slices it maps. "
            "Map a thinner window, or set mapping.regions.model: best (the Task 1 runs)."
        )
    return requests


def _cell_classes(labels: np.ndarray, lut: dict[int, int], cell: int, step: int, patch: int) -> tuple[np.ndarray, ...]:
    """Candidate centres of one labelled plane: (y, x, class 0..3, fraction of the ``cell`` x
    ``cell`` square around the centre that holds that class), centres ``patch // 2`` inside."""
    classes = np.full(labels.shape, -1, np.int8)
    for value, label in lut.items():
        classes[labels == value] = label - 1
    ny, nx = labels.shape
    half = patch // 2
    ys = np.arange(half, ny - (patch - half) + 1, step)
    xs = np.arange(half, nx - (patch - half) + 1, step)
    if not len(ys) or not len(xs):
        return (np.zeros(0, np.int64),) * 3 + (np.zeros(0),)
    counts = np.zeros((len(spec.REGIONS), len(ys), len(xs)), np.int64)
    c0 = cell // 2
    for k in range(len(spec.REGIONS)):
        integral = np.zeros((ny + 1, nx + 1), np.int64)
        integral[1:, 1:] = np.cumsum(np.cumsum(classes == k, axis=0), axis=1)
        ya, yb = np.clip(ys - c0, 0, ny), np.clip(ys - c0 + cell, 0, ny)
        xa, xb = np.clip(xs - c0, 0, nx), np.clip(xs - c0 + cell, 0, nx)
        counts[k] = integral[yb][:, xb] - integral[ya][:, xb] - integral[yb][:, xa] + integral[ya][:, xa]
    best = counts.argmax(axis=0)
    fraction = counts.max(axis=0) / float(cell * cell)
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    return yy.ravel(), xx.ravel(), best.ravel(), fraction.ravel()


def sample_section_patches(mapping: MappingParameters, volume: VolumeParameters) -> dict[str, Any]:
    """Patches of the image with their region class (``region_section_patches``).

    Returns ``images`` (N, P, P) uint8, ``labels`` (N,) 0..3 (``spec.REGIONS``), the absolute
    centres ``z``, ``y``, ``x``, the ``roi_labels`` value at each centre (``value``), the
    ``requests`` read and the mapped ``window``. Classes follow ``volume.region_label_values``
    (the grouping of Task 1); ``validation.unlabelled_values`` (outside the tissue) give none.
    """
    r, s = mapping.regions, mapping.regions.section
    image_source = open_channel(volume, "image")
    roi_source = open_channel(volume, "roi_labels")
    shape = tuple(int(v) for v in image_source.shape)
    window = mapping_window(mapping, shape)  # type: ignore[arg-type]
    requests = section_requests(mapping, window, shape)  # type: ignore[arg-type]
    lut = _region_truth_lut(volume, {int(v) for v in mapping.validation.unlabelled_values})
    images_read: list[np.ndarray] = []
    #: one row per candidate: plane (index into images_read), y, x (in the plane), class, z, roi value
    candidates: list[np.ndarray] = []
    start = time.perf_counter()
    for request in requests:
        image = image_source.read(request)
        roi = roi_source.read(request)
        for k in range(0, request.shape[0], s.slice_step):
            ys, xs, cls, fraction = _cell_classes(roi[k], lut, r.stride, s.candidate_step, r.patch_size)
            keep = fraction >= s.min_cell_fraction
            n = int(keep.sum())
            plane = np.full(n, len(images_read))
            ys, xs = ys[keep], xs[keep]
            value = roi[k][ys, xs].astype(np.int64)
            candidates.append(np.stack([plane, ys, xs, cls[keep], np.full(n, request.z0 + k), value], axis=1))
            images_read.append(np.ascontiguousarray(image[k]))
        del image, roi
    read_seconds = time.perf_counter() - start
    table = np.concatenate(candidates) if candidates else np.zeros((0, 6), np.int64)
    rng = np.random.default_rng(s.seed)
    chosen = []
    for c in range(len(spec.REGIONS)):
        rows = np.flatnonzero(table[:, 3] == c)
        n = min(s.patches_per_class, len(rows))
        chosen.append(np.sort(rng.choice(rows, size=n, replace=False)) if n else rows[:0])
    picked = table[np.concatenate(chosen)]
    half, p = r.patch_size // 2, r.patch_size
    images = np.empty((len(picked), p, p), np.uint8)
    for i, (plane, y, x) in enumerate(picked[:, :3]):
        images[i] = images_read[plane][y - half : y - half + p, x - half : x - half + p]
    oy, ox = requests[0].y0, requests[0].x0
    counts = {region: int((picked[:, 3] == c).sum()) for c, region in enumerate(spec.REGIONS)}
    if not len(picked):
        raise MappingError(
            f"mapping.regions.section: no tissue patch in the slices read ({[w.to_list() for w in requests]}); "
            "widen mapping.regions.section.extent_yx (null: the whole plane) or lower min_cell_fraction."
        )
    absent = [k for k, v in counts.items() if not v]
    if absent:  # a window without an area: the network never predicts it
        log.warning("mapping: no section patch of %s in %s", absent, [w.to_list() for w in requests])
    log.info(
        "mapping: %d section patches (%s) from %d requests %s, read in %.1f s",
        len(picked),
        counts,
        len(requests),
        [w.to_list() for w in requests],
        read_seconds,
    )
    return {
        "images": images,
        "labels": picked[:, 3].astype(np.int64),
        "z": picked[:, 4].astype(np.int64),
        "y": (picked[:, 1] + oy).astype(np.int64),
        "x": (picked[:, 2] + ox).astype(np.int64),
        "value": picked[:, 5].astype(np.int64),
        "window": window.to_list(),
        "requests": [w.to_list() for w in requests],
        "read_seconds": read_seconds,
    }


def train_section_region_model(
    region_section_patches: dict[str, Any],
    mapping: MappingParameters,
    classification: ClassificationParameters,
    training: TrainingParameters,
) -> tuple[Any, Any, dict[str, Any]]:
    """The section region network (``mapping.regions.section.method``, a Task 1 ``supervised``
    method, its own trainer and encoder settings), its read-out and the selection record."""
    s = mapping.regions.section
    method = _method(s.method, ("supervised",), "mapping.regions.section.method")
    settings = method_settings(classification, method.name)
    if s.epochs is not None:
        settings = settings.model_copy(update={"epochs": int(s.epochs)})
    images = region_section_patches["images"]
    labels = np.asarray(region_section_patches["labels"], np.int64)
    hardware = hardware_settings(classification, training)
    start = time.perf_counter()
    encoder, module, _ = train_network_on_images(
        images,
        labels,
        classification,
        hardware,
        method,
        s.seed,
        config="section",
        source="roi_labels patches",
        settings=settings,
    )
    readout = supervised_readout(module)
    seconds = time.perf_counter() - start
    run = SECTION_RUN.format(method=method.name, seed=s.seed)
    predicted = RegionModel(encoder, readout, run).predict(images, mapping.regions.batch_size)
    train_accuracy = float(np.mean(predicted == labels)) if len(labels) else float("nan")
    requests = region_section_patches["requests"]
    selection = {
        "run": run,
        "rule": (
            f"trained for the map on {len(labels)} roi_labels patches of slices {[[w[0], w[1]] for w in requests]}, "
            f">= {s.min_gap_z} slices from the mapped window (z-held-out)"
        ),
        "validation_accuracy": {},
        "validation_slices": 0,
        "validation_cubes": [],
        "section_patches": len(labels),
        "section_patches_per_class": {r: int((labels == c).sum()) for c, r in enumerate(spec.REGIONS)},
        "section_requests": requests,
        "section_train_accuracy": train_accuracy,
    }  # no timings: the record is part of the store's metadata, which a resumed run must reproduce
    log.info(
        "mapping: section region model %s trained on %d patches in %.1f s (training accuracy %.3f)",
        run,
        len(labels),
        seconds,
        train_accuracy,
    )
    return encoder, readout, selection
