"""Saliency methods as the evaluation protocols see them: a label plus ``explain(model, x, targets)``.

A method is given as

- a name understood by :func:`pathwaygrad.explain` (pathway methods such as ``"neuron_mct"`` and
  Captum baselines such as ``"gradient"``), optionally with options and a label:
  ``"neuron_mct:sparsity=70"``, ``"ig50=integrated_gradients:n_steps=50"``;
- one of the evaluation's own controls: ``"random_ranking"`` (uniform random pixel scores, the
  ROAR / perturbation baseline) and ``"edge"`` (Sobel edge magnitude of the input: ignores the model,
  the sanity checks' control that must keep similarity 1);
- a callable ``explain(model, inputs (B, C, H, W), targets (B,) long) -> Tensor`` (B, C, H, W) or
  (B, 1, H, W), or a ``(label, callable)`` pair;
- a :class:`MethodSpec`.

Pathway methods get ``sparsity=DEFAULT_SPARSITY`` unless the spec sets one (the paper does not state
the sparsity of its ROAR / LeRF maps); the chosen value is part of the label and of every result row.
"""

from __future__ import annotations

import ast
import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from pathwaygrad._devices import model_device
from pathwaygrad.errors import UserError

__all__ = [
    "CONTROL_METHODS",
    "DEFAULT_SPARSITY",
    "PATHWAY_METHODS",
    "MethodSpec",
    "edge_map",
    "explain_in_batches",
    "parse_method",
    "predict",
    "resolve_methods",
]

DEFAULT_SPARSITY = 90.0
CONTROL_METHODS = ("random_ranking", "edge")
# Kept here too so that method parsing works before / without the core's constants.
PATHWAY_METHODS = ("neuron_mct", "neuron_intgrad", "greedy", "random", "dgr", "dead")


def edge_map(model, inputs: torch.Tensor, targets=None) -> torch.Tensor:
    """Sobel gradient magnitude of the channel-mean input, (B, 1, H, W): independent of the model."""
    x = inputs.detach().float().mean(dim=1, keepdim=True)
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], device=x.device)
    k = torch.stack([kx, kx.t()]).unsqueeze(1)
    g = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), k)
    return g.pow(2).sum(dim=1, keepdim=True).sqrt()


