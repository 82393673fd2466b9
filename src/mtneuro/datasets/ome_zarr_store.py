"""A resumable OME-Zarr writer for maps computed block by block, and its Kedro dataset.

A node returns a :class:`MapRequest`: the layers of the store (an image, label images, feature
maps), the blocks of work, and a function computing one block. :class:`OmeZarrMapDataset`
fulfils it (as :class:`~mtneuro.datasets.cube_store.CubeStoreDataset` fulfils cube requests):

1. The store is created with every full-resolution array (fixed chunks) and the request's
   fingerprint; a store with another fingerprint is replaced, a complete one is left as it is.
2. Each block writes whole chunks of every layer, then a marker file (``.mapping/blocks/<key>``,
   temporary file renamed into place) with the SHA-256 of each chunk file it wrote. A re-run
   skips marked blocks whose chunk files still match their marker; a block killed half-way (no
   marker) or whose chunks changed since is recomputed and its chunks rewritten, so the final
   bytes equal an uninterrupted run's.
3. Pyramids (``levels`` resolutions, halving y and x; z too if asked) are built from the
   finished full-resolution arrays, chunk by chunk.
4. The NGFF metadata (``multiscales``, ``labels``, ``image-label`` with colours and names,
   ``omero`` channel names and display windows fitted to the values) is written with
   ome-zarr-py. Last, the store is marked complete, in the same write of its root attributes
   as the SHA-256 of every chunk file of every layer and level (``mtneuro_mapping.chunk_sha256``:
   a file beside the chunks would be an unknown object that Zarr warns of), and the markers are
   removed. Nothing time-dependent is stored, so re-runs are byte-identical.
   Loading checks every chunk file against those checksums: a changed, truncated or deleted chunk
   raises :class:`~mtneuro.datasets.versioned.DamagedArtifactError` naming it; the store then
   counts as missing (``_exists``), and saving it again (``kedro run --pipelines=mapping
   --only-missing-outputs``) recomputes only the blocks whose full-resolution chunks are damaged,
   and rebuilds the pyramids.
5. With ``viewer`` set, a Neuroglancer state is written beside the store
   (``<name>.neuroglancer.json``, and a link to open it in ``<name>.neuroglancer.url.txt``), with
   the segment names as Neuroglancer segment properties beside it too
   (``<name>.neuroglancer/segment_properties/<label>/info``); also when the store was complete
   already.

NGFF 0.4 stores are Zarr v2 (``/`` chunk separator), 0.5 stores Zarr v3.
Loading returns a :class:`BrainMap`: lazy Dask arrays of every layer and level.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from kedro.io import AbstractDataset, DatasetError

from mtneuro.faults import disk_space_guard

log = logging.getLogger(__name__)

FORMAT_VERSION = 2
ATTRS_KEY = "mtneuro_mapping"
MARKERS = ".mapping"
#: The chunk checksums of a complete store (chunk file relative to the store -> SHA-256), in
#: the ``mtneuro_mapping`` attributes of its root group.
SUMS_KEY = "chunk_sha256"
#: Zarr's own metadata files (rewritten as the store is finished; not chunk data).
_METADATA_FILES = frozenset({".zarray", ".zattrs", ".zgroup", ".zmetadata", "zarr.json"})

LayerKind = Literal["image", "label", "features"]


@dataclass(frozen=True)
class MapLayer:
    """One multiscale array of the store.

    ``path``: ``""`` for the root image, ``labels/<name>`` for a label image, any other group
    name for feature maps. ``axes`` ``(z, y, x)`` or ``(c, z, y, x)``; ``scale``/``translation``
    are the full-resolution level's (micrometres). ``kind`` picks the pyramid reduction:
    ``image`` 2x2 mean, ``label`` nearest (every 2nd voxel), ``features`` NaN-mean.
    """

    path: str
    kind: LayerKind
    dtype: str
    axes: tuple[str, ...]
    shape: tuple[int, ...]
    chunks: tuple[int, ...]
    scale: tuple[float, ...]
    translation: tuple[float, ...]
    #: label value -> (name, RGBA 0-255) for label layers; channel names for features/image.
    label_names: dict[int, tuple[str, tuple[int, int, int, int]]] = field(default_factory=dict)
    channel_names: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1] if self.path else "image"

    def record(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "kind": self.kind,
            "dtype": self.dtype,
            "axes": list(self.axes),
            "shape": list(self.shape),
            "chunks": list(self.chunks),
            "scale": list(self.scale),
            "translation": list(self.translation),
            "labels": {str(k): [v[0], list(v[1])] for k, v in sorted(self.label_names.items())},
            "channels": list(self.channel_names),
        }


@dataclass
class MapRequest:
    """What to write: layers, blocks (key -> per-layer region of level 0) and how to compute a block."""

    layers: list[MapLayer]
    #: Block key -> {layer path: tuple of slices into the layer's full-resolution array}.
    blocks: dict[str, dict[str, tuple[slice, ...]]]
    compute_block: Callable[[str], dict[str, np.ndarray]]
    levels: int
    downsample_z: bool
    ngff_version: Literal["0.4", "0.5"]
    #: JSON-able description of everything that determines the output (window, models, settings).
    fingerprint: dict[str, Any]
    #: Extra JSON-able attributes of the root group (models used, window...).
    attributes: dict[str, Any] = field(default_factory=dict)
    #: Called before the first block is computed (e.g. a receptive-field check); not when complete.
    prepare: Callable[[], None] | None = None
    #: ``{"data_url": where the store's folder is served, "neuroglancer_url": a client}``: write a
    #: Neuroglancer state beside the store (:func:`write_neuroglancer_state`). Not part of the digest.
    viewer: dict[str, str] | None = None

    def digest(self) -> str:
        record = {
            "format": FORMAT_VERSION,
            "fingerprint": self.fingerprint,
            "levels": self.levels,
            "downsample_z": self.downsample_z,
            "ngff": self.ngff_version,
            "layers": [layer.record() for layer in self.layers],
            "blocks": sorted(self.blocks),
        }
        return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()


# --- zarr helpers ---------------------------------------------------------------------------


def _zarr_format(version: str) -> Literal[2, 3]:
    return 2 if version == "0.4" else 3


def _create_array(
    group: Any,
    name: str,
    shape: Sequence[int],
    chunks: Sequence[int],
    dtype: str,
    version: str,
    dimension_names: Sequence[str],
) -> Any:
    """A chunked, Blosc-zstd compressed array (deterministic bytes) that replaces any old one."""
    fill = float("nan") if np.dtype(dtype).kind == "f" else 0
    if _zarr_format(version) == 2:
        from numcodecs import Blosc

        return group.create_array(
            name,
            shape=tuple(shape),
            chunks=tuple(chunks),
            dtype=dtype,
            fill_value=fill,
            overwrite=True,
            compressors=Blosc(cname="zstd", clevel=5, shuffle=Blosc.SHUFFLE),
            chunk_key_encoding={"name": "v2", "separator": "/"},
        )
    from zarr.codecs import BloscCodec

    return group.create_array(
        name,
        shape=tuple(shape),
        chunks=tuple(chunks),
        dtype=dtype,
        fill_value=fill,
        overwrite=True,
        compressors=BloscCodec(cname="zstd", clevel=5, shuffle="shuffle"),
        dimension_names=list(dimension_names),
    )


def _level_factors(layer: MapLayer, level: int, downsample_z: bool) -> tuple[int, ...]:
    f = 2**level
    return tuple(f if a in ("y", "x") or (a == "z" and downsample_z) else 1 for a in layer.axes)


def _level_shape(layer: MapLayer, level: int, downsample_z: bool) -> tuple[int, ...]:
    return tuple(-(-s // f) for s, f in zip(layer.shape, _level_factors(layer, level, downsample_z), strict=True))


def _reduce(data: np.ndarray, factors: Sequence[int], kind: LayerKind) -> np.ndarray:
    """One pyramid step: every 2nd voxel (labels), 2x2 mean (image), NaN-mean (features)."""
    if kind == "label":
        return data[tuple(slice(None, None, f) for f in factors)]
    pad = [(0, (-s) % f) for s, f in zip(data.shape, factors, strict=True)]
    work = data.astype(np.float64)
    if any(p for _, p in pad):
        work = np.pad(work, pad, mode="edge")
    shape = []
    for s, f in zip(work.shape, factors, strict=True):
        shape += [s // f, f]
    work = work.reshape(shape)
    axes = tuple(range(1, len(shape), 2))
    if kind == "features":
        with np.errstate(invalid="ignore"), __import__("warnings").catch_warnings():
            __import__("warnings").simplefilter("ignore", RuntimeWarning)
            out = np.nanmean(work, axis=axes)
        return out.astype(data.dtype)
    return np.rint(work.mean(axis=axes)).astype(data.dtype)


def _build_level(source: Any, target: Any, factors: Sequence[int], kind: LayerKind) -> None:
    """``target`` from ``source`` (the next finer level), one target chunk row at a time."""
    chunks = target.chunks
    grid = [range(0, s, c) for s, c in zip(target.shape, chunks, strict=True)]
    for origin in np.ndindex(*[len(g) for g in grid]):
        lo = [g[i] for g, i in zip(grid, origin, strict=True)]
        hi = [min(lay + c, s) for lay, c, s in zip(lo, chunks, target.shape, strict=True)]
        src = tuple(slice(lay * f, min(h * f, s)) for lay, h, f, s in zip(lo, hi, factors, source.shape, strict=True))
        target[tuple(slice(lay, h) for lay, h in zip(lo, hi, strict=True))] = _reduce(
            np.asarray(source[src]), factors, kind
        )


def _datasets(layer: MapLayer, levels: int, downsample_z: bool) -> list[dict[str, Any]]:
    """``multiscales.datasets``: scale and translation of every level (voxel centres kept aligned)."""
    out = []
    for level in range(levels):
        f = _level_factors(layer, level, downsample_z)
        scale = [s * k for s, k in zip(layer.scale, f, strict=True)]
        translation = [t + (k - 1) * s / 2 for t, s, k in zip(layer.translation, layer.scale, f, strict=True)]
        out.append(
            {
                "path": str(level),
                "coordinateTransformations": [
                    {"type": "scale", "scale": scale},
                    {"type": "translation", "translation": translation},
                ],
            }
        )
    return out


def _axes(layer: MapLayer) -> list[dict[str, str]]:
    return [
        {"name": a, "type": "channel"} if a == "c" else {"name": a, "type": "space", "unit": "micrometer"}
        for a in layer.axes
    ]


def display_windows(root: Any, layer: MapLayer) -> list[tuple[float, float, float, float]]:
    """``(min, max, start, end)`` per channel of a layer, from its coarsest level: the dtype's
    range and the 0.5-99.5 percentiles of the image's tissue (values above 16), the value range
    of each feature channel (fractions, counts, areas), so viewers show them with contrast."""
    group = root[layer.path] if layer.path else root
    levels = sorted(int(k) for k in group.array_keys() if str(k).isdigit())
    data = np.asarray(group[str(levels[-1])][...])
    if layer.kind == "image":
        values = data[data > 16]
        lo, hi = (float(v) for v in np.percentile(values, [0.5, 99.5])) if values.size else (0.0, 255.0)
        info = np.iinfo(data.dtype) if data.dtype.kind in "iu" else None
        full = (float(info.min), float(info.max)) if info else (float(np.nanmin(data)), float(np.nanmax(data)))
        return [(*full, lo, max(hi, lo + 1.0))] * max(1, len(layer.channel_names))
    out = []
    for c in range(data.shape[0]):
        finite = data[c][np.isfinite(data[c])]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        hi = hi if hi > lo else lo + 1.0
        out.append((lo, hi, lo, hi))
    return out


def _write_metadata(root: Any, request: MapRequest) -> None:
    """NGFF metadata of every layer, written with ome-zarr-py (idempotent)."""
    from ome_zarr.format import format_from_version
    from ome_zarr.writer import write_label_metadata, write_multiscales_metadata

    fmt = format_from_version(request.ngff_version)
    labels = [layer for layer in request.layers if layer.kind == "label"]
    for layer in request.layers:
        group = root[layer.path] if layer.path else root
        metadata: dict[str, Any] = {}
        if layer.channel_names:
            windows = display_windows(root, layer)
            metadata["omero"] = {
                "channels": [
                    {
                        "label": n,
                        "color": "FFFFFF",
                        "active": i == 0,
                        "window": {"min": w[0], "max": w[1], "start": w[2], "end": w[3]},
                    }
                    for i, (n, w) in enumerate(zip(layer.channel_names, windows, strict=True))
                ]
            }
        write_multiscales_metadata(
            group,
            _datasets(layer, request.levels, request.downsample_z),
            fmt=fmt,
            axes=_axes(layer),
            name=layer.name,
            metadata=metadata,
        )
    if labels:
        group = root["labels"]
        group.attrs.put({})  # write_label_metadata appends to the list: start from none
        for layer in labels:
            colors = [{"label-value": int(v), "rgba": list(rgba)} for v, (_, rgba) in sorted(layer.label_names.items())]
            properties = [{"label-value": int(v), "name": n} for v, (n, _) in sorted(layer.label_names.items())]
            write_label_metadata(
                group, layer.name, colors=colors, properties=properties, fmt=fmt, source={"image": "../../"}
            )


def _root_attrs(root: Any) -> dict[str, Any]:
    return dict(root.attrs.get(ATTRS_KEY, {}) or {})


def _write_bytes_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# --- chunk checksums ------------------------------------------------------------------------


def _file_sha256(path: Path, *, cached: bool = False) -> str | None:
    """SHA-256 of a chunk file, ``None`` when there is none (a chunk of fill values is not written)."""
    if not path.is_file():
        return None
    import fsspec

    from mtneuro.datasets.versioned import file_sha256

    return file_sha256(fsspec.filesystem("file"), str(path), cached=cached)


def _array_prefix(layer: MapLayer, level: int) -> str:
    return f"{layer.path}/{level}" if layer.path else str(level)


def _region_chunk_files(array: Any, prefix: str, region: tuple[slice, ...]) -> list[str]:
    """The chunk files (relative to the store) that a region of ``array`` writes."""
    import itertools

    ranges = []
    for sl, size, chunk in zip(region, array.shape, array.chunks, strict=True):
        lo = 0 if sl.start is None else sl.start
        hi = size if sl.stop is None else min(sl.stop, size)
        ranges.append(range(lo // chunk, -(-hi // chunk)))
    return [f"{prefix}/{array.metadata.encode_chunk_key(c)}" for c in itertools.product(*ranges)]


def _block_chunk_files(request: MapRequest, arrays: dict[str, Any], key: str) -> list[str]:
    layers = {layer.path: layer for layer in request.layers}
    files: list[str] = []
    for layer_path, region in request.blocks[key].items():
        files += _region_chunk_files(arrays[layer_path], _array_prefix(layers[layer_path], 0), region)
    return files


def _chunk_sums(path: Path, names: Sequence[str]) -> dict[str, str | None]:
    return {name: _file_sha256(path / name) for name in names}


def _all_chunk_files(path: Path) -> list[str]:
    """Every data file of the store (chunks of all layers and levels): not Zarr's metadata,
    nothing of an unfinished run (``.mapping``)."""
    out = []
    for file in path.rglob("*"):
        relative = file.relative_to(path)
        if (
            file.is_file()
            and relative.parts[0] != MARKERS
            and file.name not in _METADATA_FILES
            and ".tmp-" not in file.name
        ):
            out.append(relative.as_posix())
    return sorted(out)


def _recorded_sums(attrs: dict[str, Any]) -> dict[str, str] | None:
    """The chunk checksums written with a complete store (``None``: none recorded)."""
    sums = attrs.get(SUMS_KEY)
    return dict(sums) if isinstance(sums, dict) else None


def damaged_chunks(path: str | Path, attrs: dict[str, Any] | None = None, *, cached: bool = False) -> list[str]:
    """What does not match the checksums written with a complete store (``[]``: all matches):
    ``"<chunk file> changed (...)"`` or ``"<chunk file> missing"``."""
    path = Path(path)
    if attrs is None:
        import zarr

        attrs = _root_attrs(zarr.open_group(str(path), mode="r"))
    recorded = _recorded_sums(attrs)
    if recorded is None:
        return [f"(all): no chunk checksums recorded in the attributes ({ATTRS_KEY}.{SUMS_KEY})"]
    problems = []
    for name, digest in recorded.items():
        actual = _file_sha256(path / name, cached=cached)
        if actual is None:
            problems.append(f"{name} missing")
        elif actual != digest:
            problems.append(f"{name} changed (SHA-256 {actual[:12]}..., {digest[:12]}... was written with it)")
    return problems


def damaged_map_error(path: Path, problems: Sequence[str]) -> Exception:
    from mtneuro.datasets.versioned import DamagedArtifactError

    more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
    return DamagedArtifactError(
        f"The brain map {path} is damaged: chunk file {'; '.join(problems[:3])}{more}. It is not used. "
        "Rewrite the damaged blocks with `kedro run --pipelines=mapping --only-missing-outputs` (with the same "
        "--env and --params as before: a damaged map counts as missing, and only the blocks holding damaged "
        "chunks are computed again), then run your command again."
    )


def _done_blocks(path: Path, request: MapRequest, arrays: dict[str, Any], markers: Path) -> set[str]:
    """Marked blocks whose chunk files still match their marker; other markers are removed."""
    done = set()
    for marker in sorted(markers.iterdir()):
        if marker.name.startswith(".") or marker.name not in request.blocks:
            continue
        try:
            recorded = json.loads(marker.read_text() or "null")
        except (OSError, ValueError):
            recorded = None
        files = _block_chunk_files(request, arrays, marker.name)
        if not isinstance(recorded, dict) or sorted(recorded) != sorted(files) or _chunk_sums(path, files) != recorded:
            log.warning(
                "brain map %s: the chunks of block %s changed since it was written: computing it again",
                path,
                marker.name,
            )
            marker.unlink(missing_ok=True)
            continue
        done.add(marker.name)
    return done


def _mark_intact_blocks(request: MapRequest, arrays: dict[str, Any], recorded: dict[str, str], markers: Path) -> None:
    """Markers for the blocks of a complete store from its recorded chunk checksums (a repair: the blocks
    whose chunks do not match are then computed again)."""
    for key in request.blocks:
        files = _block_chunk_files(request, arrays, key)
        _write_bytes_atomic(markers / key, json.dumps({f: recorded.get(f) for f in files}, sort_keys=True).encode())


def write_map(request: MapRequest, path: str | Path, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Write (or finish, or repair) the store at ``path``; returns what was done (blocks computed,
    skipped, damaged chunks found, seconds)."""
    import zarr

    path = Path(path)
    digest = request.digest()
    stats: dict[str, Any] = {"computed": 0, "skipped": 0, "seconds": 0.0, "complete_before": False, "damaged": []}
    root: Any = None  # a zarr Group; zarr types its items as ``Array | Group``
    repair: dict[str, str] | None = None
    if path.exists():
        try:
            root = zarr.open_group(str(path), mode="r+")
            attrs = _root_attrs(root)
        except Exception:
            attrs = {}
        if attrs.get("digest") != digest:
            log.warning("brain map %s was written for other settings: starting again", path)
            shutil.rmtree(path)
            root = None
        elif attrs.get("complete"):
            stats["damaged"] = damaged_chunks(path, attrs)
            if not stats["damaged"]:
                stats["complete_before"] = True
                shutil.rmtree(path / MARKERS, ignore_errors=True)  # left by a run killed as it ended
                if request.viewer:
                    write_neuroglancer_state(request, path, root)
                return stats
            log.warning(
                "brain map %s is damaged (%s): computing the blocks of the damaged chunks again",
                path,
                "; ".join(stats["damaged"][:3]),
            )
            repair = _recorded_sums(attrs) or {}
            root.attrs.update({ATTRS_KEY: {**attrs, "complete": False}})
    if root is None:
        root = zarr.open_group(str(path), mode="w", zarr_format=_zarr_format(request.ngff_version))
        for layer in request.layers:
            group = root.require_group(layer.path) if layer.path else root
            _create_array(group, "0", layer.shape, layer.chunks, layer.dtype, request.ngff_version, layer.axes)
        root.attrs.update({ATTRS_KEY: {"digest": digest, "complete": False, **request.attributes}})
    markers = path / MARKERS / "blocks"
    markers.mkdir(parents=True, exist_ok=True)
    arrays = {layer.path: (root[layer.path] if layer.path else root)["0"] for layer in request.layers}
    if repair is not None:
        _mark_intact_blocks(request, arrays, repair, markers)
    done = _done_blocks(path, request, arrays, markers)
    if request.prepare is not None and len(done) < len(request.blocks):
        request.prepare()
    start = time.perf_counter()
    for i, (key, regions) in enumerate(request.blocks.items()):
        if key in done:
            stats["skipped"] += 1
            continue
        t0 = time.perf_counter()
        results = request.compute_block(key)
        # A full disk mid-block leaves this block without its marker: the rerun computes it again.
        block_bytes = sum(int(np.asarray(results[layer_path]).nbytes) for layer_path in regions)
        with disk_space_guard(f"{path} (block {key})", block_bytes):
            for layer_path, region in regions.items():
                arrays[layer_path][region] = results[layer_path]
            sums = _chunk_sums(path, _block_chunk_files(request, arrays, key))
            _write_bytes_atomic(markers / key, json.dumps(sums, sort_keys=True).encode())
        stats["computed"] += 1
        message = f"block {key} ({i + 1}/{len(request.blocks)}) in {time.perf_counter() - t0:.1f} s"
        log.info("brain map: %s", message)
        if progress is not None:
            progress(message)
    for layer in request.layers:
        group = root[layer.path] if layer.path else root
        for level in range(1, request.levels):
            shape = _level_shape(layer, level, request.downsample_z)
            target = _create_array(
                group,
                str(level),
                shape,
                [min(c, s) for c, s in zip(layer.chunks, shape, strict=True)],
                layer.dtype,
                request.ngff_version,
                layer.axes,
            )
            factors = [
                a // b
                for a, b in zip(
                    _level_factors(layer, level, request.downsample_z),
                    _level_factors(layer, level - 1, request.downsample_z),
                    strict=True,
                )
            ]
            _build_level(group[str(level - 1)], target, factors, layer.kind)
    _write_metadata(root, request)
    sums = {n: d for n, d in _chunk_sums(path, _all_chunk_files(path)).items() if d is not None}
    root.attrs.update({ATTRS_KEY: {"digest": digest, "complete": True, **request.attributes, SUMS_KEY: sums}})
    shutil.rmtree(path / MARKERS, ignore_errors=True)
    if request.viewer:
        write_neuroglancer_state(request, path, root)
    stats["seconds"] = time.perf_counter() - start
    return stats


