"""Task 2 segmentation models: one registry and one factory for the 2D and 3D networks.

``get_model(name)`` gives a model's report label (``.label``) and dimensionality (``.dims``,
``"2D"``/``"3D"``); ``model_names()`` lists the registered names; ``build_segmentation_model(name,
num_classes, **kwargs)`` builds the network. Every module of this package is imported on the
registry's first read (:data:`MODELS`), so a module that registers a model (see :mod:`.registry`) is all a new model
needs besides its name in ``segmentation.models`` and its ``segmentation.model_settings`` entry.
"""

from __future__ import annotations

from typing import Any

from mtneuro.segmentation_models.registry import (
    MODELS,
    SEGMENTATION_FACTORY,
    SegmentationModel,
    UnknownModelError,
    build_from_factory_spec,
    build_segmentation_model,
    get_model,
    model_names,
    register,
    registered_models,
    run_settings,
    segmentation_errors,
    segmentation_model,
)


def __getattr__(name: str) -> Any:
    """``PadToMultiple`` on first use: it needs torch, which checking the parameters does not."""
    if name == "PadToMultiple":
        from mtneuro.segmentation_models.padding import PadToMultiple

        return PadToMultiple
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "MODELS",
    "SEGMENTATION_FACTORY",
    "PadToMultiple",
    "SegmentationModel",
    "UnknownModelError",
    "build_from_factory_spec",
    "build_segmentation_model",
    "get_model",
    "model_names",
    "register",
    "registered_models",
    "run_settings",
    "segmentation_errors",
    "segmentation_model",
]
