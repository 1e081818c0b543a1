"""NeuronIntGrad (paper section 2): integrated gradients on one activation call at a time.

For call l with output a_l, and alpha in {0, 1/K, ..., 1} (K = ``steps``, so K + 1 points, a
uniform grid), the call's whole output is replaced by alpha * a_l while every other call runs
normally; score = |a_l * mean_alpha dy_c/d(alpha a_l)|. Every *call* is scored (the reference
scripts scored only the first calls of reused modules and used an accumulating alpha grid).

The alphas of one call run as one batch (``internal_batch_size`` caps the examples per forward),
and each backward stops at the scaled call.
"""

from __future__ import annotations

import torch
from tqdm.auto import tqdm

from pathwaygrad._inputs import run_model
from pathwaygrad.methods._probe import Probe, target_outputs


def _repeat_batch(t, n: int, batch: int):
    if isinstance(t, torch.Tensor) and t.ndim > 0 and t.shape[0] == batch:
        return t.repeat(n, *([1] * (t.ndim - 1)))
    return t


def neuron_intgrad_scores(
    runner,
    inputs: torch.Tensor,
    probe: Probe,
    extra: tuple = (),
    steps: int = 10,
    internal_batch_size: int | None = None,
    progress: bool = False,
) -> list[torch.Tensor]:
    """Scores shaped like each call's output (B, ...). Costs (calls) x (steps + 1) partial passes."""
    steps = int(steps)
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    batch = inputs.shape[0]
    points = steps + 1
    alphas = torch.linspace(0.0, 1.0, points, dtype=torch.float64)
    if internal_batch_size is None:
        per_chunk = points
    else:
        if int(internal_batch_size) < 1:
            raise ValueError(f"internal_batch_size must be >= 1, got {internal_batch_size}")
        per_chunk = max(1, int(internal_batch_size) // batch)
    scores = []
    calls = tqdm(probe.acts, desc="NeuronIntGrad", unit="call", disable=not progress, leave=False)
    for layer, act in enumerate(calls):
        grad_sum = torch.zeros_like(act)
        for start in range(0, points, per_chunk):
            chunk = alphas[start : start + per_chunk]
            n = len(chunk)
            x = _repeat_batch(inputs, n, batch)
            extra_rep = tuple(_repeat_batch(e, n, batch) for e in extra)
            col = chunk.repeat_interleave(batch).to(act.device, act.dtype)
            col = col.view(n * batch, *([1] * (act.ndim - 1)))
            scaled_holder = []

            def scale(i, kind, out, layer=layer, col=col, holder=scaled_holder):
                if i != layer:
                    return out
                scaled = (out.detach() * col).requires_grad_(True)
                holder.append(scaled)
                return scaled.clone()  # callers may edit it in place; the leaf stays intact

            with torch.enable_grad():
                logits, _, _ = run_model(runner, x, scale, extra_rep)
                y = target_outputs(logits, probe.targets.repeat(n)).sum()
                (g,) = torch.autograd.grad(
                    y, scaled_holder, allow_unused=True, materialize_grads=True
                )
            grad_sum += g.view(n, batch, *act.shape[1:]).sum(0)
        scores.append((act * grad_sum).abs_().div_(points))
    return scores