# --- Neuroglancer ---------------------------------------------------------------------------


def _write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.write_text(text)
    os.replace(tmp, path)


def _stem(store: Path) -> str:
    return store.name[: -len(".ome.zarr")] if store.name.endswith(".ome.zarr") else store.name


def neuroglancer_paths(store: Path) -> tuple[Path, Path]:
    """The state file and the link file written beside a store ``<name>.ome.zarr``."""
    stem = _stem(store)
    return store.with_name(f"{stem}.neuroglancer.json"), store.with_name(f"{stem}.neuroglancer.url.txt")


def segment_properties_folder(store: Path) -> Path:
    """Where the Neuroglancer segment properties of a store's label layers are written (beside it:
    a folder inside the store would be an unknown object to Zarr readers)."""
    return store.with_name(f"{_stem(store)}.neuroglancer") / "segment_properties"


def neuroglancer_state(request: MapRequest, store_name: str, data_url: str, image_range: tuple[float, float]) -> dict:
    """A Neuroglancer state of the store served at ``data_url``: x-y-z display order in the
    store's physical units, the image with its display window, each label layer with the store's
    colours and, through precomputed segment properties, its names."""
    served = data_url.rstrip("/")
    base = f"{served}/{store_name}"
    properties = f"{served}/{_stem(Path(store_name))}.neuroglancer/segment_properties"
    image = next(layer for layer in request.layers if layer.kind == "image")
    zyx = dict(zip(image.axes, image.scale, strict=True))
    origin = dict(zip(image.axes, image.translation, strict=True))
    shape = dict(zip(image.axes, image.shape, strict=True))
    dims = {a: [round(zyx[a] * 1e-6, 15), "m"] for a in ("x", "y", "z")}
    # global coordinates in voxels of the volume (the store's translation is its window's corner)
    position = [origin[a] / zyx[a] + shape[a] / 2 for a in ("x", "y", "z")]
    layers: list[dict[str, Any]] = [
        {
            "type": "image",
            "source": f"zarr://{base}",
            "name": "image",
            "shader": "#uicontrol invlerp normalized\nvoid main() {\n  emitGrayscale(normalized());\n}\n",
            "shaderControls": {"normalized": {"range": [image_range[0], image_range[1]]}},
        }
    ]
    for layer in request.layers:
        if layer.kind != "label":
            continue
        ids = [v for v in sorted(layer.label_names) if v != 0]
        layers.append(
            {
                "type": "segmentation",
                "source": [
                    f"zarr://{base}/{layer.path}",
                    f"precomputed://{properties}/{layer.name}",
                ],
                "name": layer.name,
                "segments": [str(v) for v in ids],
                "segmentColors": {str(v): "#{:02x}{:02x}{:02x}".format(*layer.label_names[v][1][:3]) for v in ids},
                "selectedAlpha": 0.45,
                "notSelectedAlpha": 0.0,
                "visible": layer.name == "microstructure",
            }
        )
    return {
        "dimensions": dims,
        "position": position,
        "crossSectionScale": 4.0,
        "projectionScale": 4096.0,
        "layers": layers,
        "selectedLayer": {"layer": "microstructure", "visible": True},
        "layout": "xy",
    }


