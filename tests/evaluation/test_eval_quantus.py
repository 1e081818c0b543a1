"""A Quantus metric scores pathwaygrad maps through ``quantus_explain_func``."""

from __future__ import annotations

import numpy as np
import pytest

from pathwaygrad.evaluation.quantus_adapter import make_explain_func, quantus_explain_func


def test_quantus_mprt_with_our_explain_func(trained_cnn, region_data):
    quantus = pytest.importorskip("quantus")
    x, y = region_data[1].tensors
    x, y = x[:8].numpy(), y[:8].numpy()

    def mprt(**kwargs):
        metric = quantus.MPRT(
            return_last_correlation=True, disable_warnings=True, display_progressbar=False
        )
        return np.asarray(
            metric(
                model=trained_cnn,
                x_batch=x,
                y_batch=y,
                explain_func=quantus_explain_func,
                explain_func_kwargs=kwargs,
                device="cpu",
            )
        )

    # the pathway gradient (through the core's pg.explain) changes once all layers are random
    pathway = mprt(method="neuron_mct", sparsity=70.0)
    assert pathway.shape == (8,) and np.isfinite(pathway).all()
    assert pathway.mean() < 0.8
    # the weight-independent control keeps correlation 1 under the same metric
    edge = mprt(method="edge")
    np.testing.assert_allclose(edge, 1.0, atol=1e-6)


def test_explain_func_shapes(trained_cnn, region_data):
    x = region_data[1].tensors[0][:3].numpy()
    a = quantus_explain_func(trained_cnn, x, np.array([0, 1, 1]), method="gradient")
    assert a.shape == x.shape and a.dtype == np.float32
    r = make_explain_func("gradient", channel_reduce="max_abs")(
        model=trained_cnn, inputs=x, targets=np.array([1])
    )
    assert r.shape == (3, 1, 8, 8)
