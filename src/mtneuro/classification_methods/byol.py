"""BYOL (Grill et al. 2020): an online encoder + projector + predictor regress a momentum
target's projection of another augmented view."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, PositiveInt

from mtneuro.classification_methods.base import MethodSpec, fit_network, register_method
from mtneuro.config.classification import NetworkSettings


class ByolSettings(NetworkSettings):
    """``network_training`` + ``augmentation`` refined by ``byol``."""

    projector_hidden: PositiveInt
    projector_out: PositiveInt
    predictor_hidden: PositiveInt
    #: Target momentum at the first step (cosine schedule to 1).
    momentum_base: Annotated[float, Field(ge=0, le=1)]


METHOD = register_method(
    MethodSpec(
        name="byol",
        label="BYOL",
        kind="ssl",
        order=30,
        inherits=("network_training", "byol"),
        settings=ByolSettings,
        trainer=fit_network,
        network="mtneuro.classification_methods._byol_network:ByolLearner",
    )
)
