"""The one plugin registry: every kind of plugin is found, listed and refused the same way."""

from __future__ import annotations

import pytest

from mtneuro.classification_methods import METHODS
from mtneuro.errors import MtneuroError
from mtneuro.features.registry import FEATURES
from mtneuro.plugins import Registry, UnknownPluginError
from mtneuro.segmentation_models import MODELS
from mtneuro.volumes.base import VolumeSourceError
from mtneuro.volumes.registry import SOURCES, open_volume


@pytest.mark.parametrize(
    ("registry", "name", "message"),
    [
        (METHODS, "simclr", "Unknown Task 1 method 'simclr'; registered methods: supervised, mixup, "),
        (MODELS, "segformer", "Unknown segmentation model 'segformer'; registered models: unet, "),
        (FEATURES, "cell_cnt", "Unknown semantic feature 'cell_cnt'; registered features: vessel_fraction, "),
    ],
)
def test_an_unknown_name_is_one_error_listing_the_registered_names(registry: Registry, name: str, message: str):
    with pytest.raises(UnknownPluginError) as caught:
        registry.get(name)
    error = caught.value
    assert isinstance(error, KeyError) and isinstance(error, MtneuroError)
    assert str(error).startswith(message)  # a sentence, not KeyError's quoted repr
    assert error.known == registry.names() and error.name == name
    assert all(known in str(error) for known in registry.names())


def test_an_unknown_volume_scheme_is_both_a_plugin_error_and_a_volume_error():
    with pytest.raises(UnknownPluginError) as caught:
        open_volume("s3://bucket/volume")
    assert isinstance(caught.value, VolumeSourceError)
    assert str(caught.value).startswith("Unknown volume URI 's3://bucket/volume': expected one of bossdb://, ")
    assert "volume.source" in str(caught.value)
    assert {"bossdb", "phantom", "tiff", "zarr"} <= set(SOURCES.names())


def test_each_registry_lists_its_plugins_in_its_order():
    assert METHODS.names()[:3] == ("supervised", "mixup", "byol")
    assert MODELS.names().index("unet") < MODELS.names().index("unet3d")  # the 2D models first
    assert FEATURES.names()[0] == "vessel_fraction"  # the module ``definitions`` first


def test_a_registry_registers_once_and_forgets_on_request():
    registry: Registry[int] = Registry("toy", None)
    registry.register("one", 1)
    with pytest.raises(ValueError, match="Toy 'one' is already registered"):
        registry.register("one", 2)
    assert registry.get("one") == 1 and "one" in registry and list(registry) == ["one"]
    registry.unregister("one")
    with pytest.raises(UnknownPluginError, match=r"^Unknown toy 'one'; registered toys: none$"):
        registry.get("one")


def test_the_command_line_prints_an_unknown_plugin_as_a_user_error():
    from mtneuro.cli import known_error

    with pytest.raises(UnknownPluginError) as caught:
        MODELS.get("segformer")
    wrapped = RuntimeError("a node failed")
    wrapped.__cause__ = caught.value
    assert known_error(wrapped) is caught.value  # one paragraph, exit 2
