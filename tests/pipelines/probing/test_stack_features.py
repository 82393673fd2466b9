"""The batched features (:class:`mtneuro.features.LabelStack`) against a plain per-image
computation on the real masks: one ``ndimage.label`` per image (or per stack for the authors'
3D cells) and Python loops over cells, written here independently of the package."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from mtneuro import features as feat
from mtneuro import spec

MASKS = ("tests", "data", "prasad2020", "pixel_labels_128.npz")


def _cells(ids: np.ndarray, values: list[int]) -> tuple[list[int], list[tuple[float, float]]]:
    areas, centroids = [], []
    for value in values:
        rows, cols = np.nonzero(ids == value)
        areas.append(len(rows))
        centroids.append((rows.sum() / len(rows), cols.sum() / len(rows)))
    return areas, centroids


def _nn_mean(centroids: list[tuple[float, float]]) -> float:
    if len(centroids) < 2:
        return math.nan
    nearest = []
    for i, (r, c) in enumerate(centroids):
        others = [math.sqrt((r - r2) ** 2 + (c - c2) ** 2) for j, (r2, c2) in enumerate(centroids) if j != i]
        nearest.append(min(others))
    return sum(nearest) / len(nearest)


def reference(stack: np.ndarray, tile: int | None, connectivity: int) -> list[dict[str, float]]:
    structure = ndimage.generate_binary_structure(2, 1 if connectivity == 4 else 2)
    ids_3d, _ = ndimage.label(stack == spec.CELL, structure=ndimage.generate_binary_structure(3, 1))
    z, h, w = stack.shape
    th, tw = (h, w) if tile is None else (tile, tile)
    rows = []
    for k in range(z):
        for y0 in range(0, h, th):
            for x0 in range(0, w, tw):
                labels = stack[k, y0 : y0 + th, x0 : x0 + tw]
                own, n = ndimage.label(labels == spec.CELL, structure=structure)
                areas, centroids = _cells(own, list(range(1, n + 1)))
                cut = ids_3d[k, y0 : y0 + th, x0 : x0 + tw]
                areas_3d, centroids_3d = _cells(cut, sorted(set(cut[cut > 0].tolist())))
                rows.append(
                    {
                        "vessel_fraction": np.count_nonzero(labels == spec.VESSEL) / labels.size,
                        "axon_fraction": np.count_nonzero(labels == spec.AXON) / labels.size,
                        "cell_count": n,
                        "mean_cell_area": sum(areas) / n if n else math.nan,
                        "mean_nn_distance": _nn_mean(centroids),
                        "cell_count_authors": len(areas_3d),
                        "mean_cell_area_authors": sum(areas_3d) / len(areas_3d) if areas_3d else math.nan,
                        "mean_nn_distance_authors": _nn_mean(centroids_3d),
                    }
                )
    return rows


def batched(stack: np.ndarray, tile: int | None, connectivity: int) -> list[dict[str, float]]:
    measured = feat.LabelStack(stack, tile, connectivity)
    return [
        feat.feature_values(measured.image(z, k)) for z in range(stack.shape[0]) for k in range(len(measured.units))
    ]


def assert_same(fast: list[dict[str, float]], slow: list[dict[str, float]]) -> None:
    assert len(fast) == len(slow)
    for i, (got, want) in enumerate(zip(fast, slow)):
        for name, expected in want.items():
            value = got[name]
            if name.startswith("cell_count"):
                assert value == expected, (i, name, value, expected)
            elif math.isnan(expected):
                assert math.isnan(value), (i, name, value)
            else:
                assert abs(value - expected) <= 1e-12, (i, name, value, expected)


@pytest.fixture(scope="module")
def masks(project_path) -> dict[str, np.ndarray]:
    with np.load(project_path.joinpath(*MASKS)) as data:
        return {region: data[region] for region in spec.REGIONS}


@pytest.mark.parametrize(("tile", "connectivity"), [(None, 4), (64, 4), (32, 8)])
def test_batched_features_equal_per_image_ones_on_the_real_masks(masks, tile, connectivity):
    """Each region's 32 masks as a stack: whole images, and tiles that cut cells in two."""
    for stack in masks.values():
        assert_same(batched(stack, tile, connectivity), reference(stack, tile, connectivity))


def test_batched_features_on_quadrants_of_256_pixel_slices(masks):
    """The authors' layout: 3D cells may join across the quadrant edges of a slice."""
    q = masks["STR"].reshape(8, 4, 128, 128)
    stack = np.concatenate([np.concatenate([q[:, 0], q[:, 1]], axis=2), np.concatenate([q[:, 2], q[:, 3]], axis=2)], 1)
    stack[1:, 100:156, 120:136] = spec.CELL  # one cell over all four quadrants and slices 1-7
    stack[0, 96:128, 112:128] = 0
    stack[0, 100:105, 120:126] = stack[0, 110:115, 120:126] = spec.CELL  # two pieces, one 3D cell
    fast, slow = batched(stack, 128, 4), reference(stack, 128, 4)
    assert slow[0]["cell_count_authors"] < slow[0]["cell_count"]
    assert_same(fast, slow)


def test_stack_images_give_the_per_image_api_values_and_cell_ids():
    stack = np.zeros((2, 5, 10), dtype=np.uint8)
    stack[1, 1, 1:4] = spec.CELL  # joins the two pieces of slice 0 in 3D
    stack[0, 1, 1] = stack[0, 1, 3] = spec.CELL
    stack[0, 2:4, 4:6] = spec.CELL  # crosses the edge between the two 5 x 5 tiles
    stack[0, 0, 9] = spec.VESSEL
    measured = feat.LabelStack(stack, 5)
    np.testing.assert_array_equal(measured.cell_ids, feat.label_cells_3d(stack))
    ids = feat.label_cells_3d(stack)
    for z in range(2):
        for k, (y0, x0, h, w) in enumerate(measured.units):
            cut = (z, slice(y0, y0 + h), slice(x0, x0 + w))
            image = measured.image(z, k)
            np.testing.assert_array_equal(image.cell_ids, ids[cut])
            alone = feat.image_features(stack[cut], 4, None, ids[cut])
            assert feat.feature_values(image) == pytest.approx(alone, nan_ok=True)
    assert feat.feature_values(measured.image(0, 0), ["cell_count", "cell_count_authors"]) == {
        "cell_count": 3,
        "cell_count_authors": 2,
    }
