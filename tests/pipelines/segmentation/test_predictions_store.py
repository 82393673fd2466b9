"""Test predictions on disk: a checksummed Zarr v3 store that loads back as the nodes wrote it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import zarr
from kedro.io import Version

from mtneuro.datasets.predictions import PredictionsDataset
from mtneuro.datasets.run_index import ArtifactReferenceDataset, RunIndexDataset
from mtneuro.datasets.versioned import DamagedArtifactError, MissingArtifactError

VERSION = "2026-01-01T00.00.00.000Z"


def _predictions() -> dict[str, dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    return {
        "main_CTX": {"z": np.arange(310, 330), "prediction": rng.integers(0, 4, (20, 24, 32), dtype=np.uint8)},
        "main_STR": {"z": np.array([0, 1, 5, 9]), "prediction": rng.integers(0, 4, (4, 24, 32), dtype=np.uint8)},
    }


@pytest.fixture
def store(tmp_path: Path) -> Path:
    root = tmp_path / "07_model_output" / "segmentation" / "unet" / "seg_4class" / "seed0" / "test_predictions.zarr"
    PredictionsDataset(filepath=str(root), setting="seg_4class", version=Version(None, VERSION)).save(_predictions())
    return root


def _load(root: Path) -> dict:
    return PredictionsDataset(filepath=str(root), version=Version(VERSION, None)).load()


def test_predictions_round_trip_through_a_zarr_v3_store(store: Path) -> None:
    loaded, saved = _load(store), _predictions()
    assert sorted(loaded) == sorted(saved)
    for cube_id, entry in saved.items():
        assert loaded[cube_id]["prediction"].dtype == np.uint8
        np.testing.assert_array_equal(loaded[cube_id]["prediction"], entry["prediction"])
        np.testing.assert_array_equal(loaded[cube_id]["z"], entry["z"])
        assert loaded[cube_id]["z"].dtype == np.int64
    # any Zarr reader opens it: v3, one array per cube, z and label names as attributes
    folder = store / VERSION / "test_predictions.zarr"
    assert json.loads((folder / "zarr.json").read_text())["zarr_format"] == 3
    group = zarr.open_group(str(folder), mode="r")
    cube = group["main_STR"]
    assert cube.shape == (4, 24, 32) and cube.dtype == np.uint8
    assert cube.metadata.dimension_names == ("z", "y", "x")
    assert cube.attrs["z"] == [0, 1, 5, 9]
    names = {"0": "background", "1": "vessel", "2": "cell", "3": "axon"}
    assert cube.attrs["label_names"] == names
    attrs = group.attrs["mtneuro_predictions"]
    assert attrs["setting"] == "seg_4class" and attrs["label_names"] == names
    assert attrs["cubes"] == ["main_CTX", "main_STR"]
    # every file has its checksum; written in a temporary folder, renamed into place
    listed = {line.split("  ")[1] for line in (folder / "SHA256SUMS").read_text().splitlines()}
    assert listed == {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.name != "SHA256SUMS"} - {
        p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_dir()
    }
    assert not list((store / VERSION).glob(".*tmp-*"))


def test_three_class_labels_name_the_merged_axons(tmp_path: Path) -> None:
    root = tmp_path / "p.zarr"
    PredictionsDataset(filepath=str(root), setting="seg_3class").save(_predictions())
    names = zarr.open_group(str(root), mode="r").attrs["mtneuro_predictions"]["label_names"]
    assert names == {"0": "background (incl. axon)", "1": "vessel", "2": "cell"}


def test_a_damaged_chunk_is_refused_naming_the_file_and_counts_as_missing(store: Path) -> None:
    folder = store / VERSION / "test_predictions.zarr"
    chunk = next(p for p in sorted((folder / "main_CTX").rglob("*")) if p.is_file() and p.name != "zarr.json")
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0xFF
    chunk.write_bytes(bytes(data))
    with pytest.raises(DamagedArtifactError) as caught:
        _load(store)
    message = str(caught.value)
    assert str(folder) in message and chunk.relative_to(folder).as_posix() in message and "SHA-256" in message
    assert "kedro run --pipelines=segmentation --only-missing-outputs" in message
    assert not PredictionsDataset(filepath=str(store), version=Version(VERSION, None)).exists()


def test_the_run_index_loads_predictions_and_refuses_a_changed_store(store: Path, tmp_path: Path) -> None:
    reference = ArtifactReferenceDataset(filepath=str(store), version=Version(None, None)).load()
    index_path = tmp_path / "06_models" / "segmentation" / "segmentation_runs.json"
    members = {"test_predictions": {"type": "mtneuro.datasets.predictions.PredictionsDataset"}}
    RunIndexDataset(filepath=str(index_path), members=members).save(
        {"unet.seg_4class.seed0": {"test_predictions": reference}}
    )
    index = RunIndexDataset(filepath=str(index_path), members=members).load()
    np.testing.assert_array_equal(
        index["unet.seg_4class.seed0"]["test_predictions"]["main_CTX"]["prediction"],
        _predictions()["main_CTX"]["prediction"],
    )
    (store / VERSION / "test_predictions.zarr" / "main_STR" / "zarr.json").unlink()
    with pytest.raises(MissingArtifactError, match=r"main_STR/zarr\.json"):
        RunIndexDataset(filepath=str(index_path), members=members).load()["unet.seg_4class.seed0"]["test_predictions"]
