"""Overlap between pathways (Jaccard / IoU) and the share of dead neurons inside them.

Paper section 3.1: per example, the Jaccard index |A and B| / |A or B| between the flattened masks
of every pair of methods, and the share of *dead* neurons (original activation <= 0) inside each
pathway, |path and dead| / |path|; both also per activation call ("layerwise").

Per-example functions work on :class:`pathwaygrad.Pathway` objects of one batch; the dataset-level
:func:`overlap_analysis` loops over batches and returns means and standard deviations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from pathwaygrad._io import clean_json
from pathwaygrad.presets import ANALYSIS_METHODS

__all__ = [
    "OverlapResult",
    "dead_share",
    "jaccard",
    "jaccard_matrix",
    "layer_counts",
    "overlap_analysis",
    "overlap_records",
]


def layer_counts(a, b) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per example and call: |A and B|, |A or B|, |A|, |B| as float64 (B, calls).

    ``a``/``b``: :class:`~pathwaygrad.Pathway` objects (or lists of bool masks) of one batch.
    """
    ma = a.masks if hasattr(a, "masks") else a
    mb = b.masks if hasattr(b, "masks") else b
    if [tuple(m.shape) for m in ma] != [tuple(m.shape) for m in mb]:
        from pathwaygrad.errors import PathwayMismatchError

        raise PathwayMismatchError("the two pathways do not cover the same neurons")
    cols: list[list[torch.Tensor]] = [[], [], [], []]
    for x, y in zip(ma, mb):
        x2, y2 = x.reshape(x.shape[0], -1), y.reshape(y.shape[0], -1)
        cols[0].append((x2 & y2).sum(1, dtype=torch.float64))
        cols[1].append((x2 | y2).sum(1, dtype=torch.float64))
        cols[2].append(x2.sum(1, dtype=torch.float64))
        cols[3].append(y2.sum(1, dtype=torch.float64))
    inter, union, kept_a, kept_b = (torch.stack(c, dim=1) for c in cols)
    return inter, union, kept_a, kept_b


def _ratio(num: torch.Tensor, den: torch.Tensor, empty: float) -> torch.Tensor:
    return torch.where(den > 0, num / den.clamp(min=1), torch.full_like(num, empty))


def jaccard(a, b, layerwise: bool = False) -> torch.Tensor:
    """Jaccard index of two pathways per example: float64 (B,), or (B, calls) if ``layerwise``.

    Over all neurons this is :meth:`pathwaygrad.Pathway.iou` (for two Pathways); per call (and
    for plain lists of masks) it is computed from :func:`layer_counts`. Two empty pathways (or
    calls) have Jaccard 1.
    """
    if not layerwise and hasattr(a, "iou"):
        return a.iou(b).double()
    inter, union, _, _ = layer_counts(a, b)
    if layerwise:
        return _ratio(inter, union, 1.0)
    return _ratio(inter.sum(1), union.sum(1), 1.0)


def dead_share(pathway, dead, layerwise: bool = False) -> torch.Tensor:
    """|path and dead| / |path| per example: float64 (B,), or (B, calls) if ``layerwise``.

    ``dead``: the dead path (``pg.select_pathway(model, x, method="dead")``). NaN where the
    pathway (or call) keeps no neuron.
    """
    inter, _, kept, _ = layer_counts(pathway, dead)
    nan = float("nan")
    if layerwise:
        return _ratio(inter, kept, nan)
    return _ratio(inter.sum(1), kept.sum(1), nan)


def jaccard_matrix(pathways: Sequence, layerwise: bool = False) -> torch.Tensor:
    """Jaccard of every pair of ``pathways`` (M pathways of one batch): float64 (B, M, M).

    With ``layerwise``: (B, calls, M, M). The diagonal is 1.
    """
    m = len(pathways)
    first = jaccard(pathways[0], pathways[0], layerwise)
    out = torch.ones(*first.shape, m, m, dtype=torch.float64)
    for i in range(m):
        for j in range(i + 1, m):
            v = jaccard(pathways[i], pathways[j], layerwise)
            out[..., i, j] = v
            out[..., j, i] = v
    return out


