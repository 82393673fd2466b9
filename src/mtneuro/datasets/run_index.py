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
import os
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset, DatasetError
from kedro.io.core import get_filepath_str

from mtneuro.datasets.versioned import FileSystemVersionedDataset

FORMAT_VERSION = 1


@dataclass(frozen=True)
class ArtifactReference:
    """Where one run's artefact is: the dataset's configured ``filepath`` and saved ``version``."""

    filepath: str
    version: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class ArtifactReferenceDataset(FileSystemVersionedDataset[Any, ArtifactReference]):
    """Read-only view of a (versioned) file or folder that another dataset writes."""

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self.configured_filepath, "version": self._version}

    def _load(self) -> ArtifactReference:
        path = get_filepath_str(self._get_load_path(), self._protocol)
        if not self._fs.exists(path):
            raise DatasetError(f"Nothing saved at {path}: run the node that writes it first.")
        version = self.resolve_load_version() if self._version is not None else None
        return ArtifactReference(filepath=self.configured_filepath, version=version)

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
        config = {**self._members[member], "filepath": reference.filepath}
        if reference.version is not None:
            config["versioned"] = True
        dataset = AbstractDataset.from_config(f"{self.run}.{member}", config, load_version=reference.version)
        try:
            return dataset.load()
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
        self._filepath.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._filepath.with_name(f".{self._filepath.name}.tmp-{uuid.uuid4().hex[:8]}")
        tmp.write_text(json.dumps({"format_version": FORMAT_VERSION, "runs": runs}, indent=2, sort_keys=True))
        tmp.replace(self._filepath)

    def _relative(self, reference: ArtifactReference) -> ArtifactReference:
        """Local paths are stored relative to the index, so a moved project folder still loads."""
        path = Path(reference.filepath)
        if "://" in reference.filepath or not path.is_absolute():
            return reference
        return ArtifactReference(os.path.relpath(path, self._filepath.resolve().parent), reference.version)

    def _absolute(self, reference: ArtifactReference) -> ArtifactReference:
        if "://" in reference.filepath or Path(reference.filepath).is_absolute():
            return reference
        return ArtifactReference(str(self._filepath.resolve().parent / reference.filepath), reference.version)

    def _load(self) -> RunIndex:
        try:
            payload = json.loads(self._filepath.read_text())
        except FileNotFoundError as exc:
            raise DatasetError(f"No run index at {self._filepath}: run the task that writes it first.") from exc
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{self._filepath} is not valid JSON ({exc}); re-run the task that writes it.") from exc
        if payload.get("format_version") != FORMAT_VERSION:
            raise DatasetError(f"{self._filepath}: unknown format_version {payload.get('format_version')!r}.")
        runs = {
            run: {name: self._absolute(ArtifactReference(**ref)) for name, ref in references.items()}
            for run, references in payload["runs"].items()
        }
        return RunIndex(runs, self._members)

    def _exists(self) -> bool:
        return self._filepath.exists()
