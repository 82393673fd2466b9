"""Task 2's AdamW runs foreach (one multi-tensor update): the same weights as the per-tensor loop."""

from __future__ import annotations

import lightning as L
import torch
from torch import nn

from mtneuro.pipelines.segmentation.engine import SegmentationModule


def _trained(foreach: bool) -> tuple[list[torch.Tensor], SegmentationModule]:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 3, 1))
    module = SegmentationModule(net, lr=0.003, weight_decay=0.0001, scheduler="onecycle")
    if not foreach:
        base = module.configure_optimizers

        def per_tensor() -> dict:
            config = base()
            for group in config["optimizer"].param_groups:
                group["foreach"] = False
            return config

        module.configure_optimizers = per_tensor  # type: ignore[method-assign]
    x = torch.randn(16, 1, 12, 12)
    y = torch.randint(0, 3, (16, 1, 12, 12))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=4)
    trainer = L.Trainer(
        accelerator="cpu",
        max_epochs=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, loader)
    return [p.detach().clone() for p in net.parameters()], module


def test_adamw_is_foreach_and_bit_for_bit_the_per_tensor_loop():
    fast, module = _trained(foreach=True)
    slow, _ = _trained(foreach=False)
    optimizer = module.trainer.optimizers[0]
    assert isinstance(optimizer, torch.optim.AdamW)
    assert optimizer.param_groups[0]["foreach"] is True
    assert module.global_step == 8
    torch.manual_seed(0)
    initial = nn.Conv2d(1, 8, 3, padding=1)  # the first layer as built: training moved it
    assert not torch.equal(fast[0], initial.weight)
    for a, b in zip(fast, slow, strict=True):
        assert torch.equal(a, b)
