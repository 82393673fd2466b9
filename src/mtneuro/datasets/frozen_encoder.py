"""A frozen Task 1 encoder as a versioned catalog dataset: weights + JSON metadata in a folder.

Folder layout (one per version, ``<filepath>/<version>/<name>/``)::

    metadata.json         architecture, input (size, scaling, resizing, normalisation), method,
                          training configuration, seed, data source, ...
    weights.pt            torch state dict of the encoder  (kind "torch_resnet"), or
    decomposition.joblib  the fitted scikit-learn PCA / NMF  (kind "sklearn_decomposition")
    README.txt            how to load it without Kedro

Loading returns an object implementing :class:`mtneuro.models.FrozenEncoder` (``metadata`` and
``embed(uint8 images (N, H, W)) -> float32 (N, D)``), rebuilt by
:func:`mtneuro.models.frozen_encoder_from_parts`. Task 3 reads these datasets.
"""

from __future__ import annotations

import io
import json
import uuid
from typing import Any

import joblib
import torch
from kedro.io.core import (
    DatasetError,
    get_filepath_str,
)

from mtneuro import models
from mtneuro.datasets.versioned import FileSystemVersionedDataset

METADATA = "metadata.json"
WEIGHTS = {"torch_resnet": "weights.pt", "sklearn_decomposition": "decomposition.joblib"}
_README = """Frozen Task 1 encoder of the MTNeuro Kedro project.

metadata.json holds the architecture, the input preprocessing (resize to input.size with area
averaging, scale uint8 by 1/255, then (x - mean) / std) and how the encoder was trained.

Load with Kedro:   catalog.load("<dataset name>")  or
    from mtneuro.datasets.frozen_encoder import FrozenEncoderDataset
    encoder = FrozenEncoderDataset(filepath="<this folder>").load()   # unversioned path
    embeddings = encoder.embed(uint8_images)                           # (N, H, W) -> (N, D)
Without the project's dataset class:
    metadata = json.load(open("metadata.json"))
    state = torch.load("weights.pt")                 # kind torch_resnet
    encoder = mtneuro.models.frozen_encoder_from_parts(metadata, state)
    pca = joblib.load("decomposition.joblib")        # kind sklearn_decomposition
"""


class FrozenEncoderDataset(FileSystemVersionedDataset[models.FrozenEncoder, models.FrozenEncoder]):
    """Saves/loads a frozen encoder (``ResNetFrozenEncoder`` or ``DecompositionFrozenEncoder``).

    Example catalog entry (a dataset factory, one folder per run)::

        "classification.{method}.{config}.seed{seed}.frozen_encoder@model":
          type: mtneuro.datasets.frozen_encoder.FrozenEncoderDataset
          filepath: ${runtime_params:data_root,data}/06_models/classification/{method}/{config}/seed{seed}/frozen_encoder
          versioned: true
    """

    def _version_exists(self, path: str) -> bool:
        """A version counts only once its metadata is written (folders are renamed into place)."""
        return self._fs.exists(f"{path}/{METADATA}")

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._filepath, "protocol": self._protocol, "version": self._version}

    def _save(self, data: models.FrozenEncoder) -> None:
        if not hasattr(data, "parts"):
            raise DatasetError(f"{type(data).__name__} has no parts(); expected a frozen encoder from mtneuro.models")
        metadata, payload = data.parts()
        kind = metadata.get("kind")
        if kind not in WEIGHTS:
            raise DatasetError(f"Unknown frozen-encoder kind {kind!r}")
        final = get_filepath_str(self._get_save_path(), self._protocol)
        tmp = f"{final}.tmp-{uuid.uuid4().hex[:8]}"
        self._fs.makedirs(tmp, exist_ok=True)
        buffer = io.BytesIO()
        if kind == "torch_resnet":
            torch.save(payload, buffer)
        else:
            joblib.dump(payload, buffer)
        with self._fs.open(f"{tmp}/{WEIGHTS[kind]}", "wb") as f:
            f.write(buffer.getvalue())
        with self._fs.open(f"{tmp}/README.txt", "w") as f:
            f.write(_README)
        with self._fs.open(f"{tmp}/{METADATA}", "w") as f:
            json.dump(_jsonable(metadata), f, indent=2, sort_keys=True)
        if self._fs.exists(final):  # unversioned: replace the previous encoder
            self._fs.rm(final, recursive=True)
        self._fs.mv(tmp, final, recursive=True)
        self._invalidate_cache()

    def _load(self) -> models.FrozenEncoder:
        path = get_filepath_str(self._get_load_path(), self._protocol)
        if not self._fs.exists(f"{path}/{METADATA}"):
            raise DatasetError(f"No frozen encoder at {path} (metadata.json missing)")
        with self._fs.open(f"{path}/{METADATA}", "r") as f:
            metadata = json.load(f)
        kind = metadata.get("kind")
        if kind not in WEIGHTS:
            raise DatasetError(f"Unknown frozen-encoder kind {kind!r} in {path}/{METADATA}")
        with self._fs.open(f"{path}/{WEIGHTS[kind]}", "rb") as f:
            buffer = io.BytesIO(f.read())
        if kind == "torch_resnet":
            payload = torch.load(buffer, map_location="cpu", weights_only=True)
        else:
            payload = joblib.load(buffer)
        return models.frozen_encoder_from_parts(metadata, payload)

    def _exists(self) -> bool:
        try:
            path = get_filepath_str(self._get_load_path(), self._protocol)
        except DatasetError:
            return False
        return self._version_exists(path)

    def _invalidate_cache(self) -> None:
        self._fs.invalidate_cache(get_filepath_str(self._filepath, self._protocol))


def _jsonable(value: Any) -> Any:
    """Metadata with numpy scalars/arrays and tuples turned into plain JSON values."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "tolist"):
        return value.tolist()
    return value
