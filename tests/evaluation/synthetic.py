"""Synthetic data whose truth is known: the class is decided only by a 2 x 2 pixel region.

Images (1, 8, 8): every pixel is N(0, 1) noise except the region ``REGION`` (rows 2-3,
columns 5-6), which holds +1.5 (class 1) or -1.5 (class 0) plus N(0, 0.3) noise. A tiny model
learns the task to ~100 %; with the region removed, no model can beat chance (50 %).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import TensorDataset

SIZE = 8
REGION = (slice(2, 4), slice(5, 7))  # 4 of 64 pixels = 6.25 %


def make_data(n: int, seed: int) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = torch.randn(n, 1, SIZE, SIZE, generator=g)
    signal = (y.float() * 2 - 1).view(n, 1, 1, 1) * 1.5
    x[:, :, REGION[0], REGION[1]] = signal + 0.3 * torch.randn(n, 1, 2, 2, generator=g)
    return TensorDataset(x, y)


def region_map(model, inputs, targets):
    """The ground-truth map: 1 on the region, 0 elsewhere (B, 1, H, W)."""
    m = torch.zeros(inputs.shape[0], 1, SIZE, SIZE)
    m[:, :, REGION[0], REGION[1]] = 1.0
    return m


def mlp() -> nn.Module:
    """A tiny classifier (module level, so worker processes can build it)."""
    return nn.Sequential(nn.Flatten(), nn.Linear(SIZE * SIZE, 16), nn.ReLU(), nn.Linear(16, 2))


def cnn() -> nn.Module:
    """A tiny CNN for the sanity checks (3 units with parameters)."""
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(8 * SIZE * SIZE, 2),
    )


def gradient_map(model, inputs, targets):
    """Plain signed input gradient of the target logit (independent of the core library)."""
    x = inputs.detach().clone().requires_grad_(True)
    out = model(x)
    out.gather(1, targets.view(-1, 1)).sum().backward()
    return x.grad.detach()


def train(model: nn.Module, data: TensorDataset, epochs: int = 30, seed: int = 0) -> nn.Module:
    from pathwaygrad.training import train_classifier

    train_classifier(
        model,
        data,
        None,
        epochs=epochs,
        batch_size=64,
        lr=1e-2,
        augment=False,
        seed=seed,
        progress=False,
    )
    return model.eval()
