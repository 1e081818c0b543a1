"""Bad input is refused with a one-line UserError before the model runs (issue 13, item 9)."""

from __future__ import annotations

import pytest
import torch

import pathwaygrad as pg
from pathwaygrad.errors import UserError

from .models import MODELS, make


class Counting(MODELS["plain"]):
    """Counts its forward passes: a check made "before any work" leaves the count at 0."""

    calls = 0

    def forward(self, x, gates=None, capture=None):
        self.calls += 1
        return super().forward(x, gates, capture)


def _model():
    torch.manual_seed(0)
    return Counting().eval(), torch.randn(2, 3, 8, 8)


def _refused(fn, pattern, model):
    with pytest.raises(UserError, match=pattern) as info:
        fn()
    assert "\n" not in str(info.value)
    assert model.calls == 0, "the check came after the model ran"


@pytest.mark.parametrize(
    "call",
    [
        lambda m, x: pg.select_pathway(m, x),
        lambda m, x: pg.select_pathways(m, x, sparsities=[90]),
        lambda m, x: pg.score_neurons(m, x),
        lambda m, x: pg.explain(m, x, "gradient"),
        lambda m, x: pg.explain(m, x, "grad_cam"),
        lambda m, x: pg.activation_sites(m, x),
    ],
)
def test_single_image_without_batch_dimension(call):
    model, x = _model()
    _refused(lambda: call(model, x[0]), r"\(B, C, H, W\).*x\.unsqueeze\(0\)", model)


def test_three_d_inputs_of_a_token_model_are_fine():
    model, x = make("transformer")  # (B, T, D): 3-D is its normal input
    assert x.ndim == 3
    assert pg.select_pathway(model, x).batch_size == 4


def test_model_on_the_meta_device():
    model, x = _model()
    model.to("meta")
    _refused(lambda: pg.select_pathway(model, x), "meta device", model)
    _refused(lambda: pg.explain(model, x, "gradient"), "meta device", model)
    _refused(lambda: pg.activation_sites(model, x), "meta device", model)


@pytest.mark.parametrize(
    "method, options, pattern",
    [
        ("smoothgrad", {"nt_samples": 0}, "nt_samples must be an integer >= 1"),
        ("smoothgrad", {"nt_samples": 2.5}, "nt_samples"),
        ("smoothgrad", {"stdevs": -1.0}, "stdevs"),
        ("integrated_gradients", {"n_steps": 0}, "n_steps must be an integer >= 1"),
        ("integrated_gradients", {"method": "simpson"}, "method must be one of"),
        ("grad_cam", {"relu_attributions": "yes"}, "True or False"),
        ("neuron_intgrad", {"steps": 0}, "steps must be an integer >= 1"),
        ("greedy", {"step": 0}, "step must be a number > 0"),
        ("dgr", {"iterations": 0}, "iterations must be an integer >= 1"),
        ("dgr", {"init": "zeros"}, "init must be 'ones' or 'random'"),
    ],
)
def test_option_values(method, options, pattern):
    model, x = _model()
    _refused(lambda: pg.explain(model, x, method, **options), pattern, model)


@pytest.mark.parametrize("bad", [True, False, float("nan")])
def test_sparsity_bool_or_nan(bad):
    model, x = _model()
    _refused(lambda: pg.select_pathway(model, x, sparsity=bad), "sparsity", model)
    _refused(lambda: pg.select_pathways(model, x, sparsities=[50, bad]), "sparsity", model)
    _refused(lambda: pg.explain(model, x, "neuron_mct", sparsity=bad), "sparsity", model)
    _refused(
        lambda: pg.select_pathway(model, x, sparsity="adaptive", candidates=[90, bad]),
        "sparsity",
        model,
    )
    if isinstance(bad, bool):
        _refused(lambda: pg.select_pathway(model, x, sparsity=bad), "bool is not a number", model)
