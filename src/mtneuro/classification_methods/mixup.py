"""Supervised ResNet-18 with mixup (Zhang et al. 2018) of inputs and one-hot targets."""

from __future__ import annotations

from pydantic import NonNegativeFloat

from mtneuro.classification_methods.base import MethodSpec, fit_network, register_method
from mtneuro.classification_methods.supervised import SupervisedSettings


class MixupSettings(SupervisedSettings):
    """``supervised`` refined by ``mixup``."""

    #: ``lam ~ Beta(alpha, alpha)`` once per batch (0: no mixing).
    alpha: NonNegativeFloat


METHOD = register_method(
    MethodSpec(
        name="mixup",
        label="Sup w/ Mixup",
        kind="supervised",
        order=20,
        inherits=("network_training", "supervised", "mixup"),
        settings=MixupSettings,
        trainer=fit_network,
        network="mtneuro.classification_methods._supervised_network:MixupLearner",
    )
)
