"""A run's per-cube test predictions as a (versioned) Zarr v3 store that any Zarr reader opens.

In memory (what the segmentation nodes write and read)::

    {cube_id: {"z": int64 slice indices in the cube (Z,), "prediction": uint8 class per voxel (Z, H, W)}}

On disk (one folder per version, ``<filepath>/<version>/<name>.zarr/``)::

    zarr.json            group; attribute ``mtneuro_predictions``: format_version, setting, the
                         label values and names (``{"0": "background", "1": "vessel", ...}``),
                         the cubes, the axes
    <cube_id>/           one uint8 array (Z, H, W) per cube, ``dimension_names`` [z, y, x], with
                         the attributes ``z`` (the cube's slice index of each plane) and the
                         label names
    SHA256SUMS           SHA-256 of every file of the store (``sha256sum -c SHA256SUMS`` checks it)

Values are class indices of the run's label setting (``seg_4class``: 0 background, 1 vessel,
2 cell, 3 axon, as ``mtneuro.spec.PIXEL_CLASSES``; ``seg_3class``: 0 background and axons, 1 vessel,
2 cell). Open a cube without Kedro::

    import zarr
    cube = zarr.open_group("test_predictions.zarr", mode="r")["main_CTX"]
    labels, z = cube[...], cube.attrs["z"]

A version is written in a temporary folder and renamed into place
(:func:`mtneuro.datasets.cube_store._atomic_replace_dir`); a full disk raises
:class:`~mtneuro.faults.DiskFullError` and leaves nothing behind. Loading checks every file against
``SHA256SUMS`` first: a changed, truncated or deleted file raises
:class:`~mtneuro.datasets.versioned.DamagedArtifactError` naming the store, the file and the command
that rebuilds it; ``_exists`` is false for a damaged store, so ``--only-missing-outputs`` runs its
training again. No TIFF copy is written: one format and one checksum per artefact; a cube is one
``tifffile.imwrite`` away for Fiji (README, "Predictions on disk").

.. code-block:: yaml

    "segmentation.{model}.{setting}.seed{seed}.test_predictions@model":
      type: mtneuro.datasets.predictions.PredictionsDataset
      filepath: data/07_model_output/segmentation/{model}/{setting}/seed{seed}/test_predictions.zarr
      setting: "{setting}"
      versioned: true
"""

from __future__ import annotations

import logging
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from kedro.io import DatasetError
from kedro.io.core import Version, get_filepath_str

from mtneuro import spec
from mtneuro.datasets.cube_store import _atomic_replace_dir
from mtneuro.datasets.versioned import (
    SHA256SUMS,
    FileSystemVersionedDataset,
    damaged,
    file_sha256,
    folder_problem,
    missing,
    sha256sums,
)
from mtneuro.faults import disk_space_guard

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
ATTRS_KEY = "mtneuro_predictions"
AXES = ("z", "y", "x")
#: Planes per chunk (a chunk holds whole planes).
_CHUNK_Z = 16

Predictions = dict[str, dict[str, np.ndarray]]


def label_names(setting: str | None) -> dict[int, str]:
    """Class index -> name of a label setting (``seg_3class``, ``seg_4class``); without one, the
    pixel-label values of ``mtneuro.spec.PIXEL_CLASSES``."""
    if not setting:
        return dict(spec.PIXEL_CLASSES)
    if setting not in spec.LABEL_SETTINGS:
        known = ", ".join(spec.LABEL_SETTINGS)
        raise DatasetError(f"PredictionsDataset: unknown label setting {setting!r} (known: {known})")
    _, classes, lut = spec.LABEL_SETTINGS[setting]
    names = dict(enumerate(classes))
    merged = [spec.PIXEL_CLASSES[v] for v, c in enumerate(lut) if c == 0 and v != spec.BACKGROUND]
    if merged:  # seg_3class: axons are background
        names[0] = f"{names[0]} (incl. {', '.join(merged)})"
    return names


