"""One dataset per task for the artefacts of all its runs, loaded lazily.

A task's grid writes one dataset per run (``classification.<method>.<config>.seed<k>.frozen_encoder``,
``segmentation.<model>.<setting>.seed<k>.trained_model``, ...). Other tasks must not reach into
that grid: they read one index instead (``frozen_encoders``, ``trained_segmentation_models``),
which keeps every per-run dataset inside its task's namespace (and the kedro-viz overview
readable) and loads only the runs a node asks for, so that a paper-scale grid of large models is
never held in memory at once.

* :class:`ArtifactReferenceDataset` is a read-only, transcoded view of a per-run dataset
  (``<run>.frozen_encoder@reference`` beside ``<run>.frozen_encoder@model``): loading it gives
  the path and resolved version of what the run saved, without reading the artefact. Consuming
  it makes Kedro order the index after every run.
* :class:`RunIndexDataset` saves ``{run: {member: ArtifactReference}}`` as JSON (atomically) and
  loads a :class:`RunIndex`, whose members are read on access through their own dataset type at
  the recorded version.

Checksums: a reference records the SHA-256 of the artefact's content (file, or folder) when the
index is written, and the index records the SHA-256 of its own runs. Loading the index checks
its own; loading a member checks the member's before its dataset reads it (pickled read-outs and
predictions included), so a changed file stops with
:class:`~mtneuro.datasets.versioned.DamagedArtifactError` naming the run, the file and the
command that rebuilds it. The index's ``_exists`` is false when any member changed or went
missing, so ``--only-missing-outputs`` writes the index again (and the member datasets of this
project count a damaged file as missing, so their runs train again). An index is never rewritten
to bless a changed file: a member whose version was indexed with another checksum is refused.

Catalog::

    "classification.{method}.{config}.seed{seed}.frozen_encoder@reference":
      type: mtneuro.datasets.run_index.ArtifactReferenceDataset
      filepath: data/06_models/classification/{method}/{config}/seed{seed}/frozen_encoder
      versioned: true

    frozen_encoders:
      type: mtneuro.datasets.run_index.RunIndexDataset
      filepath: data/06_models/classification/frozen_encoders.json
      members:
        frozen_encoder: {type: mtneuro.datasets.frozen_encoder.FrozenEncoderDataset}
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import fsspec
from kedro.io import AbstractDataset, DatasetError
from kedro.io.core import get_filepath_str

from mtneuro.datasets.versioned import (
    SHA256SUMS,
    ArtifactError,
    FileSystemVersionedDataset,
    content_sha256,
    damaged,
    missing,
    parse_sha256sums,
    sha256_bytes,
    write_file_atomic,
)

log = logging.getLogger(__name__)

#: 2: a checksum per reference and one of the runs (version 1 indexes load unchecked).
FORMAT_VERSION = 2
_READABLE = (1, 2)
_LOCAL = fsspec.filesystem("file")


@dataclass(frozen=True)
class ArtifactReference:
    """Where one run's artefact is: the dataset's configured ``filepath``, saved ``version`` and
    the SHA-256 of its content when it was indexed (None: not recorded)."""

    filepath: str
    version: str | None
    sha256: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class ArtifactReferenceDataset(FileSystemVersionedDataset[Any, ArtifactReference]):
    """Read-only view of a (versioned) file or folder that another dataset writes."""

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self.configured_filepath, "version": self._version}

    def _load(self) -> ArtifactReference:
        path = get_filepath_str(self._get_load_path(), self._protocol)
        if not self._fs.exists(path):
            raise missing(path, "artefact")
        version = self.resolve_load_version() if self._version is not None else None
        return ArtifactReference(
            filepath=self.configured_filepath, version=version, sha256=content_sha256(self._fs, path)
        )

    def _save(self, data: Any) -> None:  # noqa: ARG002 - read-only
        raise DatasetError(f"{self.configured_filepath}: a reference is a read-only view; save the artefact itself.")

    def _exists(self) -> bool:
        try:
            return bool(self._fs.exists(get_filepath_str(self._get_load_path(), self._protocol)))
        except DatasetError:
            return False


class RunArtifacts(Mapping[str, Any]):
    """The artefacts of one run; each member is loaded when first asked for."""

    def __init__(self, run: str, references: Mapping[str, ArtifactReference], members: Mapping[str, dict[str, Any]]):
        self.run = run
        self._references = dict(references)
        self._members = members

    def __getitem__(self, member: str) -> Any:
        if member not in self._references:
            raise KeyError(f"Run {self.run!r} has no {member!r} (it has {sorted(self._references)})")
        reference = self._references[member]
        dataset = _member_dataset(f"{self.run}.{member}", self._members[member], reference)
        path = _member_path(dataset)
        try:
            if path is not None and reference.sha256 is not None:
                _check_member(dataset, path, reference.sha256, member)
            return dataset.load()
        except ArtifactError as exc:
            raise type(exc)(f"Run {self.run!r}, {member}: {exc}") from None
        except DatasetError as exc:
            raise DatasetError(
                f"Run {self.run!r}: its {member} (version {reference.version}) cannot be read from "
                f"{reference.filepath}; re-run the task that wrote it. {exc}"
            ) from exc

    def __iter__(self) -> Iterator[str]:
        return iter(self._references)

    def __len__(self) -> int:
        return len(self._references)

    def reference(self, member: str) -> ArtifactReference:
        return self._references[member]


def _member_dataset(name: str, member: Mapping[str, Any], reference: ArtifactReference) -> AbstractDataset:
    config = {**member, "filepath": reference.filepath}
    if reference.version is not None:
        config["versioned"] = True
    return AbstractDataset.from_config(name, config, load_version=reference.version)


def _member_path(dataset: AbstractDataset) -> str | None:
    """The file or folder a member dataset reads (None: not a file-system dataset)."""
    fs, protocol = getattr(dataset, "_fs", None), getattr(dataset, "_protocol", None)
    if fs is None or protocol is None:
        return None
    get_load_path = getattr(dataset, "_get_load_path", None)
    path = get_load_path() if get_load_path is not None else dataset._filepath  # type: ignore[attr-defined]
    return get_filepath_str(path, protocol)


def _check_member(dataset: AbstractDataset, path: str, expected: str, member: str) -> None:
    fs = dataset._fs  # type: ignore[attr-defined]
    if not fs.exists(path):
        raise missing(path, member.replace("_", " "))
    sums = f"{path}/{SHA256SUMS}"
    if fs.isdir(path) and fs.exists(sums):  # name the file of a folder that went missing
        with fs.open(sums, "r") as f:
            for name in parse_sha256sums(f.read()):
                if not fs.exists(f"{path}/{name}"):
                    raise missing(f"{path}/{name}", f"{member.replace('_', ' ')} file")
    actual = content_sha256(fs, path)
    if actual != expected:
        raise damaged(path, f"its SHA-256 is {actual[:12]}..., {expected[:12]}... when the run index was written")


def _runs_checksum(runs: Mapping[str, Any]) -> str:
    return sha256_bytes(json.dumps(runs, sort_keys=True).encode())


class RunIndex(Mapping[str, RunArtifacts]):
    """``index["supervised.roi_c1.seed0"]["frozen_encoder"]`` -> that run's encoder (loaded then)."""

    def __init__(self, runs: Mapping[str, Mapping[str, ArtifactReference]], members: Mapping[str, dict[str, Any]]):
        self._runs = {run: RunArtifacts(run, refs, members) for run, refs in runs.items()}

    def __getitem__(self, run: str) -> RunArtifacts:
        if run not in self._runs:
            raise KeyError(f"No run {run!r} in this index; it holds {sorted(self._runs)}")
        return self._runs[run]

    def __iter__(self) -> Iterator[str]:
        return iter(self._runs)

    def __len__(self) -> int:
        return len(self._runs)


