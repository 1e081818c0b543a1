"""Sanity checks: a weight-independent method keeps similarity 1, the gradient does not."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from pathwaygrad.errors import UserError
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


# ------------------------------------------------------------------ seeds and conventions (#17)
def _rgb_cnn() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 6, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(6, 6, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(6 * 8 * 8, 3),
    ).eval()


def test_seeds_spread_and_seed_zero_unchanged():
    from pathwaygrad.evaluation.sanity import summarize_seeds

    model = _rgb_cnn()
    x = torch.randn(6, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    methods = [("gradient", gradient_map)]
    one = sanity_check(model, x, methods, progress=False)
    many = sanity_check(model, x, methods, seeds=[0, 1, 2], progress=False)
    units = randomization_units(model)
    assert len(many) == 3 * (1 + len(units))
    assert sorted({r["seed"] for r in many}) == [0, 1, 2]
    # seed 0 of a multi-seed run is exactly the single-seed run (the committed numbers)
    zero = [r for r in many if r["seed"] == 0]
    assert [(r["step"], r["spearman"], r["ssim"]) for r in zero] == [
        (r["step"], r["spearman"], r["ssim"]) for r in one
    ]
    # other seeds are other draws
    first = {r["seed"]: r["spearman"] for r in many if r["step"] == 1}
    assert len({round(v, 12) for v in first.values()}) == 3
    # the spread over seeds, against numpy
    spread = {(r["method"], r["step"]): r for r in summarize_seeds(many)}
    v = np.array([first[s] for s in (0, 1, 2)])
    row = spread[("gradient", 1)]
    assert row["seeds"] == 3
    assert row["spearman"] == pytest.approx(v.mean())
    assert row["spearman_sd"] == pytest.approx(v.std(ddof=1))
    assert (row["spearman_min"], row["spearman_max"]) == (v.min(), v.max())
    assert row["spearman_std"] == row["spearman_sd"]  # plots with plot_sanity
    assert spread[("gradient", 0)]["spearman"] == pytest.approx(1.0)
    assert spread[("gradient", 0)]["spearman_sd"] == 0.0
    # summary: means over seeds, with the spread
    s = many.summary["gradient"]
    assert s["first_step"]["spearman"] == pytest.approx(v.mean())
    assert s["first_step_spread"]["spearman"]["max"] == v.max()
    with pytest.raises(UserError):
        sanity_check(model, x, methods, seeds=[1, 1], progress=False)


def test_quantus_convention_is_spearman_of_abs_full_maps():
    from scipy.stats import spearmanr

    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((2, 4, 3, 9, 9))
    sims = similarity(a, b, ["spearman_abs_full"])
    for i in range(4):
        ref = spearmanr(np.abs(a[i]).ravel(), np.abs(b[i]).ravel()).statistic
        assert sims["spearman_abs_full"][i] == pytest.approx(ref, abs=1e-12)
    # in sanity_check it is computed on the full 3-channel maps, not on the 2-D reduction
    model = _rgb_cnn()
    x = torch.randn(5, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    table = sanity_check(model, x, [("gradient", gradient_map)], progress=False)
    net = copy.deepcopy(model)
    reinitialize(net[5], "paper", seed=1)  # step 1 of seed 0: the top layer, draw 0 * 2**20 + 1
    t = model(x).argmax(1)
    ref_maps, new_maps = gradient_map(model, x, t), gradient_map(net, x, t)
    expected = np.mean(
        [
            spearmanr(ref_maps[i].abs().flatten(), new_maps[i].abs().flatten()).statistic
            for i in range(5)
        ]
    )
    row = next(r for r in table if r["step"] == 1)
    assert row["spearman_abs_full"] == pytest.approx(expected, abs=1e-9)
    assert row["spearman_abs_full"] != pytest.approx(row["spearman_abs"], abs=1e-6)


def test_default_reinitialisation_is_the_papers_everywhere():
    import inspect

    from pathwaygrad.evaluation.sanity import DEFAULT_INIT
    from pathwaygrad.presets import REPRODUCTION

    assert DEFAULT_INIT == "paper"
    assert inspect.signature(sanity_check).parameters["init"].default == DEFAULT_INIT
    # the reproduction's headline (its first re-initialisation) is the same
    for preset in REPRODUCTION.values():
        if "sanity" in preset.experiments:
            assert preset.sanity_inits[0] == DEFAULT_INIT
    # and five seeds of the randomisation in the quick preset
    assert len(REPRODUCTION["quick"].draw_seeds) >= 5


def test_runs_of_one_seed_each_merge_to_the_multi_seed_run():
    from pathwaygrad.evaluation.sanity import merge_seeds

    model = _rgb_cnn()
    x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(5))
    methods = [("gradient", gradient_map), "edge"]
    together = sanity_check(model, x, methods, seeds=[0, 3], progress=False)
    parts = [sanity_check(model, x, methods, seeds=[s], progress=False) for s in (3, 0)]
    merged = merge_seeds(parts)
    assert list(merged) == list(together)
    assert merged.summary == together.summary
    assert merged.meta["settings"]["seeds"] == [0, 3]
    with pytest.raises(UserError):
        merge_seeds([parts[0], parts[0]])
