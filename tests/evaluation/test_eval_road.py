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


def _banded_spd(n: int, u: int, dtype, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A random SPD matrix with u super-diagonals, dense and in LAPACK's band-by-columns layout."""
    rng = np.random.default_rng(seed)
    a = np.zeros((n, n))
    for k in range(1, u + 1):
        off = rng.uniform(-1, 1, n - k) / (2 * u)
        a[np.arange(n - k), np.arange(k, n)] = off
    a = a + a.T + np.diag(rng.uniform(1.0, 2.0, n))  # diagonally dominant: SPD
    band = np.zeros((n, u + 1))
    for j in range(n):
        for i in range(max(0, j - u), j + 1):
            band[j, u + i - j] = a[i, j]
    return a.astype(dtype), band.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("lapack", ["ctypes", "scipy fallback"])
def test_banded_solve_equals_dense_solve(dtype, lapack, monkeypatch):
    from pathwaygrad.evaluation import _banded

    if lapack == "ctypes":
        assert _banded._lapack(np.dtype(dtype)) is not None  # the GIL-free path is the one used
    else:
        monkeypatch.setattr(_banded, "_lapack", lambda dtype: None)
    a, band = _banded_spd(57, 5, dtype, seed=0)
    rhs = np.random.default_rng(1).normal(size=(3, 57)).astype(dtype)
    want = np.linalg.solve(a.astype(np.float64), rhs.T.astype(np.float64)).T
    got = _banded.solve_banded_spd(band.copy(), rhs.copy())
    assert got.dtype == dtype
    np.testing.assert_allclose(got, want, atol=1e-5 if dtype == np.float32 else 1e-12)


def test_banded_solve_refuses_an_indefinite_matrix():
    from pathwaygrad.evaluation._banded import solve_banded_spd

    a, band = _banded_spd(10, 2, np.float64, seed=0)
    band[4, 2] = -1.0  # a negative diagonal entry
    with pytest.raises(np.linalg.LinAlgError, match="not positive definite"):
        solve_banded_spd(band, np.ones((1, 10)))
    with pytest.raises(ValueError, match="does not fit"):
        solve_banded_spd(band, np.ones((1, 9)))


def test_threaded_runs_equal_one_run(batch, monkeypatch):
    """Cut into runs of images solved on several threads: the same values, noise included."""
    from pathwaygrad.evaluation import imputation as road_module

    x, remove = batch
    x = torch.cat([x, x.flip(0)])  # 12 images, some with nothing removed
    remove = torch.cat([remove, remove.flip(0)])
    one = noisy_linear_impute(x, remove, noise=0.3, generator=5)
    monkeypatch.setattr(road_module, "_THREADED_UNKNOWNS", 0)
    monkeypatch.setattr(road_module, "threads", lambda: 4)
    runs = road_module._image_runs(remove.flatten(1).sum(1).numpy(), 4)
    assert len(runs) >= 3 and runs[0].start == 0 and runs[-1].stop == 12
    assert all(a.stop == b.start for a, b in zip(runs, runs[1:]))
    many = noisy_linear_impute(x, remove, noise=0.3, generator=5)
    torch.testing.assert_close(many, one, atol=1e-12, rtol=0)
    for i in range(len(x)):  # and still the per-image oracle, without noise
        want = naive_impute(x[i].numpy(), remove[i].numpy())
        got = noisy_linear_impute(x[i : i + 1], remove[i : i + 1], noise=0.0)
        np.testing.assert_allclose(got[0].numpy(), want, atol=1e-7, rtol=0)


def test_bad_orders_and_curves_are_refused_before_the_model_runs():
    """A wrong order or curve name is a one-line error raised before any forward pass."""
    from pathwaygrad.evaluation.perturbation import deletion_insertion, pixel_perturbation

    calls = []

    class Counting(torch.nn.Module):
        def forward(self, x):
            calls.append(1)
            return x.flatten(1)[:, :2]

    x = torch.rand(2, 1, 6, 6)
    with pytest.raises(UserError, match="orders must be 'morf' and/or 'lerf'"):
        road(Counting(), x, [("r", region_map)], orders=("morf", "sideways"), progress=False)
    with pytest.raises(UserError, match="curves must be 'deletion' and/or 'insertion'"):
        deletion_insertion(Counting(), x, [("r", region_map)], curves=("up",), progress=False)
    with pytest.raises(UserError, match="orders must be 'lerf' and/or 'morf'"):
        pixel_perturbation(Counting(), x, [("r", region_map)], orders=("x",), progress=False)
    assert calls == []
