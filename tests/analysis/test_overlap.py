"""Known answers of the overlap analysis: Jaccard and dead share."""

from __future__ import annotations

import pytest
import torch

import pathwaygrad as pg
from pathwaygrad.analysis import (
    compute_pathways,
    dead_share,
    jaccard,
    jaccard_matrix,
    overlap_analysis,
    pathway_specs,
)
from pathwaygrad.analysis.pathways import greedy_step

from .models import TinyCNN


@pytest.fixture(scope="module")
def setup():
    model = TinyCNN().eval()
    x = torch.randn(6, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    return model, x


def test_jaccard_self_is_one_and_complement_is_zero(setup):
    model, x = setup
    p = pg.select_pathway(model, x, method="neuron_mct", sparsity=70)
    assert torch.equal(jaccard(p, p), torch.ones(6, dtype=torch.float64))
    assert torch.equal(jaccard(p, p.complement()), torch.zeros(6, dtype=torch.float64))
    lay = jaccard(p, p.complement(), layerwise=True)
    assert lay.shape == (6, len(p.masks)) and bool((lay == 0).all())


def test_jaccard_matrix_matches_pathway_iou(setup):
    model, x = setup
    ps = [pg.select_pathway(model, x, method=m, sparsity=60) for m in ("neuron_mct", "random")]
    ps.append(pg.select_pathway(model, x, method="neuron_intgrad", sparsity=60, steps=4))
    mat = jaccard_matrix(ps)
    assert mat.shape == (6, 3, 3)
    assert torch.equal(mat, mat.transpose(1, 2))
    assert bool((mat.diagonal(dim1=1, dim2=2) == 1).all())
    for i in range(3):
        for j in range(3):
            assert torch.allclose(mat[:, i, j].float(), ps[i].iou(ps[j]), atol=1e-6)


def test_dead_share_known_answers(setup):
    model, x = setup
    dead = pg.select_pathway(model, x, method="dead")
    for method, opts in (("neuron_mct", {}), ("neuron_intgrad", {"steps": 4})):
        for s in (50, 80, 95):
            p = pg.select_pathway(model, x, method=method, sparsity=s, **opts)
            assert torch.equal(dead_share(p, dead), torch.zeros(6, dtype=torch.float64))
    assert torch.equal(dead_share(dead, dead), torch.ones(6, dtype=torch.float64))
    lay = dead_share(dead, dead, layerwise=True)
    assert bool(((lay == 1) | lay.isnan()).all())
    # By hand on one pathway: |path & dead| / |path| per call and overall.
    p = pg.select_pathway(model, x, method="random", sparsity=50)
    inter = [(a & d).flatten(1).sum(1).double() for a, d in zip(p.masks, dead.masks)]
    kept = [a.flatten(1).sum(1).double() for a in p.masks]
    assert torch.allclose(dead_share(p, dead), sum(inter) / sum(kept))
    assert torch.allclose(dead_share(p, dead, layerwise=True)[:, 0], inter[0] / kept[0])


def test_greedy_step_ends_exactly_at_sparsity():
    for s in (80.0, 90.0, 99.0, 97.5):
        for step in (1.0, 3.0, 7.0):
            st = greedy_step(s, step)
            n_iter = int(s // st) + 1
            assert abs(min((n_iter - 1) * st, s) - s) < 1e-9


def test_pathway_specs():
    specs = pathway_specs("neuron_mct;dgr_random;dgr:init=ones,iterations=5;greedy:step=2")
    assert [s.label for s in specs] == [
        "neuron_mct",
        "dgr(init=random)",
        "dgr(init=ones,iterations=5)",
        "greedy(step=2)",
    ]
    assert specs[1].display == "DGR(init=r)"
    assert dict(specs[2].options) == {"init": "ones", "iterations": 5}
    assert specs[2].kwargs["iterations"] == 5 and specs[2].kwargs["init"] == "ones"
    with pytest.raises(pg.errors.UserError):
        pathway_specs("neuron_mct,nope")
    with pytest.raises(pg.errors.UserError):
        pathway_specs("dgr:colour=red")
    with pytest.raises(pg.errors.UserError):
        pathway_specs("neuron_mct,neuron_mct")
    with pytest.raises(pg.errors.UserError, match="not allowed here"):
        pathway_specs("neuron_mct;gradient")
    with pytest.raises(pg.errors.UserError, match="sparsities separately"):
        pathway_specs("neuron_mct:sparsity=70")


def test_compute_pathways_matches_select_pathway(setup):
    model, x = setup
    ps = compute_pathways(model, x, pathway_specs("neuron_mct;random;greedy:step=10"), (50, 80))
    for s in (50.0, 80.0):
        ref = pg.select_pathway(model, x, method="neuron_mct", sparsity=s)
        got = ps.pathways[("neuron_mct", s)]
        assert all(torch.equal(a, b) for a, b in zip(ref.masks, got.masks))
        ref = pg.select_pathway(model, x, method="random", sparsity=s)
        got = ps.pathways[("random", s)]
        assert all(torch.equal(a, b) for a, b in zip(ref.masks, got.masks))
        ref = pg.select_pathway(model, x, method="greedy", sparsity=s, step=10)
        got = ps.pathways[("greedy(step=10)", s)]
        assert all(torch.equal(a, b) for a, b in zip(ref.masks, got.masks))


def test_overlap_analysis_dataset_level(setup):
    model, x = setup
    y = torch.arange(6) % 4
    res = overlap_analysis(
        model, (x, y), "neuron_mct;neuron_intgrad:steps=3;random", (60.0, 90.0), batch_size=4
    )
    assert res.jaccard[60.0].shape == (6, 3, 3)
    assert res.dead[90.0].shape == (6, 3)
    assert res.layer_dead[90.0].shape == (6, len(res.sites), 3)
    assert res.mean("dead", 90.0)[0] == 0 and res.mean("dead", 90.0)[1] == 0
    summ = res.summary()
    assert summ["n_examples"] == 6
    assert summ["90.0"]["jaccard_mean"][0][0] == 1.0
