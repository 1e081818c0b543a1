"""The user's model is sacred: same weights bit for bit, no hooks left, modes and flags kept."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import pathwaygrad as pg

from .models import MODELS, make


def _snapshot(model: nn.Module):
    return {
        "state": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "modes": [m.training for m in model.modules()],
        "flags": [p.requires_grad for p in model.parameters()],
        "grads": [p.grad for p in model.parameters()],
    }


def _hooks(model: nn.Module) -> int:
    n = 0
    for m in model.modules():
        n += len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
        n += len(getattr(m, "_backward_pre_hooks", {}))
    return n


def _assert_same(model, snap):
    now = model.state_dict()
    assert now.keys() == snap["state"].keys()
    for k, v in snap["state"].items():
        assert torch.equal(now[k], v), f"{k} changed"
    assert [m.training for m in model.modules()] == snap["modes"]
    assert [p.requires_grad for p in model.parameters()] == snap["flags"]
    assert all(p.grad is None for p in model.parameters())
    assert _hooks(model) == 0
    assert not torch.overrides._is_torch_function_mode_enabled()


CALLS = {
    "select": lambda m, x: pg.select_pathway(m, x, method="neuron_mct"),
    "intgrad": lambda m, x: pg.select_pathway(m, x, method="neuron_intgrad", steps=2),
    "greedy": lambda m, x: pg.select_pathway(m, x, method="greedy", step=30.0),
    "dgr": lambda m, x: pg.select_pathway(m, x, method="dgr", iterations=3),
    "explainer": lambda m, x: pg.PathwayGradient(m).attribute(x),
    "sites": lambda m, x: pg.activation_sites(m, x),
    "guided": lambda m, x: pg.explain(m, x, "guided_backprop"),
    "grad_cam": lambda m, x: pg.explain(m, x, "grad_cam"),
}


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("call", list(CALLS))
def test_model_unchanged_after_success(name, call):
    model, x = make(name)
    # a user may have frozen some parameters
    first = next(model.parameters())
    first.requires_grad_(False)
    snap = _snapshot(model)
    if name == "mlp" and call == "grad_cam":
        with pytest.raises(pg.errors.UserError, match="spatial"):
            CALLS[call](model, x)
    else:
        CALLS[call](model, x)
    _assert_same(model, snap)


def test_training_mode_model_keeps_buffers_and_mode():
    model, x = make("reused_inplace")
    model.train()
    snap = _snapshot(model)
    with pytest.warns(UserWarning, match="training mode"):
        pg.select_pathway(model, x, method="neuron_mct")
    _assert_same(model, snap)


class _Boom(RuntimeError):
    pass


class ExplodingCNN(MODELS["reused_inplace"]):
    """Raises in the middle of the n-th forward pass, after some activation calls ran."""

    def __init__(self, explode_at):
        super().__init__()
        self.calls = 0
        self.explode_at = explode_at

    def forward(self, x, gates=None, capture=None):
        self.calls += 1
        h = self.relu(self.bn1(self.conv1(x)))
        if self.calls == self.explode_at:
            raise _Boom("exploded mid-forward")
        h = self.relu(self.bn2(self.conv2(h)))
        h = self.relu(h - 0.1)
        return self.fc(h.flatten(1))


@pytest.mark.parametrize("explode_at", [1, 2])
@pytest.mark.parametrize("method", ["neuron_mct", "neuron_intgrad", "dgr"])
def test_model_unchanged_after_exception_mid_call(explode_at, method):
    torch.manual_seed(0)
    model = ExplodingCNN(explode_at).eval()
    model.train()  # buffers must come back even when BatchNorm statistics moved
    x = torch.randn(2, 3, 8, 8)
    snap = _snapshot(model)
    opts = {"neuron_intgrad": {"steps": 2}, "dgr": {"iterations": 3}}.get(method, {})
    with pytest.warns(UserWarning), pytest.raises(Exception, match="exploded"):
        pg.PathwayGradient(model, method=method, **opts).attribute(x)
    _assert_same(model, snap)
