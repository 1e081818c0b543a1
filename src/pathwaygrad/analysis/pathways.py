"""The pathways of one batch for several methods and sparsities, from the core's selection.

Each method's pathways at every sparsity come from one :func:`pathwaygrad.select_pathways` call
(one scoring run per method and batch; Greedy runs its schedule per sparsity). Methods are named
with the one grammar of :mod:`pathwaygrad.specs` (``"neuron_mct;dgr_random;greedy:step=3"``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from pathwaygrad.errors import UserError
from pathwaygrad.specs import MethodSpec, parse_methods

__all__ = [
    "PathwaySet",
    "compute_pathways",
    "full_pathway",
    "greedy_step",
    "pathway_specs",
    "subset",
]


def pathway_specs(methods: Any) -> list[MethodSpec]:
    """Pathway-method specs for the analyses: :func:`pathwaygrad.specs.parse_methods` limited to
    pathway methods other than the dead path (always computed), with no ``sparsity`` option (the
    analyses take their sparsities separately)."""
    specs = parse_methods(methods, kinds=("pathway",))
    for s in specs:
        if s.name == "dead":
            raise UserError("the dead path is always analysed: drop 'dead' from the methods")
        if "sparsity" in dict(s.options):
            raise UserError(
                f"method {s.label!r} sets a sparsity: the analyses take sparsities separately "
                "(--sparsity)"
            )
    return specs


@dataclass
class PathwaySet:
    """The pathways of one batch: ``pathways[(label, sparsity)]`` plus the dead path.

    ``targets`` (B,) and ``logits`` (B, K) are the full network's; ``scores[label]`` keeps each
    scoring method's neuron scores when asked (lists of (B, ...) tensors, one per call).
    """

    pathways: dict
    dead: Any
    targets: torch.Tensor
    logits: torch.Tensor
    sites: list[str]
    specs: list[MethodSpec]
    sparsities: list[float]
    scores: dict = field(default_factory=dict)


def greedy_step(sparsity: float, step: float) -> float:
    """A Greedy step close to ``step`` that divides ``sparsity`` (equal percentile steps).

    Greedy's schedule is 0, step, 2 step, ... and the sparsity last; when ``step`` does not
    divide ``sparsity`` the last step is shorter. This returns sparsity / k for the k nearest to
    sparsity / step (with the float division checked), as the analyses have always used.
    """
    step = float(step)
    if step <= 0 or sparsity <= 0:
        return step if step > 0 else 1.0
    k = max(1, round(sparsity / step))
    new = sparsity / k
    while int(sparsity // new) < k:  # guard against float rounding below k
        new = new * (1 - 1e-12)
    return new


def compute_pathways(
    model: Any,
    inputs: torch.Tensor,
    specs: Sequence[MethodSpec] | str,
    sparsities: Sequence[float],
    *,
    target: Any = None,
    activations: Any = None,
    keep_scores: bool = False,
    progress: bool = False,
) -> PathwaySet:
    """Select the pathway of every example of ``inputs`` (B, ...) for every spec and sparsity.

    The target is each example's predicted class unless ``target`` is given; every method uses
    the same targets. ``activations`` (None: the core's default) go to the core. With
    ``keep_scores``, each scoring method's neuron scores are kept too
    (:func:`pathwaygrad.score_neurons`, one more scoring run). Returns a :class:`PathwaySet`.
    """
    import pathwaygrad as pg

    specs = pathway_specs(specs) if isinstance(specs, str) else list(specs)
    sparsities = [float(s) for s in sparsities]
    act = {} if activations is None else {"activations": activations}
    dead = pg.select_pathway(model, inputs, target, "dead", **act)
    targets = dead.targets
    act = {"activations": dead.activations}  # every method masks the same calls
    pathways: dict = {}
    scores_kept: dict = {}
    for spec in specs:
        opts = spec.selection_kwargs
        if spec.name in ("dgr", "neuron_intgrad"):
            opts["progress"] = progress
        if spec.name == "greedy":
            # Equal percentile steps ending at each sparsity: one selection per sparsity.
            for s in sparsities:
                g = dict(opts, step=greedy_step(s, opts["step"]))
                pathways[(spec.label, s)] = pg.select_pathway(
                    model, inputs, targets, "greedy", s, **act, **g
                )
            continue
        chosen = pg.select_pathways(model, inputs, targets, spec.name, sparsities, **act, **opts)
        assert isinstance(chosen, dict)  # without return_scores: {sparsity: Pathway}
        for s in sparsities:
            pathways[(spec.label, s)] = chosen[s]
        if keep_scores:
            opts.pop("threshold", None)
            sc = pg.score_neurons(model, inputs, targets, spec.name, **act, **opts)
            scores_kept[spec.label] = sc.scores
    logits = pg.pathway_logits(model, inputs, full_pathway(dead)).detach()
    return PathwaySet(
        pathways=pathways,
        dead=dead,
        targets=targets,
        logits=logits,
        sites=list(dead.sites),
        specs=list(specs),
        sparsities=sparsities,
        scores=scores_kept,
    )


def full_pathway(like: Any) -> Any:
    """The pathway that keeps every neuron, on the calls and examples of pathway ``like``."""
    import pathwaygrad as pg

    return pg.Pathway(
        masks=[torch.ones_like(m) for m in like.masks],
        sites=list(like.sites),
        targets=like.targets,
        method="full",
        requested_sparsity=torch.zeros(like.batch_size),
        activations=like.activations,
        full_logits=like.full_logits,
    )


def subset(
    pathway_set: PathwaySet,
    n: int,
    labels: Sequence[str] | None = None,
    sparsities: Sequence[float] | None = None,
) -> PathwaySet:
    """The first ``n`` examples of ``pathway_set``, keeping only ``labels`` / ``sparsities``."""
    labels = [s.label for s in pathway_set.specs] if labels is None else list(labels)
    sps = pathway_set.sparsities if sparsities is None else [float(s) for s in sparsities]
    sl = slice(0, n)
    return PathwaySet(
        pathways={
            k: p[sl] for k, p in pathway_set.pathways.items() if k[0] in labels and k[1] in sps
        },
        dead=pathway_set.dead[sl],
        targets=pathway_set.targets[sl],
        logits=pathway_set.logits[sl],
        sites=pathway_set.sites,
        specs=[s for s in pathway_set.specs if s.label in labels],
        sparsities=sps,
        scores={k: [t[sl] for t in v] for k, v in pathway_set.scores.items() if k in labels},
    )
