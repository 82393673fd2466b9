"""Supervised and mixup ResNet-18: cross-entropy of a dropout + linear head over the representation."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from mtneuro import ssl
from mtneuro.classification_methods._network import NetworkLearner


class SupervisedLearner(NetworkLearner):
    """Cross-entropy of the head on (optionally augmented) images; the head is the read-out."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.head = nn.Sequential(
            nn.Dropout(float(self.settings.dropout)), nn.Linear(self.representation_dim, self.n_classes)
        )

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.settings.augment:
            x = self.augment(x)
        return self.classification_loss(x, y)

    def classification_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(self.head(self.encoder(x)), y)


class MixupLearner(SupervisedLearner):
    """The same on mixup (Zhang et al. 2018) of inputs and one-hot targets."""

    def classification_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        onehot = F.one_hot(y, self.n_classes).to(x.dtype)
        x, targets, _, _ = ssl.mixup(x, onehot, float(self.settings.alpha))
        return ssl.soft_cross_entropy(self.head(self.encoder(x)), targets)
