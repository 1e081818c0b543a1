"""NeuronIntGrad (paper section 2): integrated gradients on one activation call at a time.

For call l with output a_l, and alpha in {0, 1/K, ..., 1} (K = ``steps``, so K + 1 points, a
uniform grid), the call's whole output is replaced by alpha * a_l while every other call runs
normally; score = |a_l * mean_alpha dy_c/d(alpha a_l)|. Every *call* is scored (the reference
scripts scored only the first calls of reused modules and used an accumulating alpha grid).

The alphas of one call run as one batch (``internal_batch_size`` caps the examples per forward),
and each backward stops at the scaled call. Batched, the float32 sums inside the network run in
another order than one alpha at a time: scores differ from a one-point-at-a-time loop by float
round-off, measured up to 7.5e-4 relative on some calls of the CIFAR ResNets (tests pin rtol 1e-3
against a loop); pathways then differ only where a score sits at the threshold.

Only the part of the network above the scaled call depends on alpha. The forward therefore runs
once on the B examples up to call l, and only there widens to (number of alphas) x B: call l's
output becomes the stack of its scaled copies, and every other tensor computed from the inputs
(a skip connection, say) is repeated to that batch when it first meets a widened one ("lazy
batch expansion", seen through a :class:`~torch.overrides.TorchFunctionMode`, so it works for
any model). The backward stops at call l as before. The result is checked on every call: the
alpha = 1 copy must reproduce the network's logits; a model that mixes examples, or fails
widened, is scored instead by replaying the whole network per alpha batch (the straightforward
way, same values).
"""

from __future__ import annotations

import torch
from torch.overrides import TorchFunctionMode
from tqdm.auto import tqdm

from pathwaygrad._inputs import run_model
from pathwaygrad.probe import Probe, target_outputs

_DATA, _WIDE = 1, 2  # marks: computed from the inputs (batch B); widened (batch n * B)


def _repeat_batch(t, n: int, batch: int):
    if isinstance(t, torch.Tensor) and t.ndim > 0 and t.shape[0] == batch:
        return t.repeat(n, *([1] * (t.ndim - 1)))
    return t


def _mark(t) -> int:
    return getattr(t, "_pathwaygrad_batch", 0) if isinstance(t, torch.Tensor) else 0


def _set_mark(t: torch.Tensor, mark: int) -> None:
    if _mark(t) < mark:
        setattr(t, "_pathwaygrad_batch", mark)  # noqa: B010 (a tensor attribute of our own)


class _WidenFailed(Exception):
    """The model did something the lazy batch expansion does not support."""


class _LazyBatch(TorchFunctionMode):
    """Tracks tensors computed from the inputs; once a widened tensor exists, repeats batch-B
    tensors to the widened batch where they meet one."""

    def __init__(self, batch: int, n: int):
        super().__init__()
        self.batch = batch
        self.n = n

    def _scan(self, seq, found: list[int]) -> None:
        for a in seq:
            if isinstance(a, torch.Tensor):
                m = _mark(a)
                if m:
                    found[m - 1] = 1
            elif isinstance(a, list | tuple):
                self._scan(a, found)

    def _widen(self, a):
        if isinstance(a, torch.Tensor):
            if _mark(a) == _DATA and a.ndim > 0 and a.shape[0] == self.batch:
                wide = a.repeat(self.n, *([1] * (a.ndim - 1)))
                _set_mark(wide, _WIDE)
                return wide
            return a
        if isinstance(a, list | tuple):
            return type(a)(self._widen(b) for b in a)
        return a

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        found = [0, 0]
        self._scan(args, found)
        self._scan(kwargs.values(), found)
        if found[1] and found[0]:
            args = self._widen(args)
            kwargs = {k: self._widen(v) for k, v in kwargs.items()}
        out = func(*args, **kwargs)
        mark = _WIDE if found[1] else _DATA if found[0] else 0
        if mark:
            for o in out if isinstance(out, tuple | list) else (out,):
                if isinstance(o, torch.Tensor):
                    _set_mark(o, mark)
        return out


class _Scale:
    """Transform: call ``layer``'s output replaced by alpha * output for every alpha of ``col``.

    ``wide``: the output is widened to (n * B) here (lazy expansion); else the batch already
    holds the n copies (full replay).
    """

    inplace_ok = True  # the scaled leaf is detached; other calls pass through

    def __init__(self, layer: int, col: torch.Tensor, n: int, wide: bool):
        self.layer, self.col, self.n, self.wide = layer, col, n, wide
        self.leaf: torch.Tensor | None = None

    def __call__(self, i, kind, out):
        if i != self.layer:
            return out
        a = out.detach()
        if self.wide:
            a = a.repeat(self.n, *([1] * (a.ndim - 1)))
        self.leaf = (a * self.col).requires_grad_(True)
        scaled = self.leaf.clone()  # callers may edit it in place; the leaf stays intact
        if self.wide:
            _set_mark(scaled, _WIDE)
        return scaled


