"""Plugin names in the parameters, checked against the registries when the pipelines are built.

:mod:`mtneuro.config` types and checks the parameter blocks without importing any plugin; the
names they hold (Task 1 methods and their settings blocks, segmentation models, semantic
features, volume sources with their options and URI schemes) are checked here, against :mod:`mtneuro.plugins` registries, by
``register_pipelines`` and by ``mtneuro run`` before Kedro starts. Errors name the full key,
in the format of every configuration error.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import InitErrorDetails

from mtneuro.classification_methods import METHODS, classification_errors
from mtneuro.config.base import ConfigurationError, format_validation_error
from mtneuro.config.loading import load_parameters
from mtneuro.config.merge import Layer, merged_errors
from mtneuro.config.project import ProjectParameters
from mtneuro.config.volume import VolumeParameters
from mtneuro.features.registry import FEATURES
from mtneuro.plugins import unknown_name_error
from mtneuro.segmentation_models import segmentation_errors
from mtneuro.volumes.registry import SOURCE_OPTIONS, SOURCES


def _within(block: str, errors: Iterable[InitErrorDetails]) -> list[InitErrorDetails]:
    return [{**error, "loc": (block, *error["loc"])} for error in errors]  # type: ignore[typeddict-item]


def plugin_errors(parameters: ProjectParameters) -> list[InitErrorDetails]:
    """Every plugin name of ``parameters`` that no registry has (and bad Task 1 method blocks)."""
    errors = _within("classification", classification_errors(parameters.classification))
    errors += _within("segmentation", segmentation_errors(parameters.segmentation))
    probing = parameters.probing
    errors += [
        unknown_name_error(("probing", "encoders", "methods", i), name, METHODS)
        for i, name in enumerate(probing.encoders.methods or [])
        if name not in METHODS
    ]
    umap_encoder = probing.umap.encoder
    if umap_encoder is not None and umap_encoder.method not in METHODS:
        errors.append(unknown_name_error(("probing", "umap", "encoder", "method"), umap_encoder.method, METHODS))
    errors += [
        unknown_name_error(("probing", "features", i), name, FEATURES)
        for i, name in enumerate(probing.features)
        if name not in FEATURES
    ]
    return errors + volume_errors(parameters.volume)


def volume_errors(volume: VolumeParameters) -> list[InitErrorDetails]:
    """Unknown sources and schemes of ``volume``, and options their source's model refuses."""
    errors: list[InitErrorDetails] = []
    if volume.source not in SOURCE_OPTIONS:
        errors.append(unknown_name_error(("volume", "source"), volume.source, SOURCE_OPTIONS))
    for source, channels in volume.uris.items():
        for channel, uri in channels.model_dump().items():
            scheme = str(uri).partition("://")[0]
            if scheme not in SOURCES:
                errors.append(unknown_name_error(("volume", "uris", source, channel), scheme, SOURCES))
    for source, options in volume.options.items():
        if source not in SOURCE_OPTIONS:
            errors.append(unknown_name_error(("volume", "options", source), source, SOURCE_OPTIONS))
            continue
        errors += merged_errors(SOURCE_OPTIONS.get(source), [Layer(options or {}, ("volume", "options", source))])
    return errors


def check_plugin_parameters(parameters: ProjectParameters) -> ProjectParameters:
    """``parameters``, once every plugin name in them is registered; else a
    :class:`ConfigurationError` naming each bad key."""
    errors = plugin_errors(parameters)
    if errors:
        error = ValidationError.from_exception_data(ProjectParameters.__name__, errors)
        raise ConfigurationError(f"Invalid parameters:\n{format_validation_error(error, (), ProjectParameters)}")
    return parameters


def load_checked_parameters(
    conf_source: str | Path, env: str | None = None, runtime_params: Mapping[str, Any] | None = None
) -> ProjectParameters:
    """:func:`mtneuro.config.load_parameters` with the plugin names checked."""
    return check_plugin_parameters(load_parameters(conf_source, env, runtime_params))
