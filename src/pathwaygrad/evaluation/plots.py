"""PNG figures of evaluation results (matplotlib, no pyplot state, written atomically).

- :func:`plot_roar`: test accuracy vs % pixels removed (ROAR) / kept (KAR), mean +- std over
  repeats as error bars, the unmodified-data accuracy as a dashed line.
- :func:`plot_perturbation`: relative drop vs % removed, one panel per order, area in the legend.
- :func:`plot_deletion_insertion`: p_c vs % deleted / inserted, AUC in the legend.
- :func:`plot_road`: accuracy vs % removed and imputed, MoRF and LeRF panels, area in the legend.
- :func:`plot_sanity`: similarity vs randomised layer (top-down), one panel per measure.

:func:`plot_results` picks the right one from ``table.meta["protocol"]``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from pathwaygrad._io import save_figure
from pathwaygrad.evaluation._results import summarize

__all__ = [
    "plot_deletion_insertion",
    "plot_perturbation",
    "plot_results",
    "plot_road",
    "plot_roar",
    "plot_sanity",
]


def _figure(ncols: int, width: float = 5.0, height: float = 3.8):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, height), layout="constrained")
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    return fig, axes


def _save(fig, path: str | os.PathLike) -> Path:
    return save_figure(fig, path, format="png", dpi=120)


def _methods(rows) -> list[str]:
    seen: list[str] = []
    for r in rows:
        if r["method"] not in seen:
            seen.append(r["method"])
    return seen


def plot_roar(table, path) -> Path:
    """Accuracy (%) vs fraction (%) per method with std error bars; one panel per ROAR / KAR."""
    rows = list(table)
    protocols = [p for p in ("roar", "kar") if any(r["protocol"] == p for r in rows)] or ["roar"]
    base = [r["accuracy"] for r in rows if r["protocol"] == "base"]
    fig, axes = _figure(len(protocols))
    for ax, proto in zip(axes, protocols):
        mine = [r for r in rows if r["protocol"] == proto]
        cells = summarize(mine, ("method", "fraction"), ("accuracy",))
        for m in _methods(mine):
            pts = sorted(
                (c["fraction"], c["accuracy_mean"], c["accuracy_std"])
                for c in cells
                if c["method"] == m
            )
            f, mean, std = (np.array(v, dtype=float) for v in zip(*pts))
            style = {"linestyle": "--", "color": "grey"} if m == "random_ranking" else {}
            ax.errorbar(
                100 * f, 100 * mean, yerr=100 * std, marker="o", capsize=3, label=m, **style
            )
        if base:
            ax.axhline(
                100 * float(np.mean(base)), color="black", linestyle=":", label="unmodified data"
            )
        what = "removed" if proto == "roar" else "kept"
        better = "lower" if proto == "roar" else "higher"
        ax.set_xlabel(f"% pixels {what} (top by the map)")
        ax.set_ylabel("test accuracy after retraining (%)")
        ax.set_title(f"{proto.upper()} ({better} = better map)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return _save(fig, path)


def plot_perturbation(table, path) -> Path:
    """Relative drop of p_c vs % removed; LeRF and MoRF panels; areas in the legend."""
    rows = list(table)
    orders = [o for o in ("lerf", "morf") if any(r["order"] == o for r in rows)]
    fig, axes = _figure(len(orders))
    for ax, order in zip(axes, orders):
        for m in _methods(rows):
            pts = sorted(
                (r["fraction"], r["relative_drop"])
                for r in rows
                if r["method"] == m and r["order"] == order
            )
            f, d = zip(*pts)
            s = table.summary.get(m, {}).get(order, {})
            label = f"{m} (area {s.get('area', float('nan')):.4f}; 0-10 %: {s.get('area_0_10', float('nan')):.4f})"
            ax.plot([0] + [100 * v for v in f], [0] + list(d), marker=".", label=label)
        better = "lower" if order == "lerf" else "higher"
        ax.set_xlabel(
            f"% pixels removed ({'least' if order == 'lerf' else 'most'} important first)"
        )
        ax.set_ylabel("relative drop |p_c(x) - p_c(x')| / p_c(x)")
        ax.set_title(f"{order.upper()} ({better} = better map)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return _save(fig, path)


def plot_deletion_insertion(table, path) -> Path:
    """p_c vs % deleted / inserted per method; AUC in the legend."""
    rows = list(table)
    curves = [c for c in ("deletion", "insertion") if any(r["curve"] == c for r in rows)]
    fig, axes = _figure(len(curves))
    for ax, curve in zip(axes, curves):
        for m in _methods(rows):
            pts = sorted(
                (r["fraction"], r["prob"]) for r in rows if r["method"] == m and r["curve"] == curve
            )
            f, p = zip(*pts)
            auc = table.summary.get(m, {}).get(curve, {}).get("auc", float("nan"))
            ax.plot([100 * v for v in f], p, label=f"{m} (AUC {auc:.3f})")
        ax.set_xlabel(
            f"% pixels {'deleted' if curve == 'deletion' else 'inserted'} (most important first)"
        )
        ax.set_ylabel("probability of the original class")
        ax.set_title(f"{curve} ({'lower' if curve == 'deletion' else 'higher'} AUC = better map)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return _save(fig, path)


def plot_road(table, path) -> Path:
    """Accuracy (%) vs % removed (noisy linear imputation); MoRF and LeRF panels."""
    rows = list(table)
    orders = [o for o in ("morf", "lerf") if any(r["order"] == o for r in rows)]
    fig, axes = _figure(len(orders))
    for ax, order in zip(axes, orders):
        for m in _methods(rows):
            pts = sorted(
                (r["fraction"], r["accuracy"])
                for r in rows
                if r["method"] == m and r["order"] == order
            )
            f, a = zip(*pts)
            area = table.summary.get(m, {}).get(order, {}).get("area", float("nan"))
            ax.plot(
                [100 * v for v in f],
                [100 * v for v in a],
                marker="o",
                label=f"{m} (area {area:.3f})",
            )
        ax.set_xlabel(
            f"% pixels imputed ({'most' if order == 'morf' else 'least'} important first)"
        )
        ax.set_ylabel("accuracy (%)")
        ax.set_title(
            f"ROAD {order.upper()} ({'lower' if order == 'morf' else 'higher'} = better map)"
        )
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return _save(fig, path)


def plot_sanity(table, path) -> Path:
    """Similarity to the original map vs randomised layer, one panel per measure."""
    rows = list(table)
    measures = [m for m in ("spearman", "spearman_abs", "ssim", "hog") if rows and m in rows[0]]
    fig, axes = _figure(len(measures), width=4.2)
    for ax, measure in zip(axes, measures):
        for m in _methods(rows):
            mine = sorted((r for r in rows if r["method"] == m), key=lambda r: r["step"])
            steps = [r["step"] for r in mine]
            mean = np.array([r[measure] for r in mine], dtype=float)
            std = np.array([r.get(f"{measure}_std") or 0.0 for r in mine], dtype=float)
            ax.errorbar(steps, mean, yerr=std, marker="o", capsize=2, label=m)
            ax.set_xticks(steps, [r["layer"] for r in mine], rotation=70, fontsize=6)
        ax.set_ylim(-1.05 if measure == "spearman" else -0.1, 1.05)
        ax.set_title(
            f"{measure} ({rows[0]['mode'] if rows else ''}, init {rows[0]['init'] if rows else ''})"
        )
        ax.set_ylabel("similarity to the original map (lower = passes)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    return _save(fig, path)


def plot_results(table, out_dir, name: str | None = None) -> list[Path]:
    """Write the figure(s) for ``table`` into ``out_dir``; returns the paths."""
    out = Path(out_dir)
    proto = table.meta.get("protocol")
    if proto in ("roar", "kar"):
        return [plot_roar(table, out / f"{name or 'roar'}.png")]
    if proto == "perturbation":
        return [plot_perturbation(table, out / f"{name or 'perturbation'}.png")]
    if proto == "deletion_insertion":
        return [plot_deletion_insertion(table, out / f"{name or 'deletion_insertion'}.png")]
    if proto == "road":
        return [plot_road(table, out / f"{name or 'road'}.png")]
    if proto == "sanity":
        return [plot_sanity(table, out / f"{name or 'sanity'}.png")]
    raise ValueError(f"no plot for protocol {proto!r}")
