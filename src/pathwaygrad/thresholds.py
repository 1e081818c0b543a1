"""Thresholding: turn neuron scores into boolean masks (part of step 3, select a pathway).

Thresholding (paper section 2): one *global* threshold over all calls of one example, the s-th
percentile of all its scores with linear interpolation (numpy's default); neurons scoring
<= threshold are pruned. ``s`` is the sparsity in percent pruned. Ties (many zeros) can make the
real sparsity exceed s; :attr:`pathwaygrad.Pathway.sparsity` reports the real one.
``per_layer`` thresholds each call separately at the same percentile.

The percentile is an order statistic found with :func:`torch.kthvalue` on the scores' device:
no full sort and no numpy round trip.
"""

from __future__ import annotations

import math

import torch

THRESHOLDS = ("global", "per_layer")


def flatten_scores(scores: list[torch.Tensor]) -> torch.Tensor:
    """All calls' scores of each example side by side: (B, N) with N the number of neurons."""
    return torch.cat([s.reshape(s.shape[0], -1) for s in scores], dim=1)


def percentile(flat: torch.Tensor, q: float) -> torch.Tensor:
    """Per-row q-th percentile (0..100) with linear interpolation, as ``numpy.percentile``.

    Args:
        flat: (B, N) scores. Returns: (B,) float64 thresholds.
    """
    n = flat.shape[1]
    pos = (q / 100.0) * (n - 1)
    lo = int(math.floor(pos))
    frac = pos - lo
    v_lo = flat.kthvalue(lo + 1, dim=1).values.double()
    if frac == 0.0 or lo + 1 >= n:
        return v_lo
    v_hi = flat.kthvalue(lo + 2, dim=1).values.double()
    # numpy's _lerp: exact at both ends, symmetric rounding.
    diff = v_hi - v_lo
    if frac >= 0.5:
        return v_hi - diff * (1.0 - frac)
    return v_lo + diff * frac


def _view(thr: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return thr.view(-1, *([1] * (like.ndim - 1)))


def threshold_masks(
    scores: list[torch.Tensor], sparsity: float, threshold: str = "global"
) -> list[torch.Tensor]:
    """Keep neurons scoring above the s-th percentile; returns bool masks shaped like ``scores``."""
    if threshold == "global":
        flat = flatten_scores(scores)
        thr = percentile(flat, sparsity)
        del flat
        return [s > _view(thr, s) for s in scores]
    if threshold == "per_layer":
        return [s > _view(percentile(s.reshape(s.shape[0], -1), sparsity), s) for s in scores]
    raise ValueError(f"threshold must be one of {THRESHOLDS}, got {threshold!r}")


def real_sparsity(masks: list[torch.Tensor]) -> torch.Tensor:
    """Percent of neurons pruned per example, float (B,)."""
    kept = sum(m.reshape(m.shape[0], -1).sum(dim=1, dtype=torch.float64) for m in masks)
    total = sum(m[0].numel() for m in masks)
    return (100.0 * (1.0 - kept / total)).float()
