"""Semantic features of a labelled image: the one definition Task 3 (probing) uses.

Every feature is computed from the microstructure labels of one image (spec values
0 background, 1 blood vessel, 2 cell, 3 myelinated axon), as a 2-D array ``(H, W)``:

``vessel_fraction``
    Fraction of the image's pixels labelled vessel (1), in [0, 1] (the paper writes it as a
    percentage; R^2 does not depend on that scale). An image without any vessel pixel has 0.
``axon_fraction``
    Fraction of the image's pixels labelled myelinated axon (3), in [0, 1].
``cell_count``
    Number of cells. A cell is a connected component of cell pixels (label 2) with
    **4-connectivity** (pixels touching by an edge; diagonal contact does not join two cells).
    Cells cut by the image border count with their visible part. 0 for an image without cells.
``mean_cell_area``
    Mean area of the image's cells in pixels (its cell pixels divided by its cell count).
    **NaN** for an image without cells.
``mean_nn_distance``
    For each cell, the Euclidean distance (pixels) from its centroid (mean row and column of its
    pixels) to the centroid of the nearest *other* cell (k = 1, the cell itself excluded); the
    feature is the mean of these distances over the image's cells. **NaN** for an image with
    fewer than two cells (the distance is undefined).

NaN means "undefined for this image": the Task 3 read-out leaves such images out of the fit of
that feature (and only of that feature). No constant is substituted, because any constant (0, the
image size...) would be read as a real, extreme measurement by the regression.

These definitions avoid the defects of the authors' reference code: the nearest-neighbour
distance never includes a cell's zero distance to itself (which halves the value there), an image
without vessel pixels gives a vessel fraction of 0 instead of crashing, and every statistic is
returned under its own name (no positional rows that can be swapped).

The image unit. Features and embeddings are always computed on the same pixels: the probing
pipeline cuts each slice into images with :func:`tiles` (parameter ``probing.images.tile_size``)
and passes exactly those images to the frozen encoders. The default is the **whole slice**
(``tile_size: null``): the Task 1 encoders are trained on whole slices, and the paper probes the
1440 slices of the four main cubes. In the base (CPU) profile a slice is 128x128, the size of the
reference code's quadrants, so the features there are on the same scale as the real-mask
statistics of ``prasad2020-sample``; in the paper profile a slice is 256x256 (set
``tile_size: 128`` to probe the reference code's four quadrants per slice instead). The features
of an image depend only on its own pixels.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from mtneuro import spec

#: Feature names, in the order of every table (they match ``mtneuro.paper_results``).
FEATURES: tuple[str, ...] = (
    "vessel_fraction",
    "axon_fraction",
    "cell_count",
    "mean_cell_area",
    "mean_nn_distance",
)

#: Human-readable name and unit of each feature.
FEATURE_DESCRIPTIONS: dict[str, str] = {
    "vessel_fraction": "fraction of pixels labelled blood vessel (0-1)",
    "axon_fraction": "fraction of pixels labelled myelinated axon (0-1)",
    "cell_count": "number of 4-connected cell components",
    "mean_cell_area": "mean cell area (pixels); NaN without cells",
    "mean_nn_distance": "mean distance from each cell centroid to the nearest other cell centroid (pixels); "
    "NaN with fewer than two cells",
}

#: The default connectivity of cells: 4 (edge neighbours), as in the dataset's statistics.
CELL_CONNECTIVITY = 4

_STRUCTURES = {
    4: ndimage.generate_binary_structure(2, 1),
    8: ndimage.generate_binary_structure(2, 2),
}


def _check_labels(labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"Expected one 2-D label image (H, W), got shape {labels.shape}")
    if labels.size == 0:
        raise ValueError("Empty label image")
    return labels


def pixel_fraction(labels: np.ndarray, value: int) -> float:
    """Fraction of the pixels of ``labels`` equal to ``value`` (0 when there are none)."""
    labels = _check_labels(labels)
    return float(np.count_nonzero(labels == value)) / labels.size


def vessel_fraction(labels: np.ndarray) -> float:
    return pixel_fraction(labels, spec.VESSEL)


def axon_fraction(labels: np.ndarray) -> float:
    return pixel_fraction(labels, spec.AXON)


def cell_components(labels: np.ndarray, connectivity: int = CELL_CONNECTIVITY) -> tuple[np.ndarray, np.ndarray]:
    """Areas ``(n,)`` and centroids ``(n, 2)`` (row, column) of the cells of one image.

    Cells are the connected components of label 2 with the given connectivity (4 or 8).
    """
    labels = _check_labels(labels)
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


def image_features(labels: np.ndarray, connectivity: int = CELL_CONNECTIVITY) -> dict[str, float]:
    """All features of one label image, keyed by :data:`FEATURES` (see the module docstring)."""
    labels = _check_labels(labels)
    areas, centroids = cell_components(labels, connectivity)
    nn = nearest_neighbour_distances(centroids)
    return {
        "vessel_fraction": vessel_fraction(labels),
        "axon_fraction": axon_fraction(labels),
        "cell_count": int(len(areas)),
        "mean_cell_area": float(areas.mean()) if len(areas) else float("nan"),
        "mean_nn_distance": float(nn.mean()) if len(nn) else float("nan"),
    }


def tiles(height: int, width: int, tile_size: int | None) -> Iterator[tuple[int, int, int, int]]:
    """Image units of one ``height x width`` slice as ``(y0, x0, tile_h, tile_w)``.

    ``tile_size`` None: the whole slice is one image. An integer: non-overlapping
    ``tile_size x tile_size`` tiles in row-major order (e.g. 128 gives the reference code's four
    quadrants of a 256x256 slice); it must divide both sides.
    """
    if tile_size is None:
        yield 0, 0, height, width
        return
    size = int(tile_size)
    if size <= 0 or height % size or width % size:
        raise ValueError(
            f"Parameter 'probing.images.tile_size' = {tile_size} must divide the slice size {height}x{width} "
            "(or be null for whole slices)."
        )
    for y0 in range(0, height, size):
        for x0 in range(0, width, size):
            yield y0, x0, size, size
