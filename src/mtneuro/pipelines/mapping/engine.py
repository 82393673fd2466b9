"""Block-wise inference of the brain maps (no Kedro, no writing).

Geometry. The window is cut into blocks (``mapping.blocks.shape_zyx``, whole storage chunks).
A block's input is the block plus a halo on every in-plane side, with its start rounded down and
its end rounded up to the network's input multiple ``m`` (the stride of its encoder), clipped to
the volume (and padded at the volume's far end by replication up to a multiple of ``m``). So
every input starts at a multiple of ``m`` of the *volume* grid, and a voxel's logits depend only
on the voxels within the receptive field around it: with a halo of at least the receptive-field
radius, a voxel gets the same label whichever block it falls in (no seams), and the only border
effects are the volume's own. Inside a block each slice (2D networks) is one window of MONAI's
``sliding_window_inference`` (:func:`mtneuro.pipelines.segmentation.engine.sliding_window_logits`),
with the network prepared for inference (batch norms folded, channels-last, ``inference_mode``,
bf16 autocast where ``mapping.compute.precision`` asks for it). Each block's input is read
through Dask in chunks tiling exactly that input (:class:`BlockReader`).

Tissue: a voxel is tissue where the mean gray value over a ``tissue_window`` square around it
reaches ``tissue_threshold`` (:func:`tissue_mask`; the halo covers half the window, so the mask
has no seams); 0 is written outside it in every label and feature.

Regions: the Task 1 class of a ``patch_size`` patch centred on every ``stride`` cell of the
window grid (shifted inside the volume at its border) that holds tissue, as labels 1..4
(``spec.REGIONS`` + 1); with ``majority_filter`` each cell then takes the majority class of its
3 x 3 cells (:func:`majority_filter`; the cells one stride beyond the block are classified too,
so the filter has no seams either).
Features: :func:`mtneuro.features.image_features` of every ``tile_size`` tile of every slice of
the predicted microstructure (0 for tiles without tissue).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from mtneuro import spec
from mtneuro.errors import MtneuroError
from mtneuro.features import image_features
from mtneuro.training import autocast_context, native_bf16
from mtneuro.volumes import VolumeSource, Window

#: Label value of each Task 1 region in labels/regions (0: not mapped).
REGION_LABELS: dict[int, str] = {i + 1: name for i, name in enumerate(spec.REGIONS)}
#: labels/tissue: 1 where the tissue mask holds (0 outside the tissue).
TISSUE_LABELS: dict[int, str] = {1: "tissue"}
TISSUE_COLOURS: dict[str, tuple[int, int, int, int]] = {"tissue": (255, 255, 255, 255)}


class MappingError(MtneuroError, ValueError):
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


def chunk_grid(size: int, chunk: int, origin: int = 0, stop: int | None = None) -> tuple[int, ...]:
    """Chunk sizes along one axis of length ``size``: a boundary at ``origin`` and every ``chunk``
    voxels from it, and one at ``stop`` (so that a read of ``[origin, stop)`` reads whole chunks
    and nothing beyond)."""
    c = max(int(chunk), 1)
    cuts = sorted({0, *range(int(origin) % c, int(size), c), int(size), int(size if stop is None else stop)})
    return tuple(b - a for a, b in itertools.pairwise(cuts) if b > a)


def lazy_volume(
    source: VolumeSource,
    chunks: Sequence[int],
    origin: Sequence[int] = (0, 0, 0),
    stop: Sequence[int] | None = None,
) -> Any:
    """The whole channel as a lazy Dask array; reads happen per chunk when a block is computed.

    The chunk grid has boundaries at ``origin`` and ``stop`` (a block input's corners) on each
    axis, so that a read of that box requests exactly its voxels.
    """
    import dask.array as da

    shape = tuple(int(s) for s in source.shape)
    grid = tuple(chunk_grid(n, c, o, e) for n, c, o, e in zip(shape, chunks, origin, stop or shape, strict=True))
    return da.from_array(
        VolumeArray(source),
        chunks=grid,
        asarray=True,
        lock=False,
        fancy=False,
        name=f"volume-{source.uri}-{hash(grid) & 0xFFFFFFFF:08x}",  # one name per chunk grid
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
class MicrostructureNetwork:
    """A Task 2 network and what inference needs from its metadata."""

    net: torch.nn.Module
    name: str
    dims: int
    mean: float
    std: float
    #: Pixel-label value (spec.PIXEL_CLASSES) of each output class.
    class_values: np.ndarray

    @classmethod
    def from_trained(cls, net: torch.nn.Module, name: str) -> MicrostructureNetwork:
        meta = dict(getattr(net, "metadata", {}) or {})
        missing = [k for k in ("mean", "std", "classes", "dims") if k not in meta]
        if missing:
            raise MappingError(
                f"The Task 2 model {name} lacks metadata {missing}: was it saved by the segmentation pipeline?"
            )
        by_name = {v: k for k, v in spec.PIXEL_CLASSES.items()}
        values = np.array([by_name.get(c, spec.BACKGROUND) for c in meta["classes"]], dtype=np.uint8)
        dims = int(meta["dims"])
        prepared = fold_batch_norms(net.eval()).to(memory_format=_memory_format(dims))  # faster oneDNN convolutions
        return cls(prepared, name, dims, float(meta["mean"]), float(meta["std"]), values)


def _memory_format(dims: int) -> torch.memory_format:
    return torch.channels_last if dims == 2 else torch.channels_last_3d


_CONVS = (torch.nn.Conv2d, torch.nn.Conv3d)
_NORMS = (torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)


def fold_batch_norms(net: torch.nn.Module) -> torch.nn.Module:
    """An inference copy of ``net`` with each batch norm that directly follows a convolution (its
    next sibling module) folded into that convolution's weights: the same function in eval mode,
    ~20 % less time on a CPU (a batch norm is a full pass over the activations).

    Returns ``net`` itself when nothing folds or when the copy's logits differ on a probe input
    (a model whose modules are not applied in the order they are declared).
    """
    import copy

    from torch.nn.utils.fusion import fuse_conv_bn_eval

    folded = copy.deepcopy(net).eval()
    count = 0
    for module in folded.modules():
        children = list(module.named_children())
        for (conv_name, conv), (norm_name, norm) in itertools.pairwise(children):
            if (
                isinstance(conv, _CONVS)
                and isinstance(norm, _NORMS)
                and type(conv).__name__[-2:] == type(norm).__name__[-2:]
                and conv.out_channels == norm.num_features
                and norm.track_running_stats
                and norm.running_mean is not None
            ):
                setattr(module, conv_name, fuse_conv_bn_eval(conv, norm))
                setattr(module, norm_name, torch.nn.Identity())
                count += 1
    if not count:
        return net
    multiple = getattr(net, "multiple", None) or (16, 16)
    shape = (1, 1, *(max(int(m), 1) * (2 if len(multiple) == 3 else 8) for m in multiple))
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        reference, candidate = net(x), folded(x)
    scale = float(reference.abs().max()) or 1.0
    if reference.shape != candidate.shape or float((reference - candidate).abs().max()) > 1e-3 * scale:
        return net
    if hasattr(net, "metadata"):
        folded.metadata = net.metadata  # type: ignore[assignment]
    return folded


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
    #: ``fp32`` or ``bf16`` (resolved: :func:`mapping_precision`).
    precision: str
    #: 3 x 3 majority filter over the region cells (:func:`majority_filter`).
    majority_filter: bool = False
    #: Tissue mask (:func:`tissue_mask`); ``tissue_window`` 0: no mask (every voxel is tissue).
    tissue_threshold: float = 0.0
    tissue_window: int = 0

    @classmethod
    def microstructure_only(
        cls, halo_yx: int, halo_z: int, slices_per_batch: int, workers: int, precision: str
    ) -> BlockSettings:
        """The settings of a map of the microstructure alone (no region cells, no features):
        the Task 2 agreement check and ``kedro predict``."""
        return cls(
            halo_yx=halo_yx,
            halo_z=halo_z,
            slices_per_batch=slices_per_batch,
            workers=workers,
            patch_size=1,
            stride=1,
            region_batch_size=1,
            tile_size=1,
            connectivity=4,
            feature_names=(),
            precision=precision,
        )


def _pad_end(data: np.ndarray, pads: Sequence[int]) -> np.ndarray:
    if not any(pads):
        return data
    return np.pad(data, [(0, int(p)) for p in pads], mode="edge")


def mapping_precision(precision: str, device_type: str = "cpu") -> str:
    """``mapping.compute.precision`` resolved: ``auto`` is ``bf16`` where the hardware computes it
    natively (CPUs with AMX or AVX512-BF16, GPUs with bf16 support), else ``fp32``.

    Not :func:`mtneuro.training.resolve_precision`: training stays in fp32 on every CPU, while
    inference in bf16 changes ~0.05 % of the labels and is 3x faster where it is native."""
    if precision != "auto":
        return precision  # fp32 or bf16 (the parameters' schema allows nothing else)
    return "bf16" if native_bf16(device_type) else "fp32"


def inference_context(precision: str, device_type: str = "cpu") -> Any:
    """Autocast for ``bf16`` (a model trained in fp32 gives the same labels on all but ~0.05 % of
    the voxels, 3x faster with oneDNN/AMX); a no-op for ``fp32``."""
    if precision not in ("fp32", "bf16"):
        raise MappingError(f"Parameter 'mapping.compute.precision' = {precision!r}: expected fp32 or bf16")
    return autocast_context(torch.bfloat16 if precision == "bf16" else None, device_type)


def segment(
    model: MicrostructureNetwork, image: np.ndarray, slices_per_batch: int, workers: int, precision: str
) -> np.ndarray:
    """Class index per voxel of ``image`` (already aligned input), mapped to pixel-label values.

    Inputs are channels-last like the network (:meth:`MicrostructureNetwork.from_trained`); 2D
    networks run ``workers`` batches at once.
    """
    from mtneuro.pipelines.segmentation.engine import normalise, sliding_window_logits

    net = model.net
    memory_format = _memory_format(model.dims)  # the layout from_trained gave the network

    def run(part: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(normalise(part, model.mean, model.std))
        x = x[:, None] if model.dims == 2 else x[None, None]
        x = x.contiguous(memory_format=memory_format)
        with torch.inference_mode(), inference_context(precision):
            # One window per input (roi = its whole shape), so the blend is the identity and the
            # predictor can hand MONAI the class index (1 channel) instead of the logits (exact).
            classes = sliding_window_logits(
                lambda t: net(t).argmax(1, keepdim=True).to(torch.float32), x, tuple(x.shape[2:]), sw_batch_size=1
            )
            labels = classes[:, 0].to(torch.uint8).numpy()
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


def tissue_mask(image: np.ndarray, threshold: float, window: int) -> np.ndarray:
    """Boolean tissue mask of ``image`` ``(Z, H, W)``: the mean gray value over the ``window`` x
    ``window`` square around a voxel (each slice; the input's edge voxels repeated beyond it)
    reaches ``threshold``. ``window`` 0: everything is tissue."""
    if window <= 0:
        return np.ones(image.shape, dtype=bool)
    from scipy import ndimage

    out = np.empty(image.shape, dtype=bool)
    for z in range(image.shape[0]):
        mean = ndimage.uniform_filter(image[z].astype(np.float32), size=int(window), mode="nearest")
        np.greater_equal(mean, np.float32(threshold), out=out[z])
    return out


def majority_filter(cells: np.ndarray) -> np.ndarray:
    """Each labelled cell (> 0) of ``cells`` ``(Z, Y, X)`` takes the most frequent label of its 3 x 3
    in-plane neighbourhood (itself included; 0 cells do not vote; ties keep its own label, else the
    smallest); 0 cells stay 0. The output is the input's interior ``(Z, Y - 2, X - 2)``: the
    outermost ring only votes."""
    nz, ny, nx = cells.shape
    labels = int(cells.max(initial=0))
    core = cells[:, 1 : ny - 1, 1 : nx - 1]
    if labels == 0 or core.size == 0:
        return core.copy()
    counts = np.zeros((labels + 1, nz, ny - 2, nx - 2), dtype=np.int16)
    for dy in range(3):
        for dx in range(3):
            shifted = cells[:, dy : ny - 2 + dy, dx : nx - 2 + dx]
            for label in range(1, labels + 1):
                counts[label] += shifted == label
    counts[0] = -1  # never the majority
    best = counts.max(axis=0)
    own = np.take_along_axis(counts, core[None].astype(np.intp), axis=0)[0]
    out = np.where(own == best, core, counts.argmax(axis=0)).astype(cells.dtype)
    out[core == 0] = 0
    return out


def classify_regions(
    model: RegionModel,
    image: np.ndarray,
    origin: Sequence[int],
    block: Window,
    volume_shape: Sequence[int],
    settings: BlockSettings,
    tissue: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """labels/regions of ``block``: 1 + the Task 1 class of the patch centred on each stride cell
    that holds tissue (0 elsewhere and outside the tissue), majority-filtered if
    ``settings.majority_filter`` (then also ``"unsmoothed"``: the raw classes).

    ``image`` (and ``tissue``, its mask) is the block's input, voxel [0, 0, 0] at absolute
    ``origin`` (z, y, x). With the filter, the cells one stride beyond the block (inside the
    volume) are classified too: they vote for the block's border cells.
    """
    s, p = settings.stride, settings.patch_size
    ring = 1 if settings.majority_filter else 0
    ys = list(range(block.y0 - ring * s, block.y1 + ring * s, s))
    xs = list(range(block.x0 - ring * s, block.x1 + ring * s, s))
    cells = np.zeros((block.shape[0], len(ys), len(xs)), dtype=np.uint8)
    patches, where = [], []
    for z in range(block.z0, block.z1):
        plane = image[z - origin[0]]
        for i, y in enumerate(ys):
            if y < 0 or y >= volume_shape[1]:
                continue
            for j, x in enumerate(xs):
                if x < 0 or x >= volume_shape[2]:
                    continue
                if tissue is not None:
                    cy0, cx0 = y - origin[1], x - origin[2]
                    if not tissue[z - origin[0], cy0 : cy0 + s, cx0 : cx0 + s].any():
                        continue
                # the cell [y, y + s) x [x, x + s) of the window's grid; its patch, shifted inside the volume
                py0 = min(max(0, y + s // 2 - p // 2), volume_shape[1] - p)
                px0 = min(max(0, x + s // 2 - p // 2), volume_shape[2] - p)
                patches.append(plane[py0 - origin[1] : py0 - origin[1] + p, px0 - origin[2] : px0 - origin[2] + p])
                where.append((z - block.z0, i, j))
    if patches:
        classes = model.predict(np.stack(patches), settings.region_batch_size)
        for (k, i, j), c in zip(where, classes, strict=True):
            cells[k, i, j] = c + 1
    raw = cells[:, ring : len(ys) - ring, ring : len(xs) - ring]
    layers = {"regions": majority_filter(cells) if ring else raw}
    if ring:
        layers["unsmoothed"] = raw
    core = tuple(
        slice(lo - o, hi - o)
        for lo, hi, o in zip((block.z0, block.y0, block.x0), (block.z1, block.y1, block.x1), origin, strict=True)
    )
    out = {}
    for name, grid in layers.items():
        voxels = np.repeat(np.repeat(grid, s, axis=1), s, axis=2)[:, : block.shape[1], : block.shape[2]]
        if tissue is not None:
            voxels = np.where(tissue[core], voxels, np.uint8(0))
        out[name] = np.ascontiguousarray(voxels, dtype=np.uint8)
    return out


def tile_features(labels: np.ndarray, settings: BlockSettings, tissue: np.ndarray | None = None) -> np.ndarray:
    """Features ``(C, Z, tiles_y, tiles_x)`` float32 of every tile of every slice of ``labels``
    (0 for tiles without tissue in ``tissue``)."""
    t = settings.tile_size
    nz, ny, nx = labels.shape
    out = np.full((len(settings.feature_names), nz, -(-ny // t), -(-nx // t)), np.nan, dtype=np.float32)
    for z in range(nz):
        for i, y in enumerate(range(0, ny, t)):
            for j, x in enumerate(range(0, nx, t)):
                if tissue is not None and not tissue[z, y : y + t, x : x + t].any():
                    out[:, z, i, j] = 0.0
                    continue
                values = image_features(labels[z, y : y + t, x : x + t], settings.connectivity, settings.feature_names)
                out[:, z, i, j] = [values[n] for n in settings.feature_names]
    return out


class BlockReader:
    """Reads a block's input through Dask, in chunks (``read_chunks``) tiling that input from its
    corner: a chunk grid of the whole volume would read every chunk a halo touches in full, and a
    read split at a chunk boundary costs the phantom its blur padding twice."""

    def __init__(self, source: VolumeSource, read_chunks: Sequence[int]) -> None:
        self.source = source
        self.read_chunks = tuple(int(c) for c in read_chunks)
        self.shape = tuple(int(s) for s in source.shape)

    def read(self, start: Sequence[int], stop: Sequence[int]) -> np.ndarray:
        lazy = lazy_volume(self.source, self.read_chunks, origin=start, stop=stop)
        region = tuple(slice(int(a), int(b)) for a, b in zip(start, stop, strict=True))
        return np.asarray(lazy[region].compute(scheduler="threads"))


def block_input(
    reader: BlockReader, block: Window, halo: Sequence[int], multiple: Sequence[int]
) -> tuple[np.ndarray, tuple[int, int, int]]:
    """The aligned input of ``block`` and its absolute origin (z, y, x)."""
    ranges = [
        input_range(lo, hi, h, m, n)
        for lo, hi, h, m, n in zip(
            (block.z0, block.y0, block.x0), (block.z1, block.y1, block.x1), halo, multiple, reader.shape, strict=True
        )
    ]
    data = reader.read([a for a, _, _ in ranges], [b for _, b, _ in ranges])
    return _pad_end(data, [p for _, _, p in ranges]), tuple(a for a, _, _ in ranges)  # type: ignore[return-value]


def block_halo(segmentation: MicrostructureNetwork, settings: BlockSettings) -> tuple[int, int, int]:
    """Halo (z, y, x) read around a block: the network's, half a region patch beyond a cell (and
    one more cell for the majority filter), half the tissue window."""
    region_halo = max(0, math.ceil((settings.patch_size - settings.stride) / 2))
    if settings.majority_filter:
        region_halo += settings.stride
    halo_yx = max(settings.halo_yx, region_halo, -(-settings.tissue_window // 2))
    return (settings.halo_z if segmentation.dims == 3 else 0, halo_yx, halo_yx)


def block_multiple(segmentation: MicrostructureNetwork) -> tuple[int, int, int]:
    """Input multiple (z, y, x) of the network (z: 1 for 2D networks)."""
    multiple = network_multiple(segmentation.net, segmentation.dims)
    return (multiple[0] if segmentation.dims == 3 else 1, multiple[-2], multiple[-1])


def compute_block(
    block: Window,
    window: Window,  # noqa: ARG001
    reader: BlockReader,
    segmentation: MicrostructureNetwork,
    regions: RegionModel,
    settings: BlockSettings,
) -> dict[str, np.ndarray]:
    """Every layer of one block: image, labels/microstructure, labels/regions (and
    labels/regions_unsmoothed with the majority filter), labels/tissue, features."""
    data, origin = block_input(reader, block, block_halo(segmentation, settings), block_multiple(segmentation))
    labels = segment(segmentation, data, settings.slices_per_batch, settings.workers, settings.precision)
    core = tuple(
        slice(lo - o, hi - o)
        for lo, hi, o in zip((block.z0, block.y0, block.x0), (block.z1, block.y1, block.x1), origin, strict=True)
    )
    tissue = tissue_mask(data, settings.tissue_threshold, settings.tissue_window) if settings.tissue_window else None
    micro = np.ascontiguousarray(labels[core])
    del labels
    tissue_core = None if tissue is None else np.ascontiguousarray(tissue[core])
    if tissue_core is not None:
        micro[~tissue_core] = 0
    region_layers = classify_regions(regions, data, origin, block, reader.shape, settings, tissue)
    out = {
        "": np.ascontiguousarray(data[core]),
        "labels/microstructure": micro,
        "labels/regions": region_layers["regions"],
        "labels/tissue": (np.ones(micro.shape, np.uint8) if tissue_core is None else tissue_core.astype(np.uint8)),
        "features": tile_features(micro, settings, tissue_core),
    }
    if "unsmoothed" in region_layers:
        out["labels/regions_unsmoothed"] = region_layers["unsmoothed"]
    return out


def check_halo(model: MicrostructureNetwork, halo_yx: int, key: str = "mapping.microstructure.halo_yx") -> int:
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


# --- device ----------------------------------------------------------------------------------


class _OnDevice(torch.nn.Module):
    """A network on ``device`` behind a CPU interface: CPU tensors in, CPU float32 logits out
    (what :func:`segment` hands it and expects), autocast to ``bf16`` on a GPU where asked."""

    def __init__(self, net: torch.nn.Module, device: torch.device, precision: str) -> None:
        super().__init__()
        self.net = net.to(device)
        self.device = device
        self.precision = precision
        multiple = getattr(net, "multiple", None)
        if multiple is not None:
            self.multiple = multiple  # network_multiple reads it

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with inference_context(self.precision, self.device.type):
            return self.net(x.to(self.device)).to(device=x.device, dtype=torch.float32)


def on_device(
    model: MicrostructureNetwork, device: torch.device | str, precision: str = "fp32"
) -> MicrostructureNetwork:
    """``model`` computing on ``device`` (e.g. a GPU from :func:`mtneuro.training.resolve_accelerator`):
    :func:`segment`, :func:`check_halo` and the block functions use it unchanged. A CPU device
    returns ``model`` itself."""
    device = torch.device(device)
    if device.type == "cpu":
        return model
    return MicrostructureNetwork(
        _OnDevice(model.net, device, precision), model.name, model.dims, model.mean, model.std, model.class_values
    )
