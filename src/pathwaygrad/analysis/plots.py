"""Figures of the pathway analyses (matplotlib, Agg backend; every function saves a PNG)."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence

import numpy as np

from pathwaygrad._io import save_figure


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def jaccard_heatmaps(result, path: str | os.PathLike, *, percent: bool = True) -> None:
    """One annotated heat map of the mean Jaccard matrix per sparsity (an OverlapResult)."""
    plt = _plt()
    sps = result.sparsities
    m = len(result.labels)
    fig, axes = plt.subplots(
        1, len(sps), figsize=(1.0 + 0.9 * m * len(sps), 0.9 * m + 1.2), squeeze=False
    )
    for ax, s in zip(axes[0], sps):
        mat = result.mean("jaccard", s) * (100.0 if percent else 1.0)
        ax.imshow(mat, vmin=0, vmax=100.0 if percent else 1.0, cmap="viridis")
        for i in range(m):
            for j in range(m):
                v = mat[i, j]
                ax.text(
                    j,
                    i,
                    f"{v:.1f}" if percent else f"{v:.2f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if v < (50 if percent else 0.5) else "black",
                )
        ax.set_xticks(range(m), result.display, rotation=45, ha="right", fontsize=7)
        ax.set_yticks(range(m), result.display, fontsize=7)
        ax.set_title(f"Jaccard {'%' if percent else ''} at sparsity {s:g}", fontsize=9)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)


def layerwise_curves(result, path: str | os.PathLike, reference: int = 0) -> None:
    """Per activation call: dead share of each pathway (with the network's dead fraction) and
    Jaccard with the ``reference`` method, one column per sparsity."""
    plt = _plt()
    sps = result.sparsities
    calls = np.arange(len(result.sites))
    fig, axes = plt.subplots(2, len(sps), figsize=(4.2 * len(sps), 6.4), squeeze=False, sharex=True)
    net_dead = np.nanmean(result.dead_fraction, axis=0)
    for col, s in enumerate(sps):
        ax = axes[0, col]
        dead = result.mean("layer_dead", s)  # (calls, M)
        for j, name in enumerate(result.display):
            ax.plot(calls, 100 * dead[:, j], marker=".", color=f"C{j}", label=name)
        ax.plot(calls, 100 * net_dead, "k--", label="network (dead path)")
        ax.set_ylim(-3, 103)
        ax.set_title(f"dead share % per call, sparsity {s:g}", fontsize=9)
        ax = axes[1, col]
        jac = result.mean("layer_jaccard", s)  # (calls, M, M)
        for j, name in enumerate(result.display):
            if j != reference:
                ax.plot(calls, 100 * jac[:, reference, j], marker=".", color=f"C{j}", label=name)
        ax.set_ylim(-3, 103)
        ax.set_title(f"Jaccard % with {result.display[reference]}, sparsity {s:g}", fontsize=9)
        ax.set_xlabel("activation call (forward order)")
    axes[0, 0].legend(fontsize=7)
    axes[1, 0].legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path, dpi=100)
    plt.close(fig)


def fidelity_curves(result, path: str | os.PathLike) -> None:
    """Mean masked/full target-logit ratio, target probability and prediction kept vs sparsity."""
    plt = _plt()
    sps = result.sparsities
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    for j, name in enumerate(result.display):
        for ax, f in zip(axes, ("logit_ratio", "prob", "kept")):
            ax.plot(
                sps, [np.nanmean(result.values[s][f][:, j]) for s in sps], marker="o", label=name
            )
    full_prob = np.nanmean(result.values[sps[0]]["full_prob"][:, 0])
    axes[1].axhline(full_prob, color="k", ls="--", label="full network")
    for ax, t in zip(
        axes, ("target logit: pathway / full", "target probability", "prediction kept (share)")
    ):
        ax.set_title(t, fontsize=9)
        ax.set_xlabel("sparsity %")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path, dpi=100)
    plt.close(fig)


def radius_plot(result, path: str | os.PathLike) -> None:
    """Distribution over examples of the pattern radius (min over directions and median over
    random directions) per pathway, log scale; and the linearisation error vs radius."""
    plt = _plt()
    rows = [(n, s) for n in result.names for s in result.values[n]]
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    for ax, f, t in zip(
        axes[:2],
        ("radius_min", "radius_median"),
        ("radius, min over directions", "radius, median over random directions"),
    ):
        data = [result.values[n][s][f][np.isfinite(result.values[n][s][f])] for n, s in rows]
        ax.boxplot(data)
        ax.set_yscale("log")
        ax.set_xticks(
            range(1, len(rows) + 1),
            [n if n == "full" else f"{n}@{s:g}" for n, s in rows],
            rotation=45,
            ha="right",
            fontsize=7,
        )
        ax.set_title(f"{t} (L2, input space)", fontsize=9)
    ax = axes[2]
    for n, s in rows:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            err = [
                np.nanmedian(result.values[n][s]["error"][:, j]) for j in range(len(result.radii))
            ]
        ax.plot(result.radii, err, marker="o", label=n if n == "full" else f"{n}@{s:g}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("step length r (L2, input space)")
    ax.set_title("linearisation error |f(x+d)-f(x)-g.d| / |f(x+d)-f(x)|", fontsize=9)
    ax.legend(fontsize=6)
    fig.tight_layout()
    save_figure(fig, path, dpi=100)
    plt.close(fig)


def decode_figure(
    inputs_pixels: np.ndarray,
    decoded: dict,
    names: Sequence[str],
    display: Sequence[str],
    path: str | os.PathLike,
    *,
    title: str = "",
) -> None:
    """One figure: per example, a row of class visualisations (input, full network, each
    pathway) and a row of top-neuron visualisations (each pathway).

    ``inputs_pixels``: (B, H, W, C) in [0, 1]; ``decoded``: the dict of
    :func:`pathwaygrad.analysis.decode_pathways`.
    """
    plt = _plt()
    b = inputs_pixels.shape[0]
    cols = 2 + len(names)
    has_neuron = bool(decoded.get("neuron"))
    rows = b * (2 if has_neuron else 1)
    fig, axes = plt.subplots(rows, cols, figsize=(1.45 * cols, 1.6 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")

    def show(ax, img, text):
        arr = img.permute(1, 2, 0).numpy() if hasattr(img, "permute") else img
        ax.imshow(np.clip(arr.squeeze(), 0, 1), cmap="gray" if arr.shape[-1] == 1 else None)
        ax.set_title(text, fontsize=6)

    for i in range(b):
        r = i * (2 if has_neuron else 1)
        show(axes[r, 0], inputs_pixels[i], "input")
        full = decoded["class"]["full"]
        show(axes[r, 1], full.images[i], f"full net\nlogit {full.start[i]:.1f}->{full.end[i]:.1f}")
        for k, (n, d) in enumerate(zip(names, display)):
            res = decoded["class"][n]
            show(axes[r, 2 + k], res.images[i], f"{d}\nlogit {res.start[i]:.1f}->{res.end[i]:.1f}")
        if has_neuron:
            axes[r + 1, 1].text(
                0.5, 0.5, "top neuron,\nlast conv call", ha="center", va="center", fontsize=7
            )
            for k, (n, d) in enumerate(zip(names, display)):
                res = decoded["neuron"][n]
                call, idx = decoded["neuron_index"][n]
                if not np.isfinite(float(res.end[i])) or int(idx[i]) < 0:
                    axes[r + 1, 2 + k].text(0.5, 0.5, "no kept\nneuron", ha="center", fontsize=7)
                    continue
                show(
                    axes[r + 1, 2 + k],
                    res.images[i],
                    f"{d} #{int(idx[i])}\nact {res.start[i]:.2f}->{res.end[i]:.2f}",
                )
    if title:
        fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)
