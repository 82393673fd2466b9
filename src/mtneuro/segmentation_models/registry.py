"""The registry of Task 2 segmentation models: every model is defined once, here registered by name.

A :class:`SegmentationModel` carries what the project needs about a model: the name used in
parameters, catalog paths and tables (``segmentation.models``, ``segmentation.model_settings``,
``task2_segmentation``), the label the report prints (the paper's Table 2 row), its
dimensionality (``2D``: one slice per sample; ``3D``: subvolumes of ``segmentation.train.depth``
slices) and its builder. Adding a model is one module in this package that registers it
(:func:`segmentation_model` or :func:`register`) plus its name in ``segmentation.models`` and an
entry in ``segmentation.model_settings``; :data:`MODELS` imports every module of the package on its
first read.

:func:`build_segmentation_model` is the one factory of every Task 2 network: it records its
import path and arguments in ``model.factory_spec`` so that
:class:`mtneuro.datasets.torch_model.TorchModelDataset` can save the weights and rebuild the
network (:func:`build_from_factory_spec`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic_core import InitErrorDetails

from mtneuro.config.segmentation import RunSettings, SegmentationParameters
from mtneuro.plugins import Registry, UnknownPluginError, unknown_name_error

if TYPE_CHECKING:  # torch is imported by the builders: the registry is read to check parameters
    from torch import nn

Dims = Literal["2D", "3D"]
#: ``build(num_classes, **kwargs) -> nn.Module``: logits ``(B, num_classes, *spatial)`` for inputs
#: ``(B, 1, *spatial)`` of any spatial size.
ModelBuilder = Callable[..., "nn.Module"]

#: Import path recorded in ``factory_spec`` of every network built here.
SEGMENTATION_FACTORY = "mtneuro.segmentation_models:build_segmentation_model"


@dataclass(frozen=True)
class SegmentationModel:
    """One Task 2 network family member: name, report label, dimensionality and builder."""

    name: str
    #: Row label in reports (the paper's Table 2).
    label: str
    dims: Dims
    build: ModelBuilder
    #: Whether the builder takes the shared 2D encoder (``segmentation.encoder``: ``encoder_name``,
    #: ``encoder_weights``).
    takes_encoder: bool = False

    @property
    def spatial_dims(self) -> int:
        """2 or 3: the number of spatial axes of the network's inputs."""
        return int(self.dims[0])


_DIMS_ORDER = {"2D": 0, "3D": 1}
#: Every Task 2 model, discovered from the modules of this package (the 2D models, then the 3D
#: ones, each in registration order).
MODELS: Registry[SegmentationModel] = Registry(
    "segmentation model",
    "mtneuro.segmentation_models",
    plural="models",
    skip=frozenset({"registry", "padding"}),
    order=lambda _name, model: _DIMS_ORDER[model.dims],
)
#: The error of an unknown model name (the one registry error, under its former name).
UnknownModelError = UnknownPluginError


def register(model: SegmentationModel) -> SegmentationModel:
    """Add a model to the registry; a name can be registered once."""
    if model.dims not in ("2D", "3D"):
        raise ValueError(f"Segmentation model {model.name!r}: dims must be '2D' or '3D', not {model.dims!r}")
    return MODELS.register(model.name, model)


def segmentation_model(
    name: str, *, label: str, dims: Dims, takes_encoder: bool = False
) -> Callable[[ModelBuilder], ModelBuilder]:
    """Decorator registering ``build(num_classes, **kwargs) -> nn.Module`` as the model ``name``."""

    def decorator(build: ModelBuilder) -> ModelBuilder:
        register(SegmentationModel(name, label, dims, build, takes_encoder))
        return build

    return decorator


def model_names() -> tuple[str, ...]:
    """Registered model names: the 2D models, then the 3D ones, each in registration order."""
    return MODELS.names()


def registered_models() -> tuple[SegmentationModel, ...]:
    return MODELS.values()


def get_model(name: str) -> SegmentationModel:
    """The registered model ``name``; :class:`UnknownPluginError` lists the registered ones."""
    return MODELS.get(name)


def run_settings(segmentation: SegmentationParameters, model: str) -> RunSettings:
    """Everything one run of ``model`` needs (:meth:`SegmentationParameters.run_settings` with the
    registered model's dimensionality and encoder)."""
    entry = get_model(model)
    return segmentation.run_settings(model, dims=entry.dims, takes_encoder=entry.takes_encoder)


def segmentation_errors(segmentation: SegmentationParameters) -> list[InitErrorDetails]:
    """Model names of ``segmentation`` that no registered model has (locations inside the block)."""
    places: list[tuple[tuple[str | int, ...], str]] = [
        (("models", i), name) for i, name in enumerate(segmentation.models)
    ]
    places += [(("model_settings", name), name) for name in segmentation.model_settings]
    return [unknown_name_error(loc, name, MODELS) for loc, name in places if name not in MODELS]


def build_segmentation_model(name: str, num_classes: int, **kwargs: Any) -> nn.Module:
    """The one factory of every Task 2 network: the registered model ``name`` with
    ``num_classes`` output channels; ``kwargs`` go to its builder.

    The returned module carries ``factory_spec`` (this function's import path and arguments, as
    given: :class:`mtneuro.datasets.torch_model.TorchModelDataset` writes them in JSON types) and
    ``spatial_dims`` (2 or 3).
    """
    entry = get_model(name)
    model = entry.build(int(num_classes), **dict(kwargs))
    model.factory_spec = {  # type: ignore[assignment]  # an attribute of this module, not a submodule
        "factory": SEGMENTATION_FACTORY,
        "kwargs": {"name": name, "num_classes": int(num_classes), **kwargs},
    }
    model.spatial_dims = entry.spatial_dims  # type: ignore[assignment]
    return model


def build_from_factory_spec(spec: dict[str, Any]) -> nn.Module:
    """Rebuild a network from a ``factory_spec`` (``{"factory": "module:function", "kwargs": {...}}``)."""
    kwargs = dict(spec.get("kwargs", {}))
    module_name, _, func_name = spec["factory"].partition(":")
    factory = getattr(importlib.import_module(module_name), func_name)
    return factory(**kwargs)