def segment_properties(layer: MapLayer) -> dict[str, Any]:
    """Neuroglancer's precomputed segment properties (``info``) of a label layer: value -> name."""
    ids = [v for v in sorted(layer.label_names) if v != 0]
    return {
        "@type": "neuroglancer_segment_properties",
        "inline": {
            "ids": [str(v) for v in ids],
            "properties": [{"id": "label", "type": "label", "values": [layer.label_names[v][0] for v in ids]}],
        },
    }


def write_neuroglancer_state(request: MapRequest, path: Path, root: Any) -> Path:
    """The state and the link beside the store, the segment properties inside it; returns the state's path."""
    from urllib.parse import quote

    viewer = dict(request.viewer or {})
    image = next(layer for layer in request.layers if layer.kind == "image")
    window = display_windows(root, image)[0]
    for layer in request.layers:
        if layer.kind == "label":
            folder = segment_properties_folder(path) / layer.name
            folder.mkdir(parents=True, exist_ok=True)
            _write_text_atomic(folder / "info", json.dumps(segment_properties(layer), indent=1))
    state = neuroglancer_state(request, path.name, viewer["data_url"], (window[2], window[3]))
    state_path, link_path = neuroglancer_paths(path)
    _write_text_atomic(state_path, json.dumps(state, indent=1) + "\n")
    link = f"{viewer['neuroglancer_url'].rstrip('/')}/#!{quote(json.dumps(state, separators=(',', ':')), safe='')}"
    _write_text_atomic(link_path, link + "\n")
    return state_path


