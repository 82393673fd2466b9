"""A new SSL objective is one module plus a YAML block: a toy SimSiam-like objective, written
to one file here (its settings, its Lightning module with its heads and loss, its registration),
is checked against its YAML block and trained through the Task 1 nodes at tiny sizes."""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml
from classification_helpers import HARDWARE, tiny_params

from mtneuro.classification_methods import get_method, method_settings
from mtneuro.classification_methods.base import unregister_method
from mtneuro.pipelines.classification import nodes
from mtneuro.plugin_parameters import load_checked_parameters

TOY = "toy_simsiam"

#: The whole contribution: one module (what a contributor adds under classification_methods/).
TOY_MODULE = '''
"""SimSiam-like toy (Chen & He 2021): predict one view's projection from the other's, stop-grad."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from pydantic import PositiveInt
from torch import nn

from mtneuro.classification_methods._network import NetworkLearner
from mtneuro.classification_methods.base import MethodSpec, fit_network, register_method
from mtneuro.config.classification import NetworkSettings


class ToySettings(NetworkSettings):
    projector_out: PositiveInt


class ToySimSiam(NetworkLearner):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        out = int(self.settings.projector_out)
        self.projector = nn.Sequential(nn.Linear(self.representation_dim, out), nn.BatchNorm1d(out))
        self.predictor = nn.Sequential(nn.Linear(out, out), nn.ReLU(), nn.Linear(out, out))

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        z1, z2 = self.projector(self.encoder(self.augment(x))), self.projector(self.encoder(self.augment(x)))
        p1, p2 = self.predictor(z1), self.predictor(z2)
        cos = F.cosine_similarity
        return -(cos(p1, z2.detach()).mean() + cos(p2, z1.detach()).mean()) / 2


METHOD = register_method(
    MethodSpec(
        name="toy_simsiam",
        label="Toy SimSiam (test)",
        kind="ssl",
        order=45,
        inherits=("network_training", "toy_simsiam"),
        settings=ToySettings,
        trainer=fit_network,
        network=__name__ + ":ToySimSiam",
    )
)
'''

#: ... plus its YAML block (and its name in the method list).
TOY_YAML = """
classification:
  methods: [byol, toy_simsiam]
  toy_simsiam:
    projector_out: 16
"""


@pytest.fixture
def toy_objective(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    (tmp_path / "toy_ssl_objective.py").write_text(TOY_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.import_module("toy_ssl_objective")
    yield TOY
    unregister_method(TOY)
    sys.modules.pop("toy_ssl_objective", None)


def test_the_toy_objectives_yaml_block_is_checked_against_its_settings(toy_objective: str, project_path: Path):
    from mtneuro.config import ConfigurationError

    grid = yaml.safe_load(TOY_YAML)
    params = load_checked_parameters(project_path / "conf", "tiny", grid)
    assert method_settings(params.classification, toy_objective).model_dump()["projector_out"] == 16
    grid["classification"][toy_objective]["projector_outt"] = 16
    with pytest.raises(ConfigurationError, match=re.escape("classification.toy_simsiam.projector_outt")):
        load_checked_parameters(project_path / "conf", "tiny", grid)


def test_a_toy_ssl_objective_in_one_module_trains_through_the_task1_nodes(toy_objective: str, images):
    block = yaml.safe_load(TOY_YAML)["classification"][toy_objective]
    params = tiny_params(**{toy_objective: block, "network_training__epochs": 3})
    assert get_method(toy_objective).kind == "ssl"
    encoder, history = nodes.train_self_supervised(
        images, params, HARDWARE, method=toy_objective, config="roi_c1", seed=0
    )
    losses = [e["loss"] for e in history["epochs"]]
    assert len(losses) == 3 and all(np.isfinite(losses)) and all(-1.0 <= v <= 1.0 for v in losses), losses
    assert losses[-1] < losses[0], losses  # negative cosine: falls as the views' predictions align
    assert encoder.embed(np.zeros((3, 16, 16), np.uint8)).shape == (3, 32)  # encoder.representation_dim
    assert encoder.metadata["method"] == toy_objective
    readout = nodes.fit_linear_readout(encoder, images, params, HARDWARE, config="roi_c1", seed=0)
    rows, _ = nodes.evaluate_run(
        encoder, readout, history, images, params, HARDWARE, method=toy_objective, config="roi_c1", seed=0
    )
    assert [r["config"] for r in rows] == ["ROI-C1", "ROI-C2"]
    assert all(0.0 <= r["accuracy"] <= 1.0 and np.isfinite(r["accuracy"]) for r in rows)
