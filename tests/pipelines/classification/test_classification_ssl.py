"""SSL building blocks (miner, momentum target, mixup, augmentations, encoder) and their
equivalence with the hand-written blocks that lightly's replaced: same values, same training."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from classification_helpers import HARDWARE, tiny_params
from torch import nn

from mtneuro import models, ssl
from mtneuro.classification_methods import _byol_network as byol_network
from mtneuro.classification_methods import _myow_network as myow_network
from mtneuro.classification_methods import _network, get_method, method_settings

# --------------------------------------------------------------------------------------------
# The former hand-written blocks (before lightly), kept here as the reference
# --------------------------------------------------------------------------------------------


def old_mlp_head(in_dim: int, hidden_dim: int, out_dim: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(in_dim, hidden_dim), nn.BatchNorm1d(hidden_dim), nn.ReLU(inplace=True), nn.Linear(hidden_dim, out_dim)
    )


def old_regression_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (2 - 2 * F.cosine_similarity(prediction, target.detach(), dim=-1)).mean()


def old_cosine_momentum(step: int, total_steps: int, base: float) -> float:
    if total_steps <= 0:
        return float(base)
    progress = min(max(step / total_steps, 0.0), 1.0)
    return 1.0 - (1.0 - float(base)) * (math.cos(math.pi * progress) + 1.0) / 2.0


@torch.no_grad()
def old_momentum_update(online: nn.Module, target: nn.Module, tau: float) -> None:
    p_online = [p.detach() for p in online.parameters()]
    p_target = list(target.parameters())
    torch._foreach_mul_(p_target, tau)
    torch._foreach_add_(p_target, p_online, alpha=1.0 - tau)
    for b_online, b_target in zip(online.buffers(), target.buffers(), strict=True):
        b_target.copy_(b_online)


ARCHITECTURE = {"name": "resnet18", "in_channels": 1, "representation_dim": 8, "width": 4, "stem": "small"}


def _learner(method: str, seed: int = 0, **settings: object) -> _network.NetworkLearner:
    params = tiny_params(method_overrides={method: settings} if settings else {})
    torch.manual_seed(seed)
    return _network.build_learner(
        get_method(method), ARCHITECTURE, method_settings(params, method), 4, steps_per_epoch=10, epochs=1
    )


def _patch(monkeypatch: pytest.MonkeyPatch, name: str, value: object) -> None:
    """Replace a BYOL block in the BYOL module and in MYOW's, which imports it by name."""
    for module in (byol_network, myow_network):
        if hasattr(module, name):
            monkeypatch.setattr(module, name, value)


# --------------------------------------------------------------------------------------------
# lightly equivalence
# --------------------------------------------------------------------------------------------


def test_projection_heads_match_the_former_mlp_with_the_same_initialisation():
    torch.manual_seed(0)
    old = old_mlp_head(12, 24, 6)
    torch.manual_seed(0)
    new = byol_network.projection_head(12, 24, 6)
    old_params, new_params = list(old.parameters()), list(new.parameters())
    assert [p.shape for p in old_params] == [p.shape for p in new_params]
    for a, b in zip(old_params, new_params, strict=True):  # same draws in the same order
        assert torch.equal(a, b)
    new.load_state_dict(dict(zip(new.state_dict(), old.state_dict().values(), strict=True)))
    x = torch.randn(16, 12, generator=torch.Generator().manual_seed(1))
    for train in (True, False):
        old.train(train), new.train(train)
        assert torch.equal(old(x), new(x))


def test_regression_loss_keeps_the_value_and_gradient_of_2_minus_2cos():
    gen = torch.Generator().manual_seed(0)
    for n, d in [(8, 16), (37, 5), (128, 256)]:
        p_old = torch.randn(n, d, generator=gen, requires_grad=True)
        p_new = p_old.detach().clone().requires_grad_(True)
        z = torch.randn(n, d, generator=gen)
        old, new = old_regression_loss(p_old, z), byol_network.regression_loss(p_new, z)
        torch.testing.assert_close(new, old, rtol=1e-6, atol=1e-6)
        old.backward(), new.backward()
        assert torch.equal(p_new.grad, p_old.grad)
    same = torch.randn(4, 3, generator=gen)
    assert float(byol_network.regression_loss(same, same)) == pytest.approx(0.0, abs=1e-6)
    assert float(byol_network.regression_loss(same, -same)) == pytest.approx(4.0, abs=1e-6)


