"""ROAD: the batched imputation equals a straightforward per-image solve (and Quantus's)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pathwaygrad.errors import UserError
from pathwaygrad.evaluation.road import NEIGHBOUR_WEIGHTS, noisy_linear_impute, road

from .synthetic import region_map


def naive_impute(img: np.ndarray, remove: np.ndarray) -> np.ndarray:
    """One image, written out pixel by pixel: dense system, numpy solve (the oracle)."""
    c, h, w = img.shape
    unknown = [(r, q) for r in range(h) for q in range(w) if remove[r, q]]
    index = {p: i for i, p in enumerate(unknown)}
    a = np.zeros((len(unknown), len(unknown)))
    b = np.zeros((len(unknown), c))
    for i, (r, q) in enumerate(unknown):
        for dr, dq, wt in NEIGHBOUR_WEIGHTS:
            rr, qq = r + dr, q + dq
            if not (0 <= rr < h and 0 <= qq < w):
                continue
            a[i, i] += wt
            if (rr, qq) in index:
                a[i, index[(rr, qq)]] -= wt
            else:
                b[i] += wt * img[:, rr, qq]
    out = img.copy()
    sol = np.linalg.solve(a, b)
    for i, (r, q) in enumerate(unknown):
        out[:, r, q] = sol[i]
    return out


@pytest.fixture(scope="module")
def batch():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 3, 9, 11, generator=g, dtype=torch.float64)
    fractions = torch.tensor([0.05, 0.2, 0.5, 0.7, 0.9, 0.98]).view(6, 1, 1)
    remove = torch.rand(6, 9, 11, generator=g) < fractions
    remove[0] = False  # an image with nothing removed
    remove[1, :3, :] = True  # a removed block touching the border
    remove[5, 4, 5] = False  # at least one kept pixel
    return x, remove


@pytest.mark.parametrize("solver", ["banded", "sparse", "cg"])
def test_batched_imputation_equals_per_image_solve(batch, solver):
    x, remove = batch
    got = noisy_linear_impute(x, remove, noise=0.0, solver=solver, tol=1e-10)
    for i in range(len(x)):
        want = naive_impute(x[i].numpy(), remove[i].numpy())
        np.testing.assert_allclose(got[i].numpy(), want, atol=1e-7, rtol=0)
    # kept pixels untouched, exactly
    keep = ~remove.unsqueeze(1).expand_as(x)
    assert torch.equal(got[keep], x[keep])


def test_float32_imputation_and_noise(batch):
    x, remove = batch
    exact = noisy_linear_impute(x, remove, noise=0.0)
    single = noisy_linear_impute(x.float(), remove, noise=0.0)
    assert single.dtype == torch.float32
    assert torch.allclose(single.double(), exact, atol=1e-4)
    noisy = noisy_linear_impute(x, remove, noise=0.5, generator=1)
    diff = (noisy - exact)[remove.unsqueeze(1).expand_as(x)]
    assert 0.4 < float(diff.std()) < 0.6  # noise only on imputed pixels, with the std asked for
    assert torch.equal(noisy, noisy_linear_impute(x, remove, noise=0.5, generator=1))
    with pytest.raises(UserError, match="all pixels removed"):
        noisy_linear_impute(x, torch.ones_like(remove), noise=0.0)


def test_equals_quantus_imputation():
    pytest.importorskip("quantus")
    from quantus.functions.perturb_func import noisy_linear_imputation

    g = torch.Generator().manual_seed(1)
    x = torch.randn(4, 3, 32, 32, generator=g)
    order = torch.rand(4, 32 * 32, generator=g).argsort(1)
    k = 400
    remove = torch.zeros(4, 32 * 32, dtype=torch.bool)
    remove.scatter_(1, order[:, :k], True)
    ours = noisy_linear_impute(x, remove.view(4, 32, 32), noise=0.0)
    for i in range(4):
        theirs = noisy_linear_imputation(x[i].numpy(), order[i, :k].numpy(), noise=0.0)
        np.testing.assert_allclose(ours[i].numpy(), theirs, atol=1e-5)


def test_road_protocol_on_known_evidence(trained_mlp, region_data):
    x, y = region_data[1].tensors
    table = road(
        trained_mlp,
        x[:120],
        [("region", region_map), "random_ranking"],
        labels=y[:120],
        fractions=(0.1, 0.5),
        progress=False,
    )

    def acc(method, order, f):
        (r,) = [r for r in table.where(method=method, order=order) if r["fraction"] == f]
        return r["accuracy"]

    # the imputed region no longer tells the class: MoRF at 10 % falls to about chance
    assert acc("region", "morf", 0.1) < 0.7
    assert acc("random_ranking", "morf", 0.1) > 0.9
    # LeRF keeps the region: accuracy stays
    assert acc("region", "lerf", 0.5) > 0.95
    assert table.summary["region"]["morf"]["area"] < table.summary["random_ranking"]["morf"]["area"]
