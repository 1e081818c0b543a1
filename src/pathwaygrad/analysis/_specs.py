"""Method specifications and the pathways of one batch at several sparsities.

A *method spec* names a pathway method and its options, e.g. ``"neuron_mct"``,
``"dgr:init=random"`` or ``"dgr:init=ones:iterations=100"`` (options after ``:`` as ``key=value``).
``"dgr_ones"`` and ``"dgr_random"`` are short for ``dgr:init=ones`` / ``dgr:init=random``.

Scores are computed once per method and batch (:func:`pathwaygrad.score_neurons`) and thresholded
at every requested sparsity, so a sparsity sweep costs one scoring run; Greedy (which selects its
own masks) runs once per sparsity.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import torch

from pathwaygrad.errors import UserError

# The paper's names (paper.md section 3.1), used in figures.
_DISPLAY = {
    "neuron_intgrad": "NeuronIntGrad",
    "neuron_mct": "NeuronMCT",
    "dgr(init=ones)": "DGR(init=1)",
    "dgr(init=random)": "DGR(init=r)",
    "dgr": "DGR(init=1)",
    "greedy": "Greedy",
    "random": "Random",
    "dead": "Dead path",
    "full": "Full network",
}
_ALIASES = {"dgr_ones": "dgr:init=ones", "dgr_random": "dgr:init=random"}
# The paper's six methods of section 3.1, in its order.
PAPER_METHODS = ("neuron_intgrad", "neuron_mct", "dgr_ones", "dgr_random", "greedy", "random")


def _value(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    return text


@dataclass(frozen=True)
class MethodSpec:
    """A pathway method with the options that identify it (they appear in its label).

    ``defaults`` are extra options applied without changing the label (e.g. a preset's reduced
    DGR iterations); both are passed to the core.
    """

    method: str
    options: tuple[tuple[str, object], ...] = ()
    defaults: tuple[tuple[str, object], ...] = field(default=(), compare=False)

    @property
    def label(self) -> str:
        """Stable key used in tables, e.g. ``"dgr(init=random)"``."""
        if not self.options:
            return self.method
        return f"{self.method}(" + ",".join(f"{k}={v}" for k, v in self.options) + ")"

    @property
    def display(self) -> str:
        """The paper's name when there is one, e.g. ``"DGR(init=r)"``."""
        return _DISPLAY.get(self.label, self.label)

    @property
    def kwargs(self) -> dict:
        """Options passed to the core: defaults, overridden by the spec's own options."""
        out = dict(self.defaults)
        out.update(self.options)
        return out

    def with_defaults(self, **defaults) -> MethodSpec:
        """This spec with extra default options for its method (own options keep priority)."""
        merged = dict(self.defaults)
        merged.update(defaults)
        return MethodSpec(self.method, self.options, tuple(sorted(merged.items())))


def parse_method(text: str) -> MethodSpec:
    """``"dgr:init=random:iterations=100"`` -> :class:`MethodSpec`."""
    from pathwaygrad.methods import METHOD_OPTIONS, PATHWAY_METHODS

    text = _ALIASES.get(text.strip(), text.strip())
    name, *parts = [p.strip() for p in text.split(":")]
    if name not in PATHWAY_METHODS or name == "dead":
        known = [m for m in PATHWAY_METHODS if m != "dead"] + list(_ALIASES)
        raise UserError(f"unknown pathway method {name!r}; choose from {', '.join(known)}")
    options = {}
    for part in parts:
        key, eq, val = part.partition("=")
        if not eq or not key:
            raise UserError(f"method option {part!r} of {text!r} is not key=value")
        allowed = [o for o in METHOD_OPTIONS[name] if o != "progress"] + ["threshold"]
        if key not in allowed:
            raise UserError(f"method {name!r} takes no option {key!r}; its options are {allowed}")
        options[key] = _value(val)
    if name == "dgr":
        options.setdefault("init", "ones")
    return MethodSpec(name, tuple(sorted(options.items())))


def parse_methods(text: str | Iterable[str]) -> list[MethodSpec]:
    """Comma-separated specs (or a list of them) -> list of :class:`MethodSpec`, no duplicates."""
    parts = text.split(",") if isinstance(text, str) else list(text)
    specs = [p if isinstance(p, MethodSpec) else parse_method(p) for p in parts if str(p).strip()]
    if not specs:
        raise UserError("no pathway method given")
    labels = [s.label for s in specs]
    if len(set(labels)) != len(labels):
        raise UserError(f"a method is listed twice: {', '.join(labels)}")
    return specs