# --- reading --------------------------------------------------------------------------------


@dataclass
class BrainMap:
    """A written store: lazy Dask arrays per layer name and level, plus the root attributes."""

    path: Path
    attributes: dict[str, Any]
    layers: dict[str, list[Any]]  # name -> [level 0, level 1, ...] (dask arrays)
    multiscales: dict[str, dict[str, Any]]


def _ome(attrs: dict[str, Any]) -> dict[str, Any]:
    return dict(attrs.get("ome", attrs))


def read_map(path: str | Path) -> BrainMap:
    import dask.array as da
    import zarr

    root = zarr.open_group(str(path), mode="r")
    attrs = _root_attrs(root)
    if not attrs.get("complete"):
        raise DatasetError(
            f"The brain map {path} is incomplete (its run was interrupted): resume it with "
            "`kedro run --pipelines=mapping --only-missing-outputs` (the blocks written so far are kept)"
        )
    problems = damaged_chunks(path, attrs)
    if problems:
        raise damaged_map_error(Path(path), problems)
    groups: dict[str, Any] = {"image": root}
    labels = _ome(dict(root["labels"].attrs)).get("labels", []) if "labels" in root else []
    groups.update({name: root["labels"][name] for name in labels})
    for name in root.group_keys():
        if name != "labels" and "multiscales" in _ome(dict(root[name].attrs)):
            groups[name] = root[name]
    layers, multiscales = {}, {}
    for name, group in groups.items():
        ms = _ome(dict(group.attrs))["multiscales"][0]
        multiscales[name] = ms
        layers[name] = [da.from_zarr(group[d["path"]]) for d in ms["datasets"]]
    return BrainMap(Path(path), attrs, layers, multiscales)


