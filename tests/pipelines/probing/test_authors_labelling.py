"""The authors' cell labelling (6-connected in 3D over the whole cube, cut into images after)
against scikit-image (``label(connectivity=1)`` = cc3d ``connectivity=6``; ``regionprops`` on the
cut, as MTNeuro annots/features.py measures it), and the in-sample R^2 noise floor."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import measure

from mtneuro import features as feat
from mtneuro import spec
from mtneuro.features.image import LabelImage
from mtneuro.pipelines.probing.nodes import noise_floor_r2


def test_six_connected_3d_components_join_across_slices_but_not_diagonally():
    stack = np.zeros((2, 4, 4), dtype=np.uint8)
    stack[0, 0, 0] = stack[1, 0, 0] = spec.CELL  # face neighbours across slices: one cell
    stack[0, 3, 3] = stack[1, 2, 2] = spec.CELL  # diagonal across slices: two cells
    ids = feat.label_cells_3d(stack)
    assert ids[0, 0, 0] == ids[1, 0, 0] != 0
    assert ids[0, 3, 3] != ids[1, 2, 2]
    assert len(np.unique(ids[ids > 0])) == 3


def test_a_cell_in_two_pieces_joined_through_another_slice_is_one_authors_cell():
    stack = np.zeros((2, 5, 5), dtype=np.uint8)
    stack[1, 1, 1:4] = spec.CELL  # slice 1: a bar joining the two pieces of slice 0
    stack[0, 1, 1] = stack[0, 1, 3] = spec.CELL
    ids = feat.label_cells_3d(stack)
    values = feat.image_features(stack[0], 4, ["cell_count", "cell_count_authors", "mean_cell_area_authors"], ids[0])
    assert values == {"cell_count": 2, "cell_count_authors": 1, "mean_cell_area_authors": 2.0}
    alone = feat.image_features(stack[0], 4, ["cell_count_authors"])  # no stack: a one-slice stack
    assert alone == {"cell_count_authors": 2}
    with pytest.raises(ValueError, match="cell_ids of shape"):
        LabelImage(stack[0], 4, ids[0, :2])


def test_authors_features_match_scikit_image_on_random_blobs():
    rng = np.random.default_rng(5)
    cells = rng.random((12, 64, 64)) < 0.08
    stack = np.where(cells, spec.CELL, 0).astype(np.uint8)
    ids = feat.label_cells_3d(stack)
    reference = measure.label(cells, connectivity=1)  # 6-connectivity in 3D
    assert ids.max() == reference.max()
    for z in (0, 5, 11):
        for y0, x0 in ((0, 0), (32, 32)):  # quadrants cut after labelling
            cut = reference[z, y0 : y0 + 32, x0 : x0 + 32]
            props = measure.regionprops(cut)
            values = feat.image_features(
                stack[z, y0 : y0 + 32, x0 : x0 + 32],
                4,
                ["cell_count_authors", "mean_cell_area_authors", "mean_nn_distance_authors"],
                ids[z, y0 : y0 + 32, x0 : x0 + 32],
            )
            assert values["cell_count_authors"] == len(props)
            assert values["mean_cell_area_authors"] == pytest.approx(np.mean([p.area for p in props]))
            centroids = np.array([p.centroid for p in props])
            d = np.linalg.norm(centroids[:, None] - centroids[None], axis=-1)
            np.fill_diagonal(d, np.inf)
            assert values["mean_nn_distance_authors"] == pytest.approx(d.min(axis=1).mean())


def test_noise_floor_is_about_dimension_over_image_count():
    rng = np.random.default_rng(1)
    y = rng.standard_normal((600, 2))
    y[:50, 1] = np.nan  # left out of that feature only
    floor = noise_floor_r2(y, 60, seed=0)
    assert floor[0] == pytest.approx(60 / 599, abs=0.05)
    assert floor[1] == pytest.approx(60 / 549, abs=0.05)
    np.testing.assert_array_equal(floor, noise_floor_r2(y, 60, seed=0))  # seeded
