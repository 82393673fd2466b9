"""Block-wise inference of the brain maps (no Kedro, no writing).

Geometry. The window is cut into blocks (``mapping.blocks.shape_zyx``, whole storage chunks).
A block's input is the block plus a halo on every in-plane side, with its start rounded down and
its end rounded up to the network's input multiple ``m`` (the stride of its encoder), clipped to
the volume (and padded at the volume's far end by replication up to a multiple of ``m``). So
every input starts at a multiple of ``m`` of the *volume* grid, and a voxel's logits depend only
on the voxels within the receptive field around it: with a halo of at least the receptive-field
radius, a voxel gets the same label whichever block it falls in (no seams), and the only border
effects are the volume's own. Inside a block each slice (2D networks) is one window of MONAI's
``sliding_window_inference`` (:func:`mtneuro.pipelines.segmentation.engine.sliding_window_logits`).

Regions: the Task 1 class of a ``patch_size`` patch centred on every ``stride`` cell of the
window grid (shifted inside the volume at its border), as labels 1..4 (``spec.REGIONS`` + 1).
Features: :func:`mtneuro.features.image_features` of every ``tile_size`` tile of every slice of
the predicted microstructure.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from mtneuro import spec
from mtneuro.features import image_features
from mtneuro.volumes import VolumeSource, Window

#: Label value of each Task 1 region in labels/regions (0: not mapped).
REGION_LABELS: dict[int, str] = {i + 1: name for i, name in enumerate(spec.REGIONS)}
REGION_COLOURS: dict[str, tuple[int, int, int, int]] = {
    "CTX": (230, 159, 0, 255),
    "STR": (86, 180, 233, 255),
    "VP": (0, 158, 115, 255),
    "ZI": (204, 121, 167, 255),
}
PIXEL_COLOURS: dict[int, tuple[int, int, int, int]] = {
    0: (0, 0, 0, 0),
    1: (220, 40, 40, 255),
    2: (40, 200, 60, 255),
    3: (60, 90, 230, 255),
}


class MappingError(ValueError):
    """Bad mapping parameters or a model the map cannot be made with."""


# --- geometry --------------------------------------------------------------------------------


def block_windows(window: Window, shape_zyx: Sequence[int]) -> dict[str, Window]:
    """Blocks of ``window`` (absolute coordinates), keyed ``z<i>_y<j>_x<k>`` in row-major order."""
    out = {}
    bz, by, bx = (int(s) for s in shape_zyx)
    for i, z0 in enumerate(range(window.z0, window.z1, bz)):
        for j, y0 in enumerate(range(window.y0, window.y1, by)):
            for k, x0 in enumerate(range(window.x0, window.x1, bx)):
                out[f"z{i}_y{j}_x{k}"] = Window(
                    z0, min(z0 + bz, window.z1), y0, min(y0 + by, window.y1), x0, min(x0 + bx, window.x1)
                )
    return out


def input_range(lo: int, hi: int, halo: int, multiple: int, size: int) -> tuple[int, int, int]:
    """``(start, stop, end_pad)`` of the input read for output ``[lo, hi)`` along one axis.

    ``start`` is ``lo - halo`` rounded down to a multiple of ``multiple`` (at least 0); ``stop``
    is ``hi + halo`` rounded up (at most ``size``); ``end_pad`` voxels are replicated after the
    volume's end so that the input length is a multiple of ``multiple``.
    """
    m = max(int(multiple), 1)
    start = max(0, (lo - halo) // m * m)
    stop = min(size, -(-(hi + halo) // m) * m)
    return start, stop, (-(stop - start)) % m


class VolumeArray:
    """A volume source as an array Dask can slice lazily (``dask.array.from_array``)."""

    def __init__(self, source: VolumeSource) -> None:
        self.source = source
        self.shape = tuple(int(s) for s in source.shape)
        self.dtype = np.dtype(source.dtype)
        self.ndim = 3

    def __getitem__(self, key: tuple[slice, slice, slice]) -> np.ndarray:
        return self.source[key]


def lazy_volume(source: VolumeSource, chunks: Sequence[int]) -> Any:
    """The whole channel as a lazy Dask array; reads happen per chunk when a block is computed."""
    import dask.array as da

    return da.from_array(
        VolumeArray(source),
        chunks=tuple(int(c) for c in chunks),
        asarray=True,
        lock=False,
        fancy=False,
        name=f"volume-{source.uri}",
    )


# --- models ----------------------------------------------------------------------------------


def network_multiple(net: torch.nn.Module, dims: int) -> tuple[int, ...]:
    """Input multiple per spatial axis (``PadToMultiple.multiple`` of the project's factories)."""
    multiple = getattr(net, "multiple", None)
    return tuple(int(m) for m in multiple) if multiple is not None else (1,) * dims


def receptive_field_radius(net: torch.nn.Module, dims: int, probe: int) -> int | None:
    """Largest distance (voxels, in-plane) from an output voxel to an input voxel it depends on.

    Measured by back-propagating single output voxels of a random ``probe``-sized input, at the
    extreme phases of the network's stride grid (the dependence is widest there); None when it
    reaches the probe's border (the radius is at least ``probe // 2`` minus a stride).
    """
    multiple = network_multiple(net, dims)
    m = multiple[-1]
    size = -(-int(probe) // m) * m
    shape = (1, 1, *((multiple[0] * 2,) if dims == 3 else ()), size, size)
    generator = torch.Generator().manual_seed(0)
    was_training = net.training
    net.eval()
    c = size // 2
    radius = 0
    try:
        for dy in (0, m - 1):
            for dx in (0, m - 1):
                x = torch.randn(shape, generator=generator).requires_grad_(True)
                with torch.enable_grad():
                    out = net(x)
                    cy, cx = c + dy, c + dx
                    out[(0, slice(None), *((shape[2] // 2,) if dims == 3 else ()), cy, cx)].sum().backward()
                assert x.grad is not None  # set by backward() above
                grad = x.grad.abs().amax(dim=tuple(range(x.ndim - 2))).numpy() > 0
                rows, cols = np.nonzero(grad)
                if rows.size == 0:
                    continue
                if rows.min() == 0 or cols.min() == 0 or rows.max() == size - 1 or cols.max() == size - 1:
                    return None
                radius = max(
                    radius, int(cy - rows.min()), int(rows.max() - cy), int(cx - cols.min()), int(cols.max() - cx)
                )
    finally:
        net.train(was_training)
    return radius


@dataclass
class SegmentationModel:
    """A Task 2 network and what inference needs from its metadata."""

    net: torch.nn.Module
    name: str
    dims: int
    mean: float
    std: float
    #: Pixel-label value (spec.PIXEL_CLASSES) of each output class.
    class_values: np.ndarray

    @classmethod
    def from_trained(cls, net: torch.nn.Module, name: str) -> SegmentationModel:
        meta = dict(getattr(net, "metadata", {}) or {})
        missing = [k for k in ("mean", "std", "classes", "dims") if k not in meta]
        if missing:
            raise MappingError(
                f"The Task 2 model {name} lacks metadata {missing}: was it saved by the segmentation pipeline?"
            )
        by_name = {v: k for k, v in spec.PIXEL_CLASSES.items()}
        values = np.array([by_name.get(c, spec.BACKGROUND) for c in meta["classes"]], dtype=np.uint8)
        return cls(net.eval(), name, int(meta["dims"]), float(meta["mean"]), float(meta["std"]), values)


@dataclass
class RegionModel:
    """A Task 1 frozen encoder and its read-out (``readout.predict(encoder.embed(patches))``)."""

    encoder: Any
    readout: Any
    name: str

    def predict(self, patches: np.ndarray, batch_size: int) -> np.ndarray:
        out = [
            np.asarray(self.readout.predict(self.encoder.embed(patches[i : i + batch_size]))).astype(np.int64)
            for i in range(0, len(patches), batch_size)
        ]
        return np.concatenate(out) if out else np.zeros(0, np.int64)


# --- one block -------------------------------------------------------------------------------


@dataclass
class BlockSettings:
    halo_yx: int
    halo_z: int
    slices_per_batch: int
    workers: int
    patch_size: int
    stride: int
    region_batch_size: int
    tile_size: int
    connectivity: int
    feature_names: tuple[str, ...]


def _pad_end(data: np.ndarray, pads: Sequence[int]) -> np.ndarray:
    if not any(pads):
        return data
    return np.pad(data, [(0, int(p)) for p in pads], mode="edge")


def segment(model: SegmentationModel, image: np.ndarray, slices_per_batch: int, workers: int) -> np.ndarray:
    """Class index per voxel of ``image`` (already aligned input), mapped to pixel-label values."""
    from mtneuro.pipelines.segmentation.engine import normalise, sliding_window_logits

    net = model.net

    @torch.no_grad()
    def run(part: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(normalise(part, model.mean, model.std))
        x = x[:, None] if model.dims == 2 else x[None, None]
        logits = sliding_window_logits(net, x, tuple(x.shape[2:]), sw_batch_size=1)
        labels = logits.float().argmax(1).to(torch.uint8).numpy()
        return labels if model.dims == 2 else labels[0]

    if model.dims == 3:
        classes = run(image)
    else:
        batches = [image[z : z + slices_per_batch] for z in range(0, image.shape[0], slices_per_batch)]
        if workers > 1 and len(batches) > 1:
            with ThreadPoolExecutor(workers) as pool:
                parts = list(pool.map(run, batches))
        else:
            parts = [run(b) for b in batches]
        classes = np.concatenate(parts)
    return model.class_values[classes]


def classify_regions(
    model: RegionModel,
    image: np.ndarray,
    origin: Sequence[int],
    block: Window,
    window: Window,  # noqa: ARG001
    volume_shape: Sequence[int],
    settings: BlockSettings,
) -> np.ndarray:
    """labels/regions of ``block``: 1 + the Task 1 class of the patch centred on each stride cell.

    ``image`` is the block's input, its voxel [0, 0, 0] at absolute ``origin`` (z, y, x).
    """
    s, p = settings.stride, settings.patch_size
    out = np.zeros(block.shape, dtype=np.uint8)
    ys = list(range(block.y0, block.y1, s))
    xs = list(range(block.x0, block.x1, s))
    patches, cells = [], []
    for z in range(block.z0, block.z1):
        plane = image[z - origin[0]]
        for y in ys:
            for x in xs:
                # the cell [y, y + s) x [x, x + s) of the window's grid; its patch, shifted inside the volume
                py0 = min(max(0, y + s // 2 - p // 2), volume_shape[1] - p)
                px0 = min(max(0, x + s // 2 - p // 2), volume_shape[2] - p)
                patches.append(plane[py0 - origin[1] : py0 - origin[1] + p, px0 - origin[2] : px0 - origin[2] + p])
                cells.append((z, y, x))
    if not patches:
        return out
    classes = model.predict(np.stack(patches), settings.region_batch_size)
    for (z, y, x), c in zip(cells, classes, strict=True):
        out[
            z - block.z0, y - block.y0 : min(y + s, block.y1) - block.y0, x - block.x0 : min(x + s, block.x1) - block.x0
        ] = c + 1
    return out


def tile_features(labels: np.ndarray, settings: BlockSettings) -> np.ndarray:
    """Features ``(C, Z, tiles_y, tiles_x)`` float32 of every tile of every slice of ``labels``."""
    t = settings.tile_size
    nz, ny, nx = labels.shape
    out = np.full((len(settings.feature_names), nz, -(-ny // t), -(-nx // t)), np.nan, dtype=np.float32)
    for z in range(nz):
        for i, y in enumerate(range(0, ny, t)):
            for j, x in enumerate(range(0, nx, t)):
                values = image_features(labels[z, y : y + t, x : x + t], settings.connectivity, settings.feature_names)
                out[:, z, i, j] = [values[n] for n in settings.feature_names]
    return out


def block_input(
    image: Any, block: Window, volume_shape: Sequence[int], halo: Sequence[int], multiple: Sequence[int]
) -> tuple[np.ndarray, tuple[int, int, int]]:
    """The aligned input of ``block`` (read through Dask) and its absolute origin (z, y, x)."""
    ranges = [
        input_range(lo, hi, h, m, n)
        for lo, hi, h, m, n in zip(
            (block.z0, block.y0, block.x0), (block.z1, block.y1, block.x1), halo, multiple, volume_shape, strict=True
        )
    ]
    data = np.asarray(image[tuple(slice(a, b) for a, b, _ in ranges)].compute(scheduler="threads"))
    return _pad_end(data, [p for _, _, p in ranges]), tuple(a for a, _, _ in ranges)  # type: ignore[return-value]


def compute_block(
    block: Window,
    window: Window,
    image: Any,
    volume_shape: Sequence[int],
    segmentation: SegmentationModel,
    regions: RegionModel,
    settings: BlockSettings,
) -> dict[str, np.ndarray]:
    """Every layer of one block: image, labels/microstructure, labels/regions, features."""
    region_halo = max(0, math.ceil((settings.patch_size - settings.stride) / 2))
    halo_yx = max(settings.halo_yx, region_halo)
    halo = (settings.halo_z if segmentation.dims == 3 else 0, halo_yx, halo_yx)
    multiple = network_multiple(segmentation.net, segmentation.dims)
    multiple = (multiple[0] if segmentation.dims == 3 else 1, multiple[-2], multiple[-1])
    data, origin = block_input(image, block, volume_shape, halo, multiple)
    labels = segment(segmentation, data, settings.slices_per_batch, settings.workers)
    core = tuple(
        slice(lo - o, hi - o)
        for lo, hi, o in zip((block.z0, block.y0, block.x0), (block.z1, block.y1, block.x1), origin, strict=True)
    )
    micro = np.ascontiguousarray(labels[core])
    return {
        "": np.ascontiguousarray(data[core]),
        "labels/microstructure": micro,
        "labels/regions": classify_regions(regions, data, origin, block, window, volume_shape, settings),
        "features": tile_features(micro, settings),
    }


def check_halo(model: SegmentationModel, halo_yx: int, key: str = "mapping.microstructure.halo_yx") -> int:
    """Raise unless ``halo_yx`` covers the network's receptive-field radius; returns the radius."""
    probe = 2 * (halo_yx + 32) + 1
    radius = receptive_field_radius(model.net, model.dims, probe)
    if radius is None or radius > halo_yx:
        found = f"at least {probe // 2}" if radius is None else str(radius)
        raise MappingError(
            f"Parameter '{key}' = {halo_yx} is smaller than the receptive-field radius of {model.name} ({found} voxels): "
            "block seams would show; raise it"
        )
    return radius


ComputeFn = Callable[[str], dict[str, np.ndarray]]
