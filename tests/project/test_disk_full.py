"""A full disk while a model is written: one error naming the file and the bytes needed, and
nothing half-written (ENOSPC injected in the file writer, after part of the file went out)."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
from fsspec.implementations.local import LocalFileOpener
from kedro.io import Version

from mtneuro.datasets.frozen_encoder import FrozenEncoderDataset
from mtneuro.datasets.torch_model import TorchModelDataset
from mtneuro.faults import DiskFullError, format_bytes
from mtneuro.segmentation_models import build_segmentation_model

VERSION = "2026-01-01T00.00.00.000Z"


@pytest.fixture
def full_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every file write gets 100 bytes onto the disk, then ENOSPC (as a real full disk does)."""
    original = LocalFileOpener.write

    def write(self, data):
        original(self, data[:100])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(LocalFileOpener, "write", write)


def _net():
    from mtneuro.config import load_parameters

    kwargs = (
        load_parameters(Path(__file__).resolve().parents[2] / "conf", "tiny").segmentation.run_settings("unet").kwargs
    )
    return build_segmentation_model("unet", 3, **kwargs)


def test_a_full_disk_while_saving_a_model_leaves_no_file(tmp_path: Path, full_disk: None) -> None:
    path = tmp_path / "06_models" / "segmentation" / "unet" / "seg_3class" / "seed0" / "model.pt"
    dataset = TorchModelDataset(filepath=str(path), version=Version(None, VERSION))
    with pytest.raises(DiskFullError) as caught:
        dataset.save(_net())
    message = str(caught.value)
    assert str(path / VERSION / "model.pt") in message and format_bytes(caught.value.bytes_needed) in message
    assert caught.value.bytes_needed > 10_000  # the weights' size, not the 100 bytes that went out
    assert [p.name for p in (path / VERSION).iterdir()] == []  # no partial file, no temporary file
    assert not TorchModelDataset(filepath=str(path), version=Version(None, None)).exists()


def test_a_full_disk_while_saving_an_encoder_leaves_no_folder(tmp_path: Path, full_disk: None) -> None:
    from test_artifact_integrity import _encoder

    root = tmp_path / "06_models" / "classification" / "byol" / "roi_c1" / "seed0" / "frozen_encoder"
    dataset = FrozenEncoderDataset(filepath=str(root), version=Version(None, VERSION))
    with pytest.raises(DiskFullError, match=r"frozen_encoder .*needed"):
        dataset.save(_encoder())
    assert list((root / VERSION).iterdir()) == []  # the temporary folder is gone, nothing renamed into place
    assert not FrozenEncoderDataset(filepath=str(root), version=Version(None, None)).exists()
