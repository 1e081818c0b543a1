"""Exceptions raised inside the user's model keep their type; inference_mode gets its own error."""

from __future__ import annotations

import pytest
import torch

import pathwaygrad as pg
from pathwaygrad.errors import UserError

from .models import MODELS, make
from .test_model_safety import _assert_same, _snapshot


class ModelFailure(RuntimeError):
    """The model's own exception type (a RuntimeError, as torch's errors are)."""


class Failing(MODELS["plain"]):
    """Raises ``error`` on the ``at``-th forward pass, after its first activation call."""

    def __init__(self, error: BaseException, at: int):
        super().__init__()
        self.error, self.at, self.calls = error, at, 0

    def forward(self, x, gates=None, capture=None):
        self.calls += 1
        h = self.act1(self.conv1(x))
        if self.calls == self.at:
            raise self.error
        h = self.act2(self.conv2(h))
        return self.fc2(self.act3(self.fc1(h.flatten(1))))


CALLS = {
    "neuron_mct": lambda m, x: pg.select_pathway(m, x, method="neuron_mct"),
    "neuron_intgrad": lambda m, x: pg.select_pathway(m, x, method="neuron_intgrad", steps=2),
    "greedy": lambda m, x: pg.select_pathway(m, x, method="greedy", step=50.0),
    "dgr": lambda m, x: pg.select_pathway(m, x, method="dgr", iterations=2),
    "sweep": lambda m, x: pg.select_pathways(m, x, sparsities=[50, 90]),
    "scores": lambda m, x: pg.score_neurons(m, x),
    "explainer": lambda m, x: pg.PathwayGradient(m).attribute(x),
    "gradient": lambda m, x: pg.explain(m, x, "gradient"),
    "guided": lambda m, x: pg.explain(m, x, "guided_backprop"),
}


def _model(error, at):
    torch.manual_seed(0)
    return Failing(error, at).eval(), torch.randn(2, 3, 8, 8)


# Fail in the first forward pass, and in the second where the call makes more than one.
ONE_PASS = ("neuron_mct", "sweep", "scores")
CASES = [(c, 1) for c in CALLS] + [(c, 2) for c in CALLS if c not in ONE_PASS]


@pytest.mark.parametrize("call,at", CASES)
def test_model_exception_keeps_its_type_and_the_model(call, at):
    model, x = _model(ModelFailure("the model's own failure"), at)
    snap = _snapshot(model)
    with pytest.raises(ModelFailure, match="the model's own failure") as info:
        CALLS[call](model, x)
    assert not isinstance(info.value, UserError)
    _assert_same(model, snap)


def test_note_names_the_inputs():
    model, x = _model(ModelFailure("boom"), 1)
    with pytest.raises(ModelFailure) as info:
        pg.select_pathway(model, x)
    assert any("shape (2, 3, 8, 8)" in n for n in getattr(info.value, "__notes__", []))


@pytest.mark.parametrize("call", ["neuron_mct", "neuron_intgrad", "explainer", "gradient"])
def test_out_of_memory_stays_catchable_as_such(call):
    model, x = _model(torch.OutOfMemoryError("CUDA out of memory (simulated)"), 1)
    snap = _snapshot(model)
    with pytest.raises(torch.OutOfMemoryError):
        CALLS[call](model, x)
    _assert_same(model, snap)


@pytest.mark.parametrize("call", ["neuron_mct", "neuron_intgrad", "sweep", "scores", "gradient"])
def test_inference_mode_gets_its_own_message(call):
    model, x = make("plain")
    snap = _snapshot(model)
    with torch.inference_mode(), pytest.raises(UserError, match=r"outside.*inference_mode"):
        CALLS[call](model, x)
    _assert_same(model, snap)
    pathway = pg.select_pathway(model, x)
    with torch.inference_mode(), pytest.raises(UserError, match="inference_mode"):
        pg.pathway_gradient(model, x, pathway)


def test_inputs_made_under_inference_mode_are_accepted_outside_it():
    model, x = make("plain")
    with torch.inference_mode():
        xi = x.clone()
    p = pg.select_pathway(model, xi, sparsity=70)
    want = pg.select_pathway(model, x, sparsity=70)
    assert all(torch.equal(a, b) for a, b in zip(p.masks, want.masks))
    torch.testing.assert_close(
        pg.pathway_gradient(model, xi, p), pg.pathway_gradient(model, x, want)
    )
    with torch.inference_mode():  # logits need no gradient: fine under inference_mode
        logits = pg.pathway_logits(model, x, want)
    torch.testing.assert_close(logits, pg.pathway_logits(model, x, want))
