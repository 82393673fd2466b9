"""Every model a later node loads is checked against the checksum written with it.

Real files on disk, real datasets: bits flipped in a saved encoder or model stop the load with
an error naming the file and the command that rebuilds it, a deleted weights file gives one
paragraph naming the run, and a damaged model counts as missing (what
``--only-missing-outputs`` relies on).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from kedro.io import DatasetError, Version
from kedro_datasets.pickle import PickleDataset

from mtneuro import models
from mtneuro.datasets.frozen_encoder import FrozenEncoderDataset
from mtneuro.datasets.run_index import ArtifactReferenceDataset, RunIndexDataset
from mtneuro.datasets.torch_model import TorchModelDataset
from mtneuro.datasets.versioned import DamagedArtifactError, MissingArtifactError
from mtneuro.faults import FaultError
from mtneuro.segmentation_models import build_segmentation_model, run_settings

VERSION = "2026-01-01T00.00.00.000Z"
ARCHITECTURE = {"name": "resnet18", "in_channels": 1, "representation_dim": 8, "width": 4, "stem": "small"}
INPUT = {
    "size": 16,
    "scaling": "1/255",
    "resize": "area",
    "normalisation": {"mode": "training_set", "mean": 0.5, "std": 0.25},
}


def _encoder() -> models.ResNetFrozenEncoder:
    import torch

    torch.manual_seed(0)
    network = models.build_task1_encoder(ARCHITECTURE)
    return models.ResNetFrozenEncoder(network, {"architecture": ARCHITECTURE, "input": INPUT, "method": "byol"}, "cpu")


def _flip_bits(path: Path, offset: int | None = None) -> None:
    data = bytearray(path.read_bytes())
    position = len(data) // 2 if offset is None else offset
    data[position] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.fixture
def encoder_path(tmp_path: Path) -> Path:
    """A saved encoder where the classification pipeline keeps it (the error names that pipeline)."""
    root = tmp_path / "data" / "06_models" / "classification" / "byol" / "roi_c1" / "seed0" / "frozen_encoder"
    FrozenEncoderDataset(filepath=str(root), version=Version(None, VERSION)).save(_encoder())
    return root


def _load_encoder(root: Path) -> models.FrozenEncoder:
    return FrozenEncoderDataset(filepath=str(root), version=Version(VERSION, None)).load()


def test_an_intact_encoder_loads_and_embeds_as_saved(encoder_path: Path) -> None:
    images = (np.random.default_rng(0).random((3, 16, 16)) * 255).astype(np.uint8)
    np.testing.assert_allclose(_load_encoder(encoder_path).embed(images), _encoder().embed(images), atol=1e-6)
    folder = encoder_path / VERSION / "frozen_encoder"
    sums = (folder / "SHA256SUMS").read_text().splitlines()
    assert sorted(line.split("  ")[1] for line in sums) == ["metadata.json", "weights.pt"]
    assert not list(encoder_path.glob("*.tmp-*"))  # written in a temporary folder, renamed into place


def test_flipped_bits_in_an_encoder_stop_the_load_naming_the_file(encoder_path: Path) -> None:
    weights = encoder_path / VERSION / "frozen_encoder" / "weights.pt"
    _flip_bits(weights)
    dataset = FrozenEncoderDataset(filepath=str(encoder_path), version=Version(VERSION, None))
    with pytest.raises(DamagedArtifactError) as caught:
        dataset.load()
    message = str(caught.value)
    assert str(weights) in message and "SHA-256" in message
    assert "`kedro run --pipelines=classification --only-missing-outputs`" in message
    assert isinstance(caught.value, FaultError) and isinstance(caught.value, DatasetError)
    assert "\n" not in message  # one paragraph
    assert not dataset.exists()  # counts as missing: --only-missing-outputs trains it again


def test_a_deleted_encoder_weights_file_is_one_paragraph_naming_the_run(encoder_path: Path, tmp_path: Path) -> None:
    reference = ArtifactReferenceDataset(filepath=str(encoder_path), version=Version(None, None)).load()
    assert reference.version == VERSION and reference.sha256
    index_path = tmp_path / "data" / "06_models" / "classification" / "frozen_encoders.json"
    members = {"frozen_encoder": {"type": "mtneuro.datasets.frozen_encoder.FrozenEncoderDataset"}}
    index = RunIndexDataset(str(index_path), members)
    index.save({"byol.roi_c1.seed0": {"frozen_encoder": reference}})
    assert index.exists()
    (encoder_path / VERSION / "frozen_encoder" / "weights.pt").unlink()

    assert not index.exists()  # a member is gone: the index counts as missing too
    with pytest.raises(MissingArtifactError) as caught:
        index.load()["byol.roi_c1.seed0"]["frozen_encoder"]
    message = str(caught.value)
    assert message.startswith("Run 'byol.roi_c1.seed0', frozen_encoder: ")
    assert "weights.pt" in message and "missing" in message and "FileNotFoundError" not in message
    assert "`kedro run --pipelines=classification --only-missing-outputs`" in message


def test_a_changed_pickle_behind_a_run_index_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "data" / "06_models" / "classification" / "pca" / "roi_c1" / "seed0" / "readout.pkl"
    PickleDataset(filepath=str(path), version=Version(None, VERSION)).save({"weights": [1.0, 2.0]})
    reference = ArtifactReferenceDataset(filepath=str(path), version=Version(None, None)).load()
    index_path = tmp_path / "data" / "06_models" / "classification" / "frozen_encoders.json"
    index = RunIndexDataset(str(index_path), {"readout": {"type": "pickle.PickleDataset"}})
    index.save({"pca.roi_c1.seed0": {"readout": reference}})
    assert index.load()["pca.roi_c1.seed0"]["readout"] == {"weights": [1.0, 2.0]}

    _flip_bits(path / VERSION / "readout.pkl", offset=-3)
    assert not index.exists()
    with pytest.raises(DamagedArtifactError, match=r"Run 'pca\.roi_c1\.seed0', readout: .*readout\.pkl is damaged"):
        index.load()["pca.roi_c1.seed0"]["readout"]
    # rebuilding the index over the changed file must not bless it
    changed = ArtifactReferenceDataset(filepath=str(path), version=Version(None, None)).load()
    with pytest.raises(DamagedArtifactError, match="changed since"):
        index.save({"pca.roi_c1.seed0": {"readout": changed}})


def test_an_edited_run_index_is_refused(encoder_path: Path, tmp_path: Path) -> None:
    reference = ArtifactReferenceDataset(filepath=str(encoder_path), version=Version(None, None)).load()
    index_path = tmp_path / "index.json"
    members = {"frozen_encoder": {"type": "mtneuro.datasets.frozen_encoder.FrozenEncoderDataset"}}
    RunIndexDataset(str(index_path), members).save({"byol.roi_c1.seed0": {"frozen_encoder": reference}})
    payload = json.loads(index_path.read_text())
    payload["runs"]["byol.roi_c1.seed0"]["frozen_encoder"]["version"] = "2025-01-01T00.00.00.000Z"
    index_path.write_text(json.dumps(payload))
    with pytest.raises(DamagedArtifactError, match=r"index\.json is damaged"):
        RunIndexDataset(str(index_path), members).load()
    assert not RunIndexDataset(str(index_path), members).exists()


def test_a_trained_model_with_flipped_bits_is_refused_and_counts_as_missing(tmp_path: Path) -> None:
    path = tmp_path / "data" / "06_models" / "segmentation" / "unet" / "seg_3class" / "seed0" / "model.pt"
    from mtneuro.config import load_parameters

    kwargs = run_settings(
        load_parameters(Path(__file__).resolve().parents[2] / "conf", "tiny").segmentation, "unet"
    ).kwargs
    net = build_segmentation_model("unet", 3, **kwargs)
    TorchModelDataset(filepath=str(path), version=Version(None, VERSION)).save(net)
    dataset = TorchModelDataset(filepath=str(path), version=Version(VERSION, None))
    assert dataset.exists()
    record = json.loads((path / VERSION / "model.json").read_text())
    assert len(record["weights_sha256"]) == 64
    _flip_bits(path / VERSION / "model.pt")
    assert not dataset.exists()
    with pytest.raises(DamagedArtifactError, match=r"model\.pt is damaged.*--pipelines=segmentation --only-missing"):
        dataset.load()
    (path / VERSION / "model.pt").unlink()
    with pytest.raises(MissingArtifactError, match=r"weights file .*model\.pt is missing"):
        dataset.load()


@pytest.mark.slow
def test_only_missing_outputs_rebuilds_a_damaged_encoder_and_its_index(kedro_run, tiny_cubes, tmp_path: Path) -> None:
    """A real tiny run (PCA, ROI-C1): bits flipped in its encoder; the rebuild command the error
    names trains that encoder again and rewrites the index, and nothing else."""
    grid = {"classification": {"methods": ["pca"], "configs": ["roi_c1"]}}
    kedro_run(["classification"], tiny_cubes(tmp_path), extra_params=grid)
    root = tmp_path / "06_models" / "classification" / "pca" / "roi_c1" / "seed0" / "frozen_encoder"
    (first,) = sorted(p.name for p in root.iterdir())
    cubes = {p: p.stat().st_mtime_ns for p in (tmp_path / "02_intermediate").rglob("*") if p.is_file()}
    _flip_bits(root / first / "frozen_encoder" / "decomposition.joblib")
    index = RunIndexDataset(
        str(tmp_path / "06_models" / "classification" / "frozen_encoders.json"),
        {"frozen_encoder": {"type": "mtneuro.datasets.frozen_encoder.FrozenEncoderDataset"}},
    )
    with pytest.raises(DamagedArtifactError, match="--pipelines=classification --only-missing-outputs"):
        index.load()["pca.roi_c1.seed0"]["frozen_encoder"]

    kedro_run(["classification"], tmp_path, extra_params=grid, only_missing_outputs=True)
    versions = sorted(p.name for p in root.iterdir())
    assert len(versions) == 2 and versions[0] == first  # trained again, as a new version
    encoder = index.load()["pca.roi_c1.seed0"]["frozen_encoder"]  # the index points to the new one
    assert encoder.metadata["method"] == "pca"
    assert index.load()["pca.roi_c1.seed0"].reference("frozen_encoder").version == versions[1]
    assert {p: p.stat().st_mtime_ns for p in cubes} == cubes  # ingestion did not run again
