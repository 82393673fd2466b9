"""The volume-source interface: windows, the :class:`VolumeSource` base class and its errors.

Every source module (:mod:`~mtneuro.volumes.phantom`, :mod:`~mtneuro.volumes.bossdb`,
:mod:`~mtneuro.volumes.zarr`, :mod:`~mtneuro.volumes.tiff`) builds on this module only, so the
sources never import each other or the registry's discovery.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import numpy as np
from pydantic import BaseModel, ConfigDict, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt

from mtneuro.errors import MtneuroError

#: Parameter that picks the source of a run; named in every error so users know what to change.
SOURCE_PARAMETER = "volume.source"
#: Parameter that holds the channel URIs of each source.
URIS_PARAMETER = "volume.uris"
#: Value of :data:`SOURCE_PARAMETER` that selects the built-in phantom (works offline).
PHANTOM_SOURCE = "phantom"

#: Length units of voxel sizes (OME-Zarr axes, BossDB coordinate frames) in micrometres.
UNIT_TO_UM = {
    "nanometers": 1e-3,
    "nanometer": 1e-3,
    "nm": 1e-3,
    "micrometers": 1.0,
    "micrometer": 1.0,
    "microns": 1.0,
    "micron": 1.0,
    "um": 1.0,
    "µm": 1.0,
    "millimeters": 1e3,
    "millimeter": 1e3,
    "mm": 1e3,
    "centimeters": 1e4,
    "centimeter": 1e4,
    "cm": 1e4,
    "meters": 1e6,
    "meter": 1e6,
    "m": 1e6,
}


class VolumeSourceError(MtneuroError, RuntimeError):
    """A volume cannot be opened or read; the message says which parameter or file to fix."""


class SourceUnreachableError(VolumeSourceError):
    """The server of a remote volume cannot be reached (connection refused, DNS, timeouts)."""


class ChannelNotFoundError(VolumeSourceError):
    """The URI names a channel, file or folder that does not exist."""


class DTypeMismatchError(VolumeSourceError):
    """The channel's dtype is not the one the caller expects."""


@dataclass(frozen=True)
class Window:
    """Half-open window ``[z0:z1, y0:y1, x0:x1]``."""

    z0: int
    z1: int
    y0: int
    y1: int
    x0: int
    x1: int

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.z1 - self.z0, self.y1 - self.y0, self.x1 - self.x0)

    def as_slices(self) -> tuple[slice, slice, slice]:
        return (slice(self.z0, self.z1), slice(self.y0, self.y1), slice(self.x0, self.x1))

    def to_list(self) -> list[int]:
        return [self.z0, self.z1, self.y0, self.y1, self.x0, self.x1]

    @classmethod
    def from_list(cls, values: list[int] | tuple[int, ...]) -> Window:
        return cls(*(int(v) for v in values))


