"""The typed ``segmentation`` block: every profile parses, overrides resolve as a key-by-key merge,
and a bad value is a ConfigurationError naming its full key."""

from __future__ import annotations

import typing

import pytest

from mtneuro.config import ConfigurationError, load_parameters, parse_block
from mtneuro.config.segmentation import LabelSettingName, SegmentationParameters
from mtneuro.pipelines.segmentation.nodes import SETTINGS
from mtneuro.plugin_parameters import load_checked_parameters
from mtneuro.segmentation_models import model_names, run_settings


@pytest.mark.parametrize("env", ["local", "tiny", "paper"])
def test_every_profile_parses_and_resolves_every_model(project_path, env):
    segmentation = load_parameters(project_path / "conf", env).segmentation
    assert segmentation.models == list(model_names())
    assert segmentation.settings == ["seg_3class", "seg_4class"]
    assert segmentation.seeds == {"local": [0, 1], "tiny": [0], "paper": [0, 1, 2, 3, 4]}[env]
    for model in segmentation.models:
        run = run_settings(segmentation, model)
        assert run.dims == ("2D" if run.encoder_name else "3D")
        assert None not in run.kwargs.values() or run.kwargs.get("encoder_weights") is None


def test_label_settings_are_the_nodes_settings():
    assert set(typing.get_args(LabelSettingName)) == set(SETTINGS)


def test_model_overrides_replace_single_keys(tiny_parameters):
    segmentation = tiny_parameters.segmentation
    base_train = segmentation.train
    vnet = run_settings(segmentation, "vnet")
    # conf/tiny: vnet overrides samples_per_epoch; conf/base: crop_yx 32; the rest is segmentation.train
    assert (vnet.train.samples_per_epoch, vnet.train.crop_yx) == (8, 32)
    assert vnet.train.model_dump(exclude={"samples_per_epoch", "crop_yx"}) == base_train.model_dump(
        exclude={"samples_per_epoch", "crop_yx"}
    )
    assert vnet.evaluation == segmentation.evaluation
    unet = run_settings(segmentation, "unet")
    assert unet.train == base_train
    assert unet.kwargs == {
        "encoder_name": "resnet18",
        "encoder_weights": None,
        "encoder_depth": 4,
        "decoder_channels": [64, 32, 16, 16],
    }
    assert run_settings(segmentation, "vnet").kwargs == {
        "base_channels": 4,
        "dropout_prob_up": [None, 0.0],
    }  # nulls dropped


def test_nested_overrides_merge_key_by_key_and_null_overrides(tiny_with):
    segmentation = tiny_with(
        train={"samples_per_epoch": 6},
        model_settings={
            "pan": {
                "train": {"loss": {"lambda_ce": 0.5}, "augment": {"rot90": False}, "samples_per_epoch": None},
                "evaluation": {"overlap": 0.25},
            },
        },
    ).segmentation
    pan = run_settings(segmentation, "pan")
    assert pan.train.loss.lambda_ce == 0.5 and pan.train.loss.lambda_dice == segmentation.train.loss.lambda_dice
    assert pan.train.augment.rot90 is False and pan.train.augment.flip is segmentation.train.augment.flip
    assert segmentation.train.samples_per_epoch == 6
    assert pan.train.samples_per_epoch is None  # an explicit null replaces the task's value
    assert pan.evaluation.overlap == 0.25 and pan.evaluation.roi_yx == segmentation.evaluation.roi_yx


def test_seeds_count_becomes_a_list(tiny_with):
    assert tiny_with(seeds=3).segmentation.seeds == [0, 1, 2]
    assert tiny_with(seeds=[4, 2], figure={"seed": 2}).segmentation.seeds == [4, 2]


@pytest.mark.parametrize(
    "change,key,message",
    [
        (
            # otherwise consistent: names are checked against the registry once the block parses
            {
                "models": ["unet", "segformer"],
                "model_settings": {"segformer": {"kwargs": {}}},
                "figure": {"models": ["unet"]},
            },
            "segmentation.models.1",
            "unknown segmentation model 'segformer'; registered models: unet",
        ),
        ({"train": {"epochs": 0}}, "segmentation.train.epochs", "greater than 0"),
        ({"seeds": []}, "segmentation.seeds", "at least 1 item"),
        ({"seeds": 0}, "segmentation.seeds", "at least 1"),
        ({"train": {"epoch": 2}}, "segmentation.train.epoch", "unknown key; allowed keys here: augment, batch_size"),
        ({"evaluation": {"overlap": 1.0}}, "segmentation.evaluation.overlap", "less than 1"),
        ({"evaluation": {"blend_mode": "linear"}}, "segmentation.evaluation.blend_mode", "'constant' or 'gaussian'"),
        ({"train": {"scheduler": "step"}}, "segmentation.train.scheduler", "'onecycle', 'cosine' or 'none'"),
        ({"settings": ["seg_5class"]}, "segmentation.settings.0", "'seg_3class' or 'seg_4class'"),
        (
            {"model_settings": {"vnet": {"train": {"batch_size": -2}}}},
            "segmentation.model_settings.vnet.train.batch_size",
            "greater than 0",
        ),
        (
            {"model_settings": {"vnet": {"train": {"epochs": None}}}},
            "segmentation.model_settings.vnet.train.epochs",
            "with this model's overrides: Input should be a valid integer",
        ),
        (
            {"model_settings": {"vnet": {"evaluation": {"splits": []}}}},
            "segmentation.model_settings.vnet.evaluation.splits",
            "at least 1 item",
        ),
        (
            {"model_settings": {"segformer": {"kwargs": {}}}},
            "segmentation.model_settings.segformer",
            "unknown segmentation model",
        ),
        ({"model_settings": {"unet": {"kwrags": {}}}}, "segmentation.model_settings.unet.kwrags", "unknown key"),
        (
            {"figure": {"models": ["unet", "fpn"]}, "models": ["unet"]},
            "segmentation.figure.models.1: not in segmentation.models (unet) (got 'fpn')",
            "",
        ),
        ({"figure": {"seed": 3}}, "segmentation.figure.seed: not in segmentation.seeds [0] (got 3)", ""),
        ({"samples_per_epoch": 3}, "segmentation.samples_per_epoch", "unknown key"),
    ],
)
def test_bad_parameters_name_the_full_key(project_path, change, key, message):
    with pytest.raises(ConfigurationError) as error:
        load_checked_parameters(project_path / "conf", "tiny", runtime_params={"segmentation": change})
    text = " ".join(str(error.value).split())  # the report wraps long lines
    assert key in text and message in text, text


def test_a_model_of_the_grid_needs_model_settings(tiny_parameters):
    raw = tiny_parameters.segmentation.model_dump(exclude_unset=True)
    del raw["model_settings"]["highresnet"]
    with pytest.raises(
        ConfigurationError, match=r"segmentation\.model_settings\.highresnet: segmentation\.models runs this model"
    ):
        parse_block(SegmentationParameters, raw, "segmentation")
    raw["models"].remove("highresnet")
    raw["figure"]["models"] = ["unet"]
    assert parse_block(SegmentationParameters, raw, "segmentation").models[-1] == "vnet"