def overlap_records(pathway_set, indices: Sequence[int] | np.ndarray) -> dict:
    """Overlap numbers of one batch (a :class:`~pathwaygrad.analysis.pathways.PathwaySet`).

    Returns ``{sparsity: {"jaccard": (B, M, M), "layer_jaccard": (B, calls, M, M),
    "dead": (B, M), "layer_dead": (B, calls, M), "sparsity": (B, M), "layer_sparsity":
    (B, calls, M)}}`` as numpy arrays, plus ``"index"`` (B,) and ``"dead_fraction"`` (B, calls):
    the share of dead neurons per call in the whole network.
    """
    labels = [s.label for s in pathway_set.specs]
    out: dict = {"index": np.asarray(indices)}
    dead = pathway_set.dead
    out["site_sizes"] = np.array([m[0].numel() for m in dead.masks], dtype=np.float64)
    out["dead_fraction"] = (100.0 - dead.layer_sparsity().double()).numpy() / 100.0
    for s in pathway_set.sparsities:
        paths = [pathway_set.pathways[(lab, s)] for lab in labels]
        jm_layer = jaccard_matrix(paths, layerwise=True)
        jm = jaccard_matrix(paths)
        ds = torch.stack([dead_share(p, dead) for p in paths], dim=1)
        dsl = torch.stack([dead_share(p, dead, layerwise=True) for p in paths], dim=2)
        sp = torch.stack([p.sparsity.double() for p in paths], dim=1)
        spl = torch.stack([p.layer_sparsity().double() for p in paths], dim=2)
        out[s] = {
            "jaccard": jm.numpy(),
            "layer_jaccard": jm_layer.numpy(),
            "dead": ds.numpy(),
            "layer_dead": dsl.numpy(),
            "sparsity": sp.numpy(),
            "layer_sparsity": spl.numpy(),
        }
    return out


