"""LeRF / MoRF and deletion / insertion on a model whose evidence is known (a 2 x 2 region)."""

from __future__ import annotations

import pytest
import torch

from pathwaygrad.evaluation._ranking import pixel_ranks, pixel_scores, removal_mask
from pathwaygrad.evaluation.perturbation import (
    constant_fill,
    deletion_insertion,
    perturbation_curves,
    pixel_perturbation,
    trapezoid,
)

from .synthetic import gradient_map, region_map


def _drop(table, method, order, fraction):
    (row,) = [r for r in table.where(method=method, order=order) if r["fraction"] == fraction]
    return row["relative_drop"]


def test_lerf_with_the_true_map_barely_changes_the_output(trained_mlp, region_data):
    x = region_data[1].tensors[0]
    table = pixel_perturbation(
        trained_mlp, x, [("region", region_map), "random_ranking"], progress=False
    )
    # LeRF: removing even 90 % of the least relevant pixels leaves the region: tiny change
    assert _drop(table, "region", "lerf", 0.9) < 0.05
    # ... a random 90 % removes most of the region: a large drop
    assert _drop(table, "random_ranking", "lerf", 0.9) > 0.2
    assert _drop(table, "random_ranking", "lerf", 0.5) > _drop(table, "region", "lerf", 0.5)
    # MoRF: the top 10 % contains the region: the model loses its evidence
    assert _drop(table, "region", "morf", 0.1) > 0.3
    assert _drop(table, "region", "morf", 0.1) > _drop(table, "random_ranking", "morf", 0.1)
    s = table.summary["region"]["lerf"]
    assert s["area_0_10"] < table.summary["random_ranking"]["lerf"]["area_0_10"]
    assert s["drop_at_10"] == _drop(table, "region", "lerf", 0.1)
    assert len(table) == 2 * 2 * 18 and table.meta["protocol"] == "perturbation"


def test_batched_levels_equal_one_image_one_level_at_a_time(trained_mlp, region_data):
    x = region_data[1].tensors[0][:12]
    t = trained_mlp(x).argmax(1)
    ranks = pixel_ranks(pixel_scores(gradient_map(trained_mlp, x, t)), seed=3)
    fr = [0.05, 0.3, 0.9]
    fill = constant_fill(torch.tensor([0.25]))
    batched = perturbation_curves(trained_mlp, x, t, ranks, fr, "morf", fill, max_forward=4096)
    for i in range(len(x)):
        for j, f in enumerate(fr):
            remove = removal_mask(ranks[i : i + 1], f, "morf")
            xp = torch.where(remove.unsqueeze(1), torch.tensor(0.25), x[i : i + 1])
            with torch.no_grad():
                p = torch.softmax(trained_mlp(xp), 1)[0, t[i]]
            assert batched["prob"][i, j] == pytest.approx(float(p), abs=1e-6)
    # tiny forwards give the same numbers
    small = perturbation_curves(
        trained_mlp, x, t, ranks, fr, "morf", fill, batch_size=5, max_forward=1
    )
    assert torch.allclose(small["prob"], batched["prob"], atol=1e-6)


def test_deletion_and_insertion_rank_the_true_map_first(trained_mlp, region_data):
    x = region_data[1].tensors[0][:100]
    table = deletion_insertion(
        trained_mlp, x, [("region", region_map), "random_ranking"], steps=16, progress=False
    )
    s = table.summary
    assert s["region"]["deletion"]["auc"] < s["random_ranking"]["deletion"]["auc"] - 0.1
    assert s["region"]["insertion"]["auc"] > s["random_ranking"]["insertion"]["auc"] + 0.1
    ins = [r["prob"] for r in table.where(method="region", curve="insertion")]
    assert trapezoid(ins, [i / 16 for i in range(17)]) == pytest.approx(
        s["region"]["insertion"]["auc"]
    )


def test_bad_fractions_are_a_user_error(trained_mlp, region_data):
    from pathwaygrad.errors import UserError

    with pytest.raises(UserError, match="fractions"):
        pixel_perturbation(
            trained_mlp, region_data[1].tensors[0][:4], ["random_ranking"], fractions=[10]
        )


def test_forwards_never_exceed_max_forward(trained_mlp, region_data):
    """The model sees at most ``max_forward`` images per call, even when a batch of images is
    larger; the default (None) is 128 on the CPU. Results do not depend on it."""
    from pathwaygrad.errors import UserError
    from pathwaygrad.evaluation.perturbation import resolve_max_forward

    x = region_data[1].tensors[0][:150]
    t = trained_mlp(x).argmax(1)
    ranks = pixel_ranks(pixel_scores(gradient_map(trained_mlp, x, t)), seed=3)
    fill = constant_fill(torch.tensor([0.25]))
    sizes = []

    def model(inputs):
        sizes.append(inputs.shape[0])
        return trained_mlp(inputs)

    fr = [0.1, 0.5, 0.9]
    ref = perturbation_curves(trained_mlp, x, t, ranks, fr, "lerf", fill, max_forward=4096)
    for batch_size, max_forward, cap in [(100, 7, 7), (64, None, 128), (150, None, 128)]:
        sizes.clear()
        got = perturbation_curves(
            model, x, t, ranks, fr, "lerf", fill, batch_size=batch_size, max_forward=max_forward
        )
        assert max(sizes) <= cap and sum(sizes) == len(x) * len(fr)
        assert torch.allclose(got["prob"], ref["prob"], atol=1e-6)
    assert resolve_max_forward(None, "cpu") == 128
    assert resolve_max_forward(None, torch.device("cuda")) == 1024
    assert resolve_max_forward(5, "cpu") == 5
    for bad in (0, -3, 2.5, True, "64"):
        with pytest.raises(UserError, match="max_forward"):
            resolve_max_forward(bad, "cpu")