@pytest.mark.parametrize("method", ["byol", "myow", "myow_merged"])
def test_one_training_step_has_the_loss_of_the_former_formula(method, monkeypatch):
    views = torch.randn(16, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    losses, grads = [], []
    for loss_function in (byol_network.regression_loss, old_regression_loss):
        _patch(monkeypatch, "regression_loss", loss_function)
        module = _learner(method, seed=3)
        torch.manual_seed(4)  # the miner draws from torch's generator
        loss = module.ssl_loss(views)
        loss.backward()
        losses.append(loss.detach())
        grads.append([p.grad.clone() for p in module.encoder.parameters()])
    torch.testing.assert_close(losses[0], losses[1], rtol=1e-6, atol=1e-7)
    for new, old in zip(*grads, strict=True):
        assert torch.equal(new, old)


def test_cosine_momentum_equals_the_former_formula_at_every_step():
    for base in (0.99, 0.996, 0.9):
        for total in (1, 2, 3, 7, 13, 37, 100, 250, 1000):
            for step in range(total + 1):  # incl. the last step
                assert byol_network.cosine_momentum(step, total, base) == old_cosine_momentum(step, total, base), (
                    base,
                    total,
                    step,
                )
    assert byol_network.cosine_momentum(0, 100, 0.996) == pytest.approx(0.996)
    assert byol_network.cosine_momentum(50, 100, 0.996) == pytest.approx(0.998)
    assert byol_network.cosine_momentum(100, 100, 0.996) == 1.0


def test_momentum_update_equals_the_former_update_and_copies_batchnorm_buffers():
    torch.manual_seed(0)
    online = nn.Sequential(nn.Linear(5, 4), nn.BatchNorm1d(4))
    target = copy.deepcopy(online)
    with torch.no_grad():
        for p in online.parameters():
            p.add_(torch.randn_like(p))
    online(torch.randn(6, 5))  # BN running statistics change
    expected = copy.deepcopy(target)
    before = [p.clone() for p in target.parameters()]
    old_momentum_update(online, expected, 0.9)
    byol_network.momentum_update(online, target, tau=0.9)
    for a, b in zip(target.state_dict().values(), expected.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    for p_t, p_old, p_o in zip(target.parameters(), before, online.parameters(), strict=True):
        torch.testing.assert_close(p_t, 0.9 * p_old + 0.1 * p_o)
    torch.testing.assert_close(target[1].running_mean, online[1].running_mean)
    assert int(target[1].num_batches_tracked) == 1


def test_training_with_lightly_blocks_equals_training_with_the_former_blocks(images, monkeypatch):
    """MYOW (both loss terms, cascaded heads, momentum target) trained twice with the same seed."""
    from mtneuro.pipelines.classification import nodes

    params = tiny_params(network_training__epochs=2)
    probe = (np.random.default_rng(0).random((6, 16, 16)) * 255).astype(np.uint8)
    new, _ = nodes.train_self_supervised(images, params, HARDWARE, method="myow", config="roi_c1", seed=1)
    _patch(monkeypatch, "projection_head", old_mlp_head)
    _patch(monkeypatch, "regression_loss", old_regression_loss)
    _patch(monkeypatch, "cosine_momentum", old_cosine_momentum)
    _patch(monkeypatch, "momentum_update", old_momentum_update)
    old, _ = nodes.train_self_supervised(images, params, HARDWARE, method="myow", config="roi_c1", seed=1)
    for a, b in zip(new.network.state_dict().values(), old.network.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    np.testing.assert_array_equal(new.embed(probe), old.embed(probe))


# --------------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------------


def test_miner_returns_true_nearest_neighbours():
    gen = torch.Generator().manual_seed(0)
    reps = torch.randn(40, 12, generator=gen)
    got = myow_network.nearest_neighbours(reps, reps, k=3, exclude=torch.arange(40)).numpy()
    unit = reps.numpy() / np.linalg.norm(reps.numpy(), axis=1, keepdims=True)
    for i in range(40):
        dist = [1 - float(unit[i] @ unit[j]) if j != i else np.inf for j in range(40)]  # brute-force cosine distance
        assert list(got[i]) == list(np.argsort(dist, kind="stable")[:3])
    mined = myow_network.mine_views(reps, k=1).numpy()
    assert (mined == got[:, 0]).all() and (mined != np.arange(40)).all()
    queries, pool = torch.randn(7, 12, generator=gen), torch.randn(25, 12, generator=gen)
    got = myow_network.nearest_neighbours(queries, pool, k=2).numpy()
    sims = (queries / queries.norm(dim=1, keepdim=True)) @ (pool / pool.norm(dim=1, keepdim=True)).T
    assert (got == np.argsort(-sims.numpy(), axis=1, kind="stable")[:, :2]).all()


def test_ramp_weight_rises_linearly_to_the_mined_weight():
    assert myow_network.ramp_weight(0, 0.1, 10) == 0 and myow_network.ramp_weight(5, 0.1, 10) == pytest.approx(0.05)
    assert myow_network.ramp_weight(20, 0.1, 10) == pytest.approx(0.1)
    assert myow_network.ramp_weight(3, 0.1, 0) == pytest.approx(0.1)


def test_target_network_follows_online_network_during_training():
    module = _learner("byol", momentum_base=0.9)
    with torch.no_grad():
        for p in module.encoder.parameters():
            p.add_(1.0)
    old = [p.clone() for p in module.target_encoder.parameters()]
    module.on_train_batch_end(None, None, 0)  # global_step 0: tau = base
    for p_t, p_old, p_o in zip(module.target_encoder.parameters(), old, module.encoder.parameters(), strict=True):
        torch.testing.assert_close(p_t, 0.9 * p_old + 0.1 * p_o)
    assert module.tau == pytest.approx(0.9)
    assert not any(p.requires_grad for p in module.target_encoder.parameters())
    assert not any(p.requires_grad for p in module.target_projector.parameters())
    assert all(p.requires_grad for p in module.projector.parameters())


def test_each_network_method_names_its_own_lightning_module():
    assert [type(_learner(m)).__name__ for m in ("supervised", "mixup", "byol", "myow", "myow_merged")] == [
        "SupervisedLearner",
        "MixupLearner",
        "ByolLearner",
        "MyowLearner",
        "MyowMergedLearner",
    ]
    assert hasattr(_learner("supervised"), "head") and not hasattr(_learner("supervised"), "projector")
    myow, merged = _learner("myow"), _learner("myow_merged")
    assert hasattr(myow, "projector2") and hasattr(myow, "target_projector2")
    assert not hasattr(merged, "projector2") and hasattr(merged, "predictor")
    with pytest.raises(ValueError, match="not a network method"):
        _network.NetworkLearner(get_method("pca"), ARCHITECTURE, method_settings(tiny_params(), "byol"), 4, 1, 1)


def test_mixup_makes_convex_combinations_of_inputs_and_one_hot_targets():
    torch.manual_seed(0)
    x = torch.randn(16, 1, 8, 8)
    y = torch.nn.functional.one_hot(torch.randint(0, 4, (16,)), 4).float()
    x_mix, y_mix, lam, perm = ssl.mixup(x, y, alpha=0.4)
    assert 0.0 <= lam <= 1.0
    assert sorted(perm.tolist()) == list(range(16))
    torch.testing.assert_close(x_mix, lam * x + (1 - lam) * x[perm])
    torch.testing.assert_close(y_mix, lam * y + (1 - lam) * y[perm])
    torch.testing.assert_close(y_mix.sum(dim=1), torch.ones(16))
    assert (y_mix >= 0).all() and (y_mix <= 1).all()
    x_fixed, y_fixed, _, _ = ssl.mixup(x, y, alpha=1.0, lam=0.25, perm=torch.arange(16).flip(0))
    torch.testing.assert_close(x_fixed, 0.25 * x + 0.75 * x.flip(0))
    torch.testing.assert_close(y_fixed, 0.25 * y + 0.75 * y.flip(0))


def test_augmentations_keep_shape_and_exact_geometry():
    torch.manual_seed(0)
    x = torch.rand(32, 1, 16, 16)
    out = ssl.augment_batch(x, tiny_params().augmentation)
    assert out.shape == x.shape and torch.isfinite(out).all()
    assert not torch.allclose(out, x)
    # flips and 90-degree rotations alone permute pixels exactly
    geo = ssl.random_geometry(x, (1.0, 1.0), flip=True, rot90=True)
    for a, b in zip(x, geo, strict=True):
        candidates = [torch.rot90(a, k, (1, 2)) for k in range(4)]
        candidates += [torch.flip(c, (2,)) for c in candidates]
        assert any(torch.allclose(b, c, atol=1e-5) for c in candidates)
    blurred = ssl.gaussian_blur(x, torch.full((32,), 1.0))
    assert blurred.std() < x.std()
    torch.testing.assert_close(blurred.mean(), x.mean(), atol=0.02, rtol=0)


def test_resnet_encoder_shapes_and_preprocessing():
    net = models.build_resnet18_encoder(in_channels=1, width=8, representation_dim=256, stem="imagenet")
    assert net(torch.rand(2, 1, 32, 32)).shape == (2, 256)
    assert sum(1 for m in net.modules() if isinstance(m, torch.nn.Conv2d)) == 20  # ResNet-18: 17 convs + 3 shortcuts
    small = models.build_resnet18_encoder(in_channels=1, width=4, representation_dim=16, stem="small")
    assert small(torch.rand(3, 1, 8, 8)).shape == (3, 16)
    raw = np.random.default_rng(0).integers(0, 256, (3, 64, 64), dtype=np.uint8)
    direct = models.resize_images(raw, 16)
    via = models.resize_images(models.resize_images(raw, 32)[:, 0], 16)
    torch.testing.assert_close(direct, via)
    assert direct.shape == (3, 1, 16, 16) and float(direct.min()) >= 0 and float(direct.max()) <= 1