@dataclass(frozen=True)
class MethodSpec:
    """A saliency method for evaluation.

    ``label``: the name in result tables; ``name``: the :func:`pathwaygrad.explain` method (or a
    control name, or ``"custom"``); ``options``: keyword arguments for ``pathwaygrad.explain``;
    ``fn``: a custom ``explain(model, inputs, targets)``.
    """

    label: str
    name: str
    options: dict = field(default_factory=dict)
    fn: Callable | None = None

    @property
    def is_random_ranking(self) -> bool:
        return self.name == "random_ranking"

    @property
    def needs_model(self) -> bool:
        return self.name not in CONTROL_METHODS

    def describe(self) -> dict:
        """JSON-friendly description (for result rows, summaries and cache keys)."""
        d = {"label": self.label, "name": self.name, "options": dict(self.options)}
        if self.fn is not None:
            d["fn"] = (
                f"{getattr(self.fn, '__module__', '?')}.{getattr(self.fn, '__qualname__', repr(self.fn))}"
            )
        return d

    def fingerprint(self) -> str:
        """A short stable hash of :meth:`describe` (cache keys)."""
        text = json.dumps(self.describe(), sort_keys=True, default=repr)
        return hashlib.sha1(text.encode()).hexdigest()[:10]

    def explain(self, model, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The method's map for ``inputs`` (B, C, H, W) and ``targets`` (B,) long, detached float."""
        if self.name == "random_ranking":
            raise UserError(
                "'random_ranking' has no map of its own: protocols draw its random pixel scores"
            )
        if self.name == "edge":
            out = edge_map(model, inputs, targets)
        elif self.fn is not None:
            out = self.fn(model, inputs, targets)
        else:
            import pathwaygrad as pg

            explain = getattr(pg, "explain", None)
            if explain is None:
                raise UserError(
                    f"method {self.name!r} needs pathwaygrad.explain, which this installation lacks"
                )
            out = explain(model, inputs, self.name, target=targets, **self.options)
        out = torch.as_tensor(out).detach().float()
        if out.ndim == 3:
            out = out.unsqueeze(1)
        if out.ndim != 4 or out.shape[0] != inputs.shape[0]:
            raise UserError(
                f"method {self.label!r} returned a map of shape {tuple(out.shape)} for inputs of "
                f"shape {tuple(inputs.shape)}; expected (B, C, H, W) or (B, 1, H, W)"
            )
        return out


def _literal(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_method(text: str, pathway_defaults: dict | None = None) -> MethodSpec:
    """Parse ``"[label=]name[:opt=value,opt=value]"`` into a :class:`MethodSpec`.

    Values are Python literals (``70``, ``0.5``, ``'ones'``) or bare words (``ones``).
    Pathway methods get ``pathway_defaults`` (default ``{"sparsity": DEFAULT_SPARSITY}``) for the
    options they do not set.
    """
    text = text.strip()
    if not text:
        raise UserError("empty method name")
    head, _, opts = text.partition(":")
    label = None
    if "=" in head:
        label, _, head = head.partition("=")
        label, head = label.strip(), head.strip()
    name = head.strip()
    options = {}
    if opts.strip():
        for part in opts.split(","):
            key, eq, value = part.partition("=")
            if not eq or not key.strip():
                raise UserError(
                    f"cannot read option {part!r} of method {text!r}; write name:option=value,option=value"
                )
            options[key.strip()] = _literal(value.strip())
    return _finish(name, options, label, pathway_defaults)


def _finish(
    name: str, options: dict, label: str | None, pathway_defaults: dict | None
) -> MethodSpec:
    options = dict(options)
    if name in PATHWAY_METHODS:
        defaults = {"sparsity": DEFAULT_SPARSITY} if pathway_defaults is None else pathway_defaults
        for k, v in defaults.items():
            options.setdefault(k, v)
    if label is None:
        if options:
            inner = ",".join(f"{k}={v}" for k, v in options.items())
            label = f"{name}({inner})"
        else:
            label = name
    return MethodSpec(label=label, name=name, options=options)


def _validate(spec: MethodSpec) -> None:
    """Refuse an unknown method name or a baseline option the baseline does not take."""
    if spec.fn is not None or spec.name in CONTROL_METHODS or spec.name in PATHWAY_METHODS:
        return
    from pathwaygrad.attribution.baselines import BASELINE_METHODS, BASELINE_OPTIONS

    if spec.name not in BASELINE_METHODS:
        known = [*PATHWAY_METHODS, *BASELINE_METHODS, *CONTROL_METHODS]
        raise UserError(f"unknown method {spec.name!r} in {spec.label!r}; choose from {known}")
    bad = sorted(set(spec.options) - set(BASELINE_OPTIONS.get(spec.name, ())))
    if bad:
        allowed = list(BASELINE_OPTIONS.get(spec.name, ())) or "none"
        raise UserError(
            f"method {spec.name!r} has no option {bad[0]!r} (options: {allowed}); fix {spec.label!r}"
        )


def resolve_methods(
    methods: Iterable | str | Callable | MethodSpec,
    pathway_defaults: dict | None = None,
) -> list[MethodSpec]:
    """Turn the user's method list into :class:`MethodSpec` objects with unique labels.

    Every name (and every baseline's options) is checked here, before any protocol starts work.
    """
    if isinstance(methods, str | MethodSpec) or callable(methods):
        methods = [methods]
    specs: list[MethodSpec] = []
    for m in methods:
        if isinstance(m, MethodSpec):
            specs.append(m)
        elif isinstance(m, str):
            specs.extend(parse_method(part, pathway_defaults) for part in _split(m))
        elif isinstance(m, tuple) and len(m) == 2 and callable(m[1]):
            specs.append(MethodSpec(label=str(m[0]), name="custom", fn=m[1]))
        elif isinstance(m, dict):
            d = dict(m)
            name = d.pop("name", None) or d.pop("method", None)
            if not name:
                raise UserError(f"method dict {m!r} needs a 'name'")
            label = d.pop("label", None)
            specs.append(_finish(name, d.pop("options", d), label, pathway_defaults))
        elif callable(m):
            label = getattr(m, "__name__", None) or type(m).__name__
            specs.append(MethodSpec(label=label, name="custom", fn=m))
        else:
            raise UserError(
                f"cannot use {m!r} as a method; give a name, a callable or a MethodSpec"
            )
    labels = [s.label for s in specs]
    dupes = sorted({x for x in labels if labels.count(x) > 1})
    if dupes:
        raise UserError(f"method labels must be unique, got {dupes} more than once; set label=...")
    if not specs:
        raise UserError("no methods given")
    for spec in specs:
        _validate(spec)
    return specs


def _split(text: str) -> list[str]:
    """Split ``"a;b:x=1,y=2;c"`` on ';' (a comma-only list works when no method has options)."""
    if ";" in text:
        return [p for p in (s.strip() for s in text.split(";")) if p]
    if ":" not in text and "," in text:
        return [p for p in (s.strip() for s in text.split(",")) if p]
    return [text]


@torch.no_grad()
def predict(model, inputs: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Softmax probabilities (N, K) of ``model`` on ``inputs`` (N, C, H, W), in eval mode, on CPU."""
    device = model_device(model)
    outs = []
    for start in range(0, inputs.shape[0], batch_size):
        outs.append(
            torch.softmax(model(inputs[start : start + batch_size].to(device)).float(), 1).cpu()
        )
    return torch.cat(outs)


def explain_in_batches(
    model,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    spec: MethodSpec,
    batch_size: int = 64,
    progress: bool = False,
    desc: str | None = None,
) -> Iterable[tuple[int, torch.Tensor]]:
    """Yield ``(start, maps)`` for consecutive batches of ``inputs``; maps are float32 on the CPU.

    Inputs are moved to the model's device batch by batch; targets are (N,) long.
    """
    device = model_device(model)
    starts: Sequence[int] = range(0, inputs.shape[0], batch_size)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc=desc or f"maps {spec.label}", unit="batch", leave=False)
    for start in starts:
        xb = inputs[start : start + batch_size].to(device)
        tb = torch.as_tensor(targets[start : start + batch_size]).long().to(device)
        yield start, spec.explain(model, xb, tb).cpu()


def method_pixel_scores(
    model,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    spec: MethodSpec,
    *,
    rank_by: str = "max",
    batch_size: int = 64,
    seed: int = 0,
    progress: bool = False,
) -> torch.Tensor:
    """Pixel scores (N, H, W) float32 of ``spec`` on ``inputs`` (see :mod:`._ranking`).

    ``random_ranking`` draws uniform scores from ``seed`` instead of calling a model.
    """
    from pathwaygrad.evaluation._ranking import pixel_scores, random_scores

    n, _, h, w = inputs.shape
    if spec.is_random_ranking:
        return random_scores(n, h, w, seed=seed)
    out = torch.empty(n, h, w)
    for start, maps in explain_in_batches(
        model, inputs, targets, spec, batch_size=batch_size, progress=progress
    ):
        out[start : start + maps.shape[0]] = pixel_scores(maps, rank_by, size=(h, w))
    return out