class OmeZarrMapDataset(AbstractDataset[MapRequest, BrainMap]):
    """Saves a :class:`MapRequest` as a resumable OME-Zarr store; loads it as a :class:`BrainMap`.

    .. code-block:: yaml

        brain_map:
          type: mtneuro.datasets.ome_zarr_store.OmeZarrMapDataset
          path: data/07_model_output/brain_map.ome.zarr
    """

    #: Saves are atomic or resumable on their own: a killed save is never removed (mtneuro.stopping).
    SAVE_IS_SAFE = True

    def __init__(self, *, path: str, metadata: dict[str, Any] | None = None) -> None:
        if not str(path).endswith(".ome.zarr"):
            raise DatasetError(f"OmeZarrMapDataset: the store name must end with .ome.zarr, got {path!r}")
        self._path = Path(path)
        self.metadata = metadata
        self.last_stats: dict[str, Any] = {}

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path)}

    def save(self, data: MapRequest) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self.last_stats = write_map(data, self._path)

    def load(self) -> BrainMap:
        if not self._path.exists():
            raise DatasetError(f"No brain map at {self._path}: run `kedro run --pipelines=mapping`")
        return read_map(self._path)

    def _exists(self) -> bool:
        try:
            import zarr

            attrs = _root_attrs(zarr.open_group(str(self._path), mode="r"))
        except Exception:
            return False
        # a damaged map counts as missing: --only-missing-outputs rewrites its damaged blocks
        return bool(attrs.get("complete")) and not damaged_chunks(self._path, attrs, cached=True)
