"""Pixel rankings from attribution maps, and the masks that remove / keep the top pixels.

Conventions (shared by every protocol):

- A *map* is an attribution tensor (B, C, H, W), (B, 1, h, w) (e.g. Grad-CAM, upsampled bilinearly
  to the input size here when smaller) or (B, H, W).
- A *pixel score* (B, H, W) reduces the channels: ``rank_by="max"`` takes the maximum over channels
  of the signed map (the paper's ROAR ranking), ``"abs"`` the maximum of ``|map|`` over channels.
  Higher score = more important.
- A *rank* (B, H, W) int64 is the position of each pixel in the importance order: 0 = most
  important. Ties are broken by a seeded random permutation, so a constant map ranks pixels at
  random rather than top-left first, and the same seed gives the same order.
- Removing the top ``t`` (a fraction in [0, 1]) means the ``round(t * H * W)`` pixels of rank
  ``< k``; all channels of a removed pixel are replaced.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = [
    "RANK_BY",
    "apply_fill",
    "n_pixels",
    "pixel_ranks",
    "pixel_scores",
    "random_scores",
    "removal_mask",
]

RANK_BY = ("max", "abs")


def pixel_scores(attr: torch.Tensor, rank_by: str = "max", size: tuple[int, int] | None = None):
    """Per-pixel importance (B, H, W) float32 from a map (B, C, H, W), (B, 1, h, w) or (B, H, W).

    ``size``: the input's (H, W); a map of another spatial size is resized bilinearly to it.
    NaN scores become -inf (least important).
    """
    if rank_by not in RANK_BY:
        raise ValueError(f"rank_by must be one of {RANK_BY}, got {rank_by!r}")
    a = torch.as_tensor(attr).detach().float()
    if a.ndim == 3:
        a = a.unsqueeze(1)
    if a.ndim != 4:
        raise ValueError(
            f"an attribution map must be (B, C, H, W) or (B, H, W), got {tuple(a.shape)}"
        )
    if size is not None and tuple(a.shape[-2:]) != tuple(size):
        a = F.interpolate(a, size=tuple(size), mode="bilinear", align_corners=False)
    if rank_by == "abs":
        a = a.abs()
    s = a.amax(dim=1)
    return torch.nan_to_num(s, nan=float("-inf"))


def random_scores(n: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    """Uniform random pixel scores (n, H, W): the random-ranking baseline. Same seed, same scores."""
    g = torch.Generator().manual_seed(int(seed))
    return torch.rand(n, height, width, generator=g)


def pixel_ranks(scores: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Rank of every pixel (B, H, W) int64, 0 = highest score; ties broken by a seeded permutation."""
    s = torch.as_tensor(scores).float()
    b, h, w = s.shape
    flat = s.reshape(b, h * w)
    g = torch.Generator().manual_seed(int(seed))
    perm = torch.argsort(torch.rand(b, h * w, generator=g), dim=1)
    shuffled = torch.gather(flat, 1, perm)
    order = torch.gather(perm, 1, torch.argsort(-shuffled, dim=1, stable=True))
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(h * w).expand(b, -1).contiguous())
    return ranks.reshape(b, h, w)


def n_pixels(fraction: float, height: int, width: int) -> int:
    """Number of pixels in the top ``fraction`` (in [0, 1]) of an H x W image."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"a pixel fraction must lie in [0, 1], got {fraction}")
    return int(round(fraction * height * width))


def removal_mask(ranks: torch.Tensor, fraction: float, order: str = "morf") -> torch.Tensor:
    """Bool mask (B, H, W) of the pixels to remove.

    ``order="morf"`` (most relevant first; ROAR, deletion): the top ``fraction``;
    ``"lerf"`` (least relevant first): the bottom ``fraction``;
    ``"keep"`` (KAR): everything *except* the top ``fraction``.
    """
    h, w = ranks.shape[-2:]
    k = n_pixels(fraction, h, w)
    if order == "morf":
        return ranks < k
    if order == "lerf":
        return ranks >= h * w - k
    if order == "keep":
        return ranks >= k
    raise ValueError(f"order must be 'morf', 'lerf' or 'keep', got {order!r}")


def apply_fill(x: torch.Tensor, remove: torch.Tensor, fill) -> torch.Tensor:
    """Replace the removed pixels of ``x`` (B, C, H, W) with ``fill``.

    ``remove``: bool (B, H, W). ``fill``: a number, a per-channel tensor (C,), or a tensor
    broadcastable to ``x`` (e.g. a blurred copy of ``x``). Returns a new tensor.
    """
    fill_t = torch.as_tensor(fill, dtype=x.dtype, device=x.device)
    if fill_t.ndim == 1:
        fill_t = fill_t.view(1, -1, 1, 1)
    return torch.where(remove.to(x.device).unsqueeze(1), fill_t, x)
