"""Catalog datasets that read a volume source and cache what they read on disk.

Ingestion nodes stay pure: they return *requests* (which windows of which channels), and these
datasets do the I/O when Kedro saves the request: they read the volume source, write the
result to a temporary path and rename it into place, so an interrupted run never leaves a
half-written cube that a later run trusts. A request whose result is already on disk and valid
is not read again (a re-run downloads nothing).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
import uuid
from pathlib import Path
from typing import Any, cast

import numpy as np
import zarr
from kedro.io import AbstractDataset, DatasetError

from mtneuro.cubes import Cube, CubeSpec
from mtneuro.volumes import VolumeSource, Window, open_volume

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
MANIFEST = "manifest.json"


def _spec_record(spec: CubeSpec) -> dict[str, Any]:
    return {
        "cube_id": spec.cube_id,
        "region": spec.region,
        "role": spec.role,
        "window_zyx": spec.window.to_list(),
        "uris": dict(spec.uris),
        "options": dict(spec.options),
    }


def _spec_from_record(record: dict[str, Any]) -> CubeSpec:
    return CubeSpec(
        cube_id=record["cube_id"],
        region=record["region"],
        role=record["role"],
        window=Window.from_list(record["window_zyx"]),
        uris=dict(record["uris"]),
        options=dict(record.get("options", {})),
    )


def _array(group: zarr.Group, name: str) -> zarr.Array:
    """The array ``name`` of a cube's group (a sub-group there means a damaged cube)."""
    array = group[name]
    if not isinstance(array, zarr.Array):
        raise DatasetError(f"{name!r} in the cube {group.store_path} is a group, not an array")
    return array


def _source_options(uri: str, options: dict[str, Any], credentials: dict[str, Any]) -> dict[str, Any]:
    """Credentials (host, protocol, token) for BossDB, overridden by the run's source options."""
    opts: dict[str, Any] = {}
    if uri.startswith("bossdb://"):
        opts.update(credentials.get("bossdb", credentials))
    opts.update(options)
    return opts


def _atomic_replace_dir(tmp: Path, final: Path) -> None:
    """Move a finished directory into place; the old one is only removed once the new one is there."""
    trash = None
    if final.exists():
        trash = final.with_name(f".{final.name}.old-{uuid.uuid4().hex[:8]}")
        final.replace(trash)
    tmp.replace(final)
    if trash is not None:
        shutil.rmtree(trash, ignore_errors=True)


def _write_json_atomic(path: Path, payload: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True))
    tmp.replace(path)