def _check_entry(cube_id: str, entry: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    if not cube_id or "/" in cube_id or cube_id.startswith((".", "__")):
        raise DatasetError(f"PredictionsDataset: {cube_id!r} cannot name an array of the store")
    z = np.asarray(entry["z"])
    prediction = np.asarray(entry["prediction"])
    if prediction.ndim != 3 or z.ndim != 1 or len(z) != prediction.shape[0]:
        raise DatasetError(
            f"PredictionsDataset: cube {cube_id}: expected 'prediction' (Z, H, W) and 'z' (Z,), got "
            f"{prediction.shape} and {z.shape}"
        )
    if prediction.dtype != np.uint8:
        if prediction.dtype.kind not in "iu" or (prediction.size and (prediction.min() < 0 or prediction.max() > 255)):
            raise DatasetError(f"PredictionsDataset: cube {cube_id}: labels must be uint8, got {prediction.dtype}")
        prediction = prediction.astype(np.uint8)
    return z.astype(np.int64), prediction


def write_checksums(folder: Path) -> None:
    """``SHA256SUMS`` of every file below ``folder`` (relative POSIX paths)."""
    import fsspec

    fs = fsspec.filesystem("file")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != SHA256SUMS)
    entries = {p.relative_to(folder).as_posix(): file_sha256(fs, str(p)) for p in files}
    (folder / SHA256SUMS).write_text(sha256sums(entries))


class PredictionsDataset(FileSystemVersionedDataset[Predictions, Predictions]):
    """Saves ``{cube_id: {"z", "prediction"}}`` as a checksummed Zarr v3 store; loads the same dict.

    ``setting`` (the run's label setting) gives the label names written as attributes. Local
    paths only (the store is renamed into place).
    """

    def __init__(
        self,
        *,
        filepath: str,
        setting: str | None = None,
        version: Version | None = None,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(filepath, version, credentials, fs_args, metadata)
        if self._protocol != "file":
            raise DatasetError(f"PredictionsDataset writes local stores only, got {filepath!r}")
        self._setting = setting

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._filepath, "setting": self._setting, "version": self._version}

    def _version_exists(self, path: str) -> bool:
        """A version counts once its checksums are there (the store is renamed into place whole)."""
        return bool(self._fs.exists(f"{path}/{SHA256SUMS}"))

    def _save(self, data: Predictions) -> None:
        import zarr

        checked = {cube_id: _check_entry(cube_id, entry) for cube_id, entry in sorted(data.items())}
        names = {str(k): v for k, v in label_names(self._setting).items()}
        final = Path(get_filepath_str(self._get_save_path(), self._protocol))
        tmp = final.with_name(f".{final.name}.tmp-{uuid.uuid4().hex[:8]}")
        needed = sum(prediction.nbytes for _, prediction in checked.values())  # uncompressed
        try:
            with disk_space_guard(final, needed):
                root = zarr.open_group(str(tmp), mode="w", zarr_format=3)
                for cube_id, (z, prediction) in checked.items():
                    array = root.create_array(
                        cube_id,
                        shape=prediction.shape,
                        dtype="uint8",
                        chunks=(max(1, min(_CHUNK_Z, prediction.shape[0])), *prediction.shape[1:]),
                        fill_value=0,
                        dimension_names=list(AXES),
                    )
                    array[...] = prediction
                    array.attrs.update({"z": [int(v) for v in z], "label_names": names})
                root.attrs.update(
                    {
                        ATTRS_KEY: {
                            "format_version": FORMAT_VERSION,
                            "setting": self._setting,
                            "label_names": names,
                            "cubes": list(checked),
                            "axes": list(AXES),
                            "values": "class index of the label setting, per voxel",
                        }
                    }
                )
                write_checksums(tmp)
                final.parent.mkdir(parents=True, exist_ok=True)
                _atomic_replace_dir(tmp, final)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        self._fs.invalidate_cache(get_filepath_str(self._filepath, self._protocol))

    def _load(self) -> Predictions:
        import zarr

        path = get_filepath_str(self._get_load_path(), self._protocol)
        if not self._fs.exists(path):
            raise missing(path, "test predictions")
        problem = folder_problem(self._fs, path)
        if problem:
            raise damaged(path, problem)
        try:
            root: Any = zarr.open_group(path, mode="r")
            attrs: dict[str, Any] = dict(root.attrs.get(ATTRS_KEY) or {})
        except Exception as exc:
            raise damaged(path, f"it cannot be read as a Zarr group ({exc})") from None
        if attrs.get("format_version") != FORMAT_VERSION:
            raise DatasetError(f"{path}: unknown predictions format {attrs.get('format_version')!r}")
        out: Predictions = {}
        for cube_id in attrs["cubes"]:
            array = root[cube_id]
            out[cube_id] = {"z": np.asarray(array.attrs["z"], dtype=np.int64), "prediction": np.asarray(array[...])}
        return out

    def _exists(self) -> bool:
        """A complete store whose files match their checksums (a damaged one counts as missing)."""
        return self._checked_folder_exists("Test predictions")
