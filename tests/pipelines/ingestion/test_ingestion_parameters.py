"""The ``volume`` and ``ingestion`` blocks: typed, every domain checked, errors name the full key."""

from __future__ import annotations

import pytest

from mtneuro.config import ConfigurationError, parse_block
from mtneuro.config.ingestion import IngestionParameters
from mtneuro.config.volume import VolumeParameters
from mtneuro.plugin_parameters import check_plugin_parameters


@pytest.mark.parametrize("env", ["local", "tiny", "paper"])
def test_every_profile_gives_typed_blocks(parameters_with, env):
    parameters = parameters_with(env)
    assert isinstance(parameters.volume, VolumeParameters)
    assert isinstance(parameters.ingestion, IngestionParameters)
    assert parameters.ingestion.cube_size_yx == {"local": 128, "tiny": 32, "paper": 256}[env]
    assert parameters.volume.source == ("bossdb" if env == "paper" else "phantom")


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ({"volume.source": "s3"}, "volume.source"),
        ({"volume.sourc": "bossdb"}, "volume.sourc"),
        ({"volume.uris.local.image": "s3://bucket/image"}, "volume.uris.local.image"),
        ({"volume.uris.phantom.image": "prasad2020/image"}, "volume.uris.phantom.image"),
        ({"volume.options.phantom.seed": -1}, "volume.options.phantom.seed"),
        ({"volume.options.bossdb.retires": 3}, "volume.options.bossdb.retires"),
        ({"volume.options.bossdb.chunk_size": [32, 512]}, "volume.options.bossdb.chunk_size"),
        ({"volume.options.bossdb.progress": "loud"}, "volume.options.bossdb.progress"),
        ({"volume.options.bossdb.protocol": "ftp"}, "volume.options.bossdb.protocol"),
        ({"volume.options.local.voxel_size": [1.0, 0, 1.0]}, "volume.options.local.voxel_size"),
        ({"volume.region_label_values.ZI": []}, "volume.region_label_values.ZI"),
        ({"ingestion.cube_size_yx": 0}, "ingestion.cube_size_yx"),
        ({"ingestion.cube_size_yx": 300}, "ingestion.cube_size_yx"),
        ({"ingestion.cube_sise_yx": 64}, "ingestion.cube_sise_yx"),
        ({"ingestion.main_cubes.CTX.z": [470, 110]}, "ingestion.main_cubes.CTX.z"),
        ({"ingestion.main_cubes.VP.x": [3063]}, "ingestion.main_cubes.VP.x"),
        ({"ingestion.splits.val": [380, 380]}, "ingestion.splits.val"),
        ({"ingestion.min_cube_region_fraction": 0}, "ingestion.min_cube_region_fraction"),
        ({"ingestion.extra_cubes.min_region_fraction": 1.5}, "ingestion.extra_cubes.min_region_fraction"),
        ({"ingestion.extra_cubes.per_regoin": 3}, "ingestion.extra_cubes.per_regoin"),
        ({"ingestion.extra_cubes.train_per_region": 3}, "ingestion.extra_cubes.train_per_region"),
        ({"ingestion.extra_cubes.overview_level": 31}, "ingestion.extra_cubes.overview_level"),
        ({"ingestion.extra_cubes.min_separation": -1}, "ingestion.extra_cubes.min_separation"),
        ({"ingestion.extra_cubes.ignore_label_values": [-1]}, "ingestion.extra_cubes.ignore_label_values.0"),
        (
            {"ingestion.extra_cubes.pinned": {"extra_CTX_3": {"z0": 0, "y0": 0, "x0": 0}}},
            "ingestion.extra_cubes.pinned",
        ),
        (
            {"ingestion.extra_cubes.pinned": {"extra_CTX_0": {"z0": 0, "y0": 0}}},
            "ingestion.extra_cubes.pinned.extra_CTX_0.x0",
        ),
    ],
)
def test_bad_parameters_name_the_full_key(parameters_with, override, key):
    with pytest.raises(ConfigurationError) as error:
        check_plugin_parameters(parameters_with("tiny", **override))  # URI schemes: against the registry
    assert f"  - {key}:" in str(error.value)


def test_a_missing_key_is_an_error_not_a_default(parameters_with):
    raw = parameters_with().ingestion.model_dump()
    del raw["min_cube_region_fraction"]
    with pytest.raises(ConfigurationError, match=r"ingestion\.min_cube_region_fraction: missing"):
        parse_block(IngestionParameters, raw, "ingestion")
    raw = parameters_with().ingestion.model_dump()
    del raw["extra_cubes"]["min_separation"]
    with pytest.raises(ConfigurationError, match=r"ingestion\.extra_cubes\.min_separation: missing"):
        parse_block(IngestionParameters, raw, "ingestion")


def test_the_margin_is_one_full_cube_width_in_every_profile(parameters_with):
    for env in ("local", "tiny", "paper"):
        assert parameters_with(env).ingestion.extra_cubes.min_separation == 256
    # extra cubes lie in their main cube's own brain area (the paper profile lets ZI reach into
    # the hypothalamus, which the authors' grouping counts as ZI)
    assert parameters_with("local").ingestion.extra_cubes.ignore_label_values == [0, 3, 6, 7, 8]
    assert parameters_with("tiny").ingestion.extra_cubes.ignore_label_values == [0, 3, 6, 7, 8]
    assert parameters_with("paper").ingestion.extra_cubes.ignore_label_values == [0, 3, 6, 8]


def test_a_token_is_never_a_parameter(parameters_with):
    """Parameters are logged, recorded with every cube and tracked: the token lives in the credentials."""
    with pytest.raises(ConfigurationError) as error:
        check_plugin_parameters(parameters_with("tiny", **{"volume.options.bossdb.token": "FAKE-SECRET-TOKEN-42"}))
    message = str(error.value)
    assert "  - volume.options.bossdb.token: unknown key" in message
    assert "FAKE-SECRET-TOKEN-42" not in message


def test_source_options_are_passed_on_as_written(parameters_with):
    """Unset BossDB options keep the credentials' and the reader's values; numbers keep their type."""
    options = {
        "host": "127.0.0.1:8000",
        "protocol": "http",
        "retries": 2,
        "backoff": 0.01,
        "timeout": [5, 60.5],
        "progress": False,
    }
    volume = parameters_with(
        **{"volume.source": "bossdb", "volume.options.bossdb": {**options, "workers": None}}
    ).volume
    assert volume.source_options() == options  # null: not overridden
    assert isinstance(volume.source_options()["timeout"][0], int)
    assert volume.channel_uris() == {
        "image": "bossdb://prasad/prasad2020/image",
        "roi_labels": "bossdb://prasad/prasad_analysis/roi_labels",
        "pixel_labels": "bossdb://prasad/prasad_analysis/pixel_labels",
    }
    assert parameters_with().volume.source_options() == {"seed": 0}
