"""Activation calls are found per call, named stably, for any kind of activation."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

import pathwaygrad as pg

from .models import MLP, hand_gradient, make


def test_reused_module_calls_are_separate_sites():
    model, x = make("reused_inplace")
    names = [s.name for s in pg.activation_sites(model, x)]
    assert names == ["relu#0", "relu#1", "relu#2"]


def test_functional_calls_are_named_by_their_module():
    model, x = make("residual")
    names = [s.name for s in pg.activation_sites(model, x)]
    assert names == ["relu()#0", "relu()#1", "relu()#2", "relu()#3", "relu()#4"]

    class Wrapper(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = model

        def forward(self, x):
            return self.body(x)

    names = [s.name for s in pg.activation_sites(Wrapper(), x)]
    assert names[0] == "body.relu()#0"


def test_module_names_and_shapes():
    model, x = make("plain")
    sites = pg.activation_sites(model, x)
    assert [s.name for s in sites] == ["act1#0", "act2#0", "act3#0"]
    assert [s.shape for s in sites] == [(4, 6, 8, 8), (4, 8, 4, 4), (4, 16)]


def test_inplace_call_ignoring_return_value_is_still_masked():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(6, 8)
            self.fc2 = nn.Linear(8, 3)

        def forward(self, x, gates=None):
            h = self.fc1(x)
            h.relu_()  # return value ignored
            if gates is not None:
                h = h * gates[0]
            return self.fc2(h)

    torch.manual_seed(0)
    model, x = Net().eval(), torch.randn(3, 6)
    p = pg.select_pathway(model, x, sparsity=70)
    torch.testing.assert_close(
        pg.pathway_gradient(model, x, p), hand_gradient(model, x, [p.masks[0].float()], p.targets)
    )


def test_gelu_and_silu_kinds():
    torch.manual_seed(0)
    model, x = MLP(act=nn.GELU).eval(), torch.randn(4, 20)
    assert len(pg.activation_sites(model, x, activations="gelu")) == 2
    p = pg.select_pathway(model, x, activations=("gelu",), sparsity=60)
    assert p.activations == ("gelu",)
    torch.testing.assert_close(
        pg.pathway_gradient(model, x, p),
        hand_gradient(model, x, [m.float() for m in p.masks], p.targets),
    )

    class SiluNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(5, 7), nn.Linear(7, 2)

        def forward(self, x):
            return self.fc2(F.silu(self.fc1(x), inplace=True))

    sites = pg.activation_sites(SiluNet(), torch.randn(2, 5), activations=["silu", "relu"])
    assert [s.kind for s in sites] == ["silu"]


def test_forward_function_that_is_not_a_module():
    model, x = make("plain")
    p = pg.select_pathway(lambda inp: model(inp), x, sparsity=50)
    assert len(p.masks) == 3 and p.sites[0] == "relu()#0"