def neuron_intgrad_scores(
    runner,
    inputs: torch.Tensor,
    probe: Probe,
    extra: tuple = (),
    steps: int = 10,
    internal_batch_size: int | None = None,
    progress: bool = False,
) -> list[torch.Tensor]:
    """Scores shaped like each call's output (B, ...). Costs (calls) x (steps + 1) partial passes.

    ``steps`` and ``internal_batch_size`` are checked by the caller
    (:func:`pathwaygrad.methods.check_values`).
    """
    batch = inputs.shape[0]
    points = steps + 1
    alphas = torch.linspace(0.0, 1.0, points, dtype=torch.float64)
    if internal_batch_size is None:
        per_chunk = points
    else:
        per_chunk = max(1, int(internal_batch_size) // batch)
    chunks = [alphas[s : s + per_chunk] for s in range(0, points, per_chunk)]
    try:
        return _scores(runner, inputs, probe, extra, chunks, points, progress, wide=True)
    except _WidenFailed:
        return _scores(runner, inputs, probe, extra, chunks, points, progress, wide=False)


def _scores(runner, inputs, probe, extra, chunks, points, progress, wide):
    batch = inputs.shape[0]
    scores = []
    calls = tqdm(probe.acts, desc="NeuronIntGrad", unit="call", disable=not progress, leave=False)
    for layer, act in enumerate(calls):
        grad_sum = torch.zeros_like(act)
        for chunk in chunks:
            n = len(chunk)
            col = chunk.repeat_interleave(batch).to(act.device, act.dtype)
            col = col.view(n * batch, *([1] * (act.ndim - 1)))
            g = _chunk_grad(runner, inputs, probe, extra, layer, col, n, wide, check=chunk[-1] == 1)
            grad_sum += g.view(n, batch, *act.shape[1:]).sum(0)
        scores.append((act * grad_sum).abs_().div_(points))
    return scores


def _chunk_grad(runner, inputs, probe, extra, layer, col, n, wide, check):
    """d y / d(alpha a_layer) for the n alphas of ``col``, shaped (n * B, ...)."""
    batch = inputs.shape[0]
    scale = _Scale(layer, col, n, wide)
    targets = probe.targets.repeat(n)
    if not wide:
        x = _repeat_batch(inputs, n, batch)
        extra_rep = tuple(_repeat_batch(e, n, batch) for e in extra)
        with torch.enable_grad():
            logits, _, _ = run_model(runner, x, scale, extra_rep)
            y = target_outputs(logits, targets).sum()
            assert scale.leaf is not None
            (g,) = torch.autograd.grad(y, scale.leaf, allow_unused=True, materialize_grads=True)
        return g
    x = inputs.detach().view_as(inputs)  # a fresh tensor object to carry the mark
    _set_mark(x, _DATA)
    extra_marked = []
    for e in extra:
        if isinstance(e, torch.Tensor) and e.ndim > 0 and e.shape[0] == batch:
            e = e.detach().view_as(e)
            _set_mark(e, _DATA)
        extra_marked.append(e)
    try:
        with torch.enable_grad(), _LazyBatch(batch, n):
            logits, _, _ = runner.forward(x, scale, tuple(extra_marked))
        if scale.leaf is None or logits.ndim != 2 or logits.shape[0] != n * batch:
            raise _WidenFailed
        if check:
            # The alpha = 1 copy (the last) is the unchanged network: its logits must match.
            last = logits.detach()[(n - 1) * batch :]
            ref = probe.logits
            tol = 1e-3 * float(ref.abs().max()) + 1e-6
            if last.shape != ref.shape or not torch.allclose(last, ref, rtol=1e-3, atol=tol):
                raise _WidenFailed
        with torch.enable_grad():
            y = target_outputs(logits, targets).sum()
            (g,) = torch.autograd.grad(y, scale.leaf, allow_unused=True, materialize_grads=True)
    except (RuntimeError, IndexError, ValueError) as exc:
        # The model does not run widened (torch's own errors, e.g. shapes that assume the
        # batch size): replay it whole. The model's own exception types propagate.
        if type(exc) not in (RuntimeError, IndexError, ValueError):
            raise
        raise _WidenFailed from exc
    return g
