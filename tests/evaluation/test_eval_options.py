"""Options reach the methods (``activations``) and bad methods stop a protocol before any work."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import pathwaygrad as pg
from pathwaygrad.errors import UserError
from pathwaygrad.evaluation._mapcache import map_key
from pathwaygrad.evaluation._methods import method_pixel_scores, resolve_methods
from pathwaygrad.evaluation._ranking import pixel_scores
from pathwaygrad.evaluation.roar import remove_and_retrain

from .synthetic import make_data


def _gelu_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(4, 4, 3, padding=1),
        nn.GELU(),
        nn.Flatten(),
        nn.Linear(4 * 64, 2),
    ).eval()


def test_activations_reach_the_pathway_methods():
    model = _gelu_model()
    x = torch.randn(6, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    t = model(x).argmax(1)
    (spec,) = resolve_methods("neuron_mct")
    got = method_pixel_scores(model, x, t, spec, activations="gelu")
    want = pixel_scores(
        pg.explain(model, x, "neuron_mct", target=t, sparsity=90.0, activations=("gelu",))
    )
    torch.testing.assert_close(got, want)
    # without it the pathway is over the ReLU only: another map
    plain = method_pixel_scores(model, x, t, spec)
    assert not torch.allclose(got, plain)
    # baselines ignore the option
    (grad,) = resolve_methods("gradient")
    torch.testing.assert_close(
        method_pixel_scores(model, x, t, grad, activations="gelu"),
        method_pixel_scores(model, x, t, grad),
    )


def test_the_map_cache_key_holds_activations_only_when_given():
    (spec,) = resolve_methods("neuron_mct")
    assert "activations" not in map_key(spec, "max", "predicted", "d", "m")
    key = map_key(spec, "max", "predicted", "d", "m", ("gelu",))
    assert key["activations"] == ["gelu"]


class _NeverBuilt:
    calls = 0

    def __call__(self):
        type(self).calls += 1
        raise AssertionError("the model factory must not run")


@pytest.mark.parametrize("methods", ["gradient;foo", "neuron_mct:sparsity=150", "gradient:bar=1"])
def test_roar_refuses_a_bad_method_before_any_work(tmp_path, methods):
    data = make_data(32, seed=0)
    with pytest.raises(UserError):
        remove_and_retrain(
            _NeverBuilt(),
            data,
            data,
            methods,
            out_dir=tmp_path / "roar",
            train_kwargs={"epochs": 1},
            executor="sequential",
            progress=False,
        )
    assert _NeverBuilt.calls == 0
    assert not (tmp_path / "roar").exists()  # nothing staged, nothing trained