class CubeStoreDataset(AbstractDataset[dict[str, CubeSpec], dict[str, Cube]]):
    """A folder of cubes, one Zarr group per cube (``<cube_id>.zarr``).

    ``save`` takes ``{cube_id: CubeSpec}``, fetches each cube whose group is missing or was made
    from another request, and records the set in ``manifest.json``. ``load`` returns
    ``{cube_id: Cube}`` for the cubes of the manifest. Each group's attributes record the
    source URIs, the window (``[z0, z1, y0, y1, x0, x1]``) and dtypes, so a user can open a cube
    with ``zarr.open_group(path)`` alone.

    Credentials (``bossdb: {host, protocol, token}``) are passed to BossDB sources.
    """

    def __init__(
        self,
        path: str,
        chunks_zyx: tuple[int, int, int] | list[int] = (16, 256, 256),
        credentials: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._path = Path(path)
        self._chunks = tuple(int(c) for c in chunks_zyx)
        self._credentials = dict(credentials or {})
        self.metadata = metadata
        self.fetched_cubes: list[str] = []  # ids read from the source by the last save

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path), "chunks_zyx": self._chunks}

    # -- validity -----------------------------------------------------------------------
    def _group_path(self, cube_id: str) -> Path:
        return self._path / f"{cube_id}.zarr"

    def is_valid(self, spec: CubeSpec) -> bool:
        """True when the cube on disk was completely written from this very request."""
        path = self._group_path(spec.cube_id)
        if not path.exists():
            return False
        try:
            group = zarr.open_group(str(path), mode="r")
            attrs = dict(group.attrs)
            if not attrs.get("complete") or attrs.get("format_version") != FORMAT_VERSION:
                return False
            if attrs.get("request") != json.loads(json.dumps(_spec_record(spec))):
                return False
            return all(tuple(_array(group, channel).shape) == spec.window.shape for channel in spec.channels)
        except Exception:
            return False

    # -- I/O ------------------------------------------------------------------------------
    def _open_channel(self, uri: str, options: dict[str, Any]) -> VolumeSource:
        return open_volume(uri, **_source_options(uri, options, self._credentials))

    def _fetch(self, spec: CubeSpec) -> None:
        final = self._group_path(spec.cube_id)
        tmp = self._path / f".{spec.cube_id}.zarr.tmp-{uuid.uuid4().hex[:8]}"
        try:
            group = zarr.open_group(str(tmp), mode="w")
            dtypes = {}
            for channel, uri in spec.uris.items():
                source = self._open_channel(uri, spec.options)
                data = source.read(spec.window)
                chunks = tuple(min(c, s) for c, s in zip(self._chunks, data.shape))
                array = group.create_array(channel, shape=data.shape, dtype=data.dtype, chunks=chunks)
                array[...] = data
                array.attrs.update({"source_uri": uri, "dimension_names": ["z", "y", "x"]})
                dtypes[channel] = str(data.dtype)
            group.attrs.update(
                {
                    "request": _spec_record(spec),
                    "window_zyx": spec.window.to_list(),
                    "axes": ["z", "y", "x"],
                    "dtypes": dtypes,
                    "voxel_size_um": list(source.voxel_size),
                    "format_version": FORMAT_VERSION,
                    "complete": True,
                }
            )
            _atomic_replace_dir(tmp, final)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)

    def _save(self, data: dict[str, CubeSpec]) -> None:
        self._path.mkdir(parents=True, exist_ok=True)
        self.fetched_cubes = []
        todo = [spec for spec in data.values() if not self.is_valid(spec)]
        if len(todo) < len(data):
            log.info("%d of %d cubes already on disk and valid; not read again", len(data) - len(todo), len(data))
        for i, spec in enumerate(todo, 1):
            start = time.perf_counter()
            self._fetch(spec)
            self.fetched_cubes.append(spec.cube_id)
            log.info(
                "Cube %d/%d %s (%s, window z,y,x %s) read in %.1f s",
                i,
                len(todo),
                spec.cube_id,
                spec.uris["image"].split("://")[0],
                spec.window.to_list(),
                time.perf_counter() - start,
            )
        _write_json_atomic(self._path / MANIFEST, {"cubes": sorted(data)})

    def _load(self) -> dict[str, Cube]:
        manifest = self._path / MANIFEST
        if not manifest.exists():
            raise DatasetError(
                f"No cubes at {self._path}: run the ingestion pipeline first (kedro run --pipeline=ingestion)"
            )
        cubes = {}
        for cube_id in json.loads(manifest.read_text())["cubes"]:
            path = self._group_path(cube_id)
            group = zarr.open_group(str(path), mode="r")
            if not group.attrs.get("complete"):
                raise DatasetError(f"Cube {path} is incomplete; re-run the ingestion pipeline")
            spec = _spec_from_record(cast(dict[str, Any], group.attrs["request"]))
            cubes[cube_id] = Cube(
                spec=spec,
                image=np.asarray(_array(group, "image")[...]),
                roi_labels=np.asarray(_array(group, "roi_labels")[...]),
                pixel_labels=np.asarray(_array(group, "pixel_labels")[...]) if "pixel_labels" in group else None,
            )
        return cubes

    def _exists(self) -> bool:
        return (self._path / MANIFEST).exists()


class SectionOverviewDataset(AbstractDataset[dict[str, Any], dict[str, Any]]):
    """A few coarse sections of a channel (e.g. region labels), cached as ``.npz``.

    ``save`` takes ``{"uri", "options", "z_indices", "level"}`` and reads the sections with the
    source's ``sample_sections`` (a downsampled resolution level), never the full-resolution
    channel; ``load`` returns the request plus ``sections`` ``(n_z, ny, nx)``.
    """

    def __init__(
        self, filepath: str, credentials: dict[str, Any] | None = None, metadata: dict[str, Any] | None = None
    ) -> None:
        self._filepath = Path(filepath)
        self._credentials = dict(credentials or {})
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath)}

    @staticmethod
    def _request_key(request: dict[str, Any]) -> str:
        keys = ("uri", "options", "z_indices", "level")
        return json.dumps({k: request[k] for k in keys}, sort_keys=True, default=str)

    def _save(self, request: dict[str, Any]) -> None:
        key = self._request_key(request)
        if self._filepath.exists():
            with np.load(self._filepath) as cached:
                if str(cached["request"]) == key:
                    log.info("Coarse sections of %s already on disk; not read again", request["uri"])
                    return
        uri = request["uri"]
        source = open_volume(uri, **_source_options(uri, request["options"], self._credentials))
        sections = source.sample_sections(list(request["z_indices"]), int(request["level"]))
        self._filepath.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._filepath.with_name(f".{self._filepath.stem}.tmp-{uuid.uuid4().hex[:8]}.npz")
        np.savez_compressed(tmp, sections=sections, request=np.array(key), shape=np.array(source.shape))
        tmp.replace(self._filepath)

    def _load(self) -> dict[str, Any]:
        with np.load(self._filepath) as cached:
            request = json.loads(str(cached["request"]))
            return {**request, "sections": cached["sections"], "volume_shape": tuple(int(s) for s in cached["shape"])}

    def _exists(self) -> bool:
        return self._filepath.exists()