class RunIndexDataset(AbstractDataset[Mapping[str, Mapping[str, ArtifactReference]], RunIndex]):
    """JSON index of a task's per-run artefacts; loads a lazy :class:`RunIndex`."""

    #: Saves are atomic or resumable on their own: a killed save is never removed (mtneuro.stopping).
    SAVE_IS_SAFE = True

    def __init__(
        self, filepath: str, members: dict[str, dict[str, Any]], metadata: dict[str, Any] | None = None
    ) -> None:
        if not members:
            raise DatasetError(f"{filepath}: 'members' must name at least one artefact type.")
        for name, config in members.items():
            if "type" not in config:
                raise DatasetError(f"{filepath}: member {name!r} needs a 'type'.")
        self._filepath = Path(filepath)
        self._members = members
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "members": sorted(self._members)}

    def _save(self, data: Mapping[str, Mapping[str, ArtifactReference]]) -> None:
        runs: dict[str, dict[str, Any]] = {}
        for run, references in data.items():
            unknown = set(references) - set(self._members)
            if unknown:
                raise DatasetError(f"{self._filepath}: run {run!r} has members {sorted(unknown)} not in 'members'.")
            runs[run] = {name: self._relative(ref).as_dict() for name, ref in references.items()}
        self._refuse_changed(runs)
        payload = {"format_version": FORMAT_VERSION, "runs": runs, "sha256": _runs_checksum(runs)}
        write_file_atomic(_LOCAL, str(self._filepath), json.dumps(payload, indent=2, sort_keys=True))

    def _refuse_changed(self, runs: Mapping[str, Mapping[str, Any]]) -> None:
        """A member version indexed before with another checksum has changed on disk since: refuse it."""
        try:
            before = json.loads(self._filepath.read_text())["runs"]
        except (OSError, ValueError, KeyError, TypeError):
            return
        for run, references in runs.items():
            for name, reference in references.items():
                old = (before.get(run) or {}).get(name) or {}
                same = old.get("filepath") == reference["filepath"] and old.get("version") == reference["version"]
                if same and old.get("sha256") and reference.get("sha256") and old["sha256"] != reference["sha256"]:
                    path = str(self._filepath.resolve().parent / reference["filepath"])
                    raise damaged(
                        path,
                        f"version {reference['version']} changed since {self._filepath} indexed it "
                        "(delete that version so that its run trains again)",
                        run,
                    )

    def _relative(self, reference: ArtifactReference) -> ArtifactReference:
        """Local paths are stored relative to the index, so a moved project folder still loads."""
        path = Path(reference.filepath)
        if "://" in reference.filepath or not path.is_absolute():
            return reference
        return ArtifactReference(
            os.path.relpath(path, self._filepath.resolve().parent), reference.version, reference.sha256
        )

    def _absolute(self, reference: ArtifactReference) -> ArtifactReference:
        if "://" in reference.filepath or Path(reference.filepath).is_absolute():
            return reference
        return ArtifactReference(
            str(self._filepath.resolve().parent / reference.filepath), reference.version, reference.sha256
        )

    def _load(self) -> RunIndex:
        try:
            payload = json.loads(self._filepath.read_text())
        except FileNotFoundError as exc:
            raise DatasetError(f"No run index at {self._filepath}: run the task that writes it first.") from exc
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{self._filepath} is not valid JSON ({exc}); re-run the task that writes it.") from exc
        if payload.get("format_version") not in _READABLE:
            raise DatasetError(f"{self._filepath}: unknown format_version {payload.get('format_version')!r}.")
        if payload.get("format_version") != 1 and payload.get("sha256") != _runs_checksum(payload.get("runs") or {}):
            raise damaged(str(self._filepath), "its content does not match the checksum written with it")
        runs = {
            run: {name: self._absolute(ArtifactReference(**ref)) for name, ref in references.items()}
            for run, references in payload["runs"].items()
        }
        return RunIndex(runs, self._members)

    def _exists(self) -> bool:
        """An intact index whose members are all on disk, unchanged (else it counts as missing)."""
        try:
            index = self._load()
        except DatasetError:
            return False
        for run, artifacts in index.items():
            for member in artifacts:
                reference = artifacts.reference(member)
                if reference.sha256 is None:
                    continue
                dataset = _member_dataset(f"{run}.{member}", self._members[member], reference)
                path = _member_path(dataset)
                if path is None:
                    continue
                fs = dataset._fs  # type: ignore[attr-defined]
                if not fs.exists(path) or content_sha256(fs, path, cached=True) != reference.sha256:
                    log.warning(
                        "%s: %s of run %s changed or is missing; the index counts as missing",
                        self._filepath,
                        member,
                        run,
                    )
                    return False
        return True
