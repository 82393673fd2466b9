"""Microstructure validation boxes by brain area and distance band (docs/brain-maps.md section 9).

The target (far / best 2D in-cube mean IoU >= 0.9) is about the main-cube areas; the far boxes of
areas no main cube lies in are reported beside it, and the main-cube areas that no box reaches
500 voxels away from every cube in (STR, VP, ZI in the default slab) get a mid band.
"""

from __future__ import annotations

import dask.array as da
import numpy as np
import pandas as pd
import pytest
from mapping_support import PHANTOM_VOLUME, PROJECT, mapping_parameters

from mtneuro import spec
from mtneuro.config import load_parameters
from mtneuro.datasets.ome_zarr_store import BrainMap
from mtneuro.pipelines.mapping import nodes
from mtneuro.volumes import Window, open_volume

SLAB = Window(344, 352, 0, 1420, 0, 5805)


@pytest.fixture(scope="module")
def base():
    params = load_parameters(PROJECT / "conf", "base")
    return params.mapping, nodes._training_boxes(params.ingestion)


def test_slab_boxes_are_stratified_by_area_and_distance(base):
    mapping, training = base
    roi = open_volume("phantom://prasad2020/roi_labels", seed=0)
    boxes = nodes.stratified_validation_boxes(SLAB, training, mapping, roi)
    v = mapping.validation
    assert len(boxes) <= v.max_boxes
    by = {}
    for b in boxes:
        by.setdefault((b.band, b.area), []).append(b)
        nearest = min(nodes.box_distance(b.window, t) for t in training)
        assert nearest == pytest.approx(b.distance)
        if b.band == nodes.FAR:
            assert nearest >= v.min_distance_from_training
        else:
            assert v.mid_distance_from_training <= nearest < v.min_distance_from_training
            assert b.main_area
        # tissue and one area, on the box's middle slice
        z = (b.window.z0 + b.window.z1) // 2
        w = b.window
        values = np.asarray(roi.read(Window(z, z + 1, w.y0, w.y1, w.x0, w.x1)))[0][::8, ::8]
        assert (values != 0).mean() >= v.min_tissue_fraction
        assert (values == spec.BRAIN_AREA_VALUES[b.area]).sum() >= v.min_area_fraction * (values != 0).sum()
    assert all(len(group) <= v.max_boxes_per_area for group in by.values())
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert not nodes._overlaps(a.window, b.window)
    # The slab's geometry: only the cortex reaches 500 voxels from every cube among the main-cube
    # areas; TRN and the hypothalamus are far but no cube lies in them; STR, VP, ZI only mid.
    far = {area for band, area in by if band == nodes.FAR}
    mid = {area for band, area in by if band == nodes.MID}
    assert far == {"CTX", "TRN", "hypothalamus"}
    assert mid == {"CTX", "STR", "VP", "ZI"}
    assert not any(b.main_area for b in boxes if b.area in ("TRN", "hypothalamus"))
    # far main-cube areas come first when the total cap cuts
    capped = mapping.model_copy(update={"validation": v.model_copy(update={"max_boxes": 2})})
    first = nodes.stratified_validation_boxes(SLAB, training, capped, roi)
    assert [(b.band, b.area) for b in first] == [(nodes.FAR, "CTX"), (nodes.FAR, "TRN")]


def test_rows_pool_each_band_and_score_against_the_dense_truth(base):
    """A map equal to the dense truth on the far CTX box scores 1 there; a map of pure background on
    the mid CTX box scores the background fraction there and 0 for the other classes."""
    mapping, training = base
    window = Window(344, 346, 576, 832, 5120, 5632)  # CTX: a mid box (x 5120) and a far one (x 5376)
    truth = open_volume("phantom://prasad2020/pixel_labels", seed=0, dense_labels=True).read(window)
    pred = np.asarray(truth).astype(np.uint8).copy()
    pred[:, :, :256] = 0
    brain_map = BrainMap(
        path=PROJECT,
        attributes={
            "window_zyx": [window.z0, window.z1, window.y0, window.y1, window.x0, window.x1],
            "microstructure_setting": "seg_4class",
            "microstructure_model": "unet",
            "microstructure_seed": 0,
        },
        layers={"microstructure": [da.from_array(pred, chunks=(2, 256, 256))]},
        multiscales={},
    )
    ingestion = load_parameters(PROJECT / "conf", "base").ingestion
    rows = pd.DataFrame(nodes._microstructure_rows(brain_map, window, mapping, PHANTOM_VOLUME, ingestion, "phantom"))
    value = rows.set_index(["metric", "class"])["value"]
    assert value["microstructure_boxes_by_area", "CTX"] == 1
    assert value["microstructure_mid_boxes_by_area", "CTX"] == 1
    far_box = Window(344, 346, 576, 832, 5376, 5632)
    assert value["microstructure_distance_by_area", "CTX"] == pytest.approx(
        min(nodes.box_distance(far_box, t) for t in training)
    )
    for name in ("background", "vessel", "cell"):
        assert value["microstructure_iou", name] == pytest.approx(1.0)
        assert value["microstructure_iou_by_area", f"CTX:{name}"] == pytest.approx(1.0)
    assert np.isnan(value["microstructure_iou", "axon"])  # no axon in the cortex, none predicted
    mid_truth = np.asarray(truth)[:, :, :256]
    assert value["microstructure_iou_mid", "background"] == pytest.approx((mid_truth == 0).mean())
    assert value["microstructure_iou_mid", "vessel"] == 0.0
    assert value["microstructure_iou_mid", "mean"] == pytest.approx((mid_truth == 0).mean() / 3)
    assert value["microstructure_voxels", "all"] == 2 * 256 * 256
    assert "microstructure_iou_other_areas" not in set(rows["metric"])
    # the ratios against the best 2D in-cube mean IoU
    task2 = pd.DataFrame(
        {
            "config": ["seg_4class"] * 2,
            "seed": [0, 0],
            "model": ["unet", "fpn"],
            "class": ["mean"] * 2,
            "dims": ["2D", "2D"],
            "iou": [0.5, 0.4],
        }
    )
    ratio = pd.DataFrame(nodes._in_cube_rows(task2, brain_map, rows.to_dict("records")))
    ratio = ratio.set_index("metric")["value"]
    assert ratio["microstructure_iou_far_over_best_2d"] == pytest.approx(1.0 / 0.5)
    assert ratio["microstructure_iou_mid_over_best_2d"] == pytest.approx((mid_truth == 0).mean() / 3 / 0.5)


def test_the_4class_network_never_trains_on_zi():
    assert nodes.trained_areas("seg_4class") == {"CTX", "STR", "VP"}
    assert nodes.trained_areas("seg_3class") == set(spec.REGIONS)


def test_box_stride_must_divide_the_box():
    with pytest.raises(ValueError, match="box_stride_yx"):
        mapping_parameters("base", {"validation": {"box_stride_yx": 96}})
