"""The base of this project's versioned datasets, and what keeps their files trustworthy.

* :class:`FileSystemVersionedDataset`: a path on any fsspec file system, versioned as Kedro does.
* Content checksums (SHA-256): every model a later node loads is written with the checksum of
  its bytes and checked on load (:func:`verify_file`); a mismatch raises
  :class:`DamagedArtifactError` naming the file and the command that rebuilds it, a deleted file
  :class:`MissingArtifactError`. Datasets also use the check in ``_exists``, so that
  ``kedro run --only-missing-outputs`` treats a damaged model as missing and rebuilds it.
* :func:`write_file_atomic`: bytes to a temporary path, then renamed into place, with a full
  disk reported as :class:`mtneuro.faults.DiskFullError`.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Iterable
from copy import deepcopy
from pathlib import PurePosixPath
from typing import Any, TypeVar

import fsspec
from kedro.io import AbstractVersionedDataset, DatasetError, Version
from kedro.io.core import get_filepath_str, get_protocol_and_path

from mtneuro.faults import FaultError, disk_space_guard

log = logging.getLogger(__name__)

_DI = TypeVar("_DI")
_DO = TypeVar("_DO")

#: Checksum file of an artefact folder, in ``sha256sum`` format (``sha256sum -c SHA256SUMS`` checks it).
SHA256SUMS = "SHA256SUMS"
#: Data-root folders whose next path part names the pipeline that writes the file.
_LAYERS = ("06_models", "07_model_output", "05_model_input", "04_feature", "08_reporting")
_CHUNK = 1 << 20
#: ``(protocol, path, size, mtime) -> sha256`` of files already hashed by ``_exists`` checks in
#: this process (loads always hash again).
_HASHED: dict[tuple[str, str, int, Any], str] = {}


class ArtifactError(FaultError, DatasetError):
    """A saved artefact (model, encoder, run index) cannot be trusted or found."""


class DamagedArtifactError(ArtifactError):
    """The file's bytes do not match the checksum written with it."""


class MissingArtifactError(ArtifactError):
    """A file of a saved artefact is gone."""


def producing_pipeline(path: str) -> str | None:
    """The pipeline that writes ``path``, from the data root's layout (``06_models/<pipeline>/...``)."""
    parts = PurePosixPath(str(path)).parts
    for layer in _LAYERS:
        if layer in parts:
            index = parts.index(layer)
            if index + 1 < len(parts) and parts[index + 1].isidentifier():
                return parts[index + 1]
    return None


def rebuild_command(path: str) -> str:
    """The command that writes ``path`` again (a damaged or missing model counts as missing)."""
    pipeline = producing_pipeline(path)
    return (
        f"kedro run --pipelines={pipeline} --only-missing-outputs" if pipeline else "kedro run --only-missing-outputs"
    )


def _subject(path: str, run: str | None) -> str:
    return f"{path} (run {run!r})" if run else path


def damaged(path: str, detail: str, run: str | None = None) -> DamagedArtifactError:
    return DamagedArtifactError(
        f"{_subject(path, run)} is damaged: {detail}. It is not used. Rebuild it with "
        f"`{rebuild_command(path)}` (with the same --env and --params as before; a damaged model counts as "
        "missing, so only what it affects runs again), then run your command again."
    )


def missing(path: str, what: str, run: str | None = None) -> MissingArtifactError:
    return MissingArtifactError(
        f"The {what} {_subject(path, run)} is missing (deleted or moved). Rebuild it with "
        f"`{rebuild_command(path)}` (with the same --env and --params as before), then run your command again."
    )


