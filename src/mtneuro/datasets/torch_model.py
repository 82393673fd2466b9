"""A (versioned) catalog dataset for trained PyTorch networks: weights plus how to rebuild them.

Saving writes two files side by side:

* ``<name>.pt`` -- the ``state_dict`` (tensors only; loaded with ``weights_only=True``);
* ``<name>.json`` -- the factory that builds the network and its arguments
  (``{"factory": "module:function", "kwargs": {...}}``, from the model's ``factory_spec``
  attribute, which :func:`mtneuro.segmentation_models.build_segmentation_model` sets), the model's
  ``metadata`` dict (preprocessing, classes, training settings...) and ``weights_sha256``, the
  SHA-256 of the ``.pt`` file.

Both are written to temporary files and renamed into place, the ``.json`` last (a version
without it does not count). Loading checks the weights against ``weights_sha256`` (a mismatch
raises :class:`~mtneuro.datasets.versioned.DamagedArtifactError` naming the file and the command
that rebuilds it; ``_exists`` is false for a damaged or incomplete model, so
``--only-missing-outputs`` trains it again), imports the factory, calls it with the recorded
arguments, loads the weights, puts the network in eval mode and restores ``factory_spec`` and
``metadata``. A user can do the same without Kedro::

    spec = json.load(open("model.json"))
    model = mtneuro.segmentation_models.build_from_factory_spec(spec)
    model.load_state_dict(torch.load("model.pt", weights_only=True))

.. code-block:: yaml

    "segmentation.{model}.{setting}.seed{seed}.trained_model":
      type: mtneuro.datasets.torch_model.TorchModelDataset
      filepath: ${runtime_params:data_root,data}/06_models/segmentation/{model}/{setting}/seed{seed}/model.pt
      versioned: true
"""

from __future__ import annotations

import io
import json
import logging
from pathlib import PurePosixPath
from typing import Any

import torch
from kedro.io import DatasetError
from kedro.io.core import Version, get_filepath_str
from torch import nn

from mtneuro.datasets.versioned import (
    FileSystemVersionedDataset,
    damaged,
    file_sha256,
    jsonable,
    missing,
    sha256_bytes,
    verify_bytes,
    write_file_atomic,
)

log = logging.getLogger(__name__)

#: 2: ``weights_sha256`` in the ``.json`` (version 1 files load unchecked, with a warning).
FORMAT_VERSION = 2


class TorchModelDataset(FileSystemVersionedDataset[nn.Module, nn.Module]):
    """Saves ``model.state_dict()`` (``.pt``) and its factory arguments (``.json``); loads the model."""

    def __init__(
        self,
        *,
        filepath: str,
        version: Version | None = None,
        map_location: str = "cpu",
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._map_location = map_location
        super().__init__(filepath, version, credentials, fs_args, metadata, auto_mkdir=True)

    @staticmethod
    def sidecar(path: PurePosixPath) -> PurePosixPath:
        return path.with_suffix(".json")

    def _version_exists(self, path: str) -> bool:
        """A version counts once its ``.json`` (written last) is there."""
        return bool(self._fs.exists(str(self.sidecar(PurePosixPath(path)))))

    def save(self, data: nn.Module) -> None:
        spec = getattr(data, "factory_spec", None)
        if not isinstance(spec, dict) or "factory" not in spec:
            raise DatasetError(
                "TorchModelDataset saves networks built by a factory that records 'factory_spec' "
                "(e.g. mtneuro.segmentation_models.build_segmentation_model); this model has none."
            )
        save_path = self._get_save_path()
        buffer = io.BytesIO()
        torch.save({k: v.detach().cpu() for k, v in data.state_dict().items()}, buffer)
        weights = buffer.getvalue()
        record = {
            "format_version": FORMAT_VERSION,
            "factory": spec["factory"],
            "kwargs": jsonable(spec.get("kwargs", {})),
            "metadata": jsonable(getattr(data, "metadata", {}) or {}),
            "weights_sha256": sha256_bytes(weights),
        }
        path = get_filepath_str(save_path, self._protocol)
        write_file_atomic(self._fs, path, weights)
        write_file_atomic(
            self._fs,
            get_filepath_str(self.sidecar(save_path), self._protocol),
            json.dumps(record, indent=2, sort_keys=True),
        )
        self._invalidate_cache()

    def _record(self, load_path: PurePosixPath) -> dict[str, Any]:
        path = get_filepath_str(self.sidecar(load_path), self._protocol)
        if not self._fs.exists(path):
            raise missing(path, "model description")
        try:
            with self._fs.open(path, mode="r") as f:
                record = json.loads(f.read())
        except (ValueError, UnicodeDecodeError) as exc:
            raise damaged(path, f"it is not valid JSON ({exc})") from None
        if not isinstance(record, dict) or "factory" not in record:
            raise damaged(path, "it does not describe a model (no 'factory')")
        return record

    def load(self) -> nn.Module:
        from mtneuro.segmentation_models import build_from_factory_spec

        load_path = self._get_load_path()
        record = self._record(load_path)
        path = get_filepath_str(load_path, self._protocol)
        if not self._fs.exists(path):
            raise missing(path, "weights file")
        with self._fs.open(path, mode="rb") as f:
            weights = f.read()
        if "weights_sha256" in record:
            verify_bytes(weights, record["weights_sha256"], path)
        else:
            log.warning(
                "%s was written without a checksum (format %s); loaded unchecked", path, record.get("format_version")
            )
        model = build_from_factory_spec(record)
        state = torch.load(io.BytesIO(weights), map_location=self._map_location, weights_only=True)
        model.load_state_dict(state)
        model.eval()
        model.factory_spec = {"factory": record["factory"], "kwargs": record["kwargs"]}  # type: ignore[assignment]
        model.metadata = record.get("metadata", {})
        return model

    def _exists(self) -> bool:
        """A complete model whose weights match their checksum (a damaged one counts as missing)."""
        try:
            load_path = self._get_load_path()
            record = self._record(load_path)
        except DatasetError:
            return False
        path = get_filepath_str(load_path, self._protocol)
        if not self._fs.exists(path):
            return False
        expected = record.get("weights_sha256")
        if expected is not None and file_sha256(self._fs, path, cached=True) != expected:
            log.warning("%s does not match its checksum: it counts as missing", path)
            return False
        return True

    def _invalidate_cache(self) -> None:
        self._fs.invalidate_cache(get_filepath_str(self._filepath, self._protocol))

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._filepath, "protocol": self._protocol, "version": self._version}