@dataclass
class PathwaySet:
    """The pathways of one batch: ``pathways[(label, sparsity)]`` plus the dead path.

    ``targets`` (B,) and ``logits`` (B, K) are the full network's; ``scores[label]`` keeps each
    scoring method's neuron scores when asked (lists of (B, ...) tensors, one per call).
    """

    pathways: dict
    dead: object
    targets: torch.Tensor
    logits: torch.Tensor
    sites: list[str]
    specs: list[MethodSpec]
    sparsities: list[float]
    scores: dict = field(default_factory=dict)


def compute_pathways(
    model,
    inputs: torch.Tensor,
    specs: Sequence[MethodSpec],
    sparsities: Sequence[float],
    *,
    target=None,
    activations: Sequence[str] = ("relu",),
    keep_scores: bool = False,
    progress: bool = False,
) -> PathwaySet:
    """Select the pathway of every example of ``inputs`` (B, ...) for every spec and sparsity.

    The target is each example's predicted class unless ``target`` is given; every method uses
    the same targets. Returns a :class:`PathwaySet`.
    """
    import pathwaygrad as pg
    from pathwaygrad.thresholds import threshold_masks

    dead = pg.select_pathway(model, inputs, target, "dead", activations=activations)
    targets = dead.targets
    logits = None
    pathways = {}
    scores_kept = {}
    for spec in specs:
        opts = spec.kwargs
        threshold = opts.pop("threshold", None)
        if spec.method in ("dgr", "neuron_intgrad"):
            opts.setdefault("progress", progress)
        if spec.method == "greedy":
            for s in sparsities:
                gopts = dict(opts)
                gopts["step"] = greedy_step(s, gopts.get("step", 1.0))
                pathways[(spec.label, s)] = pg.select_pathway(
                    model, inputs, targets, "greedy", s, activations=activations, **gopts
                )
            continue
        sc = pg.score_neurons(model, inputs, targets, spec.method, activations=activations, **opts)
        logits = sc.logits
        thr = threshold or ("per_layer" if spec.method == "random" else "global")
        full = sc.logits.gather(1, targets[:, None]).squeeze(1)
        for s in sparsities:
            masks = threshold_masks(sc.scores, float(s), thr)
            pathways[(spec.label, s)] = pg.Pathway(
                masks=masks,
                sites=list(sc.sites),
                targets=targets,
                method=spec.method,
                requested_sparsity=torch.full((inputs.shape[0],), float(s)),
                activations=tuple(activations),
                full_logits=full,
            )
        if keep_scores:
            scores_kept[spec.label] = sc.scores
    if logits is None:
        from pathwaygrad._guard import preserved

        with preserved(model), torch.no_grad():
            logits = model(inputs)
    return PathwaySet(
        pathways=pathways,
        dead=dead,
        targets=targets,
        logits=logits.detach(),
        sites=list(dead.sites),
        specs=list(specs),
        sparsities=[float(s) for s in sparsities],
        scores=scores_kept,
    )


def greedy_step(sparsity: float, step: float) -> float:
    """A Greedy step close to ``step`` whose schedule ends exactly at ``sparsity``.

    Greedy's iteration i prunes at percentile min(i * step, sparsity) for i < sparsity // step + 1;
    when ``step`` does not divide ``sparsity`` the last percentile falls short of it. This returns
    sparsity / k for the k nearest to sparsity / step (with the float division checked).
    """
    step = float(step)
    if step <= 0 or sparsity <= 0:
        return step if step > 0 else 1.0
    k = max(1, round(sparsity / step))
    new = sparsity / k
    while int(sparsity // new) < k:  # guard against float rounding below k
        new = new * (1 - 1e-12)
    return new


def apply_defaults(specs: Sequence[MethodSpec], method_defaults: dict | None) -> list[MethodSpec]:
    """Give each spec the extra options ``method_defaults[spec.method]`` (labels unchanged)."""
    if not method_defaults:
        return list(specs)
    return [
        s.with_defaults(**method_defaults[s.method]) if s.method in method_defaults else s
        for s in specs
    ]


def subset(pathway_set: PathwaySet, n: int, labels=None, sparsities=None) -> PathwaySet:
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
