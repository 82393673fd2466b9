"""MYOW (Azabou et al. 2021): BYOL plus mined views, each sample's nearest neighbour in the
batch (target representation) predicted through a second, cascaded projector/predictor."""

from __future__ import annotations

from pydantic import NonNegativeFloat, PositiveInt

from mtneuro.classification_methods.base import MethodSpec, fit_network, register_method
from mtneuro.classification_methods.byol import ByolSettings
from mtneuro.config.classification import EpochSpan


class MyowSettings(ByolSettings):
    """``byol`` refined by ``myow``."""

    mined_weight: NonNegativeFloat
    #: The mined weight is ramped up linearly over these epochs.
    ramp_epochs: EpochSpan
    #: Nearest neighbours (cosine, target representation) to pick the mined view from.
    k: PositiveInt


METHOD = register_method(
    MethodSpec(
        name="myow",
        label="MYOW",
        kind="ssl",
        order=40,
        inherits=("network_training", "byol", "myow"),
        settings=MyowSettings,
        trainer=fit_network,
        network="mtneuro.classification_methods._myow_network:MyowLearner",
    )
)
