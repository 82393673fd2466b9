"""A (versioned) catalog dataset for trained PyTorch networks: weights plus how to rebuild them.

Saving writes two files side by side:

* ``<name>.pt`` -- the ``state_dict`` (tensors only; loaded with ``weights_only=True``);
* ``<name>.json`` -- the factory that builds the network and its arguments
  (``{"factory": "module:function", "kwargs": {...}}``, from the model's ``factory_spec``
  attribute, which :func:`mtneuro.segmentation_models.build_segmentation_model` sets) and the model's
  ``metadata`` dict (preprocessing, classes, training settings...).

Loading imports the factory, calls it with the recorded arguments, loads the weights, puts the
network in eval mode and restores ``factory_spec`` and ``metadata``. A user can do the same
without Kedro::

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
from pathlib import PurePosixPath
from typing import Any

import torch
from kedro.io import DatasetError
from kedro.io.core import Version, get_filepath_str
from torch import nn

from mtneuro.datasets.versioned import FileSystemVersionedDataset

FORMAT_VERSION = 1


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        return value.item()
    return value


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

    def save(self, data: nn.Module) -> None:
        spec = getattr(data, "factory_spec", None)
        if not isinstance(spec, dict) or "factory" not in spec:
            raise DatasetError(
                "TorchModelDataset saves networks built by a factory that records 'factory_spec' "
                "(e.g. mtneuro.segmentation_models.build_segmentation_model); this model has none."
            )
        save_path = self._get_save_path()
        record = {
            "format_version": FORMAT_VERSION,
            "factory": spec["factory"],
            "kwargs": _jsonable(spec.get("kwargs", {})),
            "metadata": _jsonable(getattr(data, "metadata", {}) or {}),
        }
        buffer = io.BytesIO()
        torch.save({k: v.detach().cpu() for k, v in data.state_dict().items()}, buffer)
        with self._fs.open(get_filepath_str(save_path, self._protocol), mode="wb") as f:
            f.write(buffer.getvalue())
        with self._fs.open(get_filepath_str(self.sidecar(save_path), self._protocol), mode="w") as f:
            f.write(json.dumps(record, indent=2, sort_keys=True))
        self._invalidate_cache()

    def load(self) -> nn.Module:
        from mtneuro.segmentation_models import build_from_factory_spec

        load_path = self._get_load_path()
        with self._fs.open(get_filepath_str(self.sidecar(load_path), self._protocol), mode="r") as f:
            record = json.loads(f.read())
        model = build_from_factory_spec(record)
        with self._fs.open(get_filepath_str(load_path, self._protocol), mode="rb") as f:
            state = torch.load(io.BytesIO(f.read()), map_location=self._map_location, weights_only=True)
        model.load_state_dict(state)
        model.eval()
        model.factory_spec = {"factory": record["factory"], "kwargs": record["kwargs"]}  # type: ignore[assignment]
        model.metadata = record.get("metadata", {})
        return model

    def _exists(self) -> bool:
        try:
            load_path = get_filepath_str(self._get_load_path(), self._protocol)
        except DatasetError:
            return False
        return self._fs.exists(load_path)

    def _invalidate_cache(self) -> None:
        self._fs.invalidate_cache(get_filepath_str(self._filepath, self._protocol))

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._filepath, "protocol": self._protocol, "version": self._version}
