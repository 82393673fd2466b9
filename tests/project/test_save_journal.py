"""The save journal (mtneuro.stopping): what a killed process was saving is removed when the next
run starts, so that ``--only-missing-outputs`` computes it again instead of trusting it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest
from kedro.io import DataCatalog

from mtneuro.stopping import JOURNAL_DIR, JOURNAL_ENV, SAVE_VERSION_ENV, StopOnSigtermHook


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(JOURNAL_ENV, raising=False)
    monkeypatch.delenv(SAVE_VERSION_ENV, raising=False)


def _catalog(root: Path, save_version: str) -> DataCatalog:
    return DataCatalog.from_config(
        {
            "table": {"type": "pandas.CSVDataset", "filepath": str(root / "table.csv")},
            "runs": {"type": "pandas.CSVDataset", "filepath": str(root / "runs.csv"), "versioned": True},
            "brain_map": {
                "type": "mtneuro.datasets.ome_zarr_store.OmeZarrMapDataset",
                "path": str(root / "brain_map.ome.zarr"),
            },
        },
        save_version=save_version,
    )


def _run_params(root: Path, run_id: str) -> dict:
    return {"runtime_params": {"data_root": str(root)}, "project_path": str(root), "run_id": run_id}


def test_a_save_killed_half_way_is_removed_by_the_next_run(tmp_path: Path) -> None:
    frame = pd.DataFrame({"a": [1, 2]})
    first = _catalog(tmp_path, "2026-01-01T00.00.00.000Z")
    first.save("runs", frame)  # an earlier, finished version: kept
    killed = "2026-01-02T00.00.00.000Z"
    catalog = _catalog(tmp_path, killed)
    hook = StopOnSigtermHook()
    hook.before_pipeline_run(_run_params(tmp_path, killed), catalog)
    assert os.environ[JOURNAL_ENV] == str(tmp_path / JOURNAL_DIR)
    hook.before_dataset_saved("table")
    catalog.save("table", frame)
    hook.after_dataset_saved("table")  # a finished save leaves no entry
    for name in ("runs", "brain_map"):  # the process dies while saving these
        hook.before_dataset_saved(name)
    (tmp_path / "runs.csv" / killed).mkdir(parents=True)
    (tmp_path / "runs.csv" / killed / "runs.csv").write_text("a\n1\n")  # cut short
    (tmp_path / "brain_map.ome.zarr").mkdir()  # resumable on its own: left as it is
    entries = [json.loads(p.read_text()) for p in (tmp_path / JOURNAL_DIR).glob("*.json")]
    assert sorted(e["dataset"] for e in entries) == ["brain_map", "runs"]
    assert {e["version"] for e in entries} == {killed} and {e["pid"] for e in entries} == {os.getpid()}

    # the next run (another process: a fresh hook) clears what the killed saves left
    rerun = _catalog(tmp_path, "2026-01-03T00.00.00.000Z")
    StopOnSigtermHook().before_pipeline_run(_run_params(tmp_path, "2026-01-03T00.00.00.000Z"), rerun)
    assert not (tmp_path / "runs.csv" / killed).exists()
    assert (tmp_path / "runs.csv" / "2026-01-01T00.00.00.000Z" / "runs.csv").exists()
    assert rerun.load("runs").equals(frame)  # the finished version is the latest again
    assert (tmp_path / "table.csv").exists() and (tmp_path / "brain_map.ome.zarr").exists()
    assert not list((tmp_path / JOURNAL_DIR).glob("*.json"))


def test_a_killed_save_of_an_unversioned_table_counts_as_missing(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path, "v1")
    hook = StopOnSigtermHook()
    hook.before_pipeline_run(_run_params(tmp_path, "v1"), catalog)
    hook.before_dataset_saved("table")
    (tmp_path / "table.csv").write_text("a\n1")  # half a table: it would load
    assert catalog.exists("table")
    hook.on_pipeline_error()  # the run fails; the entry stays for the next run
    assert JOURNAL_ENV not in os.environ

    StopOnSigtermHook().before_pipeline_run(_run_params(tmp_path, "v2"), catalog)
    assert not catalog.exists("table")


def test_a_run_whose_saves_all_finished_leaves_no_journal(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path, "v1")
    hook = StopOnSigtermHook()
    hook.before_pipeline_run(_run_params(tmp_path, "v1"), catalog)
    hook.before_dataset_saved("table")
    catalog.save("table", pd.DataFrame({"a": [1]}))
    hook.after_dataset_saved("table")
    hook.after_pipeline_run()
    assert not (tmp_path / JOURNAL_DIR).exists()
    assert JOURNAL_ENV not in os.environ and SAVE_VERSION_ENV not in os.environ
