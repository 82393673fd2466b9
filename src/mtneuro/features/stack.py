"""Every image of a stack measured at once: the batched path of :class:`~mtneuro.features.image.LabelImage`.

Why: per image, labelling and measuring costs about a millisecond of call overheads, and Task 3
has 5760 images. Here a cube's cell pixels become horizontal runs, each cell definition is the
connected components of one graph of overlapping runs, and every image's areas, centroids and
nearest-neighbour distances come from a few array operations. :class:`StackImage` is a
:class:`LabelImage` that reads them, so registered features run unchanged on either path, with
the same values (``tests/pipelines/probing/test_stack_features.py``).

Rows are cut into segments one image wide, each followed by one padding position: runs never
cross an image's side, and a run's position ``segment * (width + 1) + x`` sorts runs in the
raster order of ``scipy.ndimage.label``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from mtneuro import spec
from mtneuro.features.image import CELL_CONNECTIVITY, LabelImage, check_connectivity
from mtneuro.features.tiles import tiles

#: Above this many cells in one image, a KD-tree beats comparing every pair.
_BRUTE_FORCE_MAX_CELLS = 256


@dataclass(frozen=True, eq=False)
class StackCells:
    """The cells of every image of a stack, image after image: image ``i`` owns the cells
    ``offsets[i]:offsets[i + 1]``, in the order the per-image path lists them."""

    areas: np.ndarray
    centroids: np.ndarray
    #: Distance to the nearest other cell of the same image; NaN in images of one cell.
    nn_distances: np.ndarray
    offsets: np.ndarray

    @cached_property
    def _bounds(self) -> list[int]:
        return self.offsets.tolist()

    def cells_of(self, image: int) -> tuple[np.ndarray, np.ndarray]:
        """Areas and centroids of the cells of one image."""
        lo, hi = self._bounds[image], self._bounds[image + 1]
        return self.areas[lo:hi], self.centroids[lo:hi]

    def nn_distances_of(self, image: int) -> np.ndarray:
        """Nearest-neighbour distances of one image's cells; empty below two cells."""
        lo, hi = self._bounds[image], self._bounds[image + 1]
        return self.nn_distances[lo:hi] if hi - lo >= 2 else self.nn_distances[:0]


@dataclass(frozen=True)
class _Runs:
    """Horizontal runs of a mask ``(Z, H, W)`` cut into segments ``width`` wide."""

    start: np.ndarray  # padded positions, sorted
    end: np.ndarray  # exclusive
    shape: tuple[int, int, int]
    width: int

    @property
    def pitch(self) -> int:
        return self.width + 1

    @cached_property
    def segment(self) -> np.ndarray:
        return self.start // self.pitch

    @cached_property
    def x0(self) -> np.ndarray:
        return self.start - self.segment * self.pitch

    @cached_property
    def x1(self) -> np.ndarray:
        return self.end - self.segment * self.pitch

    @cached_property
    def row(self) -> np.ndarray:
        """Slice and row, as ``z * H + y``."""
        return self.segment // (self.shape[2] // self.width)


