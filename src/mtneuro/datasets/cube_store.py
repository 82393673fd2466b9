"""Catalog datasets that read a volume source and cache what they read on disk.

Ingestion nodes stay pure: they return *requests* (which windows of which channels), and these
datasets do the I/O when Kedro saves the request: they read the volume source, write the
result to a temporary path and rename it into place, so an interrupted run never leaves a
half-written cube that a later run trusts. A request whose result is already on disk and valid
is not read again (a re-run downloads nothing).

What makes a cube on disk *valid* (checked when a save starts and again on every load):

* its group is complete and was written from the very same request: cube id, role, window,
  channel URIs, source options and, for BossDB, the server (``protocol://host``, from the
  credentials or the options) -- a cube fetched from another server is never reused;
* every channel reads back without error, with the recorded shape and dtype, and its SHA-256
  checksum (stored when the cube was written) matches -- a deleted, truncated or edited chunk
  file is caught instead of reading back as zeros or crashing later.

A full disk while a cube is written raises :class:`mtneuro.faults.DiskFullError` naming the cube's
path and its uncompressed size; the temporary folder is removed and the cube already in place,
if any, is untouched.

An invalid cube is logged with its id and the reason, and fetched again (on load too, from the
request the manifest records). The manifest is removed when a save starts and written when it
ends, so an interrupted save never leaves a manifest that mixes cubes of two requests; folders
of earlier interrupted writes (``.*.tmp-*``) are removed. Secrets (the BossDB token) are never
written: requests record the server, not the token.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from kedro.io import AbstractDataset, DatasetError

from mtneuro.cubes import Cube, CubeSpec, SectionOverview, SectionRequest
from mtneuro.faults import DiskFullError, disk_space_guard
from mtneuro.volumes import VolumeSource, Window, open_volume
from mtneuro.volumes.registry import effective_options, source_endpoint

log = logging.getLogger(__name__)

FORMAT_VERSION = 2
MANIFEST = "manifest.json"
#: Source options that are secrets: used to read, never recorded (attributes, manifest, logs).
SECRET_OPTIONS = frozenset({"token"})
#: Name patterns of what an interrupted write leaves behind in a store folder.
_LEFTOVERS = (".*.tmp-*", ".*.old-*")


def redact(options: dict[str, Any]) -> dict[str, Any]:
    """``options`` without its secrets (see :data:`SECRET_OPTIONS`)."""
    return {k: v for k, v in options.items() if k not in SECRET_OPTIONS}


def _source_options(uri: str, options: dict[str, Any], credentials: dict[str, Any]) -> dict[str, Any]:
    """The scheme's credentials (BossDB: host, protocol, token), overridden by the run's source options."""
    return effective_options(uri, options, credentials)


def _plain(value: Any) -> Any:
    """JSON round trip: the form a record has once it is read back from disk."""
    return json.loads(json.dumps(value, sort_keys=True))


def request_record(spec: CubeSpec, credentials: dict[str, Any]) -> dict[str, Any]:
    """Everything that identifies a cube's content, secrets left out (stored and compared as JSON)."""
    return _plain(
        {
            "cube_id": spec.cube_id,
            "region": spec.region,
            "role": spec.role,
            "window_zyx": spec.window.to_list(),
            "uris": dict(spec.uris),
            "options": redact(dict(spec.options)),
            "endpoints": {
                channel: source_endpoint(uri, _source_options(uri, dict(spec.options), credentials))
                for channel, uri in spec.uris.items()
            },
        }
    )


def _spec_from_record(record: dict[str, Any]) -> CubeSpec:
    return CubeSpec(
        cube_id=record["cube_id"],
        region=record["region"],
        role=record["role"],
        window=Window.from_list(record["window_zyx"]),
        uris=dict(record["uris"]),
        options=dict(record.get("options", {})),
    )


def checksum(data: np.ndarray) -> str:
    """``sha256:<hex>`` of an array's C-order bytes (dtype and shape are recorded beside it)."""
    return "sha256:" + hashlib.sha256(np.ascontiguousarray(data).data).hexdigest()


