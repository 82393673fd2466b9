"""Typed configuration: one pydantic model per parameter block, parsed once per run.

Defaults live in ``conf/base`` only; the models declare types and domains. Nodes annotate their
``params:`` inputs with these models, and Kedro's parameter validation hands them typed blocks.
"""

from mtneuro.config.base import ConfigurationError, StrictModel, format_validation_error, parse_block
from mtneuro.config.loading import config_loader, load_parameters, parameters_from_loader, parse_parameters
from mtneuro.config.merge import Layer, deep_merge, resolve
from mtneuro.config.project import ProjectParameters
from mtneuro.config.training import TrainingParameters

__all__ = [
    "ConfigurationError",
    "Layer",
    "ProjectParameters",
    "StrictModel",
    "TrainingParameters",
    "config_loader",
    "deep_merge",
    "format_validation_error",
    "load_parameters",
    "parameters_from_loader",
    "parse_block",
    "parse_parameters",
    "resolve",
]
