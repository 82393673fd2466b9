"""Zarr arrays and OME-Zarr multiscale groups: ``zarr:///abs/path.zarr[?array=name]``.

(This module's name does not shadow the ``zarr`` package: imports are absolute, so
``import zarr`` below is the package.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mtneuro.volumes.base import (
    UNIT_TO_UM,
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


@dataclass(frozen=True)
class _Level:
    array: Any  # zarr.Array
    factors: tuple[float, float, float]  # (z, y, x) voxel size relative to the full resolution


class ZarrVolume(VolumeSource):
    """A Zarr array, or an OME-Zarr multiscale group, as a ``(z, y, x)`` volume.

    For a multiscale group the first dataset of ``multiscales[0]`` (OME-Zarr 0.4 attributes, or
    0.5's ``ome.multiscales``) is the full resolution, its axes named ``z``, ``y``, ``x`` give the
    order (other axes, e.g. ``t`` or ``c``, must have size 1), and its ``scale`` the voxel size.
    :meth:`sample_sections` reads the coarsest stored level that is not coarser than asked.
    """

    def __init__(
        self, uri: str, path: Path, array: str | None = None, voxel_size: tuple[float, float, float] | None = None
    ) -> None:
        import zarr

        self.uri = uri
        self.path = path
        try:
            node = zarr.open(str(path), mode="r")
        except Exception as exc:
            raise VolumeSourceError(
                f"{uri}: {path} is not a readable Zarr store ({short_error(exc)}). Check '{URIS_PARAMETER}'."
            ) from exc
        if array:
            group = node
            if not isinstance(group, zarr.Group):
                raise VolumeSourceError(f"{uri}: ?array={array} needs a Zarr group, but {path} is an array.")
            try:
                node = group[array]
            except KeyError:
                raise ChannelNotFoundError(
                    f"{uri}: the Zarr group {path} has no array {array!r} (it holds: "
                    f"{', '.join(sorted(group.keys())) or 'nothing'}). Check '{URIS_PARAMETER}'."
                ) from None
        self._axes_units: list[str | None] = []
        if isinstance(node, zarr.Group):
            self._levels, axes, vs = self._open_multiscale(node)
        else:
            self._levels, axes, vs = [_Level(node, (1.0, 1.0, 1.0))], None, None
        base = self._levels[0].array
        self._ndim = base.ndim
        self._zyx = self._axis_positions(axes, base.shape)
        nz, ny, nx = (int(base.shape[i]) for i in self._zyx)
        self._shape = (nz, ny, nx)
        self._dtype = np.dtype(base.dtype)
        self._voxel_size = voxel_size or vs or (1.0, 1.0, 1.0)

    def __repr__(self) -> str:
        return f"ZarrVolume({self.uri!r})"

    def _open_multiscale(self, group: Any) -> tuple[list[_Level], list[str] | None, tuple[float, float, float] | None]:
        attrs = dict(group.attrs)
        multiscales = attrs.get("multiscales") or dict(attrs.get("ome") or {}).get("multiscales")
        if not multiscales:
            names = sorted(group.array_keys()) if hasattr(group, "array_keys") else sorted(group.keys())
            raise VolumeSourceError(
                f"{self.uri}: {self.path} is a Zarr group without OME-Zarr 'multiscales' metadata; name "
                f"the array with zarr://{self.path}?array=<name> (arrays: {', '.join(names) or 'none'}). "
                f"Check '{URIS_PARAMETER}'."
            )
        ms = multiscales[0]
        datasets = ms.get("datasets") or []
        if not datasets:
            raise VolumeSourceError(f"{self.uri}: OME-Zarr multiscales metadata lists no datasets")
        axes_meta = ms.get("axes")
        axes = None
        units: list[str | None] = []
        if axes_meta:
            axes = [a["name"] if isinstance(a, dict) else str(a) for a in axes_meta]
            units = [a.get("unit") if isinstance(a, dict) else None for a in axes_meta]
        global_scale = _scale_of(ms.get("coordinateTransformations"))
        arrays, scales = [], []
        for d in datasets:
            try:
                arrays.append(group[d["path"]])
            except KeyError:
                raise VolumeSourceError(
                    f"{self.uri}: OME-Zarr dataset {d['path']!r} listed in multiscales is missing from {self.path}"
                ) from None
            scales.append(_scale_of(d.get("coordinateTransformations")))
        ndim = arrays[0].ndim
        pos = self._axis_positions(axes, arrays[0].shape)
        levels = []
        for arr, scale in zip(arrays, scales):
            if scale is not None and scales[0] is not None and len(scale) == ndim:
                factors = tuple(float(scale[i]) / float(scales[0][i]) for i in pos)
            else:  # no scale: infer from the shapes
                factors = tuple(_pyramid_factor(arrays[0].shape[i], arr.shape[i]) for i in pos)
            levels.append(_Level(arr, factors))  # type: ignore[arg-type]
        vs = None
        if scales[0] is not None and len(scales[0]) == ndim:
            gs = global_scale if global_scale is not None and len(global_scale) == ndim else [1.0] * ndim
            vs = tuple(
                float(scales[0][i]) * float(gs[i]) * UNIT_TO_UM.get(str(units[i]).lower() if units else "", 1.0)
                for i in pos
            )
        return levels, axes, vs  # type: ignore[return-value]

    def _axis_positions(self, axes: list[str] | None, shape: tuple[int, ...]) -> tuple[int, int, int]:
        ndim = len(shape)
        if ndim < 3:
            raise VolumeSourceError(f"{self.uri}: the Zarr array has {ndim} dimension(s), a volume needs 3 (z, y, x)")
        if axes and len(axes) == ndim and all(a in axes for a in ("z", "y", "x")):
            pos = (axes.index("z"), axes.index("y"), axes.index("x"))
        else:
            pos = (ndim - 3, ndim - 2, ndim - 1)
        extra = [i for i in range(ndim) if i not in pos and shape[i] != 1]
        if extra:
            raise VolumeSourceError(
                f"{self.uri}: the Zarr array has shape {tuple(shape)}; dimensions other than z, y, x "
                "must have size 1 (one channel, one time point)"
            )
        return pos  # type: ignore[return-value]

    def _select(self, array: Any, zsel: Any, ysel: slice, xsel: slice) -> np.ndarray:
        index: list[Any] = [0] * array.ndim
        for p, s in zip(self._zyx, (zsel, ysel, xsel)):
            index[p] = s
        data = np.asarray(array[tuple(index)])
        kept = [p for p in sorted(self._zyx) if not isinstance(index[p], int)]
        wanted = [p for p in self._zyx if not isinstance(index[p], int)]
        if kept != wanted:
            data = np.transpose(data, [kept.index(p) for p in wanted])
        return data

    def _read(self, window: Window) -> np.ndarray:
        z, y, x = window.as_slices()
        return self._select(self._levels[0].array, z, y, x)

    def sample_sections(self, z_indices: Sequence[int], level: int) -> np.ndarray:
        """Sections downsampled ``2**level`` in y and x, from the best stored pyramid level.

        Uses the stored level ``j <= level`` with y and x ``2**j`` times coarser (and a matching
        shape) closest to ``level``, then keeps every ``2**(level - j)``-th voxel. If that level
        is also coarser in z (factor ``f``), section ``z`` comes from its slab ``z // f``. A plain
        array (no pyramid) is strided.
        """
        zs = self.check_sections(z_indices, level)
        level = int(level)
        nz, ny, nx = self._shape
        best: tuple[int, float, _Level] | None = None
        for lev in self._levels:
            fz, fy, fx = lev.factors
            j = round(math.log2(fy)) if fy > 0 else -1
            if not (0 <= j <= level and abs(fy - 2**j) < 1e-6 and abs(fx - 2**j) < 1e-6):
                continue
            if fz < 1 - 1e-6 or abs(fz - round(fz)) > 1e-6:
                continue
            shape = tuple(lev.array.shape[i] for i in self._zyx)
            if shape != (-(-nz // round(fz)), -(-ny // 2**j), -(-nx // 2**j)):
                continue
            if best is None or j > best[0] or (j == best[0] and fz < best[1]):
                best = (j, fz, lev)
        assert best is not None  # the full-resolution level always qualifies
        j, fz, lev = best
        rem = 2 ** (level - j)
        out = np.empty((len(zs), *sections_shape(self._shape, level)), dtype=self._dtype)
        for i, z in enumerate(zs):
            out[i] = self._select(lev.array, int(z) // round(fz), slice(None, None, rem), slice(None, None, rem))
        return out


def _pyramid_factor(full: int, size: int) -> float:
    """``2**j`` when ``size == ceil(full / 2**j)``, else the plain ratio."""
    for j in range(31):
        if -(-int(full) // 2**j) == int(size):
            return float(2**j)
    return full / max(1, size)


def _scale_of(transforms: Any) -> list[float] | None:
    for t in transforms or []:
        if isinstance(t, dict) and t.get("type") == "scale" and "scale" in t:
            return [float(v) for v in t["scale"]]
    return None


@register_scheme("zarr")
def open_zarr(uri: str, voxel_size: Any = None, **_options: Any) -> ZarrVolume:
    """Open ``zarr:///abs/path.zarr`` or ``zarr:///abs/path.zarr?array=name``; other options are ignored."""
    path, query = local_path(uri, "zarr store")
    unknown = sorted(set(query) - {"array"})
    if unknown:
        raise VolumeSourceError(
            f"{uri}: unknown query parameter(s) {', '.join(unknown)}; only ?array=<name> is supported"
        )
    names = query.get("array") or []
    array = (names[-1] if names else None) or None
    return ZarrVolume(uri, path, array=array, voxel_size=voxel_size_option(uri, voxel_size))