def _runs(mask: np.ndarray, width: int) -> _Runs:
    z, h, w = mask.shape
    padded = np.zeros((z * h * (w // width), width + 1), dtype=np.uint8)
    padded[:, :width] = mask.reshape(-1, width)
    flat = padded.ravel()
    edges = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    if flat[0]:
        edges = np.concatenate([[0], edges])
    return _Runs(edges[0::2], edges[1::2], (z, h, w), width)


def _overlapping(runs: _Runs, sources: np.ndarray, shift: int, reach: int) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (source, run) where the run lies ``shift`` positions on (the segment below, the slice
    after) and shares a column with the source (``reach`` 1: or touches it diagonally)."""
    lo = np.searchsorted(runs.end, runs.start[sources] + shift - reach, side="right")
    hi = np.searchsorted(runs.start, runs.end[sources] + shift + reach, side="left")
    counts = np.maximum(hi - lo, 0)
    first = np.cumsum(counts) - counts
    within = np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(first, counts)
    return np.repeat(sources, counts), np.repeat(lo, counts) + within


def _components(n: int, pairs: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Component of every run; numbered in the order of their first run (scipy labels nodes in
    index order), i.e. of their first pixel in raster order, as ``ndimage.label`` numbers them."""
    i = np.concatenate([p[0] for p in pairs]) if pairs else np.zeros(0, dtype=np.int64)
    j = np.concatenate([p[1] for p in pairs]) if pairs else np.zeros(0, dtype=np.int64)
    graph = coo_matrix((np.ones(len(i), dtype=np.int8), (i, j)), shape=(n, n)).tocsr()
    return connected_components(graph, directed=False)[1].astype(np.int64)


def _nearest_other(centroids: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Distance from each centroid to the nearest other one of its image (NaN if it is alone)."""
    counts = np.diff(offsets)
    out = np.full(len(centroids), np.nan)
    image_of = np.repeat(np.arange(len(counts)), counts)
    small = (counts >= 2) & (counts <= _BRUTE_FORCE_MAX_CELLS)
    cells = np.flatnonzero(small[image_of])
    if len(cells):
        n = counts[image_of[cells]]
        first = np.cumsum(n) - n
        i = np.repeat(cells, n)
        j = np.repeat(offsets[image_of[cells]], n) + np.arange(int(n.sum())) - np.repeat(first, n)
        dr = centroids[i, 0] - centroids[j, 0]
        dc = centroids[i, 1] - centroids[j, 1]
        d = np.sqrt(dr * dr + dc * dc)  # the sum cKDTree takes, then its square root
        d[i == j] = np.inf
        out[cells] = np.minimum.reduceat(d, first)
    for image in np.flatnonzero(counts > _BRUTE_FORCE_MAX_CELLS):
        lo, hi = offsets[image], offsets[image + 1]
        out[lo:hi] = cKDTree(centroids[lo:hi]).query(centroids[lo:hi], k=2)[0][:, 1]
    return out


def _count_per_image(hits: np.ndarray, height: int, width: int) -> np.ndarray:
    """True pixels of every ``height x width`` tile of ``hits (Z, H, W)``, in image order.

    Eight pixels at a time: tile rows are added as uint64 words, one byte a pixel column, in
    chunks of at most 255 rows so that no byte overflows; then the bytes are added up.
    """
    z, h, w = hits.shape
    if w % 8 or width % 8:
        return np.count_nonzero(hits.reshape(z, h // height, height, w // width, width), axis=(2, 4)).reshape(-1)
    chunk = max(c for c in range(1, min(height, 255) + 1) if height % c == 0)
    words = np.ascontiguousarray(hits).view(np.uint64)
    lanes = words.reshape(z, h // height, height // chunk, chunk, w // width, width // 8).sum(axis=3, dtype=np.uint64)
    per_byte = lanes.view(np.uint8).reshape(z, h // height, height // chunk, w // width, width)
    return per_byte.sum(axis=(2, 4), dtype=np.int64).reshape(-1)


class LabelStack:
    """The microstructure labels ``(Z, H, W)`` of one cube cut into images, measured together.

    Images are the :func:`~mtneuro.features.tiles` of every slice (``tile_size`` None: whole
    slices); image ``z * len(units) + k`` is unit ``k`` of slice ``z``. The authors' cells are
    the 6-connected 3D components of the whole stack (:func:`~mtneuro.features.label_cells_3d`).
    """

    def __init__(self, pixel_labels: np.ndarray, tile_size: int | None = None, connectivity: int = CELL_CONNECTIVITY):
        self.labels = np.ascontiguousarray(pixel_labels)
        if self.labels.ndim != 3 or self.labels.size == 0:
            raise ValueError(f"Expected a stack of label images (Z, H, W), got shape {self.labels.shape}")
        self.connectivity = check_connectivity(connectivity)
        z, h, w = self.labels.shape
        self.units = list(tiles(h, w, tile_size))
        self.tile_height, self.tile_width = self.units[0][2], self.units[0][3]
        self.n_images = z * len(self.units)
        self._counts: dict[int, np.ndarray] = {}

    def image(self, z: int, unit: int) -> StackImage:
        """Unit ``unit`` of slice ``z`` as a :class:`LabelImage`."""
        return StackImage(self, z * len(self.units) + unit)

    def pixels(self, image: int) -> tuple[int, tuple[slice, slice]]:
        """Slice index and the (rows, columns) of one image."""
        z, unit = divmod(image, len(self.units))
        y0, x0, h, w = self.units[unit]
        return z, (slice(y0, y0 + h), slice(x0, x0 + w))

    def count(self, value: int) -> np.ndarray:
        """Pixels equal to ``value`` in every image ``(n_images,)``."""
        if value not in self._counts:
            self._counts[value] = _count_per_image(self.labels == value, self.tile_height, self.tile_width)
        return self._counts[value]

    @cached_property
    def _runs(self) -> _Runs:
        return _runs(self.labels == spec.CELL, self.tile_width)

    @property
    def _row_shift(self) -> int:
        """Positions from a segment to the one below it."""
        return (self.labels.shape[2] // self._runs.width) * self._runs.pitch

    @cached_property
    def _row_below(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """4-overlapping runs of consecutive rows of a slice, and whether the pair crosses an
        image's lower edge."""
        runs, h = self._runs, self.labels.shape[1]
        y = runs.row % h
        i, j = _overlapping(runs, np.flatnonzero(y < h - 1), self._row_shift, 0)
        return i, j, (y[i] % self.tile_height) == self.tile_height - 1

    def _pieces(self, connectivity: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Components of each image's own cell pixels: the component of every run, and the
        image and integer (area, row sum, column sum) of every component."""
        runs, h = self._runs, self.labels.shape[1]
        if connectivity == 4:
            i, j, crosses = self._row_below
            pairs = [(i[~crosses], j[~crosses])]
        else:
            y = runs.row % h
            inside = np.flatnonzero((y < h - 1) & (y % self.tile_height != self.tile_height - 1))
            pairs = [_overlapping(runs, inside, self._row_shift, 1)]
        piece = _components(len(runs.start), pairs)
        n = int(piece.max()) + 1 if len(piece) else 0
        columns = self.labels.shape[2] // runs.width
        y = runs.row % h
        image = np.zeros(n, dtype=np.int64)
        image[piece] = (runs.row // h) * len(self.units) + (y // self.tile_height) * columns + runs.segment % columns
        length = runs.x1 - runs.x0
        # integer sums of the rows and columns of the pixels (exact in float64)
        sums = np.stack(
            [
                np.bincount(piece, weights=length, minlength=n),
                np.bincount(piece, weights=length * (y % self.tile_height), minlength=n),
                np.bincount(piece, weights=length * (runs.x0 + runs.x1 - 1) // 2, minlength=n),
            ]
        )
        return piece, image, sums

    def _cells(self, image: np.ndarray, component: np.ndarray, sums: np.ndarray) -> StackCells:
        """Cells from pieces: the pieces of one ``component`` in one image form one cell, listed
        image by image, then by component number (the per-image path's order)."""
        stride = int(component.max()) + 1 if len(component) else 1
        key = image * stride + component
        keys, cell = np.unique(key, return_inverse=True)
        area, sum_r, sum_c = (np.bincount(cell, weights=w, minlength=len(keys)) for w in sums)
        centroids = np.column_stack([sum_r / area, sum_c / area])
        first = np.searchsorted(keys, np.arange(self.n_images + 1) * stride)
        offsets = first.astype(np.int64)
        return StackCells(area.astype(np.int64), centroids, _nearest_other(centroids, offsets), offsets)

    @cached_property
    def _pieces_4(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self._pieces(4)

    @cached_property
    def cells(self) -> StackCells:
        """This project's cells: components of each image's own cell pixels (4- or 8-connected)."""
        _, image, sums = self._pieces_4 if self.connectivity == 4 else self._pieces(self.connectivity)
        return self._cells(image, np.arange(len(image)), sums)

    @cached_property
    def _components_3d(self) -> np.ndarray:
        runs = self._runs
        z, h, w = self.labels.shape
        columns = w // runs.width
        i, j, _ = self._row_below
        pairs = [(i, j), _overlapping(runs, np.flatnonzero(runs.row // h < z - 1), h * self._row_shift, 0)]
        # a run reaching the right edge of its segment touches one starting the next segment
        left = np.flatnonzero((runs.x1 == runs.width) & (runs.segment % columns < columns - 1))
        right = np.searchsorted(runs.start, (runs.segment[left] + 1) * runs.pitch)
        found = right < len(runs.start)
        found[found] = runs.start[right[found]] == (runs.segment[left[found]] + 1) * runs.pitch
        pairs.append((left[found], right[found]))
        return _components(len(runs.start), pairs)

    @cached_property
    def cells_authors(self) -> StackCells:
        """The authors' cells: the 3D components present in each image. A 4-connected piece of
        an image lies in one 3D component; an image's pieces of one component are one cell."""
        piece, image, sums = self._pieces_4
        component = np.zeros(len(image), dtype=np.int64)
        component[piece] = self._components_3d
        return self._cells(image, component, sums)

    @cached_property
    def cell_ids(self) -> np.ndarray:
        """The authors' 3D labelling as an array (what :func:`label_cells_3d` returns)."""
        runs = self._runs
        length = runs.end - runs.start
        first = np.cumsum(length) - length
        position = np.repeat(runs.start, length) + np.arange(int(length.sum())) - np.repeat(first, length)
        z, h, w = self.labels.shape
        ids = np.zeros(z * h * (w // runs.width) * runs.pitch, dtype=np.int32)
        ids[position] = np.repeat(self._components_3d + 1, length)
        return ids.reshape(-1, runs.pitch)[:, : runs.width].reshape(z, h, w)


class StackImage(LabelImage):
    """One image of a :class:`LabelStack`: the features read the stack's measurements."""

    def __init__(self, stack: LabelStack, index: int) -> None:
        z, (rows, cols) = stack.pixels(index)
        self.labels = stack.labels[z, rows, cols]
        self.connectivity = stack.connectivity
        self.stack, self.index = stack, index

    @property
    def cell_ids(self) -> np.ndarray:
        z, (rows, cols) = self.stack.pixels(self.index)
        return self.stack.cell_ids[z, rows, cols]

    def fraction(self, value: int) -> float:
        return float(self.stack.count(value)[self.index]) / self.labels.size

    # plain properties: each is read once or twice per image, a cache would cost more
    @property
    def cells(self) -> tuple[np.ndarray, np.ndarray]:
        return self.stack.cells.cells_of(self.index)

    @property
    def cell_nn_distances(self) -> np.ndarray:
        return self.stack.cells.nn_distances_of(self.index)

    @property
    def cells_authors(self) -> tuple[np.ndarray, np.ndarray]:
        return self.stack.cells_authors.cells_of(self.index)

    @property
    def cell_nn_distances_authors(self) -> np.ndarray:
        return self.stack.cells_authors.nn_distances_of(self.index)