def _array(group: zarr.Group, name: str) -> zarr.Array:
    """The array ``name`` of a cube's group (a sub-group there means a damaged cube)."""
    array = group[name]
    if not isinstance(array, zarr.Array):
        raise DatasetError(f"{name!r} in the cube {group.store_path} is a group, not an array")
    return array


def _short(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 200 else text[:197] + "..."


def read_cube(path: Path, request: dict[str, Any]) -> tuple[dict[str, np.ndarray] | None, str]:
    """Read and verify the cube at ``path`` against ``request``: ``(arrays, "")`` or ``(None, reason)``.

    Any error while reading (a truncated chunk, an edited dtype, a missing file) makes the cube
    invalid, with the error as the reason.
    """
    if not path.exists():
        return None, "not on disk"
    try:
        group = zarr.open_group(str(path), mode="r")
        attrs: dict[str, Any] = dict(group.attrs)
    except Exception as exc:
        return None, f"its metadata cannot be read ({_short(exc)})"
    if not attrs.get("complete"):
        return None, "incomplete"
    if attrs.get("format_version") != FORMAT_VERSION:
        return None, f"written in format {attrs.get('format_version')!r}, this version reads {FORMAT_VERSION}"
    recorded = attrs.get("request")
    if recorded != request:
        changed = sorted(k for k in set(request) | set(recorded or {}) if (recorded or {}).get(k) != request.get(k))
        detail = ""
        if "endpoints" in changed:
            before = sorted(set((recorded or {}).get("endpoints", {}).values()))
            now = sorted(set(request["endpoints"].values()))
            detail = f"; read from {', '.join(before)}, the source is now {', '.join(now)}"
        return None, f"made from another request (differs in {', '.join(changed)}{detail})"
    dtypes, checksums = attrs.get("dtypes") or {}, attrs.get("checksums") or {}
    arrays = {}
    window = Window.from_list(request["window_zyx"])
    for channel in request["uris"]:
        if channel not in checksums or channel not in dtypes:
            return None, f"{channel}: no checksum recorded"
        try:
            array = _array(group, channel)
            if tuple(array.shape) != window.shape or str(array.dtype) != dtypes[channel]:
                return None, (
                    f"{channel}: {array.dtype}{tuple(array.shape)} on disk, expected {dtypes[channel]}{window.shape}"
                )
            data = np.asarray(array[...])
        except Exception as exc:
            return None, f"{channel}: cannot be read ({_short(exc)})"
        if checksum(data) != checksums[channel]:
            return None, f"{channel}: checksum mismatch (a chunk file was changed, deleted or truncated)"
        arrays[channel] = data
    return arrays, ""


def _atomic_replace_dir(tmp: Path, final: Path) -> None:
    """Move a finished directory into place; the old one is only removed once the new one is there."""
    trash = None
    if final.exists():
        trash = final.with_name(f".{final.name}.old-{uuid.uuid4().hex[:8]}")
        final.replace(trash)
    tmp.replace(final)
    if trash is not None:
        shutil.rmtree(trash, ignore_errors=True)


def _remove_settled(path: Path, quiet_s: float = 0.2, timeout_s: float = 10.0) -> None:
    """Remove a failed write's folder and keep removing it until it stays gone: when one chunk
    write fails (a full disk), Zarr's other chunk writes of the same array are still in flight on
    its event loop and re-create the folder after a first ``rmtree``."""
    if not path.exists():
        return
    deadline = time.monotonic() + timeout_s
    while True:
        shutil.rmtree(path, ignore_errors=True)
        time.sleep(quiet_s)
        if not path.exists() or time.monotonic() > deadline:
            return


def _write_json_atomic(path: Path, payload: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    text = json.dumps(payload, indent=2, sort_keys=True)
    try:
        with disk_space_guard(path, len(text.encode())):
            tmp.write_text(text)
            tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def remove_leftovers(folder: Path, patterns: tuple[str, ...] = _LEFTOVERS) -> list[str]:
    """Remove what interrupted writes left in ``folder`` (temporary files and folders); their names."""
    removed: list[str] = []
    if not folder.is_dir():
        return removed
    for pattern in patterns:
        for path in sorted(folder.glob(pattern)):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path.name)
    if removed:
        log.info("Removed %d leftover(s) of interrupted writes in %s: %s", len(removed), folder, ", ".join(removed))
    return removed


class CubeStoreDataset(AbstractDataset[dict[str, CubeSpec], dict[str, Cube]]):
    """A folder of cubes, one Zarr group per cube (``<cube_id>.zarr``), and ``manifest.json``.

    ``save`` takes ``{cube_id: CubeSpec}``, fetches each cube that is missing or invalid (see
    the module docstring), and records the set, with each cube's request, dtypes and checksums,
    in ``manifest.json``. ``load`` returns ``{cube_id: Cube}`` for the cubes of the manifest,
    verified; an invalid one is fetched again. Each group's attributes record the source URIs,
    the server, the window (``[z0, z1, y0, y1, x0, x1]``), dtypes and checksums, so a user can
    open a cube with ``zarr.open_group(path)`` alone.

    Credentials (``bossdb: {host, protocol, token}``) are passed to BossDB sources.
    """

    #: Saves are atomic or resumable on their own: a killed save is never removed (mtneuro.stopping).
    SAVE_IS_SAFE = True

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
        self.fetched_cubes: list[str] = []  # ids read from the source by the last save or load

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path), "chunks_zyx": self._chunks}

    # -- validity -----------------------------------------------------------------------
    def _group_path(self, cube_id: str) -> Path:
        return self._path / f"{cube_id}.zarr"

    def request(self, spec: CubeSpec) -> dict[str, Any]:
        """The request record of ``spec`` with this dataset's credentials (see :func:`request_record`)."""
        return request_record(spec, self._credentials)

    def invalid_reason(self, spec: CubeSpec) -> str:
        """Why the cube on disk cannot serve ``spec`` (``""``: it can)."""
        return read_cube(self._group_path(spec.cube_id), self.request(spec))[1]

    def is_valid(self, spec: CubeSpec) -> bool:
        """True when the cube on disk was completely written from this very request and is intact."""
        return not self.invalid_reason(spec)

    # -- I/O ------------------------------------------------------------------------------
    def _open_channel(self, uri: str, options: dict[str, Any]) -> VolumeSource:
        return open_volume(uri, **_source_options(uri, options, self._credentials))

    def _fetch(self, spec: CubeSpec) -> dict[str, Any]:
        """Read ``spec`` from its source into ``<cube_id>.zarr``; returns the manifest record."""
        final = self._group_path(spec.cube_id)
        tmp = self._path / f".{spec.cube_id}.zarr.tmp-{uuid.uuid4().hex[:8]}"
        request = self.request(spec)
        sources = {channel: self._open_channel(uri, spec.options) for channel, uri in spec.uris.items()}
        voxels = int(np.prod(spec.window.shape))
        needed = sum(voxels * np.dtype(source.dtype).itemsize for source in sources.values())  # uncompressed
        try:
            with disk_space_guard(final, needed):
                group = zarr.open_group(str(tmp), mode="w")
                dtypes, checksums = {}, {}
                for channel, uri in spec.uris.items():
                    source = sources[channel]
                    data = source.read(spec.window)
                    chunks = tuple(min(c, s) for c, s in zip(self._chunks, data.shape))
                    array = group.create_array(channel, shape=data.shape, dtype=data.dtype, chunks=chunks)
                    array[...] = data
                    array.attrs.update({"source_uri": uri, "dimension_names": ["z", "y", "x"]})
                    dtypes[channel] = str(data.dtype)
                    checksums[channel] = checksum(data)
                record = {"request": request, "dtypes": dtypes, "checksums": checksums}
                group.attrs.update(
                    {
                        **record,
                        "window_zyx": spec.window.to_list(),
                        "axes": ["z", "y", "x"],
                        "voxel_size_um": list(source.voxel_size),
                        "format_version": FORMAT_VERSION,
                        "complete": True,
                    }
                )
                _atomic_replace_dir(tmp, final)
            return record
        finally:
            _remove_settled(tmp)

    @staticmethod
    def _record_of(path: Path) -> dict[str, Any]:
        attrs = dict(zarr.open_group(str(path), mode="r").attrs)
        return {k: attrs[k] for k in ("request", "dtypes", "checksums")}

    def _save(self, data: dict[str, CubeSpec]) -> None:
        self._path.mkdir(parents=True, exist_ok=True)
        # Whatever the manifest listed is no longer the set: a save killed half-way must not
        # leave a manifest that a later load (or --only-missing-outputs) trusts.
        (self._path / MANIFEST).unlink(missing_ok=True)
        remove_leftovers(self._path)
        self.fetched_cubes = []
        records: dict[str, dict[str, Any]] = {}
        todo = []
        for cube_id, spec in data.items():
            reason = self.invalid_reason(spec)
            if reason:
                if reason != "not on disk":
                    log.warning("Cube %s on disk is invalid (%s); fetching it again", cube_id, reason)
                todo.append(spec)
            else:
                records[cube_id] = self._record_of(self._group_path(cube_id))
        if len(todo) < len(data):
            log.info("%d of %d cubes already on disk and valid; not read again", len(data) - len(todo), len(data))
        for i, spec in enumerate(todo, 1):
            start = time.perf_counter()
            records[spec.cube_id] = self._fetch(spec)
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
        _write_json_atomic(
            self._path / MANIFEST, {"format_version": FORMAT_VERSION, "cubes": {k: records[k] for k in sorted(data)}}
        )

    def _manifest(self) -> dict[str, dict[str, Any]]:
        manifest = self._path / MANIFEST
        if not manifest.exists():
            raise DatasetError(
                f"No cubes at {self._path}: run the ingestion pipeline first (kedro run --pipeline=ingestion). "
                "(A save that was interrupted removes the manifest, so that no mix of old and new cubes is used.)"
            )
        try:
            content = json.loads(manifest.read_text())
        except (OSError, ValueError) as exc:
            raise DatasetError(f"{manifest} cannot be read ({_short(exc)}); re-run the ingestion pipeline") from None
        if not isinstance(content, dict) or content.get("format_version") != FORMAT_VERSION:
            raise DatasetError(
                f"{manifest} was written by another version of this project; re-run the ingestion pipeline "
                "(valid cubes are reused, the others fetched again)"
            )
        return content["cubes"]

    def _load(self) -> dict[str, Cube]:
        entries = self._manifest()
        cubes = {}
        self.fetched_cubes = []
        changed = False
        for cube_id, entry in entries.items():
            spec = _spec_from_record(entry["request"])
            # The server the credentials point to now: a cube read from another one is not used.
            request = self.request(spec)
            path = self._group_path(cube_id)
            arrays, reason = read_cube(path, request)
            if arrays is not None and (
                self._record_of(path)["checksums"] != entry["checksums"] or entry["request"] != request
            ):
                arrays, reason = None, "it is not the cube the manifest records (written by another save)"
            if arrays is None:
                log.warning("Cube %s at %s is invalid (%s); fetching it again", cube_id, path, reason)
                try:
                    entries[cube_id] = self._fetch(spec)
                except DiskFullError:
                    raise
                except Exception as exc:
                    raise DatasetError(
                        f"Cube {cube_id} at {path} is invalid ({reason}) and fetching it again failed: {exc}\n"
                        "Re-run the ingestion pipeline (kedro run --pipeline=ingestion)."
                    ) from exc
                self.fetched_cubes.append(cube_id)
                changed = True
                arrays, reason = read_cube(path, request)
                if arrays is None:
                    raise DatasetError(f"Cube {cube_id} at {path} is invalid right after fetching it ({reason})")
            cubes[cube_id] = Cube(
                spec=spec,
                image=arrays["image"],
                roi_labels=arrays["roi_labels"],
                pixel_labels=arrays.get("pixel_labels"),
            )
        if changed:
            _write_json_atomic(self._path / MANIFEST, {"format_version": FORMAT_VERSION, "cubes": entries})
        return cubes

    def _exists(self) -> bool:
        return (self._path / MANIFEST).exists()


