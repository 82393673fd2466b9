"""Supervised ResNet-18: cross-entropy on a dropout + linear head over the representation."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from mtneuro.classification_methods.base import MethodSpec, fit_network, register_method
from mtneuro.config.classification import NetworkSettings


class SupervisedSettings(NetworkSettings):
    """``network_training`` + ``augmentation`` refined by ``supervised``."""

    dropout: Annotated[float, Field(ge=0, lt=1)]


METHOD = register_method(
    MethodSpec(
        name="supervised",
        label="Supervised",
        kind="supervised",
        order=10,
        inherits=("network_training", "supervised"),
        settings=SupervisedSettings,
        trainer=fit_network,
        network="mtneuro.classification_methods._supervised_network:SupervisedLearner",
    )
)
