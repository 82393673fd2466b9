"""The base of this project's versioned datasets: a path on any fsspec file system."""

from __future__ import annotations

from copy import deepcopy
from pathlib import PurePosixPath
from typing import Any, TypeVar

import fsspec
from kedro.io import AbstractVersionedDataset, Version
from kedro.io.core import get_protocol_and_path

_DI = TypeVar("_DI")
_DO = TypeVar("_DO")


class FileSystemVersionedDataset(AbstractVersionedDataset[_DI, _DO]):
    """Sets ``_protocol``, ``_fs``, ``metadata`` and ``configured_filepath`` (the path as the
    catalog gives it) as kedro-datasets' own datasets do.

    :meth:`_version_exists` decides whether a saved version counts (default: the path exists; a
    folder dataset can require its last-written file). ``auto_mkdir`` creates parent folders on
    save for local paths.
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
