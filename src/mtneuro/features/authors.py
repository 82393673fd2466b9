"""The cell features with the authors' labelling: the columns the paper's Table 3 is compared with.

Same definitions as ``cell_count``, ``mean_cell_area`` and ``mean_nn_distance``
(:mod:`mtneuro.features.definitions`: NaN where undefined, nearest *other* cell), but a cell is a
6-connected 3D component of the whole cube's cell voxels, labelled before the cube is cut into
images, as the MTNeuro code labels cells (``annots/features.py``, lines 19-20, cc3d with
``connectivity=6``; quadrants cut afterwards, lines 25-36). A cell whose section falls into an
image in two pieces (joined through other slices) is one cell there. The probing pipeline measures
each cube's images together (:class:`mtneuro.features.LabelStack`, the labelling of
:func:`mtneuro.features.label_cells_3d`); an image given alone with its cut of that labelling
gives the same values, and without it is a one-slice stack (its 4-connected components).

What is *not* copied from the authors' code (the report's Table 3 notes say so): their
nearest-neighbour mean includes each cell's zero distance to itself (``KDTree.query(k=2)``
averaged over both columns, which halves the value), and an image with fewer than two cells gets
the sentinel 64 instead of "undefined"; with many such quadrants that constant dominates the
feature's variance.
"""

from __future__ import annotations

from mtneuro.features.image import LabelImage, mean_or_nan
from mtneuro.features.registry import semantic_feature


@semantic_feature(
    "cell_count_authors",
    label="Cell Count (3D labels)",
    description="number of cells, a cell being a 6-connected 3D component of the cube's cell voxels "
    "(the authors' labelling) present in the image",
    dtype="int64",
)
def cell_count_authors(image: LabelImage) -> int:
    return len(image.cells_authors[0])


@semantic_feature(
    "mean_cell_area_authors",
    label="Cell Size (3D labels)",
    description="mean area (pixels) in the image of its cells with the authors' 3D labelling; NaN without cells",
    dtype="float64",
)
def mean_cell_area_authors(image: LabelImage) -> float:
    return mean_or_nan(image.cells_authors[0])


@semantic_feature(
    "mean_nn_distance_authors",
    label="Dist (k=1, 3D labels)",
    description="mean distance (pixels) from each cell centroid to the nearest other one, cells with the "
    "authors' 3D labelling; NaN with fewer than two cells",
    dtype="float64",
)
def mean_nn_distance_authors(image: LabelImage) -> float:
    return mean_or_nan(image.cell_nn_distances_authors)
