"""Volume sources: the one place that knows how to read a channel of a 3D volume.

A channel is opened by URI and read by half-open windows ``[z0:z1, y0:y1, x0:x1]``:

* ``phantom://prasad2020/{image,roi_labels,pixel_labels}`` -- the built-in synthetic volume
  (:mod:`mtneuro.phantom`), the default, needs no network;
* ``bossdb://collection/experiment/channel`` -- the real data, through ``intern``;
* ``zarr:///path/to/array.zarr`` (or ``file.zarr``, OME-Zarr groups included) and
  ``tiff:///path/to/folder`` (one 2D TIFF per z slice) -- volumes a user brings.

Every reader returns numpy arrays in ``[z, y, x]`` order and raises :class:`VolumeSourceError`
with a message that names the parameter to fix.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

#: Parameter that picks the source of a run; named in every error so users know what to change.
SOURCE_PARAMETER = "volume.source"


class VolumeSourceError(RuntimeError):
    """A volume cannot be opened or read; the message says which parameter or file to fix."""


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
    def from_list(cls, values: list[int] | tuple[int, ...]) -> "Window":
        return cls(*(int(v) for v in values))


class VolumeSource(abc.ABC):
    """One channel of a volume: shape ``(z, y, x)``, dtype, voxel size and windowed reads."""

    uri: str

    @property
    @abc.abstractmethod
    def shape(self) -> tuple[int, int, int]: ...

    @property
    @abc.abstractmethod
    def dtype(self) -> np.dtype: ...

    @property
    def voxel_size(self) -> tuple[float, float, float]:
        """Voxel size in micrometres, ``(z, y, x)``."""
        return (1.0, 1.0, 1.0)

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
            raise VolumeSourceError(
                f"{self.uri}: read returned shape {data.shape}, expected {window.shape}"
            )
        return data

    def check_window(self, window: Window) -> None:
        bounds = zip(("z", "y", "x"), window.to_list()[0::2], window.to_list()[1::2], self.shape)
        for axis, lo, hi, size in bounds:
            if not (0 <= lo < hi <= size):
                raise VolumeSourceError(
                    f"{self.uri}: window {axis}=[{lo}, {hi}) is outside the volume "
                    f"(shape {self.shape}, {axis} must lie in [0, {size})). Check the cube "
                    "coordinates in the ingestion parameters."
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


#: scheme -> factory(uri, **options). Filled by the modules that implement each scheme.
_OPENERS: dict[str, Callable[..., VolumeSource]] = {}


def register_scheme(scheme: str) -> Callable[[Callable[..., VolumeSource]], Callable[..., VolumeSource]]:
    def decorator(factory: Callable[..., VolumeSource]) -> Callable[..., VolumeSource]:
        _OPENERS[scheme] = factory
        return factory

    return decorator


def open_volume(uri: str, **options: object) -> VolumeSource:
    """Open one channel by URI (see the module docstring for the schemes)."""
    # Import for their registration side effect; kept here so importing this module stays cheap.
    from mtneuro import phantom  # noqa: F401

    scheme, sep, _ = uri.partition("://")
    if not sep or scheme not in _OPENERS:
        raise VolumeSourceError(
            f"Unknown volume URI {uri!r}: expected one of "
            f"{', '.join(s + '://' for s in sorted(_OPENERS))}. Set the parameter "
            f"'{SOURCE_PARAMETER}' (or the channel URIs under 'volume.uris') in conf/base/parameters.yml."
        )
    return _OPENERS[scheme](uri, **options)
