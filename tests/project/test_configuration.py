"""The configuration as a user meets it: profiles, typos, credentials, errors before any work."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from mtneuro.classification_methods import method_settings
from mtneuro.config import ConfigurationError, ProjectParameters, config_loader, load_parameters
from mtneuro.config.merge import Layer, deep_merge, merge_layers, origin_of
from mtneuro.plugin_parameters import load_checked_parameters

PROJECT = Path(__file__).resolve().parents[2]
CONF = PROJECT / "conf"


@pytest.mark.parametrize("env", ["local", "tiny", "paper"])
def test_every_profile_parses_into_typed_blocks(env: str):
    parameters = load_parameters(CONF, env)
    assert isinstance(parameters, ProjectParameters)
    assert parameters.training.accelerator in ("auto", "cpu", "cuda", "gpu")


def test_profiles_override_single_keys_of_base():
    base, tiny = load_parameters(CONF, "local"), load_parameters(CONF, "tiny")
    assert tiny.ingestion.cube_size_yx == 32 != base.ingestion.cube_size_yx
    # keys tiny does not mention keep their base value
    assert tiny.ingestion.main_cubes == base.ingestion.main_cubes


def test_a_missing_environment_lists_the_existing_ones():
    with pytest.raises(ConfigurationError) as error:
        load_parameters(CONF, "tinyy")
    message = str(error.value)
    assert "'tinyy' does not exist" in message
    for env in ("local", "paper", "tiny"):
        assert env in message


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ({"training": {"torch_threads": 0}}, "training.torch_threads"),
        ({"training": {"accelerator": "tpu"}}, "training.accelerator"),
        ({"training": {"dataloader": {"workers": 2}}}, "training.dataloader.workers"),
        ({"trainig": {"accelerator": "cpu"}}, "trainig"),
    ],
)
def test_bad_shared_parameters_name_the_full_key(override: dict, key: str):
    with pytest.raises(ConfigurationError) as error:
        load_parameters(CONF, "tiny", override)
    assert f"  - {key}:" in str(error.value)


def _conf_copy(tmp_path: Path) -> Path:
    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    (conf / "local").mkdir(exist_ok=True)
    (conf / "local" / "credentials.yml").write_text("bossdb:\n  host: bossdb.example.org\n  token: FAKE-TOKEN-1234\n")
    return conf


@pytest.mark.parametrize("env", ["local", "paper", "tiny"])
def test_user_credentials_apply_in_every_environment(tmp_path: Path, env: str):
    bootstrap_project(PROJECT)
    credentials = config_loader(_conf_copy(tmp_path), env)["credentials"]
    assert credentials["bossdb"]["host"] == "bossdb.example.org"
    assert credentials["bossdb"]["token"] == "FAKE-TOKEN-1234"
    assert credentials["bossdb"]["protocol"] == "https"  # single keys override base, the rest stays


BAD_PARAMETERS = [
    ({"training": {"torch_threads": -2}}, "training.torch_threads"),
    ({"classification": {"network_training": {"epochs": -1}}}, "classification.network_training.epochs"),
    ({"classification": {"network_training": {"epochs": 0}}}, "classification.network_training.epochs"),
    ({"classification": {"network_training": {"epoch": 3}}}, "classification.network_training.epoch"),
    ({"classification": {"network_training": {"lr": -0.1}}}, "classification.network_training.lr"),
    ({"classification": {"data": {"train_slice_step": 0}}}, "classification.data.train_slice_step"),
    ({"classification": {"seeds": []}}, "classification.seeds"),
    ({"segmentation": {"train": {"epochs": -1}}}, "segmentation.train.epochs"),
    ({"segmentation": {"train": {"batch_size": 0}}}, "segmentation.train.batch_size"),
    ({"ingestion": {"cube_size_yx": 0}}, "ingestion.cube_size_yx"),
    ({"probing": {"readout": {"cv_folds": 1}}}, "probing.readout.cv_folds"),
]


@pytest.mark.parametrize(("override", "key"), BAD_PARAMETERS, ids=[key for _, key in BAD_PARAMETERS])
def test_a_bad_parameter_stops_kedro_run_before_any_node(tmp_path: Path, override: dict, key: str):
    bootstrap_project(PROJECT)
    data_root = tmp_path / "data"
    start = time.perf_counter()
    with (
        pytest.raises(ConfigurationError) as error,
        KedroSession.create(
            project_path=PROJECT, env="tiny", runtime_params={"data_root": str(data_root), **override}
        ) as session,
    ):
        session.run()
    assert f"  - {key}:" in str(error.value)
    assert "environment: tiny" in str(error.value)
    assert time.perf_counter() - start < 20
    assert not data_root.exists() or not any(p.is_file() for p in data_root.rglob("*"))  # nothing ran


# --------------------------------------------------------------------------------------------
# One deep merge (mtneuro.config.merge): partial blocks merged over their base, errors at the
# key that set the value
# --------------------------------------------------------------------------------------------


def test_deep_merge_merges_mappings_key_by_key_and_replaces_everything_else():
    base = {"lr": 0.1, "loss": {"lambda_ce": 1.0, "lambda_dice": 1.0}, "splits": ["train", "val"], "aug": {"flip": 1}}
    override = {"loss": {"lambda_ce": 0.5}, "splits": ["train"], "aug": None, "new": {"a": {"b": 2}}}
    merged = deep_merge(base, override)
    assert merged == {
        "lr": 0.1,
        "loss": {"lambda_ce": 0.5, "lambda_dice": 1.0},
        "splits": ["train"],
        "aug": None,
        "new": {"a": {"b": 2}},
    }
    assert base["loss"] == {"lambda_ce": 1.0, "lambda_dice": 1.0}  # the inputs are not changed


def test_every_leaf_records_the_yaml_key_that_set_it():
    merged, origin = merge_layers(
        [
            Layer({"lr": 0.1, "loss": {"lambda_ce": 1.0, "lambda_dice": 1.0}, "aug": {"flip": True}}, ("train",)),
            Layer({"loss": {"lambda_ce": 0.5}, "aug": None}, ("model_settings", "unet", "train")),
        ]
    )
    assert merged["loss"] == {"lambda_ce": 0.5, "lambda_dice": 1.0}
    assert origin == {
        ("lr",): ("train", "lr"),
        ("loss", "lambda_ce"): ("model_settings", "unet", "train", "loss", "lambda_ce"),
        ("loss", "lambda_dice"): ("train", "loss", "lambda_dice"),
        ("aug",): ("model_settings", "unet", "train", "aug"),  # the replaced block's leaves are gone
    }
    assert origin_of(("loss", "lambda_ce"), origin, ("train",)) == (
        "model_settings",
        "unet",
        "train",
        "loss",
        "lambda_ce",
    )
    assert origin_of(("aug", "flip"), origin, ("train",)) == ("model_settings", "unet", "train", "aug", "flip")
    assert origin_of(("epochs",), origin, ("train",)) == ("train", "epochs")  # set by no layer
    _, origin = merge_layers([Layer({"a": {"b": {"c": 1, "d": 2}}}, ("x",)), Layer({"a": {"b": 5}}, ("y",))])
    assert origin == {("a", "b"): ("y", "a", "b")}  # a nested replacement drops the leaves below it too


@pytest.mark.parametrize(
    ("override", "lines"),
    [
        (
            {"segmentation": {"model_settings": {"unet": {"train": {"lrr": 1, "loss": {"lamda_ce": 2}}}}}},
            [
                "segmentation.model_settings.unet.train.lrr: unknown key; allowed keys here: augment, batch_size,",
                "segmentation.model_settings.unet.train.loss.lamda_ce: unknown key; allowed keys here: class_weights,",
            ],
        ),
        (
            {"segmentation": {"model_settings": {"pan": {"evaluation": {"overlap": 2}}}}},
            ["segmentation.model_settings.pan.evaluation.overlap: with this model's overrides: Input should be less"],
        ),
        (
            {"segmentation": {"training": {"torch_thread": 2, "dataloader": {"num_workers": -1}}}},
            [
                "segmentation.training.torch_thread: unknown key; allowed keys here: accelerator, allow_cpu,",
                "segmentation.training.dataloader.num_workers: Input should be 'auto' | Input should be greater",
            ],
        ),
        (
            {"segmentation": {"training": {"allow_cpu": False}}},
            ["segmentation.training.allow_cpu: holds for the whole run: set training.allow_cpu instead (got False)"],
        ),
        (
            {"classification": {"hardware": {"accelerator": "tpu"}}},
            ["classification.hardware.accelerator: Input should be 'auto', 'cpu', 'cuda' or 'gpu' (got 'tpu')"],
        ),
        (
            {"classification": {"method_overrides": {"byol": {"lr": -1, "augmentation": {"flipp": True}}}}},
            [
                "classification.method_overrides.byol.lr: Input should be greater than 0 (got -1)",
                "classification.method_overrides.byol.augmentation.flipp: unknown key; allowed keys here: blur_prob,",
            ],
        ),
    ],
)
def test_a_bad_key_of_a_partial_block_is_named_where_it_was_written(override: dict, lines: list[str]):
    with pytest.raises(ConfigurationError) as error:
        load_checked_parameters(CONF, "tiny", override)
    text = str(error.value)
    for line in lines:
        assert f"  - {line}" in text, text
    assert text.count("\n  - ") == len(lines), text  # nothing else, and each problem once


def test_resolved_settings_say_which_block_set_a_bad_value():
    """Outside the checks (a node resolving its settings), the error still names the key."""
    parameters = load_parameters(CONF, "tiny", {"classification": {"byol": {"epochs": 0}}})
    with pytest.raises(ConfigurationError, match=r"Task 1 method 'myow':\n  - classification\.byol\.epochs: "):
        method_settings(parameters.classification, "myow")  # myow inherits byol's block
    with pytest.raises(ConfigurationError, match=r"  - segmentation\.training\.torch_threads: Input should be"):
        parameters.training.merged({"torch_threads": 0}, ("segmentation", "training"))
