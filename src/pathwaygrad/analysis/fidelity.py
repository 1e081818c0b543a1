"""Fidelity: does the network restricted to a pathway keep the full network's response?

Per example, method and sparsity: the target logit and the target's softmax probability of the
masked network beside the full network's, and whether the masked network still predicts the
target (the full network's predicted class unless told otherwise).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from pathwaygrad.analysis.pathways import compute_pathways, full_pathway, pathway_specs
from pathwaygrad.presets import ANALYSIS_METHODS

__all__ = ["FidelityResult", "fidelity", "fidelity_analysis", "fidelity_records"]


def fidelity(model, inputs: torch.Tensor, pathway, full_logits: torch.Tensor | None = None) -> dict:
    """Fidelity of one pathway of a batch.

    Returns a dict of float64 tensors (B,): ``full_logit``, ``logit`` (masked), ``full_prob``,
    ``prob`` (masked, softmax of the target), ``kept`` (1.0 where the masked network's argmax is
    the target), ``logit_ratio`` (masked / full logit) and ``sparsity`` (real percent pruned).
    """
    import pathwaygrad as pg

    targets = pathway.targets.to(inputs.device)
    if full_logits is None:
        full_logits = pg.pathway_logits(model, inputs, full_pathway(pathway))
    logits = pg.pathway_logits(model, inputs, pathway)
    full_logits, logits = full_logits.double(), logits.double()
    fl = full_logits.gather(1, targets[:, None]).squeeze(1)
    ml = logits.gather(1, targets[:, None]).squeeze(1)
    return {
        "full_logit": fl,
        "logit": ml,
        "full_prob": full_logits.softmax(1).gather(1, targets[:, None]).squeeze(1),
        "prob": logits.softmax(1).gather(1, targets[:, None]).squeeze(1),
        "kept": (logits.argmax(1) == targets).double(),
        "logit_ratio": ml / fl,
        "sparsity": pathway.sparsity.double(),
    }


FIELDS = ("full_logit", "logit", "full_prob", "prob", "kept", "logit_ratio", "sparsity")


def fidelity_records(
    model, inputs: torch.Tensor, pathway_set, indices: Sequence[int] | np.ndarray
) -> dict:
    """Fidelity of every pathway of a batch: ``{sparsity: {field: (B, M) array}}`` + ``index``."""
    labels = [s.label for s in pathway_set.specs]
    out: dict = {"index": np.asarray(indices)}
    for s in pathway_set.sparsities:
        cols = [
            fidelity(model, inputs, pathway_set.pathways[(lab, s)], pathway_set.logits)
            for lab in labels
        ]
        out[s] = {f: torch.stack([c[f] for c in cols], dim=1).numpy() for f in FIELDS}
    return out


@dataclass
class FidelityResult:
    """Per-example fidelity over a dataset: ``values[s][field]`` is (N, M) (M methods)."""

    labels: list[str]
    display: list[str]
    sparsities: list[float]
    index: np.ndarray
    values: dict

    @classmethod
    def from_batches(cls, batches: list[dict], specs, sparsities) -> FidelityResult:
        sp = [float(s) for s in sparsities]
        return cls(
            labels=[s.label for s in specs],
            display=[s.display for s in specs],
            sparsities=sp,
            index=np.concatenate([b["index"] for b in batches]),
            values={s: {f: np.concatenate([b[s][f] for b in batches]) for f in FIELDS} for s in sp},
        )

    def summary(self) -> dict:
        """Means and standard deviations per sparsity and method (JSON-ready)."""
        out = {"methods": self.labels, "display": self.display, "n_examples": len(self.index)}
        for s in self.sparsities:
            v = self.values[s]
            out[str(s)] = {
                f"{f}_{stat}": np.asarray(fn(v[f], axis=0)).tolist()
                for f in FIELDS
                for stat, fn in (("mean", np.nanmean), ("std", np.nanstd))
            }
        return out

    def rows(self) -> list[dict]:
        """One row per sparsity and method: the means (and stds) of every field."""
        rows = []
        for s in self.sparsities:
            v = self.values[s]
            for j, lab in enumerate(self.labels):
                row = {"sparsity": s, "method": lab}
                for f in FIELDS:
                    row[f"{f}_mean"] = float(np.nanmean(v[f][:, j]))
                    row[f"{f}_std"] = float(np.nanstd(v[f][:, j]))
                rows.append(row)
        return rows


def fidelity_analysis(
    model,
    data,
    methods: Any = ANALYSIS_METHODS,
    sparsities: Sequence[float] = (80.0, 90.0, 99.0),
    *,
    batch_size: int = 50,
    n_examples: int | None = None,
    activations: Any = None,
    progress: bool = False,
) -> FidelityResult:
    """Fidelity of the pathways of ``methods`` over a dataset (arguments as
    :func:`pathwaygrad.analysis.overlap_analysis`)."""
    from pathwaygrad.analysis._dataset import iter_batches

    specs = pathway_specs(methods)
    batches = []
    for x, _, idx in iter_batches(data, batch_size, n_examples, progress=progress, desc="fidelity"):
        ps = compute_pathways(model, x, specs, sparsities, activations=activations)
        batches.append(fidelity_records(model, x, ps, idx))
    return FidelityResult.from_batches(batches, specs, sparsities)
