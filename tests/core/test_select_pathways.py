"""select_pathways: several sparsities from one scoring run equal separate select_pathway calls."""

from __future__ import annotations

import warnings

import pytest
import torch

import pathwaygrad as pg
from pathwaygrad.errors import UserError

from .models import make

CASES = [
    ("neuron_mct", {}),
    ("neuron_intgrad", {"steps": 3}),
    ("random", {"seed": 3}),
    ("dgr", {"seed": 1, "iterations": 5}),
    ("greedy", {"step": 20.0}),
    ("dead", {}),
]


@pytest.mark.parametrize("name", ["reused_inplace", "residual"])
@pytest.mark.parametrize("method,options", CASES)
def test_each_sparsity_equals_select_pathway(name, method, options):
    model, x = make(name)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    sparsities = [50, 90.0, 99]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # empty calls at 99 on these tiny models
        got = pg.select_pathways(model, x, None, method, sparsities, **options)
        assert list(got) == [50.0, 90.0, 99.0]
        for s in sparsities:
            want = pg.select_pathway(model, x, None, method, s, **options)
            p = got[float(s)]
            assert p.sites == want.sites and p.method == method
            assert torch.equal(p.targets, want.targets)
            assert all(torch.equal(a, b) for a, b in zip(p.masks, want.masks)), (method, s)
            assert torch.equal(p.sparsity, want.sparsity)
            assert torch.equal(p.requested_sparsity, want.requested_sparsity)
            torch.testing.assert_close(p.full_logits, want.full_logits)
    # the model is untouched and has no hooks left
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())


def test_bad_sparsities_are_refused():
    model, x = make("plain")
    with pytest.raises(UserError, match="list of numbers"):
        pg.select_pathways(model, x, sparsities=90.0)
    with pytest.raises(UserError, match="at least one"):
        pg.select_pathways(model, x, sparsities=[])
    with pytest.raises(UserError, match="sparsity"):
        pg.select_pathways(model, x, sparsities=[50, 100])
    with pytest.raises(UserError, match="unknown pathway method"):
        pg.select_pathways(model, x, method="nope")


def test_neurons_are_scored_once(monkeypatch):
    from pathwaygrad import selection

    calls = []
    scores = selection._scores

    def counting(*args, **kwargs):
        calls.append(args[0])
        return scores(*args, **kwargs)

    monkeypatch.setattr(selection, "_scores", counting)
    model, x = make("functional")
    out = pg.select_pathways(model, x, method="neuron_intgrad", sparsities=(70, 80, 90), steps=2)
    assert calls == ["neuron_intgrad"] and len(out) == 3
    real = torch.stack([p.sparsity for p in out.values()])
    assert bool((real[1:] >= real[:-1]).all())  # sparser pathways as the sparsity rises
