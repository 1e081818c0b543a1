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


@pytest.mark.parametrize("method,options", CASES)
def test_return_scores_gives_the_scores_of_the_one_scoring_run(method, options):
    model, x = make("residual")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sweep = pg.select_pathways(model, x, None, method, [60, 90], return_scores=True, **options)
        plain = pg.select_pathways(model, x, None, method, [60, 90], **options)
    pathways, scores = sweep
    assert list(pathways) == list(plain) == [60.0, 90.0]
    for s in plain:
        assert all(torch.equal(a, b) for a, b in zip(pathways[s].masks, plain[s].masks))
    if method in ("greedy", "dead"):
        assert scores is None
        return
    want = pg.score_neurons(model, x, None, method, **options)
    assert scores.sites == want.sites and scores.activations == ("relu",)
    assert torch.equal(scores.targets, want.targets)
    assert all(torch.equal(a, b) for a, b in zip(scores.scores, want.scores))
    # and the pathways are these scores thresholded
    from pathwaygrad.thresholds import threshold_masks

    kind = "per_layer" if method == "random" else "global"
    masks = threshold_masks(scores.scores, 90.0, kind)
    assert all(torch.equal(a, b) for a, b in zip(pathways[90.0].masks, masks))
