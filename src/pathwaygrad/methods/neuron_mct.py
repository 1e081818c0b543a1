"""NeuronMCT (paper section 2): first-order Taylor contribution of every neuron.

score = |a * dy_c/da| for every element ``a`` of every activation call, from one forward and one
backward pass of the unmasked network. Dead neurons (a = 0) score 0.
"""

from __future__ import annotations

import torch

from pathwaygrad.methods._probe import Probe


def neuron_mct_scores(probe: Probe) -> list[torch.Tensor]:
    """Scores shaped like each call's output (B, ...), from a recorded probe."""
    scores = []
    for i, a in enumerate(probe.acts):
        scores.append((probe.grads[i] * a).abs_())
        probe.grads[i] = None  # free each gradient as soon as its scores exist
    return scores
