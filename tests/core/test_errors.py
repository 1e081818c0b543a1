"""Bad input raises an error whose message names the problem."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import pathwaygrad as pg
from pathwaygrad.errors import NoActivationError, PathwayMismatchError, UserError

from .models import make


@pytest.mark.parametrize("bad", [-1, 100, 100.5, float("nan"), "lots", None])
def test_sparsity_out_of_range(bad):
    model, x = make("plain")
    with pytest.raises(UserError, match="sparsity"):
        pg.select_pathway(model, x, sparsity=bad)


@pytest.mark.parametrize(
    "target, pattern",
    [
        (5, "out of range"),
        (-1, "out of range"),
        ([0, 1], "one entry per example"),
        (torch.zeros(4, 2, dtype=torch.long), "one entry per example"),
        (1.5, "class index"),
        (torch.tensor([0.0, 1.0, 0.0, 1.0]), "integer"),
    ],
)
def test_bad_targets(target, pattern):
    model, x = make("plain")
    with pytest.raises(UserError, match=pattern):
        pg.select_pathway(model, x, target)


def test_inputs_of_wrong_shape_keep_the_model_error_with_a_note_naming_the_shape():
    model, _ = make("plain")
    with pytest.raises(RuntimeError) as info:  # the convolution's own error, not a UserError
        pg.select_pathway(model, torch.randn(2, 1, 8, 8))
    assert not isinstance(info.value, UserError)
    assert any("shape (2, 1, 8, 8)" in note for note in info.value.__notes__)


@pytest.mark.parametrize(
    "inputs, pattern",
    [
        (torch.ones(2, 3, 8, 8, dtype=torch.long), "floating-point"),
        (torch.full((2, 3, 8, 8), float("nan")), "NaN"),
        (torch.full((2, 3, 8, 8), float("inf")), "NaN or infinite"),
        (torch.randn(8), "batch dimension"),
        ([torch.randn(1, 3, 8, 8)], "one tensor"),
        (torch.randn(0, 3, 8, 8), "non-empty"),
    ],
)
def test_bad_inputs(inputs, pattern):
    model, _ = make("plain")
    with pytest.raises(UserError, match=pattern):
        pg.select_pathway(model, inputs)


def test_model_without_activation_names_the_kinds():
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
    with pytest.raises(NoActivationError, match=r"relu.*activations="):
        pg.select_pathway(model, torch.randn(2, 3, 2, 2))


def test_unknown_method_option_and_activation():
    model, x = make("plain")
    with pytest.raises(UserError, match="unknown pathway method"):
        pg.select_pathway(model, x, method="nope")
    with pytest.raises(UserError, match="takes no option"):
        pg.select_pathway(model, x, method="neuron_mct", steps=3)
    with pytest.raises(UserError, match="unknown activation kind"):
        pg.select_pathway(model, x, activations=("swishy",))
    with pytest.raises(UserError, match="unknown method"):
        pg.explain(model, x, "magic")


def test_model_must_return_logits():
    model = nn.Sequential(nn.Conv2d(3, 2, 1), nn.ReLU())
    with pytest.raises(UserError, match=r"logits of shape \(batch, classes\)"):
        pg.select_pathway(model, torch.randn(2, 3, 4, 4))


def test_pathway_from_other_inputs_is_refused():
    model, x = make("plain")
    p = pg.select_pathway(model, x)
    with pytest.raises(PathwayMismatchError, match="holds 4 example"):
        pg.pathway_gradient(model, x[:2], p)
    cut = p.complement()
    cut.masks = [m[:, :1] for m in p.masks]
    with pytest.raises(PathwayMismatchError, match="shape"):
        pg.pathway_gradient(model, x, cut)


def test_compiled_model_refused():
    model, x = make("plain")
    compiled = torch.compile(model)
    with pytest.raises(UserError, match="torch.compile"):
        pg.select_pathway(compiled, x)
