"""``kedro predict``: segment a volume of your own with a trained Task 2 model.

::

    uv run kedro predict --input my_volume.tif --model unet.seg_4class.seed0 --output my_volume.ome.zarr

The input is a multi-page TIFF stack, a folder of 2D TIFF slices or a Zarr / OME-Zarr array
(z, y, x; uint8 as the models were trained on; other types are scaled to 0-255 from
``--intensity-range`` or the 0.5-99.5 percentiles of a sample of sections). The model is a run of
the segmentation run index of ``--data-root`` (``<model>.<setting>.seed<k>``) or a ``model.pt``
that the segmentation pipeline saved. The output is an OME-Zarr image whose label image
``labels/microstructure`` holds the labels of the brain map (0 background, 1 vessel, 2 cell,
3 axon; the same names and colours), with the input (as the model saw it, uint8) as the image.

Everything else is the brain map's: the engine (:mod:`mtneuro.pipelines.mapping.engine`: aligned
block inputs with a halo at least the network's receptive field, so blocks show no seams, batch
norms folded, bf16 where the hardware computes it natively) and the resumable OME-Zarr writer
(:func:`mtneuro.datasets.ome_zarr_store.write_map`: an interrupted command resumes where it
stopped). Block size, halo, chunks, pyramid levels, NGFF version and precision are the
``mapping`` parameters of the profile (``--env``, ``--params mapping.microstructure.halo_yx=200``).
The tissue mask of the brain map is not applied: every voxel gets the network's label. The model
runs on a GPU when there is one (``--device``).
"""

from __future__ import annotations

import difflib
import logging
import math
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mtneuro.errors import MtneuroError
from mtneuro.volumes.base import URIS_PARAMETER, VolumeSource, VolumeSourceError, Window

log = logging.getLogger(__name__)

#: Layer of the output store with the labels (the brain map's name for the same labels).
LABELS = "labels/microstructure"
TIFF_SUFFIXES = (".tif", ".tiff")
#: The coarsest pyramid level keeps at least this many voxels in y and x.
_MIN_LEVEL_SIZE = 64
#: Sections sampled for the intensity percentiles of a non-uint8 input.
_SAMPLE_SECTIONS = 16


class PredictError(MtneuroError, ValueError):
    """A mistake in the command's arguments (input, model, output); the message says what to do."""


# --- input -------------------------------------------------------------------------------------


class RescaledVolume(VolumeSource):
    """Another source's values mapped linearly from ``[low, high]`` to uint8 0-255 (clipped)."""

    def __init__(self, source: VolumeSource, low: float, high: float) -> None:
        self.source, self.low, self.high = source, float(low), float(high)
        self.uri = source.uri
        self._shape = source.shape
        self._dtype = np.dtype(np.uint8)
        self._voxel_size = source.voxel_size

    def _read(self, window: Window) -> np.ndarray:
        data = np.asarray(self.source.read(window), dtype=np.float32)
        scaled = (data - np.float32(self.low)) * np.float32(255.0 / (self.high - self.low))
        return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def open_input(path: Path, voxel_size: Sequence[float] | None = None) -> VolumeSource:
    """The volume at ``path``: a TIFF stack, a folder of TIFF slices, or a Zarr / OME-Zarr array."""
    from mtneuro.volumes import open_volume

    size = tuple(float(v) for v in voxel_size) if voxel_size else None
    if not path.exists():
        raise PredictError(
            f"--input {path}: no such file or folder. Give a TIFF stack (.tif), a folder of TIFF slices "
            "or a Zarr / OME-Zarr array (.zarr) of (z, y, x) voxels."
        )
    if path.is_file():
        if path.suffix.lower() not in TIFF_SUFFIXES:
            raise PredictError(f"--input {path}: a file must be a TIFF stack (.tif, .tiff); for Zarr give its folder.")
        scheme = "tiff"  # a stack: mtneuro.volumes.tiff.TiffStackVolume
    else:
        scheme = "tiff" if any(p.suffix.lower() in TIFF_SUFFIXES for p in path.iterdir()) else "zarr"
    try:
        return open_volume(f"{scheme}://{path.resolve()}", **({"voxel_size": list(size)} if size else {}))
    except VolumeSourceError as exc:
        message = str(exc).replace(f" Check '{URIS_PARAMETER}'.", "")
        raise PredictError(f"--input {path}: {message}") from None


