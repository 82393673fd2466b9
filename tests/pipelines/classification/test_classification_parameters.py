"""The typed ``classification`` block and the Task 1 method registry: every profile parses, a
method's settings are its blocks merged along the registry's inheritance, bad values name their
full key."""

from __future__ import annotations

from pathlib import Path

import pytest
from classification_helpers import tiny_params, tiny_raw
from pydantic import BaseModel

from mtneuro.classification_methods import (
    MethodSpec,
    UnknownMethodError,
    check_classification,
    get_method,
    method_names,
    method_settings,
    register_method,
    unregister_method,
)
from mtneuro.config import ConfigurationError, load_parameters, parse_block
from mtneuro.config.classification import ClassificationParameters, NetworkSettings
from mtneuro.plugin_parameters import load_checked_parameters


@pytest.fixture(scope="module")
def conf(project_path: Path) -> Path:
    return project_path / "conf"


# --------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------


def test_registry_holds_the_papers_methods_in_table_order_with_their_labels():
    assert method_names() == (
        "supervised",
        "mixup",
        "byol",
        "myow",
        "myow_merged",
        "pca",
        "nmf",
        "intensity_baseline",
        "random_encoder",
    )
    assert {m: get_method(m).label for m in method_names()} == {  # the paper's Table 1 rows, then the controls
        "supervised": "Supervised",
        "mixup": "Sup w/ Mixup",
        "byol": "BYOL",
        "myow": "MYOW",
        "myow_merged": "MYOW-m",
        "pca": "PCA",
        "nmf": "NMF",
        "intensity_baseline": "4 gray-level statistics (mean, std, p10, p90) + logistic regression",
        "random_encoder": "Random encoder (untrained, frozen) + linear read-out",
    }
    kinds = {m: get_method(m).kind for m in method_names()}
    assert kinds == {
        "supervised": "supervised",
        "mixup": "supervised",
        "byol": "ssl",
        "myow": "ssl",
        "myow_merged": "ssl",
        "pca": "decomposition",
        "nmf": "decomposition",
        "intensity_baseline": "decomposition",
        "random_encoder": "ssl",
    }
    assert [m for m in method_names() if get_method(m).needs_readout] == [
        "byol",
        "myow",
        "myow_merged",
        "pca",
        "nmf",
        "intensity_baseline",
        "random_encoder",
    ]
    assert get_method("mixup").inherits == ("network_training", "supervised", "mixup")
    assert get_method("myow_merged").inherits == ("network_training", "byol", "myow", "myow_merged")
    assert get_method("myow_merged").network == "mtneuro.classification_methods._myow_network:MyowMergedLearner"
    assert get_method("pca").network is None
    with pytest.raises(UnknownMethodError, match="registered methods: supervised, mixup"):
        get_method("simclr")
    with pytest.raises(ValueError, match="already registered"):
        register_method(get_method("byol"))


def test_a_registered_method_is_accepted_with_its_block_and_settings():
    class SimclrSettings(NetworkSettings):
        temperature: float

    register_method(
        MethodSpec(
            name="simclr",
            label="SimCLR",
            kind="ssl",
            order=35,
            inherits=("network_training", "simclr"),
            settings=SimclrSettings,
            trainer=print,
        )
    )
    try:
        assert method_names().index("simclr") == 3
        raw = tiny_raw()
        raw["methods"].append("simclr")
        with pytest.raises(ConfigurationError, match=r"classification.simclr: missing"):
            check_classification(parse_block(ClassificationParameters, raw, "classification"))
        raw["simclr"] = {"temperature": 0.1, "epochs": 3}
        settings = method_settings(
            check_classification(parse_block(ClassificationParameters, raw, "classification")), "simclr"
        )
        assert isinstance(settings, SimclrSettings) and settings.temperature == 0.1 and settings.epochs == 3
    finally:
        unregister_method("simclr")
    assert "simclr" not in method_names()


# --------------------------------------------------------------------------------------------
# Profiles and resolved settings
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("env", ["local", "tiny", "paper"])
def test_every_profile_parses_and_resolves_every_method(conf: Path, env: str):
    classification = load_parameters(conf, env).classification
    assert isinstance(classification, ClassificationParameters)
    for method in classification.methods:
        settings = method_settings(classification, method)
        assert isinstance(settings, get_method(method).settings)


def test_method_settings_merge_the_registry_chain_as_before(conf: Path):
    """The resolved settings equal the former merge (network_training <- supervised <- mixup ...)."""
    base = load_parameters(conf, "local").classification
    raw = base.model_dump()

    def former(method: str) -> dict:  # the former nodes.method_settings (a deep merge), on the YAML dicts
        from omegaconf import OmegaConf

        def deep_merge(base: dict, override: dict | None) -> dict:
            return OmegaConf.to_container(OmegaConf.merge(base, override or {}))

        chains = {
            "supervised": ("network_training", "supervised"),
            "mixup": ("network_training", "supervised", "mixup"),
            "byol": ("network_training", "byol"),
            "myow": ("network_training", "byol", "myow"),
            "myow_merged": ("network_training", "byol", "myow", "myow_merged"),
            "pca": ("decomposition", "pca"),
            "nmf": ("decomposition", "nmf"),
            "intensity_baseline": ("intensity_baseline",),
            "random_encoder": ("random_encoder",),
        }
        decompositions = ("pca", "nmf", "intensity_baseline")
        settings = {"augmentation": dict(raw["augmentation"])} if method not in decompositions else {}
        for block in chains[method]:
            settings = deep_merge(settings, raw[block])
        return deep_merge(settings, raw["method_overrides"].get(method) or {})

    for method in method_names():
        assert method_settings(base, method).model_dump() == former(method), method
    byol = method_settings(base, "byol")
    assert (byol.epochs, byol.projector_hidden, byol.lr) == (24, 512, 0.05)  # the YAML's, not the former code's 4096
    assert method_settings(base, "mixup").epochs == 40 and method_settings(base, "nmf").input_size == 32
    assert method_settings(base, "nmf").history_chunks == 3 and method_settings(base, "pca").input_size == 64
    assert type(method_settings(base, "myow").ramp_epochs) is int  # kept as written


