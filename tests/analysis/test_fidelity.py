"""Fidelity: known answers on pathways that must (or must not) keep the response."""

from __future__ import annotations

import torch

import pathwaygrad as pg
from pathwaygrad.analysis import fidelity, fidelity_analysis

from .models import TinyCNN


def test_pruning_only_dead_neurons_keeps_the_logits_exactly():
    model = TinyCNN().eval()
    x = torch.randn(5, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    alive = pg.select_pathway(model, x, method="dead").complement()
    f = fidelity(model, x, alive)
    assert torch.allclose(f["logit"], f["full_logit"], rtol=0, atol=1e-6)
    assert torch.allclose(f["prob"], f["full_prob"], atol=1e-7)
    assert bool((f["kept"] == 1).all())
    nothing = alive._with_masks([torch.zeros_like(m) for m in alive.masks], "none")
    g = fidelity(model, x, nothing)
    # Every activation pruned: the output is the last layer's bias, whatever the input.
    assert torch.allclose(g["logit"].float(), model.f2.bias[alive.targets], atol=1e-6)


def test_fidelity_analysis_shapes_and_full_logit():
    model = TinyCNN().eval()
    x = torch.randn(7, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    res = fidelity_analysis(model, x, "neuron_mct,random", (50.0, 90.0), batch_size=3)
    v = res.values[50.0]
    assert v["logit"].shape == (7, 2)
    full = model(x).max(1).values.double().detach().numpy()
    assert abs(v["full_logit"][:, 0] - full).max() < 1e-5
    assert len(res.rows()) == 4
