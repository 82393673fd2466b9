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
    params = mapping_parameters("base")  # 8 slices across the whole plane (CPU-sized)
    assert nodes.mapping_window(params, (720, 1420, 5805)).to_list() == [344, 352, 0, 1420, 0, 5805]
    paper = mapping_parameters("paper")  # issue #13: 32 slices across the whole plane
    assert nodes.mapping_window(paper, (720, 1420, 5805)).to_list() == [344, 376, 0, 1420, 0, 5805]
    full = mapping_parameters("base", {"window": "full", "regions": {"model": "best"}})
    assert nodes.mapping_window(full, (720, 1420, 5805)).shape == (720, 1420, 5805)


def test_blocks_must_hold_whole_chunks():
    with pytest.raises(ValidationError, match=r"multiple of blocks\.chunks_zyx"):
        mapping_parameters("base", {"blocks": {"shape_zyx": [32, 300, 2048]}})


def test_pipeline_reads_the_models_from_the_run_indexes():
    pipe = create_pipeline(SimpleNamespace(mapping=mapping_parameters("base", {"regions": {"model": "best"}})))
    # never a task's per-run dataset: the tasks' run indexes, the Task 2 table ("best" and the
    # in-cube reference) and what the region model is validated on (ingestion's outputs)
    assert pipe.inputs() == {
        "segmentation_runs",
        "frozen_encoders",
        "task2_segmentation",
        "cubes",
        "split_index",
        "params:mapping",
        "params:volume",
        "params:ingestion",
        "params:classification",
    }
    assert {"brain_map", "mapping_validation", "mapping_overview@matplotlib"} <= pipe.all_outputs()
    assert all(n.name.startswith("mapping.") for n in pipe.nodes)
    named = create_pipeline(SimpleNamespace(mapping=mapping_parameters("base", {"microstructure": {"model": "unet"}})))
    choose = next(n for n in named.nodes if n.name == "mapping.choose_microstructure_model")
    assert "task2_segmentation" not in choose.inputs


class _Index(dict):
    """A run index that records which runs' artefacts were loaded."""

    def __init__(self, runs, loaded):
        super().__init__({run: _Run(run, loaded) for run in runs})


class _Run(dict):
    def __init__(self, run, loaded):
        super().__init__()
        self.run, self.loaded = run, loaded

    def __getitem__(self, member):
        self.loaded.append((self.run, member))
        return f"{self.run}:{member}"


def test_microstructure_model_comes_from_the_index_and_only_the_chosen_one_is_loaded():
    from mtneuro.pipelines.mapping.models import choose_microstructure_model

    params = mapping_parameters("base")
    m = params.microstructure
    table = pd.DataFrame(
        {
            "model": list(m.candidates),
            "config": [m.setting] * len(m.candidates),
            "seed": [m.seed] * len(m.candidates),
            "class": ["mean"] * len(m.candidates),
            "iou": [0.1 * (i + 1) for i in range(len(m.candidates))],
        }
    )
    loaded: list = []
    runs = _Index([f"{name}.{m.setting}.seed{m.seed}" for name in m.candidates], loaded)
    best = f"{m.candidates[-1]}.{m.setting}.seed{m.seed}"
    assert choose_microstructure_model(runs, params, table) == f"{best}:trained_model"
    assert loaded == [(best, "trained_model")]


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
