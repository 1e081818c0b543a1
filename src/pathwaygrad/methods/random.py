"""Random pathway (paper section 2): per activation call, prune a random p % of neurons.

Implemented as uniform random scores thresholded per call. The draw depends only on ``seed``,
not on the batch: every example of a batch gets the same pattern, so batched and per-example
results agree.
"""

from __future__ import annotations

import torch


def random_scores(shapes, seed: int = 0, device=None) -> list[torch.Tensor]:
    """Uniform scores in [0, 1), one tensor per call shaped (B, ...) like ``shapes``."""
    gen = torch.Generator().manual_seed(int(seed))
    scores = []
    for shape in shapes:
        one = torch.rand(tuple(shape[1:]), generator=gen)
        scores.append(one.to(device).expand(shape).contiguous())
    return scores
