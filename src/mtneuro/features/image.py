"""One label image and the measurements several features share (cells, their centroids).

Features take a :class:`LabelImage`; what more than one feature needs (the connected cell
components, the nearest-neighbour distances of their centroids) is computed once per image.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from mtneuro import spec

#: The default connectivity of cells: 4 (edge neighbours), as in the dataset's statistics.
CELL_CONNECTIVITY = 4

_STRUCTURES = {
    4: ndimage.generate_binary_structure(2, 1),
    8: ndimage.generate_binary_structure(2, 2),
}


def check_labels(labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"Expected one 2-D label image (H, W), got shape {labels.shape}")
    if labels.size == 0:
        raise ValueError("Empty label image")
    return labels


def pixel_fraction(labels: np.ndarray, value: int) -> float:
    """Fraction of the pixels of ``labels`` equal to ``value`` (0 when there are none)."""
    labels = check_labels(labels)
    return float(np.count_nonzero(labels == value)) / labels.size


def cell_components(labels: np.ndarray, connectivity: int = CELL_CONNECTIVITY) -> tuple[np.ndarray, np.ndarray]:
    """Areas ``(n,)`` and centroids ``(n, 2)`` (row, column) of the cells of one image.

    Cells are the connected components of label 2 with the given connectivity (4 or 8).
    """
    labels = check_labels(labels)
    if connectivity not in _STRUCTURES:
        raise ValueError(f"connectivity must be 4 or 8, got {connectivity!r}")
    components, n = ndimage.label(labels == spec.CELL, structure=_STRUCTURES[connectivity])
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros((0, 2), dtype=np.float64)
    flat = components.ravel()
    areas = np.bincount(flat, minlength=n + 1)[1:]
    rows, cols = np.indices(labels.shape)
    sum_r = np.bincount(flat, weights=rows.ravel(), minlength=n + 1)[1:]
    sum_c = np.bincount(flat, weights=cols.ravel(), minlength=n + 1)[1:]
    centroids = np.column_stack([sum_r / areas, sum_c / areas])
    return areas.astype(np.int64), centroids


def nearest_neighbour_distances(points: np.ndarray) -> np.ndarray:
    """Distance from each point to its nearest *other* point (k = 1, itself excluded).

    Empty for fewer than two points. Coincident points have distance 0 to each other.
    """
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(points) < 2:
        return np.zeros(0, dtype=np.float64)
    # k=2: the first neighbour of every point is the point itself (distance 0).
    distances, _ = cKDTree(points).query(points, k=2)
    return distances[:, 1]


class LabelImage:
    """The microstructure labels ``(H, W)`` of one image, with shared measurements cached."""

    def __init__(self, labels: np.ndarray, connectivity: int = CELL_CONNECTIVITY) -> None:
        self.labels = check_labels(labels)
        if connectivity not in _STRUCTURES:
            raise ValueError(f"connectivity must be 4 or 8, got {connectivity!r}")
        self.connectivity = connectivity

    def fraction(self, value: int) -> float:
        return pixel_fraction(self.labels, value)

    @cached_property
    def cells(self) -> tuple[np.ndarray, np.ndarray]:
        """Areas and centroids of the cells (:func:`cell_components`)."""
        return cell_components(self.labels, self.connectivity)

    @cached_property
    def cell_nn_distances(self) -> np.ndarray:
        """Distance from each cell centroid to the nearest other one."""
        return nearest_neighbour_distances(self.cells[1])