def sha256_bytes(data: bytes | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(fs: Any, path: str, *, cached: bool = False) -> str:
    """SHA-256 (hex) of a file, read in chunks; ``cached``: reuse a hash of the same size and mtime."""
    key = None
    if cached:
        info = fs.info(path)
        key = (
            str(getattr(fs, "protocol", "")),
            path,
            int(info.get("size") or 0),
            info.get("mtime", info.get("LastModified")),
        )
        if key in _HASHED:
            return _HASHED[key]
    digest = hashlib.sha256()
    with fs.open(path, "rb") as f:
        while block := f.read(_CHUNK):
            digest.update(block)
    value = digest.hexdigest()
    if key is not None:
        _HASHED[key] = value
    return value


def sha256sums(entries: dict[str, str]) -> str:
    """``sha256sum`` lines (``<hex>  <name>``), sorted by name."""
    return "".join(f"{digest}  {name}\n" for name, digest in sorted(entries.items()))


def parse_sha256sums(text: str) -> dict[str, str]:
    entries = {}
    for line in text.splitlines():
        if line.strip():
            digest, _, name = line.partition("  ")
            entries[name.strip().lstrip("*")] = digest.strip()
    return entries


def folder_problem(fs: Any, folder: str, names: Iterable[str] | None = None, *, cached: bool = False) -> str:
    """Why the files of ``folder`` do not match its ``SHA256SUMS`` (``""``: they match)."""
    sums_path = f"{folder}/{SHA256SUMS}"
    if not fs.exists(sums_path):
        return f"{SHA256SUMS} is missing"
    with fs.open(sums_path, "r") as f:
        entries = parse_sha256sums(f.read())
    for name in names if names is not None else sorted(entries):
        if name not in entries:
            return f"{name} has no checksum in {SHA256SUMS}"
        path = f"{folder}/{name}"
        if not fs.exists(path):
            return f"{name} is missing"
        actual = file_sha256(fs, path, cached=cached)
        if actual != entries[name]:
            return f"the SHA-256 of {name} is {actual[:12]}..., {entries[name][:12]}... was written with it"
    return ""


def verify_bytes(data: bytes, expected: str, path: str, run: str | None = None) -> None:
    """Raise :class:`DamagedArtifactError` when ``data`` (read from ``path``) is not what was written."""
    actual = sha256_bytes(data)
    if actual != expected:
        raise damaged(path, f"its SHA-256 is {actual[:12]}..., {expected[:12]}... was written with it", run)


def write_file_atomic(fs: Any, path: str, data: bytes | str) -> None:
    """Write ``data`` to a temporary file beside ``path``, then rename it into place.

    A full disk raises :class:`mtneuro.faults.DiskFullError` (naming ``path`` and the bytes
    needed) and leaves neither a partial ``path`` nor the temporary file.
    """
    payload = data.encode() if isinstance(data, str) else data
    parent = str(PurePosixPath(path).parent)
    tmp = f"{parent}/.{PurePosixPath(path).name}.tmp-{uuid.uuid4().hex[:8]}"
    with disk_space_guard(path, len(payload)):
        try:
            fs.makedirs(parent, exist_ok=True)
            with fs.open(tmp, "wb") as f:
                f.write(payload)
            fs.mv(tmp, path)
        finally:
            if fs.exists(tmp):
                fs.rm(tmp)


class FileSystemVersionedDataset(AbstractVersionedDataset[_DI, _DO]):
    """Sets ``_protocol``, ``_fs``, ``metadata`` and ``configured_filepath`` (the path as the
    catalog gives it) as kedro-datasets' own datasets do.

    :meth:`_version_exists` decides whether a saved version counts (default: the path exists; a
    folder dataset can require its last-written file, and a valid checksum). ``auto_mkdir``
    creates parent folders on save for local paths.
    """

    def __init__(
        self,
        filepath: str,
        version: Version | None = None,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        *,
        auto_mkdir: bool = False,
    ) -> None:
        protocol, path = get_protocol_and_path(str(filepath), version)
        fs_args = deepcopy(fs_args) or {}
        if auto_mkdir and protocol == "file":
            fs_args.setdefault("auto_mkdir", True)
        self.configured_filepath = str(filepath)
        self._protocol = protocol
        self._fs = fsspec.filesystem(protocol, **(credentials or {}), **fs_args)
        self.metadata = metadata
        super().__init__(
            filepath=PurePosixPath(path),
            version=version,
            exists_function=self._version_exists,
            glob_function=self._fs.glob,
        )

    def _version_exists(self, path: str) -> bool:
        return bool(self._fs.exists(path))

    def _checked_folder_exists(self, kind: str, *, unchecked_ok: bool = False) -> bool:
        """Whether the saved folder is complete and matches its ``SHA256SUMS``: a damaged one
        counts as missing (logged as ``kind``), so ``--only-missing-outputs`` writes it again.
        ``unchecked_ok``: a folder without ``SHA256SUMS`` (an older version's) counts as present."""
        try:
            path = get_filepath_str(self._get_load_path(), self._protocol)
        except DatasetError:
            return False
        if not self._version_exists(path):
            return False
        if unchecked_ok and not self._fs.exists(f"{path}/{SHA256SUMS}"):
            return True
        problem = folder_problem(self._fs, path, cached=True)
        if problem:
            log.warning("%s %s: %s; it counts as missing", kind, path, problem)
        return not problem


def jsonable(value: Any) -> Any:
    """``value`` in plain JSON types: keys as strings, tuples as lists, numpy and torch scalars and
    arrays as numbers and lists (for the metadata files beside saved models)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


def content_sha256(fs: Any, path: str, *, cached: bool = False) -> str:
    """SHA-256 of a file, or of a folder (its files' ``sha256sum`` lines, by relative path)."""
    if not fs.isdir(path):
        return file_sha256(fs, path, cached=cached)
    root = path.rstrip("/")
    entries = {}
    for name in fs.find(root):
        relative = str(name)[len(root) :].lstrip("/") if str(name).startswith(root) else str(name)
        entries[relative] = file_sha256(fs, str(name), cached=cached)
    return sha256_bytes(sha256sums(entries).encode())
