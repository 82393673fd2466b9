"""The semantic features of Task 3, in the order of every table (the paper's Table 3 columns).

Every feature is computed from the microstructure labels of one image (spec values
0 background, 1 blood vessel, 2 cell, 3 myelinated axon):

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

To add a feature, decorate a function of a :class:`~mtneuro.features.image.LabelImage` with
:func:`~mtneuro.features.registry.semantic_feature` in a new module of this package (found and
imported by :func:`~mtneuro.features.registry.discover`; nothing else to edit) and list its name
in ``probing.features``. This module is imported first, so the paper's five keep their order.
"""

from __future__ import annotations

from mtneuro import spec
from mtneuro.features.image import LabelImage, mean_or_nan
from mtneuro.features.registry import semantic_feature


@semantic_feature(
    "vessel_fraction", label="Vessels", description="fraction of pixels labelled blood vessel (0-1)", dtype="float64"
)
def vessel_fraction(image: LabelImage) -> float:
    return image.fraction(spec.VESSEL)


@semantic_feature(
    "axon_fraction", label="Axons", description="fraction of pixels labelled myelinated axon (0-1)", dtype="float64"
)
def axon_fraction(image: LabelImage) -> float:
    return image.fraction(spec.AXON)


@semantic_feature("cell_count", label="Cell Count", description="number of 4-connected cell components", dtype="int64")
def cell_count(image: LabelImage) -> int:
    return len(image.cells[0])


@semantic_feature(
    "mean_cell_area", label="Cell Size", description="mean cell area (pixels); NaN without cells", dtype="float64"
)
def mean_cell_area(image: LabelImage) -> float:
    return mean_or_nan(image.cells[0])


@semantic_feature(
    "mean_nn_distance",
    label="Dist (k=1)",
    description="mean distance from each cell centroid to the nearest other cell centroid (pixels); "
    "NaN with fewer than two cells",
    dtype="float64",
)
def mean_nn_distance(image: LabelImage) -> float:
    return mean_or_nan(image.cell_nn_distances)
