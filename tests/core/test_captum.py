"""PathwayGradient works inside Captum: NoiseTunnel, infidelity, sensitivity_max, visualisation."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import torch  # noqa: E402
from captum.attr import NoiseTunnel  # noqa: E402
from captum.metrics import infidelity, sensitivity_max  # noqa: E402

import pathwaygrad as pg  # noqa: E402

from .models import hand_gradient, make  # noqa: E402


def test_noise_tunnel_smoothgrad_over_pathway_gradient():
    model, x = make("residual")
    explainer = pg.PathwayGradient(model, sparsity=80.0)
    targets = torch.tensor([0, 1, 2, 3])
    torch.manual_seed(0)
    smooth = NoiseTunnel(explainer).attribute(
        x, nt_type="smoothgrad", nt_samples=4, stdevs=0.1, target=targets
    )
    # oracle: NoiseTunnel adds one noise draw to the batch repeated nt_samples times
    # (repeat_interleave layout) and averages the maps of each example's copies.
    torch.manual_seed(0)
    rep = x.repeat_interleave(4, dim=0)
    noisy = rep + torch.normal(0.0, 0.1, size=rep.shape)
    maps = explainer.attribute(noisy, target=targets.repeat_interleave(4))
    oracle = maps.view(4, 4, *x.shape[1:]).mean(dim=1)
    torch.testing.assert_close(smooth, oracle, rtol=1e-4, atol=1e-6)
    assert not torch.allclose(smooth, explainer.attribute(x, target=targets))


def test_noise_tunnel_with_zero_noise_equals_pathway_gradient():
    model, x = make("plain")
    explainer = pg.PathwayGradient(model, sparsity=80.0)
    t = torch.tensor([1, 0, 2, 4])
    smooth = NoiseTunnel(explainer).attribute(
        x, nt_type="smoothgrad", nt_samples=3, stdevs=0.0, target=t
    )
    torch.testing.assert_close(smooth, explainer.attribute(x, target=t), rtol=1e-5, atol=1e-6)


def test_infidelity_and_sensitivity():
    model, x = make("plain")
    explainer = pg.PathwayGradient(model, sparsity=0.0)
    t = torch.tensor([0, 1, 2, 3])
    attr = explainer.attribute(x, target=t)

    def perturb(inputs):
        noise = torch.randn_like(inputs) * 0.01
        return noise, inputs - noise

    torch.manual_seed(0)
    inf = infidelity(model, perturb, x, attr, target=t, n_perturb_samples=4)
    assert inf.shape == (4,) and torch.isfinite(inf).all()
    sens = sensitivity_max(explainer.attribute, x, target=t, n_perturb_samples=2)
    assert sens.shape == (4,) and torch.isfinite(sens).all()
    # at sparsity 0 on a ReLU net pathway gradient is the gradient, exactly
    torch.testing.assert_close(attr, hand_gradient(model, x, None, t))


def test_captum_visualization_accepts_the_map():
    from captum.attr import visualization as viz

    model, x = make("plain")
    attr = pg.PathwayGradient(model).attribute(x)
    fig, ax = viz.visualize_image_attr(
        attr[0].permute(1, 2, 0).numpy(),
        x[0].permute(1, 2, 0).numpy(),
        method="heat_map",
        sign="all",
        use_pyplot=False,
    )
    assert fig is not None and ax is not None


def test_last_pathway_is_kept_and_multiplies_by_inputs_false():
    model, x = make("plain")
    explainer = pg.PathwayGradient(model, method="neuron_mct", sparsity=90.0)
    explainer.attribute(x)
    assert explainer.last_pathway is not None and explainer.last_pathway.batch_size == 4
    assert explainer.multiplies_by_inputs is False
    assert hasattr(pg.PathwayGradient.attribute, "__wrapped__")
