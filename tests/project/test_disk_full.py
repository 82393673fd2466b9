"""A full disk while a model, an encoder or the brain map is written: one error naming the file
and the bytes needed, and nothing half-written that a rerun trusts (ENOSPC injected in the file writer, after part of the file went out)."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
from fsspec.implementations.local import LocalFileOpener
from kedro.io import Version

from mtneuro.datasets.frozen_encoder import FrozenEncoderDataset
from mtneuro.datasets.torch_model import TorchModelDataset
from mtneuro.faults import DiskFullError, format_bytes
from mtneuro.segmentation_models import build_segmentation_model, run_settings

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

    kwargs = run_settings(
        load_parameters(Path(__file__).resolve().parents[2] / "conf", "tiny").segmentation, "unet"
    ).kwargs
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


def test_a_full_disk_while_writing_the_map_names_the_block_and_the_rerun_finishes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The brain map is written block by block: a full disk in block 2 is one error naming the
    store, the block and its bytes; block 2 has no marker, so the rerun computes it (and only it)."""
    import dataclasses

    import zarr.storage

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "pipelines" / "mapping"))
    from mapping_helpers import small_request

    from mtneuro.datasets.ome_zarr_store import MARKERS, read_map, write_map

    request = small_request()
    first, second, *_ = request.blocks
    path = tmp_path / "brain_map.ome.zarr"
    original_set = zarr.storage.LocalStore.set
    state = {"block_writes": 0}
    compute = request.compute_block

    def compute_and_note(key: str):
        state["in_second"] = key == second
        return compute(key)

    async def set_until_full(self, key, value):
        if state.get("in_second") and "/0/" in f"/{key}":
            state["block_writes"] += 1
            if state["block_writes"] > 1:  # part of the block went out, then the disk is full
                raise OSError(errno.ENOSPC, "No space left on device")
        return await original_set(self, key, value)

    monkeypatch.setattr(zarr.storage.LocalStore, "set", set_until_full)
    with pytest.raises(DiskFullError) as caught:
        write_map(dataclasses.replace(request, compute_block=compute_and_note), path)
    message = str(caught.value)
    assert f"{path} (block {second})" in message and "--only-missing-outputs" in message
    assert caught.value.bytes_needed is not None and caught.value.bytes_needed > 256 * 256
    assert sorted(p.name for p in (path / MARKERS / "blocks").iterdir()) == [first]

    monkeypatch.setattr(zarr.storage.LocalStore, "set", original_set)
    stats = write_map(request, path)
    assert stats["computed"] == len(request.blocks) - 1 and stats["skipped"] == 1
    read_map(path)  # complete, and every chunk matches its checksum
