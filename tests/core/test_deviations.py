"""Documented deviations from a reference, each pinned (issue 17, item 3): Grad-CAM's ReLU,
Greedy's two schedules, NeuronIntGrad's batched alphas."""

from __future__ import annotations

import pytest
import torch

import pathwaygrad as pg
from pathwaygrad.methods.greedy import greedy_schedule

from .models import hand_activations, make


def _targets(model, x):
    with torch.no_grad():
        return model(x).argmax(1)


@pytest.mark.parametrize("relu", [True, False])
def test_grad_cam_equals_a_direct_captum_call(relu, device):
    from captum.attr import LayerAttribution, LayerGradCam

    model, x = make("residual")
    model, x = model.to(device), x.to(device)
    t = _targets(model, x)
    opts = {} if relu else {"relu_attributions": False}
    ours = pg.explain(model, x, "grad_cam", **opts)  # default layer: the last spatial one
    layer = model.block2.conv2
    kwargs = {"relu_attributions": True} if relu else {}  # Captum's own default: False
    cam = LayerGradCam(model, layer).attribute(x.clone().requires_grad_(), target=t, **kwargs)
    theirs = LayerAttribution.interpolate(cam, tuple(x.shape[2:]), "bilinear")
    torch.testing.assert_close(ours, theirs)
    assert bool((ours < 0).any()) is not relu  # the default drops the negative evidence


def test_greedy_schedules():
    assert greedy_schedule(90, 45) == [0.0, 45.0, 90.0]
    assert greedy_schedule(90, 45, "paper_figures") == [0.0, 45.0]
    assert greedy_schedule(5, 1, "paper_figures") == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert greedy_schedule(5, 1, "paper_figures") == greedy_schedule(4, 1)
    assert greedy_schedule(0, 1, "paper_figures") == [0.0] == greedy_schedule(0, 1)


@pytest.mark.parametrize("name", ["plain", "residual"])
def test_greedy_paper_figures_schedule_is_inclusive_one_step_earlier(name):
    model, x = make(name)
    paper = pg.select_pathway(
        model, x, method="greedy", sparsity=60, step=20, schedule="paper_figures"
    )
    earlier = pg.select_pathway(model, x, method="greedy", sparsity=40, step=20)
    inclusive = pg.select_pathway(model, x, method="greedy", sparsity=60, step=20)
    assert all(torch.equal(a, b) for a, b in zip(paper.masks, earlier.masks))
    assert not all(torch.equal(a, b) for a, b in zip(paper.masks, inclusive.masks))
    assert (paper.requested_sparsity == 60).all()


def test_greedy_unknown_schedule_is_refused():
    model, x = make("plain")
    with pytest.raises(pg.errors.UserError, match="schedule must be"):
        pg.select_pathway(model, x, method="greedy", schedule="odd")


def test_neuron_intgrad_batched_alphas_within_documented_tolerance_of_a_loop():
    """Scores from all alphas in one batch against one alpha at a time, written here by hand:
    equal within rtol 1e-3 (the docstring's tolerance; round-off of batched float32 sums)."""
    model, x = make("residual")
    steps = 10
    t = _targets(model, x)
    batched = pg.score_neurons(model, x, method="neuron_intgrad", steps=steps)
    acts, _ = hand_activations(model, x, None, t)
    for layer, a in enumerate(acts):
        total = torch.zeros_like(a)
        for j in range(steps + 1):
            gates = [torch.ones(()) for _ in acts]
            gates[layer] = torch.tensor(j / steps)
            _, grads = hand_activations(model, x, gates, t)
            total += grads[layer]
        loop = (a * total / (steps + 1)).abs()
        tol = 1e-3 * float(loop.abs().max())
        torch.testing.assert_close(batched.scores[layer], loop, rtol=1e-3, atol=tol)