def intensity_range(source: VolumeSource, given: Sequence[float] | None) -> tuple[float, float] | None:
    """The range mapped to 0-255: ``given``, none for uint8, else the 0.5-99.5 percentiles of up
    to 16 sections (every 4th voxel in y and x)."""
    if given:
        low, high = (float(v) for v in given)
        if not high > low:
            raise PredictError(f"--intensity-range {low:g} {high:g}: the second value must exceed the first.")
        return low, high
    if source.dtype == np.uint8:
        return None
    nz = source.shape[0]
    z = sorted({int(v) for v in np.linspace(0, nz - 1, min(nz, _SAMPLE_SECTIONS)).round()})
    sample = np.asarray(source.sample_sections(z, 2), dtype=np.float64)
    low, high = (float(v) for v in np.nanpercentile(sample, [0.5, 99.5]))
    return (low, high) if high > low else (low, low + 1.0)


# --- model -------------------------------------------------------------------------------------


def run_index(data_root: str, env: str | None, conf_source: str | None, params: Mapping[str, Any]) -> Any:
    """The segmentation run index (``segmentation_runs``) of the catalog at ``data_root``."""
    from kedro.io import DataCatalog

    from mtneuro.config.loading import config_loader, default_conf_source, default_environment

    loader = config_loader(
        conf_source or default_conf_source(), env or default_environment(), {**params, "data_root": data_root}
    )
    catalog = DataCatalog.from_config({"segmentation_runs": loader["catalog"]["segmentation_runs"]})
    if not catalog.exists("segmentation_runs"):
        raise PredictError(
            f"--model: there is no segmentation run index under --data-root {data_root} "
            f"({Path(data_root) / '06_models/segmentation/segmentation_runs.json'}). Train first "
            "(`uv run kedro run --pipelines=segmentation`), point --data-root to a data root that has one, "
            "or give --model the path of a model.pt."
        )
    return catalog.load("segmentation_runs")


def load_model(
    model: str, data_root: str, env: str | None = None, conf_source: str | None = None, params: Mapping | None = None
) -> tuple[Any, str]:
    """The trained network of ``model`` (a run name of the run index, or a model file) and its description."""
    from kedro.io import Version

    from mtneuro.datasets.torch_model import TorchModelDataset

    path = Path(model)
    if path.exists():
        if path.suffix == ".json":
            path = path.with_suffix(".pt")
        if path.is_dir() and (path / "model.pt").is_file():  # one version's folder
            path = path / "model.pt"
        version = Version(None, None) if path.is_dir() else None  # a versioned model.pt/: its latest version
        return TorchModelDataset(filepath=str(path), version=version).load(), str(path)
    if "/" in model or model.endswith((".pt", ".json")):
        raise PredictError(f"--model {model}: no such file; give a model.pt or a run name of the run index.")
    index = run_index(data_root, env, conf_source, params or {})
    if model not in index:
        runs = sorted(index)
        close = difflib.get_close_matches(model, runs, n=1)
        raise PredictError(
            f"--model {model}: no such run in the segmentation run index of --data-root {data_root}. "
            + (f"Did you mean {close[0]}? " if close else "")
            + f"Runs: {', '.join(runs) or 'none'}."
        )
    return index[model]["trained_model"], f"run {model} ({data_root})"


# --- the command -------------------------------------------------------------------------------


@dataclass
class Prediction:
    """What :func:`predict_volume` wrote."""

    output: Path
    shape: tuple[int, int, int]
    device: str
    model: str
    blocks: int
    seconds: float
    complete_before: bool