def evenly_spaced_sections(depth: int, n: int) -> list[int]:
    """``n`` z indices spread evenly over a volume of ``depth`` slices, ends excluded."""
    if depth <= 0:
        return []
    zs = np.linspace(0, depth - 1, int(n) + 2)[1:-1].round().astype(int)
    return sorted({int(z) for z in zs})


class SectionOverviewDataset(AbstractDataset[SectionRequest, SectionOverview]):
    """A few coarse sections of a channel (e.g. region labels), cached as ``.npz``.

    ``save`` takes a :class:`~mtneuro.cubes.SectionRequest` and reads ``sections`` sections,
    spread evenly over the z extent of the source's real shape, with the source's
    ``sample_sections`` (a downsampled resolution level), never the full-resolution channel.
    ``load`` returns a :class:`~mtneuro.cubes.SectionOverview` (its request's options without
    secrets). The cache records the server (never the token); a cache from another server, or
    one that cannot be read, is read again.
    """

    #: Saves are atomic or resumable on their own: a killed save is never removed (mtneuro.stopping).
    SAVE_IS_SAFE = True

    def __init__(
        self, filepath: str, credentials: dict[str, Any] | None = None, metadata: dict[str, Any] | None = None
    ) -> None:
        self._filepath = Path(filepath)
        self._credentials = dict(credentials or {})
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath)}

    def _request_key(self, request: SectionRequest) -> str:
        uri = request.uri
        key: dict[str, Any] = {"uri": uri, "sections": request.sections, "level": request.level}
        key["options"] = redact(dict(request.options))
        key["endpoint"] = source_endpoint(uri, _source_options(uri, dict(request.options), self._credentials))
        return json.dumps(key, sort_keys=True, default=str)

    def _save(self, request: SectionRequest) -> None:
        key = self._request_key(request)
        remove_leftovers(self._filepath.parent, (f".{self._filepath.stem}.tmp-*",))
        if self._filepath.exists():
            try:
                with np.load(self._filepath) as cached:
                    if str(cached["request"]) == key and cached["sections"].shape[0] == cached["z_indices"].shape[0]:
                        log.info("Coarse sections of %s already on disk; not read again", request.uri)
                        return
            except Exception as exc:
                log.warning(
                    "Coarse sections at %s cannot be read (%s); reading them again", self._filepath, _short(exc)
                )
        uri = request.uri
        source = open_volume(uri, **_source_options(uri, dict(request.options), self._credentials))
        z_indices = evenly_spaced_sections(source.shape[0], int(request.sections))
        sections = source.sample_sections(z_indices, int(request.level))
        self._filepath.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._filepath.with_name(f".{self._filepath.stem}.tmp-{uuid.uuid4().hex[:8]}.npz")
        np.savez_compressed(
            tmp,
            sections=sections,
            request=np.array(key),
            shape=np.array(source.shape),
            z_indices=np.array(z_indices, dtype=np.int64),
        )
        tmp.replace(self._filepath)

    def _load(self) -> SectionOverview:
        with np.load(self._filepath) as cached:
            if "z_indices" not in cached.files:
                raise DatasetError(
                    f"{self._filepath} was written by another version of this project; re-run the ingestion "
                    "pipeline (kedro run --pipeline=ingestion)"
                )
            key = json.loads(str(cached["request"]))
            nz, ny, nx = (int(s) for s in cached["shape"])
            return SectionOverview(
                request=SectionRequest(key["uri"], key["options"], int(key["sections"]), int(key["level"])),
                z_indices=tuple(int(z) for z in cached["z_indices"]),
                sections=cached["sections"],
                volume_shape=(nz, ny, nx),
            )

    def _exists(self) -> bool:
        return self._filepath.exists()
