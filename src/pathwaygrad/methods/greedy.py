"""Greedy, the paper's "pathological" pruning baseline (section 2).

Iterative Taylor pruning that, at every iteration, turns back on every neuron whose current
score is 0 (dead neurons, and those it just pruned). Iteration i thresholds the current Taylor
scores (zero scores moved to the top) at percentile p_i = 0, step, 2 step, ... and last the requested
sparsity (the reference runs p_i = 0..99 with step 1): the new mask keeps neurons scoring above
the threshold and every neuron scoring 0. Scores are recomputed in the masked network. The result
keeps mostly dead neurons, so its *real* sparsity is far below the requested one: always read
``Pathway.sparsity``. The paper says it keeps the response; on the pretrained CIFAR ResNet-20 we
measure that it does not (docs/analysis.md, fidelity), although it matches the reference iteration.

Schedules (``schedule``): ``"inclusive"`` (default) runs the percentiles 0, step, ... up to and
including the requested sparsity s, which equals the authors' ``prune_greedy(1, s + 1)`` (their
quantitative experiments); ``"paper_figures"`` stops one step short (0, step, ... < s), as the
authors' qualitative script's ``prune_greedy(1, s)`` does. Because the Greedy mask alternates
between two states from one iteration to the next, the parity of the last step changes the
pathway: the two schedules give different pathways (IoU 0.59-0.67 between them measured on the
CIFAR ResNets), and ``"paper_figures"`` at s equals ``"inclusive"`` at s - step.
"""

from __future__ import annotations

import torch

from pathwaygrad.methods.neuron_mct import neuron_mct_scores
from pathwaygrad.probe import Probe, probe
from pathwaygrad.thresholds import flatten_scores, percentile


def greedy_schedule(sparsity: float, step: float, schedule: str = "inclusive") -> list[float]:
    """Percentiles of the iterations: 0, step, 2 step, ... below ``sparsity``, then ``sparsity``
    itself (``"inclusive"``) or nothing more (``"paper_figures"``; at least the 0-th)."""
    n = int(sparsity // step)
    pcts = [float(i * step) for i in range(n + 1) if i * step < sparsity]
    if schedule == "paper_figures":
        return pcts or [0.0]
    return pcts + [float(sparsity)]


def greedy_masks(
    runner,
    inputs,
    first: Probe,
    extra=(),
    sparsity: float = 99.0,
    step: float = 1.0,
    schedule: str = "inclusive",
) -> list[torch.Tensor]:
    """The Greedy pathway's masks after the iterations of ``greedy_schedule``."""
    scores = neuron_mct_scores(first)
    percentiles = greedy_schedule(sparsity, step, schedule)
    n_iter = len(percentiles)
    masks: list[torch.Tensor] = []
    for it, pct in enumerate(percentiles):
        flat = flatten_scores(scores)
        top = flat.max(dim=1, keepdim=True).values
        flat = torch.where(flat <= 0, top, flat)
        thr = percentile(flat, pct)
        del flat
        masks = [(s > thr.view(-1, *([1] * (s.ndim - 1)))) | (s <= 0) for s in scores]
        if it + 1 < n_iter:
            scores = neuron_mct_scores(probe(runner, inputs, first.targets, extra, masks=masks))
    return masks
