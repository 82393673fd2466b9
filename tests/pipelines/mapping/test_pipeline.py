"""Wiring and parameters of the mapping pipeline (no computation)."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest
from mapping_support import mapping_parameters
from pydantic import ValidationError

from mtneuro.pipelines.mapping import create_pipeline, nodes


@pytest.mark.parametrize("env", ["base", "tiny", "paper"])
def test_profiles_parse(env):
    params = mapping_parameters(env)
    assert params.microstructure.halo_yx >= 145  # the base U-Net's receptive-field radius


def test_default_is_one_slab_across_the_plane():
    params = mapping_parameters("base")  # 16 slices on the CPU profile, 32 in the paper profile
    assert nodes.mapping_window(params, (720, 1420, 5805)).to_list() == [344, 360, 0, 1420, 0, 5805]
    paper = mapping_parameters("paper")
    assert nodes.mapping_window(paper, (720, 1420, 5805)).to_list() == [344, 376, 0, 1420, 0, 5805]
    full = mapping_parameters("base", {"window": "full"})
    assert nodes.mapping_window(full, (720, 1420, 5805)).shape == (720, 1420, 5805)


def test_blocks_must_hold_whole_chunks():
    with pytest.raises(ValidationError, match=r"multiple of blocks\.chunks_zyx"):
        mapping_parameters("base", {"blocks": {"shape_zyx": [32, 300, 2048]}})


def test_pipeline_reads_the_best_candidate_and_the_task1_model():
    pipe = create_pipeline(SimpleNamespace(mapping=mapping_parameters("base")))
    inputs = pipe.inputs()
    assert "segmentation.unet.seg_4class.seed0.trained_model" in inputs
    assert "segmentation.unetplusplus.seg_4class.seed0.trained_model" in inputs
    # global pooling / attention: no finite halo makes their blocks seam-free, so "best" skips them
    assert "segmentation.pspnet.seg_4class.seed0.trained_model" not in inputs
    assert {
        "task2_segmentation",
        "classification.supervised.roi_c1.seed0.frozen_encoder",
        "classification.supervised.roi_c1.seed0.readout",
    } <= inputs
    assert {"brain_map", "mapping_validation", "mapping_overview@matplotlib"} <= pipe.all_outputs()
    assert all(n.name.startswith("mapping.") for n in pipe.nodes)


def test_best_model_is_the_highest_mean_iou():
    table = pd.DataFrame(
        {
            "model": ["unet", "fpn", "fpn"],
            "config": ["seg_4class"] * 3,
            "seed": [0, 0, 1],
            "class": ["mean"] * 3,
            "iou": [0.5, 0.6, 0.9],
        }
    )
    chosen = nodes.select_microstructure_model(table, mapping_parameters("base"), unet="U", fpn="F")
    assert chosen == "F"
