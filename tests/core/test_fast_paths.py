"""The fast paths of the core (benchmarks' optimisations) against straightforward computations.

(Moved from tests/test_speed_paths.py with the mask kernels' move to ``pathwaygrad.masking``.)

- thresholds: the radix select against ``numpy.percentile`` and ``torch.kthvalue``;
- masking: ReLU outputs masked in place and the bitwise bool-mask kernel against hand-zeroed
  networks and ``torch.where``, for in-place, functional and reused ReLUs, float64 and views;
- NeuronMCT scores computed in the gradients' memory, also when gradients share memory;
- the probe when a model edits an activation in place after the call.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import pathwaygrad as pg
from pathwaygrad import thresholds as T
from pathwaygrad.masking import KeepOnly
from pathwaygrad.pathway import Pathway
from pathwaygrad.sites import ActivationRunner, MaskTransform, mask_output


def _kth_percentile(flat: torch.Tensor, q: float) -> torch.Tensor:
    n = flat.shape[1]
    pos = q / 100 * (n - 1)
    lo = int(np.floor(pos))
    a = flat.kthvalue(lo + 1, 1).values.double()
    if pos == lo or lo + 1 >= n:
        return a
    b = flat.kthvalue(lo + 2, 1).values.double()
    return T._lerp(a, b, pos - lo)


def _scores(kind: str, shape, gen) -> torch.Tensor:
    x = torch.rand(shape, generator=gen)
    if kind == "zeros":
        x[x < 0.6] = 0
    elif kind == "ties":
        x = (x * 5).floor() / 4
    elif kind == "wide":
        x = torch.randn(shape, generator=gen).mul(8).exp() * (
            torch.rand(shape, generator=gen) > 0.5
        )
    elif kind == "denormal":
        x = x * 1e-39
    return x


@pytest.fixture(params=["radix", "bracket"])
def select_path(request, monkeypatch):
    """Run a threshold test through the radix select alone, or with the sample bracket first
    (for every row length); records how often the bracket answered."""
    answered = []
    if request.param == "radix":
        monkeypatch.setattr(T, "_BRACKET_MIN", 1 << 62)
    else:
        monkeypatch.setattr(T, "_BRACKET_MIN", 1)
        monkeypatch.setattr(T, "_BRACKET_MAX", 1 << 62)
        bracket = T._bracket_select

        def counting(parts, ranks):
            out = bracket(parts, ranks)
            answered.append(out is not None)
            return out

        monkeypatch.setattr(T, "_bracket_select", counting)
    return request.param, answered


@pytest.mark.parametrize("kind", ["rand", "zeros", "ties", "wide", "denormal"])
@pytest.mark.parametrize(
    "batch,sizes", [(1, [1]), (2, [3, 5]), (3, [100, 7, 1000]), (2, [700_000, 10]), (40, [9000])]
)
def test_radix_percentile_equals_numpy(kind, batch, sizes, select_path):
    path, answered = select_path
    gen = torch.Generator().manual_seed(len(sizes) * 7 + batch)
    parts = [_scores(kind, (batch, n), gen) for n in sizes]
    flat = torch.cat(parts, 1)
    for q in [0.0, 12.5, 50.0, 63.7, 90.0, 99.0, 99.99]:
        got = T._percentile_parts(parts, q)
        want = torch.tensor([np.percentile(r.double().numpy(), q) for r in flat])
        assert torch.equal(got, want), (kind, q)
        assert torch.equal(got, _kth_percentile(flat, q))
        masks = T.threshold_masks([p.view(batch, -1, 1) for p in parts], q)
        for m, p in zip(masks, parts):
            # (at sparsity 0 every neuron is kept)
            thr = torch.full_like(want, -torch.inf) if q == 0 else want
            assert torch.equal(m.view(batch, -1), p.double() > thr[:, None])
    if path == "bracket" and sum(sizes) > 100:
        assert any(answered)  # the bracket itself answered (not only its radix fallback)


def test_radix_handles_inf_and_many_rows(select_path):
    gen = torch.Generator().manual_seed(3)
    x = torch.rand(300, 5000, generator=gen)
    x[:, :10] = float("inf")
    x[:, 10:20] = 3e38
    for q in [0.0, 50.0, 99.5, 99.9]:
        torch.testing.assert_close(
            T.percentile(x, q), _kth_percentile(x, q), rtol=0, atol=0, equal_nan=True
        )


def test_threshold_falls_back_for_negative_nan_and_float64():
    gen = torch.Generator().manual_seed(4)
    for x in [
        torch.randn(3, 1000, generator=gen),
        torch.rand(3, 1000, generator=gen, dtype=torch.float64),
    ]:
        assert torch.equal(T.percentile(x, 90.0), _kth_percentile(x, 90.0))
    x = torch.rand(2, 100, generator=gen)
    x[0, 5] = float("nan")
    assert torch.equal(T.percentile(x, 50.0)[1:], _kth_percentile(x, 50.0)[1:])


def test_per_layer_threshold_equals_numpy():
    gen = torch.Generator().manual_seed(5)
    scores = [_scores("zeros", (3, 4, 50), gen), _scores("rand", (3, 200), gen)]
    masks = T.threshold_masks(scores, 70.0, "per_layer")
    for s, m in zip(scores, masks):
        for b in range(3):
            flat = s[b].flatten().double().numpy()
            assert np.array_equal(m[b].flatten().numpy(), flat > np.percentile(flat, 70.0))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
def test_keep_only_equals_where_forward_and_backward(dtype):
    gen = torch.Generator().manual_seed(6)
    x = torch.randn(3, 5, 7, generator=gen).to(dtype).requires_grad_(True)
    mask = torch.rand(3, 5, 7, generator=gen) > 0.5
    y = KeepOnly.apply(x, mask)
    assert torch.equal(y, torch.where(mask, x, 0.0))
    g = torch.randn(3, 5, 7, generator=gen).to(dtype)
    (gx,) = torch.autograd.grad(y, x, g)
    assert torch.equal(gx, torch.where(mask, g, 0.0))


class _Nets:
    """Small networks; ``gates`` (float, one per call) zero neurons *by hand*."""

    class InplaceReused(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv2d(3, 6, 3, padding=1)
            self.c2 = nn.Conv2d(6, 6, 3, padding=1)
            self.relu = nn.ReLU(inplace=True)
            self.fc = nn.Linear(6 * 8 * 8, 5)

        def forward(self, x, gates=None):
            g = gates or [1.0] * 3
            x = self.relu(self.c1(x)) * g[0]
            y = self.relu(self.c2(x)) * g[1]
            y = self.relu(y + x) * g[2]  # residual, reused module
            return self.fc(y.flatten(1))

    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv2d(3, 6, 3, padding=1)
            self.fc1 = nn.Linear(6 * 8 * 8, 12)
            self.fc2 = nn.Linear(12, 5)

        def forward(self, x, gates=None):
            g = gates or [1.0] * 3
            x = F.relu(self.c1(x)) * g[0]
            h = self.fc1(x.flatten(1))
            h.relu_()  # in place, return value ignored
            h = h * g[1]
            z = torch.relu(self.fc2(h)) * g[2]
            return self.fc2(h) + z

    class ViewInplace(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(6, 8)
            self.fc2 = nn.Linear(8, 3)

        def forward(self, x, gates=None):
            h = self.fc1(x.flatten(1)[:, :6])
            part = h[:, :4]
            part.relu_()  # in place on a view; the base is used afterwards
            if gates is not None:
                h = torch.cat([h[:, :4] * gates[0], h[:, 4:]], 1)
            return self.fc2(h)


def _hand_gradient(model, x, gates, target):
    x = x.detach().requires_grad_(True)
    logits = model(x, gates)
    (g,) = torch.autograd.grad(logits.gather(1, target[:, None]).sum(), x)
    return g


@pytest.mark.parametrize("net", ["InplaceReused", "Functional", "ViewInplace"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_masked_gradient_equals_hand_zeroed(net, dtype):
    torch.manual_seed(0)
    model = getattr(_Nets, net)().to(dtype).eval()
    x = torch.randn(4, 3, 8, 8, dtype=dtype)
    sites = pg.activation_sites(model, x)
    gen = torch.Generator().manual_seed(1)
    masks = [torch.rand(s.shape, generator=gen) > 0.4 for s in sites]
    target = torch.tensor([0, 1, 2, 1])
    pathway = Pathway(masks, [s.name for s in sites], target, "hand", torch.full((4,), 40.0))
    oracle = _hand_gradient(model, x, [m.to(dtype) for m in masks], target)
    got = pg.pathway_gradient(model, x, pathway)
    torch.testing.assert_close(got, oracle, rtol=1e-5, atol=1e-7)
    # The same through an explicit MaskTransform, and with the masks applied out of place.
    runner = ActivationRunner(model)
    for transform in (MaskTransform(masks), lambda i, k, out: mask_output(i, out.clone(), masks)):
        xx = x.detach().requires_grad_(True)
        logits, _, _ = runner.forward(xx, transform)
        (g,) = torch.autograd.grad(logits.gather(1, target[:, None]).sum(), xx)
        torch.testing.assert_close(g, oracle, rtol=1e-5, atol=1e-7)
    for p in model.parameters():
        assert p.requires_grad


def test_editing_an_intercepted_relu_output_in_place_is_refused_at_backward():
    model = _Nets.Functional().eval()
    x = torch.randn(2, 3, 8, 8).requires_grad_(True)

    def edit(i, kind, out):
        if out.requires_grad:
            with torch.no_grad():
                out.sub_(1.0)  # changes where the output is > 0: the gradient would be wrong
        return out

    logits, _, _ = ActivationRunner(model).forward(x, edit)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        torch.autograd.grad(logits.sum(), x)


def test_mct_scores_in_gradient_memory_with_shared_gradients():
    class Shared(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(5, 4)
            self.fc2 = nn.Linear(5, 4)
            self.out = nn.Linear(4, 3)

        def forward(self, x):
            a = F.relu(self.fc1(x))
            b = F.relu(self.fc2(x))
            return self.out(a + b)  # a and b receive the very same gradient tensor

    torch.manual_seed(2)
    model, x = Shared().eval(), torch.randn(6, 5)
    ns = pg.score_neurons(model, x, method="neuron_mct")
    target = model(x).argmax(1)
    xa = x.clone()
    a = F.relu(model.fc1(xa)).detach().requires_grad_(True)
    b = F.relu(model.fc2(xa)).detach().requires_grad_(True)
    y = model.out(a + b).gather(1, target[:, None]).sum()
    ga, gb = torch.autograd.grad(y, [a, b])
    torch.testing.assert_close(ns.scores[0], (a * ga).abs())
    torch.testing.assert_close(ns.scores[1], (b * gb).abs())


def test_probe_copes_with_models_editing_activations_in_place():
    class Edits(nn.Module):
        def __init__(self):
            super().__init__()
            self.l1 = nn.Linear(4, 6)
            self.l2 = nn.Linear(6, 3)

        def forward(self, x):
            h = F.relu(self.l1(x))
            h.add_(0.5)  # in place, after the call
            return self.l2(h)

    torch.manual_seed(3)
    model, x = Edits().eval(), torch.randn(5, 4)
    ns = pg.score_neurons(model, x, method="neuron_mct")
    target = model(x).argmax(1)
    a = F.relu(model.l1(x)).detach().requires_grad_(True)
    y = model.l2(a + 0.5).gather(1, target[:, None]).sum()
    (g,) = torch.autograd.grad(y, a)
    torch.testing.assert_close(ns.scores[0], (a * g).abs())


class _IGNets:
    class Residual(nn.Module):
        """Functional ReLUs, a skip connection that meets the widened batch."""

        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, 4, 3, padding=1)
            self.c1 = nn.Conv2d(4, 4, 3, padding=1)
            self.c2 = nn.Conv2d(4, 4, 3, padding=1)
            self.fc = nn.Linear(4, 3)

        def forward(self, x):
            x = F.relu(self.stem(x))
            h = F.relu(self.c1(x))
            h = self.c2(h)
            h += x  # in place, the skip is still batch B when call 1 or 2 is widened
            return self.fc(F.relu(h).mean((2, 3)))

    class HardBatch(nn.Module):
        """Reshapes with the batch size read from the input: cannot run widened."""

        def __init__(self):
            super().__init__()
            self.l1 = nn.Linear(6, 5)
            self.l2 = nn.Linear(5, 3)

        def forward(self, x):
            b = x.shape[0]
            h = torch.relu(self.l1(x))
            return self.l2(h.reshape(b, -1))

    class MixesBatch(nn.Module):
        """Centres over the batch after the first call: widened copies would mix."""

        def __init__(self):
            super().__init__()
            self.l1 = nn.Linear(6, 5)
            self.l2 = nn.Linear(5, 3)

        def forward(self, x):
            h = torch.relu(self.l1(x))
            return self.l2(torch.relu(h - h.mean(0, keepdim=True)))

    class ExtraArg(nn.Module):
        def __init__(self):
            super().__init__()
            self.l1 = nn.Linear(6, 5)
            self.l2 = nn.Linear(5, 3)

        def forward(self, x, bias):
            h = torch.relu(self.l1(x))
            return self.l2(torch.relu(h + bias))


@pytest.mark.parametrize("net", ["Residual", "HardBatch", "MixesBatch", "ExtraArg"])
def test_intgrad_lazy_widening_equals_full_replay(net, monkeypatch):
    from pathwaygrad.methods import neuron_intgrad as ni

    torch.manual_seed(0)
    model = getattr(_IGNets, net)().eval()
    x = torch.randn(3, 3, 6, 6) if net == "Residual" else torch.randn(3, 6)
    extra = (torch.randn(3, 5),) if net == "ExtraArg" else None
    opts = {"additional_forward_args": extra}
    real = ni._scores
    modes = []

    def record(*args, wide):
        modes.append(wide)
        return real(*args, wide=wide)

    monkeypatch.setattr(ni, "_scores", record)
    lazy = pg.score_neurons(model, x, method="neuron_intgrad", steps=3, **opts)
    # Widened where the model allows it; replayed whole where it does not.
    assert modes == ([True] if net in ("Residual", "ExtraArg") else [True, False])
    monkeypatch.setattr(ni, "_scores", lambda *args, wide: real(*args, wide=False))
    full = pg.score_neurons(model, x, method="neuron_intgrad", steps=3, **opts)
    for a, b in zip(lazy.scores, full.scores):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def test_mct_scoring_leaves_activations_a_model_kept_untouched():
    class Keeps(nn.Module):
        def __init__(self):
            super().__init__()
            self.l1 = nn.Linear(4, 6)
            self.l2 = nn.Linear(6, 6)
            self.l3 = nn.Linear(6, 3)
            self.relu = nn.ReLU(inplace=True)
            self.kept = None

        def forward(self, x):
            h = self.relu(self.l1(x))
            h = self.relu(self.l2(h))
            self.kept = h  # e.g. features kept for later use
            return self.l3(h)

    torch.manual_seed(4)
    model, x = Keeps().eval(), torch.randn(5, 4)
    ns = pg.score_neurons(model, x, method="neuron_mct")
    with torch.no_grad():
        want = torch.relu(model.l2(torch.relu(model.l1(x))))
    torch.testing.assert_close(model.kept, want)
    target = model(x).argmax(1)
    a = want.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(model.l3(a).gather(1, target[:, None]).sum(), a)
    torch.testing.assert_close(ns.scores[1], (a * g).abs())