def test_method_overrides_apply_last_and_deep(conf: Path):
    params = load_parameters(
        conf,
        "tiny",
        {"classification": {"method_overrides": {"myow_merged": {"epochs": 9, "augmentation": {"noise_std": 0.0}}}}},
    ).classification
    merged = method_settings(params, "myow_merged")
    assert merged.epochs == 9 and merged.augmentation.noise_std == 0.0 and merged.augmentation.flip is True
    assert merged.projector_hidden == 32 and merged.mined_weight == 0.1
    assert method_settings(params, "myow").epochs == 2 and method_settings(params, "mixup").dropout == 0.2


# --------------------------------------------------------------------------------------------
# Bad parameters name the full key
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "key", "message"),
    [
        ({"network_training": {"epochs": 0}}, "classification.network_training.epochs", "greater than 0"),
        ({"network_training": {"epochs": -1}}, "classification.network_training.epochs", "greater than 0"),
        ({"network_training": {"epoch": 5}}, "classification.network_training.epoch", "unknown key"),
        (
            {"network_training": {"batch_size": 1}},
            "classification.network_training.batch_size",
            "greater than or equal to 2",
        ),
        ({"network_training": {"lr": 0}}, "classification.network_training.lr", "greater than 0"),
        (
            {"methods": ["supervised", "simclr"]},
            "classification.methods.1",
            "registered methods: supervised, mixup, byol",
        ),
        ({"methods": []}, "classification.methods", "at least 1"),
        ({"seeds": []}, "classification.seeds", "at least 1"),
        ({"seeds": [0, -1]}, "classification.seeds.1", "greater than or equal to 0"),
        ({"configs": ["roi_c2"]}, "classification.configs.0", "'roi_c1' or 'roi_c3'"),
        ({"data": {"train_slice_step": 0}}, "classification.data.train_slice_step", "greater than 0"),
        ({"augmentation": {"blur_prob": 1.5}}, "classification.augmentation.blur_prob", "less than or equal to 1"),
        ({"augmentation": {"crop_scale": [0.9, 0.5]}}, "classification.augmentation.crop_scale", "min <= max"),
        ({"byol": {"epochs": 0}}, "classification.byol.epochs", "greater than 0"),
        ({"myow": {"k": 0}}, "classification.myow.k", "greater than 0"),
        ({"byol": {"projector_hiden": 8}}, "classification.byol.projector_hiden", "unknown key"),
        ({"nmf": {"init": "custom"}}, "classification.nmf.init", "nndsvda"),
        ({"method_overrides": {"bayol": {"epochs": 3}}}, "classification.method_overrides.bayol", "registered methods"),
        (
            {"method_overrides": {"byol": {"epochs": -2}}},
            "classification.method_overrides.byol.epochs",
            "greater than 0",
        ),
        ({"byolx": {"epochs": 3}}, "classification.byolx", "unknown key"),
        ({"evaluate_on": {"roi_c3": []}}, "classification.evaluate_on.roi_c3", "at least 1"),
        ({"hardware": {"torch_threads": 0}}, "classification.hardware.torch_threads", "greater than 0"),
    ],
)
def test_bad_parameters_name_the_full_key(conf: Path, override: dict, key: str, message: str):
    with pytest.raises(ConfigurationError) as error:
        load_checked_parameters(conf, "tiny", {"classification": override})
    text = str(error.value)
    line = next((line for line in text.splitlines() if line.startswith(f"  - {key}:")), None)
    assert line is not None, text
    assert message in line, text


def test_the_grid_needs_test_configurations_and_slice_steps():
    raw = tiny_raw()
    del raw["evaluate_on"]["roi_c3"]
    with pytest.raises(ConfigurationError, match=r"classification.evaluate_on.roi_c3: missing"):
        check_classification(parse_block(ClassificationParameters, raw, "classification"))
    raw = tiny_raw()
    del raw["data"]["test_slice_step"]["roi_c2"]
    with pytest.raises(ConfigurationError, match=r"classification.data.test_slice_step.roi_c2: missing"):
        check_classification(parse_block(ClassificationParameters, raw, "classification"))
    raw = tiny_raw()  # a training set outside the grid needs nothing
    raw["configs"] = ["roi_c1"]
    del raw["evaluate_on"]["roi_c3"]
    del raw["data"]["test_slice_step"]["roi_c3"]
    assert check_classification(parse_block(ClassificationParameters, raw, "classification")).configs == ["roi_c1"]


def test_no_key_has_a_default_in_code():
    for model in (ClassificationParameters, *(get_method(m).settings for m in method_names())):
        for name, field in model.model_fields.items():
            assert field.is_required(), f"{model.__name__}.{name}"
    raw = tiny_raw()
    del raw["myow"]["k"]
    with pytest.raises(ConfigurationError, match=r"classification.myow.k: missing"):
        check_classification(parse_block(ClassificationParameters, raw, "classification"))
    raw = tiny_raw()
    del raw["readout"]
    with pytest.raises(ConfigurationError, match=r"classification.readout: missing"):
        check_classification(parse_block(ClassificationParameters, raw, "classification"))


def test_parsed_parameters_round_trip():
    params = tiny_params()
    again = ClassificationParameters.model_validate(params.model_dump())
    assert again == params and isinstance(method_settings(again, "nmf"), BaseModel)
