"""Activation kinds other than ReLU, and the "auto" default that picks them.

Oracles: the hand-gated models of ``models.py`` (TransformerLike: GELU MLPs beside attention and
LayerNorm; MobileLike: Hardswish, in-place Hardswish and F.hardsigmoid).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import pathwaygrad as pg
from pathwaygrad.errors import NoActivationError
from pathwaygrad.pathway import Pathway
from pathwaygrad.sites import ActivationRunner, resolve_activations

from .models import MODELS, OTHER_MODELS, hand_activations, hand_gradient, make

KINDS = {"transformer": ("gelu",), "mobile": ("hardswish", "hardsigmoid")}


def _on(name, device):
    model, x = make(name)
    return model.to(device), x.to(device)


def _targets(model, x):
    with torch.no_grad():
        return model(x).argmax(1)


@pytest.mark.parametrize("name", list(MODELS))
def test_auto_is_relu_on_relu_models_and_bit_identical(name):
    model, x = make(name)
    assert resolve_activations(model, x) == (("relu",), None)
    auto = pg.select_pathway(model, x, sparsity=70)
    relu = pg.select_pathway(model, x, sparsity=70, activations=("relu",))
    assert auto.activations == ("relu",) and "activations_note" not in auto.info
    assert all(torch.equal(a, b) for a, b in zip(auto.masks, relu.masks))
    assert torch.equal(pg.pathway_gradient(model, x, auto), pg.pathway_gradient(model, x, relu))


@pytest.mark.parametrize("name", list(OTHER_MODELS))
def test_auto_uses_the_kinds_a_model_without_relu_calls(name):
    model, x = make(name)
    kinds, note = resolve_activations(model, x, None)
    assert kinds == KINDS[name]
    assert note == f"this model calls no ReLU; using {', '.join(KINDS[name])}"
    p = pg.select_pathway(model, x, sparsity=50)
    assert p.activations == KINDS[name] and p.info["activations_note"] == note
    assert {s.kind for s in pg.activation_sites(model, x)} == set(KINDS[name])
    scores = pg.score_neurons(model, x)
    assert scores.activations == KINDS[name] and len(scores.scores) == model.n_calls
    # explicit kinds are taken as given
    assert resolve_activations(model, x, ("gelu", "tanh")) == (("gelu", "tanh"), None)


def test_auto_prefers_relu_when_a_model_calls_relu_and_others():
    net = nn.Sequential(nn.Linear(4, 6), nn.GELU(), nn.Linear(6, 6), nn.ReLU(), nn.Linear(6, 3))
    net.eval()
    x = torch.randn(2, 4)
    assert resolve_activations(net, x) == (("relu",), None)
    runner = ActivationRunner(net)
    _, names, kinds = runner.forward(x, names=True)
    assert kinds == ["relu"] and names == ["3#0"] and runner.activations == ("relu",)


def test_auto_without_any_supported_activation_says_so():
    net = nn.Sequential(nn.Linear(4, 6), nn.LayerNorm(6), nn.Softmax(dim=1), nn.Linear(6, 3))
    net.eval()
    with pytest.raises(NoActivationError, match="softmax and normalisation layers are not"):
        pg.select_pathway(net, torch.randn(2, 4))
    with pytest.raises(NoActivationError, match="no activation call of any supported kind"):
        resolve_activations(net, torch.randn(2, 4))


def test_mobile_sites_are_named_and_in_place_hardswish_is_masked():
    model, x = make("mobile")
    sites = pg.activation_sites(model, x)
    assert [s.name for s in sites] == ["act1#0", "act2#0", "se_act#0", "hardsigmoid()#0"]
    assert [s.kind for s in sites] == ["hardswish", "hardswish", "hardswish", "hardsigmoid"]

    class Functional(nn.Module):  # functional, in-place, return value ignored
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(6, 8), nn.Linear(8, 3)

        def forward(self, x, gates=None):
            h = self.fc1(x) * 3
            F.hardswish(h, inplace=True)
            g = F.hardsigmoid(h * 2, True)
            if gates is not None:
                h, g = h * gates[0], g * gates[1]
            return self.fc2(h * g)

    torch.manual_seed(0)
    net, x = Functional().eval(), torch.randn(3, 6)
    p = pg.select_pathway(net, x, sparsity=60)
    assert p.activations == ("hardswish", "hardsigmoid")
    torch.testing.assert_close(
        pg.pathway_gradient(net, x, p),
        hand_gradient(net, x, [m.float() for m in p.masks], p.targets),
    )


@pytest.mark.parametrize("name", list(OTHER_MODELS))
@pytest.mark.parametrize("method", ["neuron_mct", "neuron_intgrad"])
def test_sparsity_zero_equals_plain_gradient(name, method, device):
    model, x = _on(name, device)
    t = _targets(model, x)
    opts = {"steps": 3} if method == "neuron_intgrad" else {}
    pathway = pg.select_pathway(model, x, method=method, sparsity=0.0, **opts)
    torch.testing.assert_close(
        pg.pathway_gradient(model, x, pathway),
        hand_gradient(model, x, None, t),
        rtol=1e-5,
        atol=1e-6,
    )
    # nothing with a positive score is pruned: GELU scores are all positive here
    if name == "transformer":
        assert pathway.sparsity.eq(0).all()


@pytest.mark.parametrize("name", list(OTHER_MODELS))
def test_masked_gradient_equals_hand_zeroed_network(name, device):
    model, x = _on(name, device)
    t = _targets(model, x)
    sites = pg.activation_sites(model, x)
    assert len(sites) == model.n_calls
    gen = torch.Generator().manual_seed(1)
    masks = [(torch.rand(s.shape, generator=gen) > 0.4).to(device) for s in sites]
    pathway = Pathway(
        masks=masks,
        sites=[s.name for s in sites],
        targets=t,
        method="hand",
        requested_sparsity=torch.full((x.shape[0],), 40.0),
        activations=KINDS[name],
    )
    oracle = hand_gradient(model, x, [m.float() for m in masks], t)
    torch.testing.assert_close(pg.pathway_gradient(model, x, pathway), oracle, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(oracle, hand_gradient(model, x, None, t))
    with torch.no_grad():
        logits = model(x, gates=[m.float() for m in masks])
    torch.testing.assert_close(pg.pathway_logits(model, x, pathway), logits)


@pytest.mark.parametrize("name", list(OTHER_MODELS))
def test_selected_pathway_and_scores_equal_hand_computation(name, device):
    model, x = _on(name, device)
    t = _targets(model, x)
    ns = pg.score_neurons(model, x)
    acts, grads = hand_activations(model, x, None, t)
    for s, a, g in zip(ns.scores, acts, grads):
        torch.testing.assert_close(s, (a * g).abs(), rtol=1e-5, atol=1e-7)
    p = pg.select_pathway(model, x, sparsity=80.0)
    oracle = hand_gradient(model, x, [m.float() for m in p.masks], p.targets)
    torch.testing.assert_close(pg.pathway_gradient(model, x, p), oracle, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("threshold", ["global", "per_layer"])
def test_sparsity_zero_keeps_every_neuron(threshold):
    from pathwaygrad.thresholds import threshold_masks

    gen = torch.Generator().manual_seed(0)
    positive = [torch.rand(3, 4, 5, generator=gen) + 0.1, torch.rand(3, 7, generator=gen) + 0.1]
    assert all(m.all() for m in threshold_masks(positive, 0.0, threshold))
    with_zeros = [torch.where(s > 0.5, s, 0.0) for s in positive]
    assert all(m.all() for m in threshold_masks(with_zeros, 0.0, threshold))
    # just above 0 the percentile rule applies again: the zero scores go
    masks = threshold_masks(with_zeros, 1e-6, threshold)
    assert all(torch.equal(m, s > 0) for m, s in zip(masks, with_zeros))


def test_sparsity_zero_is_the_full_network_when_an_active_neuron_scores_zero():
    """An active ReLU neuron whose every later ReLU is off scores |a dy/da| = 0; pruning it
    turns a later ReLU on. At sparsity 0 it is kept: the pathway gradient is the gradient."""

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc3 = nn.Linear(2, 2), nn.Linear(1, 2)
            with torch.no_grad():
                self.fc1.weight.copy_(torch.eye(2))
                self.fc1.bias.zero_()
                self.fc3.weight.copy_(torch.tensor([[1.0], [-1.0]]))
                self.fc3.bias.copy_(torch.tensor([0.0, 0.1]))

        def forward(self, x):
            a = F.relu(self.fc1(x))  # a1 = 2 > 0, a2 = 0
            # not an activation site: off while a1 = 2 (so dy/da1 = 0), on if a1 were zeroed
            h = torch.clamp(0.5 - a[:, :1] + 0.1 * x[:, 1:], min=0)
            return self.fc3(h) + 0.01 * x.sum(1, keepdim=True)

    net, x = Net().eval(), torch.tensor([[2.0, -1.0]])
    scores = pg.score_neurons(net, x, target=0)
    assert scores.scores[0][0, 0] == 0 and F.relu(net.fc1(x))[0, 0] > 0  # active, score 0
    # (pruning it, as numpy's 0-th percentile would, turns h on: another gradient)
    with pytest.warns(UserWarning, match="keeps no neuron"):
        cut = pg.select_pathway(net, x, target=0, sparsity=1e-6)
    gated = pg.pathway_gradient(net, x, cut)
    p = pg.select_pathway(net, x, target=0, sparsity=0)
    assert all(m.all() for m in p.masks) and p.sparsity.eq(0).all()
    xx = x.clone().requires_grad_(True)
    (plain,) = torch.autograd.grad(net(xx)[0, 0], xx)
    torch.testing.assert_close(pg.pathway_gradient(net, x, p), plain)
    assert not torch.allclose(gated, plain)