def _levels(configured: int, shape: Sequence[int]) -> int:
    fit = int(math.log2(max(1, min(shape[1], shape[2]) // _MIN_LEVEL_SIZE))) + 1
    return max(1, min(int(configured), fit))


def _check_output(output: Path, digest: str, overwrite: bool) -> None:
    """Refuse to replace what this command did not write, or wrote for other settings (without ``overwrite``)."""
    import shutil

    import zarr

    from mtneuro.datasets.ome_zarr_store import ATTRS_KEY

    if not output.exists():
        return
    try:
        stored: Any = zarr.open_group(str(output), mode="r").attrs.get(ATTRS_KEY)
        attrs = dict(stored or {})
    except Exception:
        attrs = {}
    if attrs.get("written_by") != "kedro predict":
        raise PredictError(
            f"--output {output} exists and is not a prediction of this command; give another --output "
            "or remove it first."
        )
    if attrs.get("digest") != digest:
        if not overwrite:
            raise PredictError(
                f"--output {output} holds a prediction of another input, model or settings; add --overwrite "
                "to replace it, or give another --output."
            )
        shutil.rmtree(output)


def predict_volume(
    input_path: Path,
    model: str,
    output: Path,
    data_root: str = "data",
    device: str = "auto",
    intensity: Sequence[float] | None = None,
    voxel_size: Sequence[float] | None = None,
    overwrite: bool = False,
    env: str | None = None,
    conf_source: str | None = None,
    params: Mapping[str, Any] | None = None,
    echo: Any = print,
) -> Prediction:
    """Segment the volume at ``input_path`` with ``model`` into the OME-Zarr store ``output``."""
    import torch

    from mtneuro import spec
    from mtneuro.config.loading import default_conf_source, default_environment, load_parameters
    from mtneuro.datasets.ome_zarr_store import MapLayer, MapRequest, write_map
    from mtneuro.pipelines.mapping import engine
    from mtneuro.pipelines.mapping.nodes import _label_names, _weights_digest, map_microstructure
    from mtneuro.training import resolve_accelerator, thread_limit
    from mtneuro.volumes.progress import Progress

    params = dict(params or {})
    source = open_input(Path(input_path), voxel_size)
    value_range = intensity_range(source, intensity)
    volume = RescaledVolume(source, *value_range) if value_range else source
    network, described = load_model(model, data_root, env, conf_source, params)
    mapping = load_parameters(conf_source or default_conf_source(), env or default_environment(), params).mapping
    if device not in ("auto", "cpu", "cuda"):
        raise PredictError(f"--device {device}: expected auto, cpu or cuda.")
    if device == "cuda" and not torch.cuda.is_available():
        raise PredictError(
            "--device cuda: no GPU is available here; use --device auto (a GPU when there is one) or cpu."
        )
    accelerator = resolve_accelerator(device)
    precision = engine.mapping_precision(mapping.compute.precision, accelerator)
    name = str((getattr(network, "metadata", {}) or {}).get("model", "model"))
    try:
        segmentation = engine.on_device(
            engine.MicrostructureNetwork.from_trained(network, name), accelerator, precision
        )
    except engine.MappingError as exc:
        raise PredictError(f"--model {model}: {exc}") from None
    m = mapping.microstructure
    settings = engine.BlockSettings.microstructure_only(
        m.halo_yx, m.halo_z, m.slices_per_batch, mapping.compute.workers, precision
    )
    shape = volume.shape
    window = Window(0, shape[0], 0, shape[1], 0, shape[2])
    blocks_zyx = tuple(min(b, s) for b, s in zip(mapping.blocks.shape_zyx, shape, strict=True))
    chunks = tuple(min(c, b) for c, b in zip(mapping.blocks.chunks_zyx, blocks_zyx, strict=True))
    windows = engine.block_windows(window, blocks_zyx)
    spatial: dict[str, Any] = {
        "axes": ("z", "y", "x"),
        "shape": shape,
        "chunks": chunks,
        "scale": tuple(float(v) for v in volume.voxel_size),
        "translation": (0.0, 0.0, 0.0),
    }
    layers = [
        MapLayer(path="", kind="image", dtype="uint8", channel_names=("image",), **spatial),
        MapLayer(
            path=LABELS,
            kind="label",
            dtype="uint8",
            label_names=_label_names(spec.PIXEL_CLASSES, spec.PIXEL_COLOURS, by_name=False),
            **spatial,
        ),
    ]
    regions = {
        key: tuple(slice(a, b) for a, b in zip(w.to_list()[0::2], w.to_list()[1::2], strict=True))
        for key, w in windows.items()
    }
    threads = mapping.compute.torch_threads

    def compute(key: str) -> dict[str, np.ndarray]:
        block = windows[key]
        with thread_limit(threads):
            labels = map_microstructure(segmentation, volume, block, settings)
        return {"": np.asarray(volume.read(block)), LABELS: np.ascontiguousarray(labels, dtype=np.uint8)}

    if tuple(blocks_zyx[1:]) == tuple(shape[1:]):
        # every block is the whole plane: no in-plane seams whatever the receptive field (networks
        # with global pooling or attention, 3D networks whose field exceeds any halo, map too)
        log.info("predict: each block spans the whole %d x %d plane; no halo needed in-plane", *shape[1:])
    else:
        with thread_limit(threads):  # before the store is created: a failed check leaves nothing behind
            try:
                radius = engine.check_halo(segmentation, settings.halo_yx)
            except engine.MappingError as exc:
                raise PredictError(
                    f"--model {model}: {exc} (`--params mapping.microstructure.halo_yx=<n>`, or blocks spanning "
                    "the plane: `--params mapping.blocks.shape_zyx=[z,y,x]` in a profile's parameters_mapping.yml)."
                ) from None
        log.info("predict: receptive-field radius of %s is %d voxels (halo %d)", name, radius, settings.halo_yx)
    request = MapRequest(
        layers=layers,
        blocks={key: {"": region, LABELS: region} for key, region in regions.items()},
        compute_block=compute,
        levels=_levels(mapping.pyramid.levels, shape),
        downsample_z=mapping.pyramid.downsample_z,
        ngff_version=mapping.ngff_version,
        fingerprint={
            "input": str(Path(input_path).resolve()),
            "shape": list(shape),
            "dtype": str(source.dtype),
            "intensity_range": list(value_range) if value_range else None,
            "model": name,
            "weights": _weights_digest(network),
            "precision": precision,
            "halo": [settings.halo_z, settings.halo_yx],
            "blocks": list(blocks_zyx),
        },
        attributes={
            "written_by": "kedro predict",
            "input": str(input_path),
            "input_dtype": str(source.dtype),
            "intensity_range": list(value_range) if value_range else None,
            "microstructure_model": name,
            "model_source": described,
            "model_classes": list((getattr(network, "metadata", {}) or {}).get("classes", [])),
            "microstructure_precision": precision,
            "pixel_labels": {str(k): v for k, v in spec.PIXEL_CLASSES.items()},
            "voxel_size_um": list(spatial["scale"]),
        },
    )
    output = Path(output)
    _check_output(output, request.digest(), overwrite)
    echo(
        f"kedro predict: {described} ({name}, {segmentation.dims}D) on {accelerator} ({precision}), "
        f"input {Path(input_path)} {source.dtype}{tuple(shape)}"
        + (f" scaled from [{value_range[0]:g}, {value_range[1]:g}] to 0-255" if value_range else "")
        + f", {len(windows)} block(s)"
    )
    start = time.perf_counter()
    output.parent.mkdir(parents=True, exist_ok=True)
    nbytes = int(np.prod(shape))
    with Progress("kedro predict", len(windows), nbytes) as progress, warnings.catch_warnings():
        # the writer's block markers (.mapping/) live inside the store until it is complete
        warnings.filterwarnings("ignore", message=r"Object at \.mapping is not recognized")
        stats = write_map(request, output, progress=progress.advance)
    result = Prediction(
        output, shape, accelerator, name, len(windows), time.perf_counter() - start, bool(stats["complete_before"])
    )
    names = ", ".join(f"{v} {n}" for v, n in spec.PIXEL_CLASSES.items())
    echo(
        f"kedro predict: {output}/{LABELS} ({names}) "
        + ("was complete already" if result.complete_before else f"written in {result.seconds:.1f} s")
        + f". Open it: napari --plugin napari-ome-zarr {output}"
    )
    return result
