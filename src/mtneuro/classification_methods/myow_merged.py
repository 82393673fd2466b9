"""MYOW-merged: MYOW with one shared projector and predictor for both terms."""

from __future__ import annotations

from mtneuro.classification_methods.base import MethodSpec, fit_network, register_method
from mtneuro.classification_methods.myow import MyowSettings

METHOD = register_method(
    MethodSpec(
        name="myow_merged",
        label="MYOW-m",
        kind="ssl",
        order=50,
        inherits=("network_training", "byol", "myow", "myow_merged"),
        settings=MyowSettings,
        trainer=fit_network,
        network="mtneuro.classification_methods._myow_network:MyowMergedLearner",
    )
)
