"""One label image and the measurements several features share (cells, their centroids).

Features take a :class:`LabelImage`; what more than one feature needs (the connected cell
components, the nearest-neighbour distances of their centroids) is computed once per image.

Two definitions of a cell:

* **this project's** (:attr:`LabelImage.cells`): a connected component of cell pixels *of the
  image itself*, 4-connected (``probing.cell_connectivity``);
* **the authors'** (:attr:`LabelImage.cells_authors`): a connected component of cell voxels of the
  *whole stack* (all slices of the cube), 6-connected in 3D, labelled *before* the stack is cut
  into images (MTNeuro ``annots/features.py``, lines 19-20: ``cc3d.connected_components(...,
  connectivity=6)`` on the downloaded cube, then quadrants are cut, lines 25-36, and
  ``skimage.measure.regionprops`` measures each label inside a quadrant). A cell of an image is
  then every 3D label present in it; two pieces of one image joined through other slices are one
  cell (area and centroid over both pieces). :func:`label_cells_3d` is that labelling
  (``scipy.ndimage.label`` with the 6-connected 3D structure, which is what cc3d's
  ``connectivity=6`` computes).
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
#: The authors' 3D cell connectivity: 6 (face neighbours), cc3d ``connectivity=6``.
AUTHORS_CELL_CONNECTIVITY_3D = 6
_STRUCTURE_3D_6 = ndimage.generate_binary_structure(3, 1)


def label_cells_3d(pixel_labels: np.ndarray) -> np.ndarray:
    """The authors' cells of a stack ``(Z, H, W)``: 6-connected components of label 2 over all
    slices, as int32 ids (0: no cell), to be cut into images afterwards."""
    stack = np.asarray(pixel_labels)
    if stack.ndim != 3:
        raise ValueError(f"Expected a stack of label images (Z, H, W), got shape {stack.shape}")
    ids, _ = ndimage.label(stack == spec.CELL, structure=_STRUCTURE_3D_6, output=np.int32)
    return ids


def labelled_cells(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Areas ``(n,)`` and centroids ``(n, 2)`` of the labelled cells of one image ``ids (H, W)``
    (every distinct nonzero id is one cell, wherever its pixels lie in the image)."""
    ids = np.asarray(ids)
    rows, cols = np.nonzero(ids)
    if len(rows) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros((0, 2), dtype=np.float64)
    _, inverse, areas = np.unique(ids[rows, cols], return_inverse=True, return_counts=True)
    sum_r = np.bincount(inverse, weights=rows, minlength=len(areas))
    sum_c = np.bincount(inverse, weights=cols, minlength=len(areas))
    return areas.astype(np.int64), np.column_stack([sum_r / areas, sum_c / areas])


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


def check_connectivity(connectivity: int) -> int:
    if connectivity not in _STRUCTURES:
        raise ValueError(f"connectivity must be 4 or 8, got {connectivity!r}")
    return connectivity


def cell_components(labels: np.ndarray, connectivity: int = CELL_CONNECTIVITY) -> tuple[np.ndarray, np.ndarray]:
    """Areas ``(n,)`` and centroids ``(n, 2)`` (row, column) of the cells of one image.

    Cells are the connected components of label 2 with the given connectivity (4 or 8).
    """
    labels = check_labels(labels)
    check_connectivity(connectivity)
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
    """The microstructure labels ``(H, W)`` of one image, with shared measurements cached.

    ``cell_ids``: the image's cut of the authors' 3D cell labelling of its stack
    (:func:`label_cells_3d`); without it, the image is a stack of one slice, whose 6-connected 3D
    components are its 4-connected 2D ones.
    """

    def __init__(
        self, labels: np.ndarray, connectivity: int = CELL_CONNECTIVITY, cell_ids: np.ndarray | None = None
    ) -> None:
        self.labels = check_labels(labels)
        self.connectivity = check_connectivity(connectivity)
        if cell_ids is not None and np.shape(cell_ids) != self.labels.shape:
            raise ValueError(f"cell_ids of shape {np.shape(cell_ids)} for a label image of shape {self.labels.shape}")
        self._cell_ids = cell_ids

    @property
    def cell_ids(self) -> np.ndarray | None:
        return self._cell_ids

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

    @cached_property
    def cells_authors(self) -> tuple[np.ndarray, np.ndarray]:
        """Areas and centroids of the authors' cells (3D labels present in the image)."""
        if self.cell_ids is None:
            return cell_components(self.labels, 4)
        return labelled_cells(self.cell_ids)

    @cached_property
    def cell_nn_distances_authors(self) -> np.ndarray:
        """Distance from each of the authors' cell centroids to the nearest other one."""
        return nearest_neighbour_distances(self.cells_authors[1])


def mean_or_nan(values: np.ndarray) -> float:
    """The mean of a per-cell measurement; NaN where the image has none (no cells, one cell)."""
    # sum / n is what ndarray.mean computes, without its overhead (called once per image)
    return float(values.sum() / len(values)) if len(values) else float("nan")
