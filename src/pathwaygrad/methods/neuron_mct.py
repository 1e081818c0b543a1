"""NeuronMCT (paper section 2): first-order Taylor contribution of every neuron.

score = |a * dy_c/da| for every element ``a`` of every activation call, from one forward and one
backward pass of the unmasked network. Dead neurons (a = 0) score 0.
"""

from __future__ import annotations

import torch

from pathwaygrad.methods._probe import Probe


def neuron_mct_scores(probe: Probe) -> list[torch.Tensor]:
    """Scores shaped like each call's output (B, ...), from a recorded probe.

    The probe's gradients are consumed: each score is computed in the memory of its gradient
    when that gradient is a tensor of its own (no second copy of millions of scores), and the
    probe's ``grads`` entries are set to None.
    """
    counts: dict[int, int] = {}
    for g in probe.grads:
        if g is not None:
            key = g.untyped_storage().data_ptr()
            counts[key] = counts.get(key, 0) + 1
    scores = []
    for i, a in enumerate(probe.acts):
        g = probe.grads[i]
        probe.grads[i] = None  # free each gradient as soon as its scores exist
        if _owns_memory(g, a, counts):
            scores.append(g.mul_(a).abs_())
        else:
            scores.append((g * a).abs_())
    return scores


def _owns_memory(g: torch.Tensor, a: torch.Tensor, counts: dict[int, int]) -> bool:
    """Whether ``g`` can be overwritten: dense, shaped like ``a``, sharing memory with no other grad."""
    if g.shape != a.shape or g.dtype != a.dtype or not g.is_contiguous() or g._base is not None:
        return False
    if g.untyped_storage().data_ptr() == a.untyped_storage().data_ptr():
        return False
    return counts.get(g.untyped_storage().data_ptr(), 0) == 1
