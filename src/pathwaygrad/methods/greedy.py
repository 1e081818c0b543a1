"""Greedy, the paper's "pathological" pruning baseline (section 2).

Iterative Taylor pruning that, at every iteration, turns back on every neuron whose current
score is 0 (dead neurons, and those it just pruned). Iteration i thresholds the current Taylor
scores (zero scores moved to the top) at percentile p_i = 0, step, 2 step, ... and last the requested
sparsity (the reference runs p_i = 0..99 with step 1): the new mask keeps neurons scoring above
the threshold and every neuron scoring 0. Scores are recomputed in the masked network. The result
keeps mostly dead neurons, so its *real* sparsity is far below the requested one: always read
``Pathway.sparsity``. The paper says it keeps the response; on the pretrained CIFAR ResNet-20 we
measure that it does not (docs/analysis.md, fidelity), although it matches the reference iteration.
"""

from __future__ import annotations

import torch

from pathwaygrad.methods.neuron_mct import neuron_mct_scores
from pathwaygrad.probe import Probe, probe
from pathwaygrad.thresholds import flatten_scores, percentile


def greedy_schedule(sparsity: float, step: float) -> list[float]:
    """Percentiles of the iterations: 0, step, 2 step, ... and always ``sparsity`` last."""
    n = int(sparsity // step)
    pcts = [i * step for i in range(n + 1) if i * step < sparsity]
    return pcts + [float(sparsity)]


def greedy_masks(
    runner, inputs, first: Probe, extra=(), sparsity: float = 99.0, step: float = 1.0
) -> list[torch.Tensor]:
    if step <= 0:
        raise ValueError(f"step must be > 0 (percent per iteration), got {step}")
    scores = neuron_mct_scores(first)
    schedule = greedy_schedule(sparsity, step)
    n_iter = len(schedule)
    masks = None
    for it, pct in enumerate(schedule):
        flat = flatten_scores(scores)
        top = flat.max(dim=1, keepdim=True).values
        flat = torch.where(flat <= 0, top, flat)
        thr = percentile(flat, pct)
        del flat
        masks = [(s > thr.view(-1, *([1] * (s.ndim - 1)))) | (s <= 0) for s in scores]
        if it + 1 < n_iter:
            scores = neuron_mct_scores(probe(runner, inputs, first.targets, extra, masks=masks))
    return masks
