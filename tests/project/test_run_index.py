"""The run index: a task's per-run artefacts behind one lazily loaded dataset."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from kedro.io import DatasetError, Version
from kedro_datasets.pickle import PickleDataset

from mtneuro.datasets.run_index import ArtifactReference, ArtifactReferenceDataset, RunIndexDataset
from mtneuro.run_grid import expand_grid, make_indexer, reference_inputs

MEMBERS = {"model": {"type": "pickle.PickleDataset"}}


def _save_version(path: Path, value: object, version: str) -> None:
    PickleDataset(filepath=str(path), version=Version(None, version)).save(value)


def test_references_resolve_the_latest_version_without_loading(tmp_path: Path) -> None:
    path = tmp_path / "runs" / "a" / "model.pkl"
    _save_version(path, "old", "2026-01-01T00.00.00.000Z")
    _save_version(path, "new", "2026-01-02T00.00.00.000Z")
    reference = ArtifactReferenceDataset(filepath=str(path), version=Version(None, None)).load()
    assert (reference.filepath, reference.version) == (str(path), "2026-01-02T00.00.00.000Z")
    assert reference.sha256 and len(reference.sha256) == 64  # the content it points to, checked on load
    with pytest.raises(DatasetError, match="read-only"):
        ArtifactReferenceDataset(filepath=str(path), version=Version(None, None)).save("an artefact")
    with pytest.raises(DatasetError):
        ArtifactReferenceDataset(filepath=str(tmp_path / "missing.pkl"), version=Version(None, None)).load()


def test_index_loads_the_recorded_versions_lazily_and_survives_a_move(tmp_path: Path) -> None:
    project = tmp_path / "project"
    runs = expand_grid("task", ["m1", "m2"], ["c"], [0])
    references = []
    for run in runs:
        path = project / "runs" / run.method / "model.pkl"
        _save_version(path, f"{run.method}-v1", "2026-01-01T00.00.00.000Z")
        references.append(ArtifactReferenceDataset(filepath=str(path), version=Version(None, None)).load())
        _save_version(path, f"{run.method}-v2", "2026-01-02T00.00.00.000Z")  # a later run, not indexed
    assert reference_inputs(runs, ["model"]) == ["task.m1.c.seed0.model@reference", "task.m2.c.seed0.model@reference"]
    index_path = project / "runs" / "index.json"
    RunIndexDataset(str(index_path), MEMBERS).save(make_indexer(runs, ["model"])(*references))
    stored = json.loads(index_path.read_text())["runs"]
    assert stored["m1.c.seed0"]["model"]["filepath"] == "m1/model.pkl"  # relative to the index

    moved = tmp_path / "moved"
    shutil.move(project, moved)
    index = RunIndexDataset(str(moved / "runs" / "index.json"), MEMBERS).load()
    assert sorted(index) == ["m1.c.seed0", "m2.c.seed0"]
    assert index["m2.c.seed0"]["model"] == "m2-v1"  # the version the run wrote, not the newest
    with pytest.raises(KeyError, match="holds"):
        index["m3.c.seed0"]
    shutil.rmtree(moved / "runs" / "m1" / "model.pkl" / "2026-01-01T00.00.00.000Z")
    with pytest.raises(DatasetError, match=r"m1\.c\.seed0.*missing.*kedro run --only-missing-outputs"):
        index["m1.c.seed0"]["model"]


def test_index_rejects_bad_configuration_and_files(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="members"):
        RunIndexDataset(str(tmp_path / "i.json"), {})
    with pytest.raises(DatasetError, match="'type'"):
        RunIndexDataset(str(tmp_path / "i.json"), {"model": {}})
    dataset = RunIndexDataset(str(tmp_path / "i.json"), MEMBERS)
    with pytest.raises(DatasetError, match="No run index"):
        dataset.load()
    with pytest.raises(DatasetError, match="not in 'members'"):
        dataset.save({"r": {"weights": ArtifactReference("x", None)}})
    (tmp_path / "i.json").write_text("{broken")
    with pytest.raises(DatasetError, match="not valid JSON"):
        dataset.load()
    with pytest.raises(ValueError, match="Expected 2 references"):
        make_indexer(expand_grid("t", ["a", "b"], ["c"], 1), ["model"])(ArtifactReference("x", None))
