"""Local linearity measured against regions known by hand."""

from __future__ import annotations

import pytest
import torch

import pathwaygrad as pg
from pathwaygrad.analysis import linearization_error, local_linearity, pattern_radius

from .models import MLP, TinyCNN, ray_radius


def _unit(t):
    return t / t.norm(dim=-1, keepdim=True)


def test_radius_matches_hyperplanes_of_one_hidden_layer():
    net = MLP((5, 40, 3)).eval()
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(4, 5, generator=gen)
    dirs = _unit(torch.randn(4, 7, 5, generator=gen))
    got = pattern_radius(net, x, None, dirs, rtol=1e-6)["radius"]
    # By hand: hidden unit i switches where W_i (x + t u) + b_i = 0, i.e. t_i = -z_i / (W_i . u).
    w, b = net.layers[0].weight.double(), net.layers[0].bias.double()
    z = x.double() @ w.T + b
    t = -z[:, None, :] / torch.einsum("bdi,ji->bdj", dirs.double(), w)
    t[t <= 0] = float("inf")
    want = t.min(-1).values.detach()
    assert torch.allclose(got, want, rtol=2e-6)


def test_radius_along_normal_is_euclidean_distance_to_nearest_boundary():
    net = MLP((5, 40, 3)).eval()
    x = torch.randn(3, 5, generator=torch.Generator().manual_seed(1))
    w, b = net.layers[0].weight.double().detach(), net.layers[0].bias.double().detach()
    z = x.double() @ w.T + b
    dist = z.abs() / w.norm(dim=1)  # distance to each hyperplane
    nearest = dist.argmin(1)
    normal = -torch.sign(z[torch.arange(3), nearest])[:, None] * w[nearest]
    res = pattern_radius(net, x, None, _unit(normal)[:, None], rtol=1e-7)
    assert torch.allclose(res["radius"][:, 0], dist.min(1).values, rtol=1e-6)
    # No direction gets out of the region sooner than the nearest boundary.
    many = pattern_radius(net, x, None, n_random=64, rtol=1e-4)["radius"]
    assert bool((many.min(1).values >= dist.min(1).values * (1 - 1e-4)).all())


def test_radius_of_masked_deep_network_matches_ray_tracing():
    net = MLP((6, 30, 30, 20, 4), seed=3).eval()
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(2, 6, generator=gen)
    keep = [torch.rand(2, n, generator=gen) < 0.5 for n in (30, 30, 20)]
    dirs = _unit(torch.randn(2, 5, 6, generator=gen))
    full = pattern_radius(net, x, None, dirs, rtol=1e-7)["radius"]
    masked = pattern_radius(net, x, keep, dirs, rtol=1e-7)["radius"]
    for i in range(2):
        for d in range(5):
            want_full = ray_radius(net, x[i], dirs[i, d])
            want_masked = ray_radius(net, x[i], dirs[i, d], [k[i] for k in keep])
            assert masked[i, d].item() == pytest.approx(want_masked, rel=1e-6)
            assert full[i, d].item() == pytest.approx(want_full, rel=1e-6)


def test_censoring_and_no_boundary():
    net = MLP((5, 40, 3)).eval()
    x = torch.randn(2, 5, generator=torch.Generator().manual_seed(5))
    none_kept = [torch.zeros(2, 40, dtype=torch.bool)]
    res = pattern_radius(net, x, none_kept, n_random=3, t_max=10.0)
    assert bool((res["radius"][:, 1:] == 10.0).all()) and bool((res["censored"] == 1).all())
    assert bool(res["radius"][:, 0].isnan().all())  # no gradient: no gradient direction


def test_linearisation_error_zero_inside_and_positive_outside():
    net = TinyCNN().eval()
    x = torch.randn(3, 3, 8, 8, generator=torch.Generator().manual_seed(6))
    p = pg.select_pathway(net, x, method="neuron_mct", sparsity=80)
    res = local_linearity(net, x, p.masks, target=p.targets, n_random=4, radii=(1e-9, 1e3))
    assert res["radius"].shape == (3, 5)
    inside, outside = res["error_rel"][:, 0], res["error_rel"][:, 1]
    assert float(inside.nan_to_num(0).max()) < 1e-8
    assert float(outside.nan_to_num(0).max()) > 1e-6
    d = torch.randn(3, 2, 3, 8, 8, generator=torch.Generator().manual_seed(7))
    d = d / d.flatten(2).norm(dim=2)[..., None, None, None]
    err = linearization_error(net, x, None, d, [1e-9])
    assert err.shape == (3, 1, 2)


def test_linearity_refuses_smooth_activations():
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.GELU(), torch.nn.Linear(4, 2))
    with pytest.raises(pg.errors.UserError):
        pattern_radius(net, torch.randn(1, 3), activations=("gelu",))


def test_model_is_left_untouched():
    net = TinyCNN().eval()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    pattern_radius(net, torch.randn(1, 3, 8, 8), n_random=2)
    assert all(v.dtype == torch.float32 for v in net.state_dict().values())
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert all(p.requires_grad for p in net.parameters())


def test_zero_gradient_direction_is_nan():
    net = MLP((5, 40, 3)).eval()
    x = torch.randn(2, 5, generator=torch.Generator().manual_seed(8))
    none_kept = [torch.zeros(2, 40, dtype=torch.bool)]
    res = local_linearity(net, x, none_kept, n_random=2, radii=(0.1,))
    assert bool(res["zero_gradient"].all()) and bool(res["radius_grad"].isnan().all())
    assert bool((res["radius_min"] == 100.0).all())
