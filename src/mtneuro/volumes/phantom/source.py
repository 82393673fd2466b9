"""The phantom as a volume source: :class:`PhantomVolume` and the ``phantom://`` scheme."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import NonNegativeInt

from mtneuro import spec
from mtneuro.volumes.base import SOURCE_PARAMETER, SourceOptions, VolumeSource, VolumeSourceError, Window
from mtneuro.volumes.phantom.image import render_image
from mtneuro.volumes.phantom.layout import roi_labels
from mtneuro.volumes.phantom.params import MAX_BLOCK
from mtneuro.volumes.phantom.render import pixel_labels
from mtneuro.volumes.registry import register_scheme, source_options

CHANNELS: tuple[str, ...] = ("image", "roi_labels", "pixel_labels")
DTYPES: dict[str, np.dtype] = {
    "image": np.dtype(np.uint8),
    "roi_labels": np.dtype(np.uint64),
    "pixel_labels": np.dtype(np.uint64),
}
DATASET = "prasad2020"


class PhantomVolume(VolumeSource):
    """One channel of the synthetic prasad2020 phantom (see :mod:`mtneuro.volumes.phantom`)."""

    def __init__(self, channel: str, seed: int | None = 0, uri: str | None = None, dense_labels: bool = False):
        if channel not in CHANNELS:
            raise VolumeSourceError(
                f"Unknown phantom channel {channel!r}: expected one of {', '.join(CHANNELS)} "
                f"(phantom://{DATASET}/<channel>). Check the parameter '{SOURCE_PARAMETER}' "
                "and the channel URIs under 'volume.uris'."
            )
        if dense_labels and channel != "pixel_labels":
            raise VolumeSourceError(
                f"The phantom option dense_labels applies to the pixel_labels channel only, not {channel!r}."
            )
        self.channel = channel
        self.seed = 0 if seed is None else int(seed)
        self.uri = uri or f"phantom://{DATASET}/{channel}"
        #: Labels of everything the phantom draws, not only inside the main cubes: validation
        #: truth (mapping), never training data.
        self.dense_labels = bool(dense_labels)

    def __repr__(self) -> str:
        dense = ", dense_labels=True" if self.dense_labels else ""
        return f"PhantomVolume({self.uri!r}, seed={self.seed}{dense})"

    @property
    def shape(self) -> tuple[int, int, int]:
        return spec.VOLUME_SHAPE

    @property
    def dtype(self) -> np.dtype:
        return DTYPES[self.channel]

    @property
    def voxel_size(self) -> tuple[float, float, float]:
        return spec.VOXEL_SIZE_UM

    def _read(self, window: Window) -> np.ndarray:
        nz, ny, nx = window.shape
        if nz * ny * nx > MAX_BLOCK:  # bound the memory: generate in blocks (same voxels)
            out = np.empty(window.shape, dtype=self.dtype)
            bz = max(1, MAX_BLOCK // (ny * nx))
            by = ny if bz > 1 else max(1, MAX_BLOCK // nx)
            for z0 in range(window.z0, window.z1, bz):
                z1 = min(window.z1, z0 + bz)
                for y0 in range(window.y0, window.y1, by):
                    y1 = min(window.y1, y0 + by)
                    out[z0 - window.z0 : z1 - window.z0, y0 - window.y0 : y1 - window.y0] = self._read_block(
                        Window(z0, z1, y0, y1, window.x0, window.x1)
                    )
            return out
        return self._read_block(window)

    def _read_block(self, window: Window) -> np.ndarray:
        if self.channel == "roi_labels":
            return roi_labels(
                np.arange(window.z0, window.z1), np.arange(window.y0, window.y1), np.arange(window.x0, window.x1)
            )
        if self.channel == "image":
            return render_image(self.seed, window)
        return pixel_labels(self.seed, window, self.dense_labels)

    def sample_sections(self, z_indices: Sequence[int], level: int) -> np.ndarray:
        """Sections at ``z_indices``, keeping every ``2**level``-th voxel in y and x.

        Returns ``(len(z_indices), ceil(1420 / 2**level), ceil(5805 / 2**level))``. Cheap for
        ``roi_labels`` (analytic); the other channels are generated at full resolution in tiles.
        """
        zs = self.check_sections(z_indices, level)
        step = 2 ** int(level)
        _, ny, nx = self.shape
        ys = np.arange(0, ny, step)
        xs = np.arange(0, nx, step)
        if self.channel == "roi_labels":
            return roi_labels(zs, ys, xs)
        out = np.zeros((len(zs), len(ys), len(xs)), dtype=self.dtype)
        for i, z in enumerate(zs):
            if self.channel == "pixel_labels" and not self.dense_labels:  # labelled only inside the main cubes
                tiles = [(y0, y1, x0, x1) for (z0, z1), (y0, y1), (x0, x1) in spec.MAIN_CUBES.values() if z0 <= z < z1]
            else:
                tiles = [
                    (y0, min(ny, y0 + 512), x0, min(nx, x0 + 2048))
                    for y0 in range(0, ny, 512)
                    for x0 in range(0, nx, 2048)
                ]
            for y0, y1, x0, x1 in tiles:
                oy, ox = (y0 + step - 1) // step, (x0 + step - 1) // step  # first kept row / column
                if oy * step >= y1 or ox * step >= x1:
                    continue
                block = self.read(Window(int(z), int(z) + 1, oy * step, y1, ox * step, x1))[0]
                part = block[::step, ::step]
                out[i, oy : oy + part.shape[0], ox : ox + part.shape[1]] = part
        return out


@source_options("phantom")
class PhantomOptions(SourceOptions):
    """``volume.options.phantom``: the built-in phantom's options."""

    seed: NonNegativeInt


@register_scheme("phantom")
def open_phantom(uri: str, seed: int | None = 0, dense_labels: bool = False, **_options: object) -> PhantomVolume:
    """Open ``phantom://prasad2020/<channel>``; ``seed`` picks the microstructure, other options are ignored.

    ``dense_labels=True`` (``pixel_labels`` only) labels every structure the phantom draws, also
    outside the main cubes: for validating maps against truth, never for training.
    """
    scheme, _, rest = uri.partition("://")
    dataset, _, channel = rest.strip("/").partition("/")
    if scheme != "phantom" or dataset != DATASET:
        raise VolumeSourceError(
            f"Unknown phantom volume {uri!r}: expected phantom://{DATASET}/<channel> with channel "
            f"one of {', '.join(CHANNELS)}. Set the parameter '{SOURCE_PARAMETER}'."
        )
    if channel not in CHANNELS:
        raise VolumeSourceError(
            f"Unknown phantom channel {channel!r} in {uri!r}: expected one of {', '.join(CHANNELS)}. "
            f"Set the parameter '{SOURCE_PARAMETER}' (or the channel URIs under 'volume.uris')."
        )
    return PhantomVolume(channel, seed=seed, uri=uri, dense_labels=bool(dense_labels))
