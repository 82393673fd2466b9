"""Errors of faults outside the code, and the guard that turns a full disk into one of them.

Every :class:`FaultError` message stands alone, in one paragraph: what failed, the file, service
or setting concerned, and the command or setting that fixes it. A command-line front end can
print it without a traceback (``docs/CONTRACTS.md``, "Faults", lists each fault and its promise).

Errors raised inside a catalog dataset also derive from Kedro's ``DatasetError``, so that Kedro
passes them on unchanged instead of wrapping them in "Failed while loading data from dataset".
"""

from __future__ import annotations

import errno
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kedro.io import DatasetError

from mtneuro.errors import MtneuroError


class FaultError(MtneuroError, RuntimeError):
    """A fault outside the code (damaged file, unreachable service, busy data root, full disk)."""


class DiskFullError(FaultError, DatasetError):
    """Writing a file or folder ran out of disk space; nothing half-written was left behind."""

    def __init__(self, path: str | Path, bytes_needed: int | None, free_bytes: int | None) -> None:
        self.path = str(path)
        self.bytes_needed = bytes_needed
        self.free_bytes = free_bytes
        needed = f"{format_bytes(bytes_needed)} needed" if bytes_needed is not None else "size unknown"
        free = f", {format_bytes(free_bytes)} free there" if free_bytes is not None else ""
        super().__init__(
            f"No space left on the device while writing {self.path} ({needed}{free}). Nothing was left "
            "half-written: the temporary copy was removed and an earlier version, if any, is unchanged. "
            "Free some space (or point `--params data_root=...` at a larger disk) and run the same command "
            "again with `--only-missing-outputs`; finished outputs are kept."
        )

    def __reduce__(self) -> tuple[type, tuple[str, int | None, int | None]]:  # picklable (Dask workers)
        return type(self), (self.path, self.bytes_needed, self.free_bytes)


#: ``errno`` values that mean the disk (or the user's quota) is full.
_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


def format_bytes(count: int | None) -> str:
    """``1.5 MB`` (decimal units, as ``df -H`` prints them)."""
    if count is None:
        return "?"
    value = float(count)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"  # pragma: no cover


def free_bytes(path: str | Path) -> int | None:
    """Free bytes on the file system of ``path`` (its nearest existing parent); None if unknown."""
    current = Path(path)
    for candidate in (current, *current.parents):
        if candidate.exists():
            try:
                return shutil.disk_usage(candidate).free
            except OSError:
                return None
    return None


def is_disk_full(exc: BaseException) -> bool:
    """True for ``OSError(ENOSPC)`` / ``EDQUOT``, also when wrapped (``__cause__``/``__context__``)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in _FULL:
            return True
        current = current.__cause__ or current.__context__
    return False


@contextmanager
def disk_space_guard(path: str | Path, bytes_needed: int | None) -> Iterator[None]:
    """Turn a full disk while writing ``path`` into a :class:`DiskFullError`.

    The writer inside must write to a temporary path and remove it on failure (the callers do,
    in ``finally``), so that the error's promise, nothing half-written, holds.
    """
    try:
        yield
    except DiskFullError:
        raise
    except Exception as exc:
        if not is_disk_full(exc):
            raise
        raise DiskFullError(path, bytes_needed, free_bytes(path)) from exc