@dataclass
class OverlapResult:
    """Per-example overlap numbers over a dataset, with means and standard deviations.

    Arrays are numpy, examples first: ``jaccard[s]`` (N, M, M), ``layer_jaccard[s]``
    (N, calls, M, M), ``dead[s]`` (N, M), ``layer_dead[s]`` (N, calls, M), ``sparsity[s]`` (N, M)
    real percent pruned, ``layer_sparsity[s]`` (N, calls, M); ``dead_fraction`` (N, calls) the
    share of dead neurons per call of the network. Shares are fractions in [0, 1].
    """

    labels: list[str]
    display: list[str]
    sites: list[str]
    sparsities: list[float]
    index: np.ndarray
    jaccard: dict = field(default_factory=dict)
    layer_jaccard: dict = field(default_factory=dict)
    dead: dict = field(default_factory=dict)
    layer_dead: dict = field(default_factory=dict)
    sparsity: dict = field(default_factory=dict)
    layer_sparsity: dict = field(default_factory=dict)
    dead_fraction: np.ndarray | None = None
    site_sizes: np.ndarray | None = None

    @classmethod
    def from_batches(cls, batches: list[dict], specs, sites, sparsities) -> OverlapResult:
        res = cls(
            labels=[s.label for s in specs],
            display=[s.display for s in specs],
            sites=list(sites),
            sparsities=[float(s) for s in sparsities],
            index=np.concatenate([b["index"] for b in batches]),
            dead_fraction=np.concatenate([b["dead_fraction"] for b in batches]),
            site_sizes=batches[0]["site_sizes"],
        )
        for s in res.sparsities:
            for key in ("jaccard", "layer_jaccard", "dead", "layer_dead", "sparsity"):
                getattr(res, key)[s] = np.concatenate([b[s][key] for b in batches])
            res.layer_sparsity[s] = np.concatenate([b[s]["layer_sparsity"] for b in batches])
        return res

    def mean(self, key: str, sparsity: float) -> np.ndarray:
        """Mean over examples (NaN ignored) of ``key`` at ``sparsity``."""
        return _nanmean(getattr(self, key)[float(sparsity)])

    def std(self, key: str, sparsity: float) -> np.ndarray:
        """Standard deviation over examples (NaN ignored, ddof 0)."""
        return _nanstd(getattr(self, key)[float(sparsity)])

    def summary(self) -> dict:
        """JSON-ready means and standard deviations per sparsity (shares and IoU as fractions)."""
        assert self.dead_fraction is not None and self.site_sizes is not None
        out = {
            "methods": self.labels,
            "display": self.display,
            "sites": self.sites,
            "n_examples": int(len(self.index)),
            "dead_fraction_per_call": _nanmean(self.dead_fraction).tolist(),
            "neurons_per_call": self.site_sizes.astype(int).tolist(),
            "dead_fraction": float(
                np.mean(self.dead_fraction @ self.site_sizes / self.site_sizes.sum())
            ),
        }
        for s in self.sparsities:
            out[str(s)] = {
                "jaccard_mean": self.mean("jaccard", s).tolist(),
                "jaccard_std": self.std("jaccard", s).tolist(),
                "dead_share_mean": self.mean("dead", s).tolist(),
                "dead_share_std": self.std("dead", s).tolist(),
                "real_sparsity_mean": self.mean("sparsity", s).tolist(),
                "real_sparsity_std": self.std("sparsity", s).tolist(),
                "layer_jaccard_mean": self.mean("layer_jaccard", s).tolist(),
                "layer_jaccard_std": self.std("layer_jaccard", s).tolist(),
                "layer_dead_share_mean": self.mean("layer_dead", s).tolist(),
                "layer_dead_share_std": self.std("layer_dead", s).tolist(),
                "layer_real_sparsity_mean": self.mean("layer_sparsity", s).tolist(),
            }
        return clean_json(out)


def _nanmean(a: np.ndarray) -> np.ndarray:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(a, axis=0)


def _nanstd(a: np.ndarray) -> np.ndarray:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanstd(a, axis=0)


def overlap_analysis(
    model,
    data,
    methods: Any = ANALYSIS_METHODS,
    sparsities: Sequence[float] = (80.0, 90.0, 99.0),
    *,
    batch_size: int = 50,
    n_examples: int | None = None,
    activations: Any = None,
    progress: bool = False,
) -> OverlapResult:
    """Jaccard matrix and dead shares of the pathways of ``methods`` over a dataset.

    Args:
        model: the network (``nn.Module`` or callable, inputs (B, ...) -> logits (B, K)).
        data: a tensor (N, ...), a dataset of ``(input, label)`` items, or an iterable of
            batches (tensors or ``(inputs, labels)`` tuples).
        methods: pathway methods in the grammar of :mod:`pathwaygrad.specs`
            (``"neuron_mct;dgr:init=random,iterations=100"``, a list, or specs).
        sparsities: percent pruned, e.g. (80, 90, 99).
        activations: activation kinds holding neurons (None: the core's default).

    Returns:
        an :class:`OverlapResult` (per-example arrays, ``mean``/``std``/``summary``).
    """
    from pathwaygrad.analysis._dataset import iter_batches
    from pathwaygrad.analysis.pathways import compute_pathways, pathway_specs

    specs = pathway_specs(methods)
    batches = []
    sites = None
    for x, _, idx in iter_batches(data, batch_size, n_examples, progress=progress, desc="overlap"):
        ps = compute_pathways(model, x, specs, sparsities, activations=activations)
        batches.append(overlap_records(ps, idx))
        sites = ps.sites
    return OverlapResult.from_batches(batches, specs, sites, sparsities)
