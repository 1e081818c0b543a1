"""Display helpers: the paper's single-channel reduction of a saliency map."""

from __future__ import annotations

import torch


def reduce_channels(attr: torch.Tensor, normalize: bool = True) -> torch.Tensor:
    """(B, C, H, W) -> (B, H, W): per pixel the channel value of largest magnitude, sign kept.

    With ``normalize`` each map is divided by its max |value| (all-zero maps stay zero), so values
    lie in [-1, 1] (paper section 2, "Display").
    """
    if attr.ndim != 4:
        raise ValueError(f"expected a (B, C, H, W) map, got shape {tuple(attr.shape)}")
    idx = attr.abs().argmax(dim=1, keepdim=True)
    out = attr.gather(1, idx).squeeze(1)
    if normalize:
        peak = out.abs().flatten(1).max(dim=1).values.clamp(min=torch.finfo(out.dtype).tiny)
        out = out / peak.view(-1, 1, 1)
    return out
