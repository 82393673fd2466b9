"""Semantic features of a labelled image: the one definition Task 3 (probing) and the report use.

Each feature is registered once (:mod:`mtneuro.features.registry`) with its name, report label,
description, dtype and function; :mod:`mtneuro.features.definitions` holds the five features of
the paper and documents them. ``feature_names()`` gives their order in every table. Every module
of this package is imported on the registry's first use (:func:`discover`): a new feature is a
new module here plus its name in ``probing.features``.

NaN means "undefined for this image": the Task 3 read-out leaves such images out of the fit of
that feature (and only of that feature). No constant is substituted, because any constant (0, the
image size...) would be read as a real, extreme measurement by the regression.

These definitions avoid the defects of the authors' reference code: the nearest-neighbour
distance never includes a cell's zero distance to itself (which halves the value there), an image
without vessel pixels gives a vessel fraction of 0 instead of crashing, and every statistic is
returned under its own name (no positional rows that can be swapped).

Two cell definitions (:mod:`mtneuro.features.image`): this project's ``cell_count``,
``mean_cell_area`` and ``mean_nn_distance`` take the cells of the image itself (4-connected 2D
components); ``cell_count_authors``, ``mean_cell_area_authors`` and ``mean_nn_distance_authors``
(:mod:`mtneuro.features.authors`) take the authors' cells, 3D components of the whole cube
(6-connected) cut into images afterwards (MTNeuro ``annots/features.py``, lines 19-20). The
paper's Table 3 numbers are compared with the latter; everything else about the features (no
self-distance, NaN instead of a sentinel) stays this project's.

The image unit. Features and embeddings are always computed on the same pixels: the probing
pipeline cuts each slice into images with :func:`tiles` (parameter ``probing.images.tile_size``)
and passes exactly those images to the frozen encoders. The authors' code probes the four
128x128 quadrants of every 256x256 slice of the four main cubes (5760 images): the paper profile
does the same (``tile_size: 128``). In the base (CPU) profile a slice is 128x128, the size of
those quadrants, and is one image (``tile_size: null``, 1440 images), so the features there are
on the scale of the authors' and of the real-mask statistics of ``prasad2020-sample``. The
features of an image depend only on its own pixels. The Task 3 table states the unit (column
``image_unit``).

Two paths, same values: :func:`image_features` measures one image; :class:`LabelStack` measures
every image of a cube at once (the probing pipeline's path: 5760 quadrants in under a second,
``benchmarks/bench_task3_features.py``) and hands out :class:`StackImage` views to the same
feature functions.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from mtneuro.features.image import (
    CELL_CONNECTIVITY,
    LabelImage,
    cell_components,
    label_cells_3d,
    nearest_neighbour_distances,
    pixel_fraction,
)
from mtneuro.features.registry import (
    SemanticFeature,
    UnknownFeatureError,
    discover,
    feature_names,
    get_feature,
    register,
    registered_features,
    semantic_feature,
)
from mtneuro.features.stack import LabelStack, StackImage
from mtneuro.features.tiles import tiles


def image_features(
    labels: np.ndarray,
    connectivity: int = CELL_CONNECTIVITY,
    names: Iterable[str] | None = None,
    cell_ids: np.ndarray | None = None,
) -> dict[str, float]:
    """The features ``names`` (default: every registered one, in order) of one label image;
    ``cell_ids``: its cut of the authors' 3D cell labelling (:func:`label_cells_3d`)."""
    return feature_values(LabelImage(labels, connectivity, cell_ids), names)


def feature_values(image: LabelImage, names: Iterable[str] | None = None) -> dict[str, float]:
    """The features ``names`` (default: every registered one) of one image, alone or a
    :class:`LabelStack` image."""
    return {name: get_feature(name)(image) for name in (feature_names() if names is None else names)}


__all__ = [
    "CELL_CONNECTIVITY",
    "LabelImage",
    "LabelStack",
    "SemanticFeature",
    "StackImage",
    "UnknownFeatureError",
    "cell_components",
    "discover",
    "feature_names",
    "feature_values",
    "get_feature",
    "image_features",
    "label_cells_3d",
    "nearest_neighbour_distances",
    "pixel_fraction",
    "register",
    "registered_features",
    "semantic_feature",
    "tiles",
]
