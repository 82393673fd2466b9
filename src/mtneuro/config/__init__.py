"""Typed configuration: one pydantic model per parameter block, parsed once per run.

Defaults live in ``conf/base`` only; the models declare types and domains. Nodes annotate their
``params:`` inputs with these models, and Kedro's parameter validation hands them typed blocks.
"""

from mtneuro.config.base import ConfigurationError, StrictModel, block_value, format_validation_error, parse_block
from mtneuro.config.loading import config_loader, load_parameters, parameters_from_loader, parse_parameters
from mtneuro.config.project import ProjectParameters
from mtneuro.config.training import TrainingOverrides, TrainingParameters

__all__ = [
    "ConfigurationError",
    "ProjectParameters",
    "StrictModel",
    "TrainingOverrides",
    "TrainingParameters",
    "block_value",
    "config_loader",
    "format_validation_error",
    "load_parameters",
    "parameters_from_loader",
    "parse_block",
    "parse_parameters",
]
