"""Control row of Tables 1 and 3: the Task 1 network, randomly initialised, never trained.

The ResNet-18 of ``classification.encoder`` with the weights of its initialisation (seeded by
the run's seed), frozen in eval mode (batch norms at their initial statistics), read out by the
linear classifier of the SSL methods (``classification.readout``). It shows how much a linear
read-out gets from the architecture and the input alone; the paper has no such row in Table 1
(the report prints "—"). In Task 3 it is what the authors' *supervised* row actually probes:
their ``get_latents(..., ssl=0)`` builds ``resnet_xray('resnet18')`` and loads no checkpoint
(MTNeuro ``annots/latents.py``, lines 29-31). Cost: one forward pass per embedded image.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mtneuro.classification_methods.base import MethodSpec, register_method
from mtneuro.config.base import StrictModel
from mtneuro.config.classification import Augmentation
from mtneuro.config.training import TrainingParameters

if TYPE_CHECKING:  # torch is imported when the run trains, not when the parameters are checked
    import torch
    from torch import nn


class RandomEncoderSettings(StrictModel):
    """``random_encoder`` (an empty block). ``augmentation`` is merged into every network method's
    settings; an untrained encoder sees no augmented views, so it is recorded but unused."""

    augmentation: Augmentation


@dataclass
class UntrainedNetwork:
    """What the Task 1 training node expects of a trainer's module: the ``encoder``."""

    encoder: nn.Module
    history: list[dict[str, float]] = field(default_factory=list)


def random_network(
    method: MethodSpec,
    x: torch.Tensor,
    y: torch.Tensor,
    architecture: Mapping[str, Any],
    settings: RandomEncoderSettings,
    hardware: TrainingParameters,
    seed: int,
    n_classes: int,
) -> tuple[UntrainedNetwork, dict[str, Any]]:
    """The encoder of ``architecture`` as initialised with ``seed`` (images and labels unused)."""
    from mtneuro import models, training

    del y, settings, hardware, n_classes
    training.seed_everything(seed)
    encoder = models.build_task1_encoder(dict(architecture)).eval()
    history = {
        "method": method.name,
        "epochs": [],
        "n_train": len(x),
        "steps": 0,
        "train_seconds": 0.0,
        "images_per_second": float("nan"),
        "note": "randomly initialised, not trained",
    }
    return UntrainedNetwork(encoder), history


METHOD = register_method(
    MethodSpec(
        name="random_encoder",
        label="Random encoder (untrained, frozen) + linear read-out",
        kind="ssl",
        order=90,
        inherits=("random_encoder",),
        settings=RandomEncoderSettings,
        trainer=random_network,
    )
)
