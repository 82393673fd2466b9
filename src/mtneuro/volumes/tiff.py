"""TIFF volumes: ``tiff:///abs/folder`` (2D slices, one per z in natural file-name order) or
``tiff:///abs/stack.tif`` (one multi-page TIFF, or a single 2D image: one slice)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mtneuro.volumes.base import (
    URIS_PARAMETER,
    ChannelNotFoundError,
    VolumeSource,
    VolumeSourceError,
    Window,
    local_path,
    sections_shape,
    short_error,
    voxel_size_option,
)
from mtneuro.volumes.registry import register_scheme


def read_tiff(path: Path) -> np.ndarray:
    """The pixels of a TIFF file, memory-mapped when it is uncompressed and contiguous, else decoded
    (tifffile's errors pass through)."""
    import tifffile

    try:
        return tifffile.memmap(path, mode="r")
    except ValueError:  # compressed or not contiguous: decode it
        return tifffile.imread(path)


def _natural_key(name: str) -> list[Any]:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


class TiffFolderVolume(VolumeSource):
    """A folder of 2D TIFF files, one section per file, z in natural order of the file names.

    Only the file headers are read when the volume is opened (to check that every file holds a
    single 2D image of the same shape and dtype); pixels are read on demand, memory-mapped when
    the file is uncompressed.
    """

    SUFFIXES = (".tif", ".tiff")

    def __init__(self, uri: str, folder: Path, voxel_size: tuple[float, float, float] | None = None) -> None:
        import tifffile

        self.uri = uri
        self.folder = folder
        if not folder.is_dir():
            raise VolumeSourceError(
                f"{uri}: {folder} is not a folder; a tiff:// URI names a folder of 2D TIFF slices. "
                f"Check '{URIS_PARAMETER}'."
            )
        self.files = sorted(
            (
                p
                for p in folder.iterdir()
                if p.is_file() and p.suffix.lower() in self.SUFFIXES and not p.name.startswith(".")
            ),
            key=lambda p: _natural_key(p.name),
        )
        if not self.files:
            raise ChannelNotFoundError(
                f"{uri}: the folder {folder} holds no .tif/.tiff files. Check '{URIS_PARAMETER}'."
            )
        shape: tuple[int, ...] | None = None
        dtype: np.dtype | None = None
        for p in self.files:
            try:
                with tifffile.TiffFile(p) as tf:
                    series = tf.series[0]
                    s_shape, s_dtype, n_series = tuple(series.shape), np.dtype(series.dtype), len(tf.series)
            except Exception as exc:
                raise VolumeSourceError(f"{uri}: cannot read the TIFF file {p} ({short_error(exc)})") from exc
            s_shape = tuple(s_shape[1:]) if len(s_shape) == 3 and s_shape[0] == 1 else s_shape
            if len(s_shape) != 2 or n_series != 1:
                raise VolumeSourceError(
                    f"{uri}: the TIFF file {p} holds shape {s_shape} in {n_series} series; every file of "
                    "the folder must be one 2D single-channel section"
                )
            if shape is None:
                shape, dtype = s_shape, s_dtype
            elif s_shape != shape or s_dtype != dtype:
                raise VolumeSourceError(
                    f"{uri}: the TIFF file {p} has shape {s_shape} and dtype {s_dtype}, but {self.files[0].name} "
                    f"(the first section) has shape {shape} and dtype {dtype}; all sections must agree"
                )
        assert shape is not None and dtype is not None
        self._shape = (len(self.files), int(shape[0]), int(shape[1]))
        self._dtype = dtype
        self._voxel_size = voxel_size or (1.0, 1.0, 1.0)

    def __repr__(self) -> str:
        return f"TiffFolderVolume({self.uri!r}, {len(self.files)} files)"

    def _section(self, z: int, ysel: slice = slice(None), xsel: slice = slice(None)) -> np.ndarray:
        path = self.files[z]
        try:
            data = read_tiff(path)
        except Exception as exc:
            raise VolumeSourceError(f"{self.uri}: cannot read the TIFF file {path} ({short_error(exc)})") from exc
        data = data.reshape(data.shape[-2:]) if data.ndim == 3 and data.shape[0] == 1 else data
        if data.shape != self._shape[1:] or data.dtype != self._dtype:
            raise VolumeSourceError(
                f"{self.uri}: the TIFF file {path} now holds {data.dtype}{data.shape}, expected "
                f"{self._dtype}{self._shape[1:]} (was it changed after the volume was opened?)"
            )
        out = np.array(data[ysel, xsel])
        del data
        return out

    def _read(self, window: Window) -> np.ndarray:
        out = np.empty(window.shape, dtype=self._dtype)
        _, ysel, xsel = window.as_slices()
        for i, z in enumerate(range(window.z0, window.z1)):
            out[i] = self._section(z, ysel, xsel)
        return out

    def sample_sections(self, z_indices: Sequence[int], level: int) -> np.ndarray:
        """Every ``2**level``-th voxel in y and x of the sections (one file read per section)."""
        zs = self.check_sections(z_indices, level)
        step = 2 ** int(level)
        out = np.empty((len(zs), *sections_shape(self._shape, level)), dtype=self._dtype)
        for i, z in enumerate(zs):
            out[i] = self._section(int(z), slice(None, None, step), slice(None, None, step))
        return out


class TiffStackVolume(VolumeSource):
    """A multi-page TIFF (or one 2D image: one slice), memory-mapped when it is uncompressed."""

    def __init__(self, uri: str, path: Path, voxel_size: tuple[float, float, float] | None = None) -> None:
        import tifffile

        self.uri = uri
        self.path = path
        data: np.ndarray
        try:
            with tifffile.TiffFile(path) as tf:
                series = tf.series[0]
                axes, shape = str(series.axes), tuple(int(s) for s in series.shape)
            data = read_tiff(path)
        except Exception as exc:
            raise VolumeSourceError(f"{uri}: cannot read {path} as a TIFF file ({exc}).") from exc
        data = np.asarray(data).reshape(shape)
        kept = [i for i, (a, s) in enumerate(zip(axes, shape, strict=True)) if s != 1 or a in "YX"]
        extra = [f"{axes[i]}={shape[i]}" for i in kept if axes[i] not in "ZQIYX"]
        data = data.reshape([shape[i] for i in kept])
        if extra or data.ndim not in (2, 3):
            raise VolumeSourceError(
                f"{uri}: the TIFF holds an image of shape {shape} (axes {axes}); expected one "
                "channel of (z, y, x) slices or a single (y, x) image"
                + (f", not {', '.join(extra)} (save one channel per file)" if extra else "")
                + "."
            )
        self._data = data[None] if data.ndim == 2 else data
        self._shape = tuple(int(s) for s in self._data.shape)  # type: ignore[assignment]
        self._dtype = np.dtype(self._data.dtype)
        self._voxel_size = voxel_size or (1.0, 1.0, 1.0)

    def __repr__(self) -> str:
        return f"TiffStackVolume({self.uri!r})"

    def _read(self, window: Window) -> np.ndarray:
        return np.array(self._data[window.as_slices()])


@register_scheme("tiff")
def open_tiff(uri: str, voxel_size: Any = None, **_options: Any) -> TiffFolderVolume | TiffStackVolume:
    """Open ``tiff:///abs/folder`` (2D TIFF slices in natural file-name order) or
    ``tiff:///abs/stack.tif`` (a multi-page TIFF); other options are ignored."""
    path, query = local_path(uri, "tiff folder or stack")
    if query:
        raise VolumeSourceError(f"{uri}: tiff:// URIs take no query parameters")
    size = voxel_size_option(uri, voxel_size)
    if path.is_file() and path.suffix.lower() in TiffFolderVolume.SUFFIXES:
        return TiffStackVolume(uri, path, voxel_size=size)
    return TiffFolderVolume(uri, path, voxel_size=size)
