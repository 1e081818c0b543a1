"""Batched results equal per-example results, for every method, with per-example targets."""

from __future__ import annotations

import pytest
import torch

import pathwaygrad as pg

from .models import MODELS, make

OPTIONS = {
    "neuron_mct": {},
    "neuron_intgrad": {"steps": 3},
    "greedy": {"step": 20.0},
    "random": {"seed": 2},
    "dgr": {"iterations": 15},
    "dead": {},
}


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("method", list(pg.PATHWAY_METHODS))
def test_batched_equals_per_example(name, method):
    model, x = make(name)
    targets = torch.tensor([0, 1, 2, 4])
    batched = pg.select_pathway(model, x, targets, method, 70.0, **OPTIONS[method])
    attr = pg.pathway_gradient(model, x, batched, targets)
    for b in range(x.shape[0]):
        one = pg.select_pathway(
            model, x[b : b + 1], int(targets[b]), method, 70.0, **OPTIONS[method]
        )
        mismatch = sum(int((m[b] != n[0]).sum()) for m, n in zip(batched.masks, one.masks))
        # DGR optimises 15 SGD steps: allow a handful of threshold flips from float round-off.
        assert mismatch <= (3 if method == "dgr" else 0), f"example {b}: {mismatch} neurons differ"
        if mismatch == 0:
            one_attr = pg.pathway_gradient(model, x[b : b + 1], one, int(targets[b]))
            torch.testing.assert_close(attr[b : b + 1], one_attr, rtol=1e-4, atol=1e-6)
        assert one.sites == batched.sites


@pytest.mark.parametrize("method", ["neuron_mct", "neuron_intgrad"])
def test_explainer_batched_equals_per_example(method):
    model, x = make("residual")
    explainer = pg.PathwayGradient(model, method=method, sparsity=85.0)
    targets = [3, 0, 1, 1]
    attr = explainer.attribute(x, target=targets)
    for b in range(4):
        torch.testing.assert_close(
            attr[b : b + 1],
            explainer.attribute(x[b : b + 1], target=targets[b]),
            rtol=1e-4,
            atol=1e-6,
        )


def test_target_forms_agree():
    model, x = make("plain")
    a = pg.select_pathway(model, x, 2)
    b = pg.select_pathway(model, x, [2, 2, 2, 2])
    c = pg.select_pathway(model, x, torch.tensor([2, 2, 2, 2]))
    d = pg.select_pathway(model, x, torch.tensor(2))
    for p in (b, c, d):
        assert all(torch.equal(m, n) for m, n in zip(a.masks, p.masks))
