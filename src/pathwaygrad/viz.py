"""Figures of explanations: one image with its maps, or a grid of images (the demo's figure).

Maps are drawn with the paper's single-channel reduction (:func:`reduce_channels`, also
``pathwaygrad.reduce_channels``: red positive, blue negative, each map scaled by its max
|value|). matplotlib is imported only here, only when a figure is drawn, with a non-interactive
backend.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch

__all__ = ["explanation_figure", "grid_figure", "reduce_channels", "save_and_close"]


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


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _heat(amap) -> Any:
    return reduce_channels(torch.as_tensor(amap).unsqueeze(0))[0].numpy()


def _show_image(ax, image: torch.Tensor) -> None:
    img = image.permute(1, 2, 0).clamp(0, 1).cpu().numpy()
    if img.shape[2] == 1:
        ax.imshow(img[:, :, 0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    else:
        ax.imshow(img, interpolation="nearest")


def _head(label: str, rec: dict, *, sweep_short: bool) -> str:
    name = rec.get("display") or rec["method"]
    if "@" in label:
        return (
            f"s = {rec['sparsity_requested']:g}"
            if sweep_short
            else f"{name} s={rec['sparsity_requested']:g}"
        )
    return name


def explanation_figure(result: Any, *, title: str | None = None):
    """A one-row figure: the input with the prediction, then one heat map per method."""
    plt = _pyplot()
    labels = list(result.maps)
    n = len(labels) + 1
    fig, axes = plt.subplots(1, n, figsize=(1.9 * n, 2.45), squeeze=False)
    axes = axes[0]
    pred = result.prediction
    _show_image(axes[0], result.image)
    axes[0].set_title(f"{pred['name']}\np = {pred['probability']:.2f}", fontsize=9)
    for ax, label in zip(axes[1:], labels):
        ax.imshow(_heat(result.maps[label]), cmap="bwr", vmin=-1, vmax=1, interpolation="nearest")
        rec = result.records[label]
        sub = f"\n{rec['sparsity']:.1f}% pruned" if rec["kind"] == "pathway_gradient" else ""
        ax.set_title(_head(label, rec, sweep_short=False) + sub, fontsize=8)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def grid_figure(rows: Sequence[tuple[Any, str]], *, title: str):
    """One row per ``(explanation, row name)``: the input with its prediction, then the maps."""
    plt = _pyplot()
    labels = list(rows[0][0].maps)
    ncol = len(labels) + 1
    fig, axes = plt.subplots(
        len(rows), ncol, figsize=(1.55 * ncol, 1.7 * len(rows) + 0.5), squeeze=False
    )
    for r, (result, name) in enumerate(rows):
        pred = result.prediction
        _show_image(axes[r, 0], result.image)
        axes[r, 0].set_ylabel(name, fontsize=8)
        axes[r, 0].set_title(f"{pred['name']} {pred['probability']:.2f}", fontsize=8)
        for c, label in enumerate(labels, start=1):
            axes[r, c].imshow(
                _heat(result.maps[label]), cmap="bwr", vmin=-1, vmax=1, interpolation="nearest"
            )
            if r == 0:
                axes[r, c].set_title(
                    _head(label, result.records[label], sweep_short=True), fontsize=8
                )
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def save_and_close(fig: Any, path: str | os.PathLike, dpi: int = 110) -> None:
    """Write ``fig`` atomically (format from the suffix) and free it."""
    from pathwaygrad._io import save_figure

    plt = _pyplot()
    try:
        save_figure(fig, path, dpi=dpi)
    finally:
        plt.close(fig)
