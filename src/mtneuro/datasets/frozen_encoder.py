"""A frozen Task 1 encoder as a versioned catalog dataset: weights + JSON metadata in a folder.

Folder layout (one per version, ``<filepath>/<version>/<name>/``)::

    metadata.json         architecture, input (size, scaling, resizing, normalisation), method,
                          training configuration, seed, data source, ...
    weights.pt            torch state dict of the encoder  (kind "torch_resnet"), or
    decomposition.joblib  the fitted scikit-learn PCA / NMF  (kind "sklearn_decomposition")
    README.txt            how to load it without Kedro
    SHA256SUMS            SHA-256 of metadata.json and the weights (``sha256sum -c SHA256SUMS``)

A version is written in a temporary folder and renamed into place. Loading checks the files
against ``SHA256SUMS``: a mismatch raises
:class:`~mtneuro.datasets.versioned.DamagedArtifactError` naming the file and the command that
rebuilds it, a deleted file :class:`~mtneuro.datasets.versioned.MissingArtifactError`;
``_exists`` is false for either, so ``--only-missing-outputs`` trains the encoder again.

Loading returns an object implementing :class:`mtneuro.models.FrozenEncoder` (``metadata`` and
``embed(uint8 images (N, H, W)) -> float32 (N, D)``), rebuilt by
:func:`mtneuro.models.frozen_encoder_from_parts`. Task 3 reads these datasets.
"""

from __future__ import annotations

import io
import json
import logging
import uuid
from typing import Any

import joblib
import torch
from kedro.io.core import (
    DatasetError,
    get_filepath_str,
)

from mtneuro import models
from mtneuro.datasets.versioned import (
    SHA256SUMS,
    FileSystemVersionedDataset,
    damaged,
    jsonable,
    missing,
    parse_sha256sums,
    sha256_bytes,
    sha256sums,
    verify_bytes,
)
from mtneuro.faults import disk_space_guard

log = logging.getLogger(__name__)

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
        buffer = io.BytesIO()
        if kind == "torch_resnet":
            torch.save(payload, buffer)
        else:
            joblib.dump(payload, buffer)
        files = {
            WEIGHTS[kind]: buffer.getvalue(),
            "README.txt": _README.encode(),
            METADATA: json.dumps(jsonable(metadata), indent=2, sort_keys=True).encode(),
        }
        files[SHA256SUMS] = sha256sums({name: sha256_bytes(files[name]) for name in (WEIGHTS[kind], METADATA)}).encode()
        with disk_space_guard(final, sum(len(v) for v in files.values())):
            try:
                self._fs.makedirs(tmp, exist_ok=True)
                for name, content in files.items():
                    with self._fs.open(f"{tmp}/{name}", "wb") as f:
                        f.write(content)
                if self._fs.exists(final):  # unversioned: replace the previous encoder
                    self._fs.rm(final, recursive=True)
                self._fs.mv(tmp, final, recursive=True)
            finally:
                if self._fs.exists(tmp):
                    self._fs.rm(tmp, recursive=True)
        self._invalidate_cache()

    def _load(self) -> models.FrozenEncoder:
        path = get_filepath_str(self._get_load_path(), self._protocol)
        if not self._fs.exists(f"{path}/{METADATA}"):
            raise missing(f"{path}/{METADATA}", "frozen encoder's metadata")
        with self._fs.open(f"{path}/{METADATA}", "rb") as f:
            raw_metadata = f.read()
        try:
            metadata = json.loads(raw_metadata)
        except ValueError as exc:
            raise damaged(f"{path}/{METADATA}", f"it is not valid JSON ({exc})") from None
        kind = metadata.get("kind")
        if kind not in WEIGHTS:
            raise damaged(f"{path}/{METADATA}", f"unknown frozen-encoder kind {kind!r}")
        weights_path = f"{path}/{WEIGHTS[kind]}"
        if not self._fs.exists(weights_path):
            raise missing(weights_path, "frozen encoder's weights file")
        with self._fs.open(weights_path, "rb") as f:
            weights = f.read()
        self._verify(path, {METADATA: raw_metadata, WEIGHTS[kind]: weights})
        buffer = io.BytesIO(weights)
        if kind == "torch_resnet":
            payload = torch.load(buffer, map_location="cpu", weights_only=True)
        else:
            payload = joblib.load(buffer)
        return models.frozen_encoder_from_parts(metadata, payload)

    def _verify(self, path: str, contents: dict[str, bytes]) -> None:
        """The bytes read must be those written (``SHA256SUMS``); folders of older versions have none."""
        sums_path = f"{path}/{SHA256SUMS}"
        if not self._fs.exists(sums_path):
            log.warning("%s has no %s (written by an older version); loaded unchecked", path, SHA256SUMS)
            return
        with self._fs.open(sums_path, "r") as f:
            expected = parse_sha256sums(f.read())
        for name, content in contents.items():
            if name not in expected:
                raise damaged(f"{path}/{name}", f"it has no checksum in {SHA256SUMS}")
            verify_bytes(content, expected[name], f"{path}/{name}")

    def _exists(self) -> bool:
        """A complete encoder whose files match their checksums (a damaged one counts as missing)."""
        return self._checked_folder_exists("Frozen encoder", unchecked_ok=True)

    def _invalidate_cache(self) -> None:
        self._fs.invalidate_cache(get_filepath_str(self._filepath, self._protocol))
