"""Chunk checksums of the brain map: a changed, truncated or deleted chunk file is named on load,
the map counts as missing, and saving it again rewrites only the damaged blocks, to the bytes of
an uninterrupted run."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest
from mapping_helpers import small_request

from mtneuro.datasets.ome_zarr_store import ATTRS_KEY, MARKERS, SUMS_KEY, OmeZarrMapDataset, read_map, write_map
from mtneuro.datasets.versioned import DamagedArtifactError


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def request_and_map(tmp_path_factory):
    """The small map (3 blocks of 256 x 256, 3 levels) written once, and the request that wrote it."""
    request = small_request()
    path = tmp_path_factory.mktemp("map") / "brain_map.ome.zarr"
    assert write_map(request, path)["computed"] == 3
    return request, path


@pytest.fixture
def copy(request_and_map, tmp_path) -> Path:
    path = tmp_path / "brain_map.ome.zarr"
    shutil.copytree(request_and_map[1], path)
    return path


def _flip(file: Path, offset: int = 20) -> None:
    data = bytearray(file.read_bytes())
    data[offset % len(data)] ^= 0xFF
    file.write_bytes(bytes(data))


def test_checksums_of_every_chunk_are_written_with_the_map(request_and_map) -> None:
    _, path = request_and_map
    import hashlib

    import zarr

    recorded = zarr.open_group(str(path), mode="r").attrs[ATTRS_KEY][SUMS_KEY]
    chunks = {str(p.relative_to(path)): p for p in path.rglob("*") if p.is_file() and p.name[0].isdigit()}
    assert sorted(recorded) == sorted(chunks) and len(chunks) > 3 * 5  # every chunk of every layer and level
    assert all(hashlib.sha256(chunks[n].read_bytes()).hexdigest() == d for n, d in recorded.items())
    assert not (path / MARKERS).exists()


def test_a_flipped_chunk_is_named_on_load_and_the_rerun_rewrites_its_block(request_and_map, copy) -> None:
    request, original = request_and_map
    chunk = "labels/regions/0/0/0/1"  # block 1 of 3, full resolution
    _flip(copy / chunk)
    with pytest.raises(DamagedArtifactError) as error:
        read_map(copy)
    message = str(error.value)
    assert chunk in message and "--pipelines=mapping --only-missing-outputs" in message
    assert not OmeZarrMapDataset(path=str(copy))._exists()  # counts as missing: the map node reruns

    stats = write_map(request, copy)
    assert stats["damaged"] and chunk in stats["damaged"][0]
    assert (stats["computed"], stats["skipped"]) == (1, 2)  # only the block holding the chunk
    assert _files(copy) == _files(original)
    assert OmeZarrMapDataset(path=str(copy))._exists()
    read_map(copy)


def test_a_deleted_pyramid_chunk_rebuilds_the_pyramid_only(request_and_map, copy) -> None:
    request, original = request_and_map
    chunk = "features/2/0/0/0/0"
    (copy / chunk).unlink()
    with pytest.raises(DamagedArtifactError, match=rf"{chunk} missing"):
        read_map(copy)
    stats = write_map(request, copy)
    assert (stats["computed"], stats["skipped"]) == (0, 3)
    assert _files(copy) == _files(original)


def test_a_truncated_chunk_is_refused_and_rewritten(request_and_map, copy) -> None:
    request, original = request_and_map
    chunk = "features/0/0/0/0/2"  # the feature tiles of the third block
    (copy / chunk).write_bytes((copy / chunk).read_bytes()[:10])
    with pytest.raises(DamagedArtifactError, match=rf"{chunk} changed"):
        read_map(copy)
    assert (write_map(request, copy)["computed"]) == 1
    assert _files(copy) == _files(original)


def test_a_resumed_map_recomputes_a_finished_block_whose_chunks_changed(request_and_map, tmp_path) -> None:
    request, original = request_and_map
    path = tmp_path / "brain_map.ome.zarr"
    calls: list[str] = []

    def stop_at_third(key: str):
        calls.append(key)
        if len(calls) == 3:
            raise KeyboardInterrupt  # the run stops before the third block is written
        return request.compute_block(key)

    with pytest.raises(KeyboardInterrupt):
        write_map(dataclasses.replace(request, compute_block=stop_at_third), path)
    markers = sorted(p.name for p in (path / MARKERS / "blocks").iterdir())
    assert len(markers) == 2
    first = next(iter(request.blocks))
    _flip(path / "0" / "0" / "0" / "0")  # the image chunk of the first block, while the run was stopped
    stats = write_map(request, path)
    assert (stats["computed"], stats["skipped"]) == (2, 1)  # the changed block and the unwritten one
    assert first in markers
    assert _files(path) == _files(original)
