"""Small deterministic models for the analysis tests."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class TinyCNN(nn.Module):
    """conv-ReLU(module)-conv-F.relu-avgpool-fc-ReLU-fc on (B, 3, 8, 8); 4 classes."""

    def __init__(self, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.c1 = nn.Conv2d(3, 6, 3, padding=1)
        self.r1 = nn.ReLU()
        self.c2 = nn.Conv2d(6, 8, 3, padding=1)
        self.f1 = nn.Linear(8 * 4 * 4, 16)
        self.f2 = nn.Linear(16, 4)

    def forward(self, x):
        h = self.r1(self.c1(x))
        h = F.relu(self.c2(h))
        h = F.avg_pool2d(h, 2).flatten(1)
        return self.f2(torch.relu(self.f1(h)))


class MLP(nn.Module):
    """Fully connected ReLU network with the given widths (inputs (B, widths[0]))."""

    def __init__(self, widths=(5, 40, 3), seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))

    def forward(self, x):
        for layer in self.layers[:-1]:
            x = F.relu(layer(x))
        return self.layers[-1](x)


def ray_radius(mlp: MLP, x: torch.Tensor, u: torch.Tensor, keep=None) -> float:
    """Exact distance along unit ``u`` (1-D) from ``x`` (1-D) to the first change of the on/off
    pattern of the kept hidden neurons of ``mlp``, traced region by region in float64.

    Inside one region every pre-activation is affine in t, z(t) = z0 + t dz, so the next
    boundary is the smallest positive -z0/dz over the kept neurons: an independent oracle.
    ``keep``: one bool vector per hidden layer (None: all kept).
    """
    ws = [(lay.weight.detach().double(), lay.bias.detach().double()) for lay in mlp.layers[:-1]]
    keep = keep or [torch.ones(w.shape[0], dtype=torch.bool) for w, _ in ws]
    h, dh = x.double(), u.double()
    best = float("inf")
    for (w, b), k in zip(ws, keep):
        z, dz = w @ h + b, w @ dh
        t = -z / dz
        cand = t[(t > 0) & k & (dz != 0)]
        if len(cand):
            best = min(best, float(cand.min()))
        on = (z > 0) & k
        h, dh = z * on, dz * on
    return best
