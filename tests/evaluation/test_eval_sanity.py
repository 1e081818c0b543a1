"""Sanity checks: a weight-independent method keeps similarity 1, the gradient does not."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pathwaygrad.evaluation.sanity import (
    randomization_units,
    reinitialize,
    sanity_check,
    similarity,
)

from .synthetic import cnn, gradient_map


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("mode,init", [("cascading", "paper"), ("independent", "default")])
def test_edge_detector_passes_through_gradient_does_not(trained_cnn, region_data, mode, init):
    x = region_data[1].tensors[0][:24]
    before = _state(trained_cnn)
    table = sanity_check(
        trained_cnn, x, [("gradient", gradient_map), "edge"], mode=mode, init=init, progress=False
    )
    # the user's model is untouched
    after = trained_cnn.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    units = randomization_units(trained_cnn)
    assert units == ["5", "2", "0"]  # top-down: linear, conv2, conv1
    assert len(table) == 2 * (1 + len(units))
    for row in table.where(method="edge"):
        for m in ("spearman", "spearman_abs", "ssim", "hog"):
            assert row[m] == pytest.approx(1.0, abs=1e-9), (row["layer"], m)
    grad = table.where(method="gradient")
    assert grad[0]["step"] == 0 and grad[0]["spearman"] == pytest.approx(1.0)
    last = grad[-1] if mode == "cascading" else grad[1]  # everything random / the top layer random
    assert last["spearman_abs"] < 0.6
    assert last["ssim"] < 0.6
    if mode == "cascading":
        # cascading to the bottom: no similarity measure stays high
        assert max(last[m] for m in ("spearman", "spearman_abs", "ssim", "hog")) < 0.6


def test_reinitialize_modes():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 64, 3), torch.nn.BatchNorm2d(64))
    reinitialize(net, "paper", seed=1)
    w = torch.cat([p.detach().flatten() for p in net.parameters()])
    assert abs(float(w.std()) - 0.1) < 0.02 and abs(float(w.mean())) < 0.02
    assert not torch.all(net[1].weight == 1)  # BatchNorm redrawn too
    reinitialize(net, "default", seed=1)
    assert torch.all(net[1].weight == 1) and torch.all(net[1].bias == 0)
    a = net[0].weight.clone()
    reinitialize(net, "default", seed=1)
    assert torch.equal(a, net[0].weight)  # seeded


def test_similarity_measures_on_known_pairs():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 32, 32))
    a /= np.abs(a).max(axis=(1, 2), keepdims=True)
    same = similarity(a, a.copy())
    for v in same.values():
        np.testing.assert_allclose(v, 1.0, atol=1e-9)
    flipped = similarity(a, -a)
    np.testing.assert_allclose(flipped["spearman"], -1.0, atol=1e-9)
    np.testing.assert_allclose(flipped["spearman_abs"], 1.0, atol=1e-9)  # same magnitudes
    b = rng.standard_normal((3, 32, 32))
    b /= np.abs(b).max(axis=(1, 2), keepdims=True)
    other = similarity(a, b)
    assert np.all(np.abs(other["spearman"]) < 0.2) and np.all(other["ssim"] < 0.3)


def test_units_of_a_resnet():
    from pathwaygrad.models import build_model

    units = randomization_units(build_model("resnet20"))
    assert units[0] == "linear" and units[-1] == "conv1"
    assert "layer2.0" in units and len(units) == 1 + 9 + 2  # fc, 9 blocks, bn1, conv1
    assert "layer2.0.conv1" in randomization_units(build_model("resnet20"), "layers")
    cnn()  # the synthetic CNN builds
