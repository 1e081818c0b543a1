"""Decoding through a pathway increases the target logit (and a neuron's activation)."""

from __future__ import annotations

import torch

import pathwaygrad as pg
from pathwaygrad.analysis import compute_pathways, decode, decode_pathways, pathway_specs
from pathwaygrad.analysis.decoding import FourierImage, top_neuron

from .models import TinyCNN


def test_fourier_image_in_unit_range():
    img = FourierImage(2, 3, 8, 8, std=1.0)().detach()
    assert img.shape == (2, 3, 8, 8) and float(img.min()) >= 0 and float(img.max()) <= 1


def test_decoding_increases_the_target_logit():
    model = TinyCNN().eval()
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    p = pg.select_pathway(model, x, method="neuron_mct", sparsity=50)
    res = decode(model, p.masks, p.targets, (3, 8, 8), steps=40, jitter=1)
    assert res.images.shape == (2, 3, 8, 8)
    assert bool((res.end > res.start + 0.02).all())
    full = decode(model, None, p.targets, (3, 8, 8), steps=40, jitter=1)
    assert bool((full.end > full.start + 0.02).all())


def test_decode_pathways_and_top_neuron():
    model = TinyCNN().eval()
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    ps = compute_pathways(
        model, x, pathway_specs("neuron_mct;greedy:step=20"), (60.0,), keep_scores=True
    )
    call, idx, score = top_neuron(
        model, x, ps.pathways[("neuron_mct", 60.0)], ps.scores["neuron_mct"]
    )
    assert call == 1  # the F.relu after c2: the last call with a (B, C, H, W) output
    want = ps.scores["neuron_mct"][1].flatten(1).max(1)
    assert torch.equal(idx, want.indices)
    out = decode_pathways(model, x, ps, 60.0, steps=30, jitter=1)
    assert set(out["class"]) == {"full", "neuron_mct", "greedy(step=20)"}
    for lab in ("neuron_mct", "greedy(step=20)"):
        r = out["neuron"][lab]
        assert bool((r.end >= r.start).all())
