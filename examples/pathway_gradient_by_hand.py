"""Pathway gradient with NeuronMCT, reproduced in plain PyTorch (the "manual twin").

This script documents exactly what ``pg.PathwayGradient(model, "neuron_mct", sparsity=90)``
computes, with nothing but forward hooks on ``nn.ReLU`` modules (so it only works on models
whose activations are *non-in-place* modules, each called once: pathwaygrad itself has no such
limit). It prints the largest difference between the two, which should be ~1e-7.

    python examples/pathway_gradient_by_hand.py
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

import pathwaygrad as pg


def pathway_gradient_by_hand(model: nn.Sequential, x: torch.Tensor, sparsity: float):
    relus = [m for m in model if isinstance(m, nn.ReLU)]
    # 1. one forward + backward: activations a and gradients dy/da of every ReLU output
    acts = []
    hooks = [r.register_forward_hook(lambda m, i, o: acts.append(o)) for r in relus]
    logits = model(x)
    for h in hooks:
        h.remove()
    target = logits.argmax(1)
    y = logits.gather(1, target[:, None]).sum()
    grads = torch.autograd.grad(y, acts)
    # 2. NeuronMCT scores |a * dy/da|; 3. one global threshold per example (numpy percentile)
    scores = [(a * g).abs().detach() for a, g in zip(acts, grads)]
    masks = []
    for b in range(x.shape[0]):
        flat = np.concatenate([s[b].flatten().double().numpy() for s in scores])
        thr = np.percentile(flat, sparsity)
        masks.append([s[b] > thr for s in scores])
    masks = [torch.stack([m[k] for m in masks]) for k in range(len(relus))]
    # 4. the masked network's input gradient of the same target logit
    hooks = [
        r.register_forward_hook(lambda m, i, o, k=k: o * masks[k]) for k, r in enumerate(relus)
    ]
    x = x.detach().requires_grad_(True)
    y = model(x).gather(1, target[:, None]).sum()
    for h in hooks:
        h.remove()
    (attr,) = torch.autograd.grad(y, x)
    return attr


def main() -> float:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1, stride=2),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(8 * 8 * 8, 32),
        nn.ReLU(),
        nn.Linear(32, 10),
    ).eval()
    x = torch.randn(4, 3, 16, 16)
    ours = pg.PathwayGradient(model, method="neuron_mct", sparsity=90.0).attribute(x)
    by_hand = pathway_gradient_by_hand(model, x, 90.0)
    diff = float((ours - by_hand).abs().max())
    print(
        f"max |pathwaygrad - by hand| = {diff:.3g} (max |map| = {float(by_hand.abs().max()):.3g})"
    )
    return diff


if __name__ == "__main__":
    main()
