"""A run whose inputs no earlier run wrote stops before any node, naming the pipeline that writes them."""

from __future__ import annotations

import pytest

from mtneuro.preflight import MissingInputsError, missing_inputs_message


def test_reporting_on_an_empty_data_root_names_the_task_pipelines(kedro_run, tmp_path):
    data_root = tmp_path / "data"
    with pytest.raises(MissingInputsError) as caught:
        kedro_run(["reporting"], data_root)
    message = str(caught.value)
    assert f"under {data_root}/ (profile --env=tiny)" in message
    # every command repeats the user's --env and data_root, so that it fills this very folder
    same = f"--params data_root={data_root}`"
    for table, pipeline in [
        ("task1_region_classification", "classification"),
        ("task2_segmentation", "segmentation"),
        ("task3_probing", "probing"),
        ("mapping_validation", "mapping"),
    ]:
        line = next(line for line in message.splitlines() if table in line)
        assert f"`kedro run --env=tiny --pipelines={pipeline} {same}" in line, line
    assert f"`kedro run --env=tiny --pipelines=classification,mapping,probing,segmentation {same} first" in message
    assert f"the whole project with `kedro run --env=tiny {same}" in message
    # nothing ran: the report folder was not even created, and no lock was left behind
    assert not (data_root / "08_reporting").exists()
    assert not (data_root / ".mtneuro.lock").exists()


def test_the_hint_keeps_the_default_profile_and_data_root_out_of_the_command():
    from kedro.pipeline import Node, Pipeline

    registry = {"ingestion": Pipeline([Node(lambda: 1, None, "cubes", name="make")])}
    message = missing_inputs_message(["cubes"], registry, "data", env="local", user_data_root=None)
    assert "`kedro run --pipelines=ingestion` first" in message and "--env" not in message


def test_the_hook_reads_the_volume_block_kedro_hands_over_typed(project_path):
    """Kedro validates ``params:volume`` into ``VolumeParameters``: the BossDB probe must still
    see the source and its URIs (a typed block once read as "no volume" and skipped the probe)."""
    from types import SimpleNamespace

    from mtneuro.config import load_parameters
    from mtneuro.preflight import PreflightHook

    volume = load_parameters(project_path / "conf", "tiny", {"volume": {"source": "bossdb"}}).volume
    for given in (volume, volume.model_dump()):
        hook = PreflightHook()
        hook.after_context_created(
            SimpleNamespace(config_loader=None, project_path=project_path, params={"volume": given})
        )
        assert hook.volume["source"] == "bossdb"
        assert hook.volume["uris"]["bossdb"]["image"] == "bossdb://prasad/prasad2020/image"