def sections_shape(shape: tuple[int, int, int], level: int) -> tuple[int, int]:
    """``(ceil(Y / 2**level), ceil(X / 2**level))``: the size of a section at ``level``."""
    step = 2 ** int(level)
    return (-(-shape[1] // step), -(-shape[2] // step))


class VolumeSource(abc.ABC):
    """One channel of a volume: shape ``(z, y, x)``, dtype, voxel size and windowed reads."""

    uri: str
    # Set by each source when it opens the channel (sources may override the properties instead).
    _shape: tuple[int, int, int]
    _dtype: np.dtype
    _voxel_size: tuple[float, float, float] = (1.0, 1.0, 1.0)

    @property
    def shape(self) -> tuple[int, int, int]:
        return self._shape

    @property
    def dtype(self) -> np.dtype:
        return self._dtype

    @property
    def voxel_size(self) -> tuple[float, float, float]:
        """Voxel size in micrometres, ``(z, y, x)``."""
        return self._voxel_size

    @abc.abstractmethod
    def _read(self, window: Window) -> np.ndarray:
        """Read a window already checked to lie inside the volume."""

    def read(self, window: Window | tuple[int, ...] | list[int]) -> np.ndarray:
        """Read ``[z0:z1, y0:y1, x0:x1]``; raises :class:`VolumeSourceError` outside the volume."""
        if not isinstance(window, Window):
            window = Window.from_list(window)
        self.check_window(window)
        data = np.asarray(self._read(window))
        if data.shape != window.shape:
            raise VolumeSourceError(f"{self.uri}: read returned shape {data.shape}, expected {window.shape}")
        return data

    def check_window(self, window: Window) -> None:
        bounds = zip(("z", "y", "x"), window.to_list()[0::2], window.to_list()[1::2], self.shape)
        for axis, lo, hi, size in bounds:
            if not (0 <= lo < hi <= size):
                raise VolumeSourceError(
                    f"{self.uri}: window {axis}=[{lo}, {hi}) is outside the volume "
                    f"(shape {self.shape}, {axis} must lie in [0, {size})). Check the cube "
                    "coordinates: 'ingestion.main_cubes' and 'ingestion.extra_cubes.pinned'."
                )

    def __getitem__(self, key: tuple[slice, slice, slice]) -> np.ndarray:
        if not (isinstance(key, tuple) and len(key) == 3 and all(isinstance(k, slice) for k in key)):
            raise VolumeSourceError(f"{self.uri}: index with three slices [z0:z1, y0:y1, x0:x1]")
        bounds = []
        for k, size in zip(key, self.shape):
            lo, hi, step = k.indices(size)
            if step != 1:
                raise VolumeSourceError(f"{self.uri}: strided reads are not supported")
            bounds += [lo, hi]
        return self.read(Window.from_list(bounds))

    # -- downsampled sections -------------------------------------------------------------
    def check_sections(self, z_indices: Iterable[int], level: int) -> np.ndarray:
        """Validate the arguments of :meth:`sample_sections`; returns the z indices as int64."""
        nz = self.shape[0]
        try:
            zs = np.asarray([int(z) for z in z_indices], dtype=np.int64)
            level = int(level)
        except (TypeError, ValueError) as exc:
            raise VolumeSourceError(f"{self.uri}: z indices must be integers ({exc})") from None
        if level < 0 or level > 30:
            raise VolumeSourceError(f"{self.uri}: level must lie in [0, 30], got {level}")
        bad = zs[(zs < 0) | (zs >= nz)]
        if bad.size:
            raise VolumeSourceError(
                f"{self.uri}: sections z={bad.tolist()} are outside the volume (shape {self.shape}; z must "
                f"lie in [0, {nz}))."
            )
        return zs

    def sample_sections(self, z_indices: Sequence[int], level: int) -> np.ndarray:
        """Whole sections at ``z_indices``, downsampled ``2**level`` times in y and x.

        Returns ``(len(z_indices), ceil(Y / 2**level), ceil(X / 2**level))`` in this channel's
        dtype. This default keeps every ``2**level``-th voxel (``section[::2**level,
        ::2**level]``, i.e. nearest-neighbour, safe for label channels), reading each section in
        row tiles through :meth:`_read`: fine for local sources. Sources with a resolution
        pyramid (BossDB, OME-Zarr) override it to read a stored lower level instead.
        """
        zs = self.check_sections(z_indices, level)
        step = 2 ** int(level)
        _, ny, nx = self.shape
        out = np.empty((len(zs), *sections_shape(self.shape, level)), dtype=self.dtype)
        # Row tiles of at most ~16 M voxels, aligned to the step.
        rows = max(step, (16_000_000 // max(nx, 1)) // step * step)
        for i, z in enumerate(zs):
            for y0 in range(0, ny, rows):
                y1 = min(ny, y0 + rows)
                block = np.asarray(self._read(Window(int(z), int(z) + 1, y0, y1, 0, nx)))[0]
                out[i, y0 // step : y0 // step + -(-(y1 - y0) // step)] = block[::step, ::step]
        return out


def check_dtype(source: VolumeSource, expected_dtype: Any) -> None:
    """Raise :class:`DTypeMismatchError` unless ``source.dtype`` is ``expected_dtype``."""
    try:
        expected = np.dtype(expected_dtype)
    except TypeError as exc:
        raise VolumeSourceError(f"{source.uri}: expected_dtype {expected_dtype!r} is not a dtype ({exc})") from None
    if np.dtype(source.dtype) != expected:
        raise DTypeMismatchError(
            f"{source.uri}: the channel holds {np.dtype(source.dtype)} voxels, expected {expected}. "
            f"Check that the channel URIs under '{URIS_PARAMETER}' point to the right channels "
            "(image: uint8; roi_labels, pixel_labels: integer labels)."
        )


# ------------------------------------------------------------------------------------------------
# Helpers shared by the source modules
# ------------------------------------------------------------------------------------------------


def short_error(exc: BaseException) -> str:
    """An exception's text, cut to 300 characters for error messages."""
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def local_path(uri: str, what: str) -> tuple[Path, dict[str, list[str]]]:
    """The existing path and the query parameters of a local ``scheme:///abs/path?key=value`` URI."""
    rest = uri.partition("://")[2]
    path_text, _, query = rest.partition("?")
    if not path_text:
        raise VolumeSourceError(f"{uri!r}: no path given; expected {what}. Check '{URIS_PARAMETER}'.")
    path = Path(path_text).expanduser()
    if not path.exists():
        raise ChannelNotFoundError(
            f"{uri}: {path} does not exist. Point the channel URIs under the parameter "
            f"'{URIS_PARAMETER}' to an existing {what} (absolute path: {what.split()[0]}:///abs/path)."
        )
    return path, parse_qs(query, keep_blank_values=True)


def voxel_size_option(uri: str, voxel_size: Any) -> tuple[float, float, float] | None:
    """The ``voxel_size`` option of local sources: one number or three (z, y, x), all positive."""
    if voxel_size is None:
        return None
    try:
        values = tuple(float(v) for v in (voxel_size if isinstance(voxel_size, (list, tuple)) else [voxel_size] * 3))
    except (TypeError, ValueError):
        values = ()
    if len(values) != 3 or min(values) <= 0:
        raise VolumeSourceError(f"{uri}: voxel_size must be three positive numbers (z, y, x), got {voxel_size!r}")
    return values  # type: ignore[return-value]


class SourceOptions(BaseModel):
    """The base of a source's options model (``volume.options.<source>``): unknown keys are
    errors; every key may be unset or null (not overridden: the reader's default applies)."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())


# Numbers keep the type they were written with (5 stays 5): source options are recorded in each
# cube's request, and a cube on disk is only reused for an identical request.
PositiveNumber = PositiveInt | PositiveFloat
NonNegativeNumber = NonNegativeInt | NonNegativeFloat
