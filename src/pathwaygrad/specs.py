"""The one vocabulary for naming a saliency method with its options.

Every part of pathwaygrad (the Python API, analysis, evaluation, reproduction and every command)
names methods the same way::

    neuron_mct                            a method by name
    neuron_mct:sparsity=70                with options, typed by the method's option schema
    dgr:init=random,iterations=100        several options, separated by ','
    ig50=integrated_gradients:n_steps=50  with a label of its own (the name in tables)
    neuron_mct;gradient;dgr_random        a list: items separated by ';'

``dgr_ones`` and ``dgr_random`` are short for ``dgr:init=ones`` / ``dgr:init=random``. A list is a
string, or a Python list / tuple of strings, :class:`MethodSpec` objects, callables
``fn(model, inputs, targets) -> map`` and ``(label, callable)`` pairs. A string list without ';' and
without any option may also be separated by ',' (``"neuron_mct,gradient"``).

:data:`METHODS` is the registry: every method with its kind (``pathway``, ``baseline``,
``control``), its name in the paper, its display name (figures and tables) and its option schema
(type, default, allowed values, help). :func:`parse_methods` checks every name and every option
against it before any work starts and raises a one-line :class:`~pathwaygrad.errors.UserError`.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from pathwaygrad.errors import UserError

__all__ = [
    "ALIASES",
    "KINDS",
    "METHODS",
    "MethodInfo",
    "MethodSpec",
    "Option",
    "display_name",
    "edge_map",
    "method_names",
    "parse_method",
    "parse_methods",
]

KINDS = ("pathway", "baseline", "control", "custom")


@dataclass(frozen=True)
class Option:
    """One option of a method: its type, default and allowed values.

    ``type`` is ``"int"``, ``"float"``, ``"bool"``, ``"str"`` or ``"sparsity"`` (a float in
    [0, 100) or the word ``adaptive``). ``minimum`` / ``maximum`` bound numbers (``maximum``
    excluded when ``max_exclusive``); ``choices`` lists the allowed strings; ``nullable`` accepts
    ``none`` (the core then decides, e.g. a batch size).
    """

    type: str
    default: Any
    help: str
    minimum: float | None = None
    maximum: float | None = None
    max_exclusive: bool = False
    min_exclusive: bool = False
    choices: tuple[str, ...] = ()
    nullable: bool = False

    def describe(self) -> str:
        """``"float in [0, 100), default 90"`` (for messages and docs)."""
        if self.choices:
            kind = "one of " + "/".join(self.choices)
        elif self.type == "sparsity":
            kind = "number in [0, 100) or adaptive"
        else:
            kind = self.type
            if self.minimum is not None or self.maximum is not None:
                lo = "(" if self.min_exclusive else "["
                hi = ")" if self.max_exclusive or self.maximum is None else "]"
                lo_v = _fmt(self.minimum) if self.minimum is not None else "-inf"
                hi_v = _fmt(self.maximum) if self.maximum is not None else "inf"
                kind += f" in {lo}{lo_v}, {hi_v}{hi}"
        if self.nullable:
            kind += " or none"
        return f"{kind}, default {_fmt(self.default)}"

    def coerce(self, value: Any, where: str) -> Any:
        """``value`` (text from the command line, or a Python value) as this option's type."""
        if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null")):
            if self.nullable:
                return None
            raise UserError(f"{where} cannot be none; it takes a {self.describe()}")
        text = value.strip() if isinstance(value, str) else None
        try:
            out = self._convert(value, text)
        except (TypeError, ValueError):
            raise UserError(f"{where} must be a {self.describe()}, got {value!r}") from None
        if isinstance(out, float) and math.isnan(out):
            raise UserError(f"{where} must be a {self.describe()}, got nan")
        if isinstance(out, int | float) and not isinstance(out, bool):
            low_bad = self.minimum is not None and (
                out <= self.minimum if self.min_exclusive else out < self.minimum
            )
            high_bad = self.maximum is not None and (
                out >= self.maximum if self.max_exclusive else out > self.maximum
            )
            if low_bad or high_bad:
                raise UserError(f"{where} must be a {self.describe()}, got {value!r}")
        if self.choices and out not in self.choices:
            raise UserError(f"{where} must be one of {', '.join(self.choices)}, got {value!r}")
        return out

    def _convert(self, value: Any, text: str | None) -> Any:
        if self.type == "bool":
            if isinstance(value, bool):
                return value
            if text is not None and text.lower() in ("true", "yes", "1", "false", "no", "0"):
                return text.lower() in ("true", "yes", "1")
            raise ValueError(value)
        if isinstance(value, bool):  # True is an int to Python, never a number here
            raise ValueError(value)
        if self.type == "int":
            if text is not None:
                return int(text)
            if isinstance(value, int):
                return value
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ValueError(value)
        if self.type in ("float", "sparsity"):
            if self.type == "sparsity" and text is not None and text.lower() == "adaptive":
                return "adaptive"
            if text is not None:
                return float(text)
            if isinstance(value, int | float):
                return float(value)
            raise ValueError(value)
        if self.type == "str":
            if text is None:
                raise ValueError(value)
            return text
        raise AssertionError(self.type)


@dataclass(frozen=True)
class MethodInfo:
    """A registered method: kind, names and option schema."""

    name: str
    kind: str
    paper_name: str
    display: str
    help: str
    options: Mapping[str, Option] = field(default_factory=dict)


def _sparsity() -> Option:
    return Option(
        "sparsity",
        90.0,
        "percent of neurons pruned (90 keeps the top 10 %), or adaptive",
        minimum=0.0,
        maximum=100.0,
        max_exclusive=True,
    )


def _threshold(default: str) -> Option:
    return Option(
        "str",
        default,
        "one threshold over all neurons of an example (global) or one per activation call",
        choices=("global", "per_layer"),
    )


def _seed() -> Option:
    return Option("int", 0, "random seed")


def _batch(help_: str) -> Option:
    return Option("int", None, help_, minimum=1, nullable=True)


_INFO = [
    MethodInfo(
        "neuron_mct",
        "pathway",
        "NeuronMCT",
        "NeuronMCT",
        "pathway of the first-order Taylor scores |a * dy/da|",
        {"sparsity": _sparsity(), "threshold": _threshold("global")},
    ),
    MethodInfo(
        "neuron_intgrad",
        "pathway",
        "NeuronIntGrad",
        "NeuronIntGrad",
        "pathway of the per-call integrated gradients of the neurons",
        {
            "sparsity": _sparsity(),
            "threshold": _threshold("global"),
            "steps": Option("int", 10, "points of the integration grid", minimum=1),
            "internal_batch_size": _batch("examples x steps per forward (memory)"),
        },
    ),
    MethodInfo(
        "greedy",
        "pathway",
        "Greedy",
        "Greedy",
        "the paper's pathological iterative Taylor pruning (keeps dead neurons)",
        {
            "sparsity": _sparsity(),
            "step": Option(
                "float",
                1.0,
                "percent pruned per iteration",
                minimum=0.0,
                min_exclusive=True,
                maximum=100.0,
            ),
            "schedule": Option(
                "str",
                "inclusive",
                "percentiles run: 'inclusive' 0..s (the authors' prune_greedy(1, s+1)) or "
                "'paper_figures' 0..s-step (their qualitative script's prune_greedy(1, s))",
                choices=("inclusive", "paper_figures"),
            ),
        },
    ),
    MethodInfo(
        "random",
        "pathway",
        "Random",
        "Random",
        "a random sparsity % of each activation call pruned",
        # The paper's Random pathway prunes the same share of every layer: per_layer thresholds.
        {"sparsity": _sparsity(), "threshold": _threshold("per_layer"), "seed": _seed()},
    ),
    MethodInfo(
        "dgr",
        "pathway",
        "DGR",
        "DGR",
        "pathway of learned gates (CDRP / DGR pruning objective)",
        {
            "sparsity": _sparsity(),
            "threshold": _threshold("global"),
            "init": Option("str", "ones", "initial gates", choices=("ones", "random")),
            "lam": Option("float", 0.01, "sparsity weight of the objective", minimum=0.0),
            "lr": Option("float", 0.01, "learning rate", minimum=0.0, min_exclusive=True),
            "momentum": Option("float", 0.9, "SGD momentum", minimum=0.0, maximum=1.0),
            "iterations": Option("int", 1000, "optimisation steps", minimum=1),
            "seed": _seed(),
            "max_restarts": Option(
                "int", 3, "restarts of a random init that loses the prediction", minimum=0
            ),
        },
    ),
    MethodInfo(
        "dead",
        "pathway",
        "Dead path",
        "Dead path",
        "the neurons whose activation is <= 0 (analysis only; no sparsity)",
    ),
    MethodInfo("gradient", "baseline", "Gradient", "Gradient", "signed input gradient"),
    MethodInfo(
        "input_x_gradient",
        "baseline",
        "InputMCT",
        "Input x Gradient",
        "input times its gradient",
    ),
    MethodInfo(
        "integrated_gradients",
        "baseline",
        "InputIntGrad",
        "Integrated Gradients",
        "Captum's IntegratedGradients from a zero baseline",
        {
            "n_steps": Option("int", 50, "integration steps", minimum=1),
            "internal_batch_size": _batch("examples x steps per forward (memory)"),
            "method": Option(
                "str",
                "gausslegendre",
                "Captum's integration rule",
                choices=(
                    "gausslegendre",
                    "riemann_left",
                    "riemann_right",
                    "riemann_middle",
                    "riemann_trapezoid",
                ),
            ),
        },
    ),
    MethodInfo(
        "guided_backprop",
        "baseline",
        "Guided Backprop",
        "Guided Backprop",
        "guided backpropagation at every ReLU call",
    ),
    MethodInfo(
        "grad_cam",
        "baseline",
        "Grad-CAM",
        "Grad-CAM",
        "Captum's LayerGradCam, upsampled bilinearly",
        {
            "layer": Option(
                "str", None, "module name (default: the last 4-D output)", nullable=True
            ),
            "relu_attributions": Option("bool", True, "keep only the positive part"),
        },
    ),
    MethodInfo(
        "smoothgrad",
        "baseline",
        "SmoothGrad",
        "SmoothGrad",
        "Captum's NoiseTunnel over the signed gradient",
        {
            "nt_samples": Option("int", 25, "noisy samples", minimum=1),
            "stdevs": Option("float", 0.15, "noise std as a share of the input range", minimum=0.0),
            "seed": _seed(),
            "nt_samples_batch_size": _batch("noisy samples per forward (memory)"),
        },
    ),
    MethodInfo(
        "random_ranking",
        "control",
        "Random",
        "Random ranking",
        "uniform random pixel scores (ROAR / perturbation baseline; drawn by the protocol)",
    ),
    MethodInfo(
        "edge",
        "control",
        "Edge",
        "Edge",
        "Sobel edge magnitude of the input (ignores the model; sanity-check control)",
    ),
]

#: Every method by name.
METHODS: dict[str, MethodInfo] = {info.name: info for info in _INFO}

#: Short names: alias -> (method, options it sets).
ALIASES: dict[str, tuple[str, dict[str, Any]]] = {
    "dgr_ones": ("dgr", {"init": "ones"}),
    "dgr_random": ("dgr", {"init": "random"}),
}

# Parameters of pathwaygrad.explain that an option of the same name would collide with.
_EXPLAIN_PARAMS = {"model", "inputs", "method", "target", "additional_forward_args"}

# Display of DGR's two initialisations (the paper's figures).
_DGR_INIT = {"ones": "init=1", "random": "init=r"}


def method_names(kinds: Iterable[str] | None = None) -> list[str]:
    """Registered method names (of ``kinds`` when given), in registry order."""
    wanted = set(KINDS if kinds is None else kinds)
    return [n for n, info in METHODS.items() if info.kind in wanted]


def _fmt(value: Any) -> str:
    """Canonical text of an option value: ``90.0`` -> ``90``, ``None`` -> ``none``."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}" if value.is_integer() and abs(value) < 1e15 else repr(value)
    return str(value)


def _auto_label(
    name: str, options: tuple[tuple[str, Any], ...], quiet: frozenset[str] = frozenset()
) -> str:
    shown = [(k, v) for k, v in options if k not in quiet]
    if not shown:
        return name
    return f"{name}(" + ",".join(f"{k}={_fmt(v)}" for k, v in shown) + ")"


def _callable_name(fn: Callable) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', type(fn).__name__)}"


@dataclass(frozen=True)
class MethodSpec:
    """A method with the options that were set for it.

    ``name``: a registered method (see :data:`METHODS`) or ``"custom"`` with ``fn``;
    ``options``: the options set explicitly, as sorted ``(key, value)`` pairs (values typed by the
    schema; the schema's defaults fill the rest in :attr:`kwargs`); ``label``: the name in tables
    and result files (default ``name`` or ``name(key=value,...)``); ``fn``: a custom
    ``fn(model, inputs, targets) -> map``; ``quiet``: options set by a preset that appear in
    neither the automatic label nor the display name (they still count in :attr:`kwargs`,
    :meth:`describe` and :meth:`fingerprint`; see :meth:`with_options`).

    Build specs with :func:`parse_method` / :func:`parse_methods` (which validate), or
    ``MethodSpec.create(name, **options)``.
    """

    name: str
    options: tuple[tuple[str, Any], ...] = ()
    label: str = ""
    fn: Callable | None = field(default=None, compare=False)
    quiet: frozenset[str] = field(default=frozenset(), compare=False)

    def __post_init__(self) -> None:
        if not self.label:
            object.__setattr__(self, "label", self._auto_label)

    @property
    def _auto_label(self) -> str:
        return _auto_label(self.name, self.options, self.quiet)

    @property
    def custom_label(self) -> bool:
        """Whether the label was given (``mylabel=name:...``) rather than made from the options."""
        return self.label != self._auto_label

    @classmethod
    def create(cls, name: str, label: str | None = None, **options: Any) -> MethodSpec:
        """A validated spec of a registered method (aliases allowed): ``create("dgr", init="random")``."""
        return _build(name, options, label, where=name)

    @property
    def info(self) -> MethodInfo | None:
        """The registry entry (None for a custom callable)."""
        return METHODS.get(self.name)

    @property
    def kind(self) -> str:
        """``"pathway"``, ``"baseline"``, ``"control"`` or ``"custom"``."""
        return self.info.kind if self.info else "custom"

    @property
    def is_pathway(self) -> bool:
        return self.kind == "pathway"

    @property
    def is_control(self) -> bool:
        return self.kind == "control"

    @property
    def is_random_ranking(self) -> bool:
        return self.name == "random_ranking"

    @property
    def needs_model(self) -> bool:
        """False for the controls, whose maps ignore the model."""
        return not self.is_control

    def option(self, key: str) -> Any:
        """The value of option ``key``: set explicitly, else the schema's default."""
        return self.kwargs[key]

    @property
    def kwargs(self) -> dict[str, Any]:
        """All options for the core (:func:`pathwaygrad.explain`): defaults, then those set."""
        out = {k: o.default for k, o in self.info.options.items()} if self.info else {}
        out.update(self.options)
        return out

    @property
    def selection_kwargs(self) -> dict[str, Any]:
        """:attr:`kwargs` without ``sparsity``, for :func:`pathwaygrad.select_pathways`."""
        return {k: v for k, v in self.kwargs.items() if k != "sparsity"}

    @property
    def display(self) -> str:
        """The name in figures: the user's label, else the display name with the options set.

        ``dgr`` always shows its initialisation, as in the paper: ``DGR(init=1)``, ``DGR(init=r)``.
        """
        if self.info is None or self.custom_label:
            return self.label
        parts = []
        opts = {k: v for k, v in self.options if k not in self.quiet or k == "init"}
        if self.name == "dgr":
            parts.append(_DGR_INIT[opts.pop("init", "ones")])
        parts += [f"{k}={_fmt(v)}" for k, v in sorted(opts.items())]
        return self.info.display + (f"({','.join(parts)})" if parts else "")

    @property
    def text(self) -> str:
        """The spec in the grammar; ``parse_method(spec.text) == spec`` (the label of a spec with
        ``quiet`` options becomes the automatic one)."""
        head = self.name
        if self.custom_label:
            head = f"{self.label}={head}"
        if not self.options:
            return head
        return head + ":" + ",".join(f"{k}={_fmt(v)}" for k, v in self.options)

    def __str__(self) -> str:
        return self.text

    def describe(self) -> dict[str, Any]:
        """JSON-friendly and stable: label, name, kind, every option (defaults filled), fn."""
        d: dict[str, Any] = {
            "label": self.label,
            "name": self.name,
            "kind": self.kind,
            "options": dict(sorted(self.kwargs.items())),
        }
        if self.fn is not None:
            d["fn"] = _callable_name(self.fn)
        return d

    def fingerprint(self) -> str:
        """A short stable hash of what computes the maps (name, all options, fn; not the label)."""
        d = self.describe()
        del d["label"]
        text = json.dumps(d, sort_keys=True, default=repr)
        return hashlib.sha1(text.encode()).hexdigest()[:12]

    def with_options(self, *, override: bool = True, relabel: bool = True, **options: Any):
        """This spec with more options set (validated).

        ``override=False`` keeps the options already set (e.g. a preset's default sparsity);
        ``relabel=False`` makes the new options quiet: label and display name stay as they are
        (e.g. a preset's shorter DGR schedule), while kwargs and fingerprint change.
        """
        if self.info is None:
            raise UserError(f"method {self.label!r} is a callable: it takes no options")
        merged = dict(self.options)
        added = set()
        for key, value in options.items():
            if override or key not in merged:
                merged[key] = value
                added.add(key)
        spec = _build(self.name, merged, None, where=self.label)
        quiet = self.quiet if relabel else self.quiet | (added - set(dict(self.options)))
        label = self.label if self.custom_label else ""
        return MethodSpec(spec.name, spec.options, label, quiet=frozenset(quiet))

    def explain(
        self,
        model: Any,
        inputs: torch.Tensor,
        targets: torch.Tensor,
        *,
        activations: str | Sequence[str] | None = None,
    ) -> torch.Tensor:
        """The map of ``inputs`` (B, C, H, W) for ``targets`` (B,) long: (B, C|1, H, W) float.

        Pathway methods and baselines go through :func:`pathwaygrad.explain` with :attr:`kwargs`
        (``activations`` for pathway methods); ``edge`` is :func:`edge_map`; a custom spec calls
        its ``fn``. ``random_ranking`` has no map (the protocols draw its random pixel scores).
        """
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

            kwargs = self.kwargs
            # An option named like a parameter of pg.explain (integrated_gradients' Captum
            # ``method``) is passed only when set to something else than its default, which is
            # then the core's own default anyway.
            for key in _EXPLAIN_PARAMS & set(kwargs):
                if kwargs[key] == self.info.options[key].default:  # type: ignore[union-attr]
                    del kwargs[key]
            if self.is_pathway and activations is not None:
                kwargs["activations"] = activations
            out = pg.explain(model, inputs, self.name, targets, **kwargs)
        out = torch.as_tensor(out).detach().float()
        if out.ndim == 3:
            out = out.unsqueeze(1)
        if out.ndim != 4 or out.shape[0] != inputs.shape[0]:
            raise UserError(
                f"method {self.label!r} returned a map of shape {tuple(out.shape)} for inputs of "
                f"shape {tuple(inputs.shape)}; expected (B, C, H, W) or (B, 1, H, W)"
            )
        return out


def edge_map(model: Any, inputs: torch.Tensor, targets: Any = None) -> torch.Tensor:
    """Sobel gradient magnitude of the channel-mean input, (B, 1, H, W): independent of the model."""
    import torch.nn.functional as F

    x = inputs.detach().float().mean(dim=1, keepdim=True)
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], device=x.device)
    k = torch.stack([kx, kx.t()]).unsqueeze(1)
    g = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), k)
    return g.pow(2).sum(dim=1, keepdim=True).sqrt()


def display_name(method: str | MethodSpec) -> str:
    """The name of a method (or spec, or spec text, or label) in figures and tables."""
    if isinstance(method, MethodSpec):
        return method.display
    if method in METHODS:
        return MethodSpec(method).display
    try:
        return parse_method(method).display
    except UserError:
        return str(method)


def _valid_names() -> str:
    return ", ".join([*METHODS, *ALIASES])


def _build(name: str, options: Mapping[str, Any], label: str | None, where: str) -> MethodSpec:
    """Validate ``name`` and ``options`` against the registry; return the spec."""
    name = name.strip()
    opts = dict(options)
    if name in ALIASES:
        name, fixed = ALIASES[name]
        for k, v in fixed.items():
            if k in opts and opts[k] != v:
                raise UserError(f"method {where!r} sets {k}={v} already; drop {k}={opts[k]}")
            opts[k] = v
    info = METHODS.get(name)
    if info is None:
        hint = " (separate methods with ';')" if "," in name or ":" in name else ""
        raise UserError(f"unknown method {name!r}{hint}; choose from {_valid_names()}")
    typed = {}
    for key, value in opts.items():
        schema = info.options.get(key)
        if schema is None:
            known = ", ".join(f"{k} ({o.describe()})" for k, o in info.options.items())
            raise UserError(
                f"method {name!r} takes no option {key!r}; its options: {known or 'none'}"
            )
        typed[key] = schema.coerce(value, f"option {key} of {where!r}")
    if label is not None:
        label = label.strip()
        if not label or any(c in label for c in ";:,=()"):
            raise UserError(
                f"label {label!r} of {where!r} must be a non-empty name without ; : , = ( )"
            )
    return MethodSpec(name, tuple(sorted(typed.items())), label or "")


def parse_method(text: str) -> MethodSpec:
    """``"[label=]name[:key=value,key=value]"`` -> a validated :class:`MethodSpec`."""
    if not isinstance(text, str):
        raise UserError(f"a method is given as text, got {text!r}")
    text = text.strip()
    if not text:
        raise UserError("empty method name; write e.g. neuron_mct or neuron_mct:sparsity=70")
    head, colon, rest = text.partition(":")
    label = None
    if "=" in head:
        label, _, head = head.partition("=")
    options: dict[str, str] = {}
    if colon:
        if not rest.strip():
            raise UserError(f"method {text!r} has ':' but no options; write name:key=value")
        for part in rest.split(","):
            key, eq, value = part.partition("=")
            key = key.strip()
            if ":" in value or ":" in key:
                raise UserError(
                    f"cannot read the options of {text!r}: separate options with ',' "
                    "(dgr:init=random,iterations=100) and methods with ';'"
                )
            if not eq or not key:
                raise UserError(
                    f"option {part.strip()!r} of {text!r} is not key=value; write "
                    "name:key=value,key=value and separate methods with ';'"
                )
            if key in options:
                raise UserError(f"option {key!r} is given twice in {text!r}")
            options[key] = value.strip()
    return _build(head, options, label, where=text)


def _split(text: str) -> list[str]:
    if ";" in text or ":" in text:
        return [p for p in (s.strip() for s in text.split(";")) if p]
    return [p for p in (s.strip() for s in text.split(",")) if p]


def parse_methods(
    methods: str | MethodSpec | Callable | Iterable[Any],
    *,
    allow_controls: bool = True,
    kinds: Iterable[str] | None = None,
) -> list[MethodSpec]:
    """The user's method list -> validated :class:`MethodSpec` objects with unique labels.

    ``methods``: ``"a;label=b:k=v,k=v"``, or a list / tuple of such strings, specs, callables
    ``fn(model, inputs, targets)`` and ``(label, callable)`` pairs. ``kinds`` restricts the
    allowed kinds (e.g. ``("pathway",)`` for analysis); ``allow_controls=False`` refuses
    ``random_ranking`` and ``edge``. Every problem raises a one-line UserError before any work.
    """
    if isinstance(methods, str | MethodSpec) or callable(methods):
        methods = [methods]
    if isinstance(methods, tuple) and len(methods) == 2 and callable(methods[1]):
        methods = [methods]
    specs: list[MethodSpec] = []
    for m in methods:
        if isinstance(m, MethodSpec):
            if m.info is not None:  # validate a spec built by hand; keep its label
                _build(m.name, dict(m.options), None, m.text)
            specs.append(m)
        elif isinstance(m, str):
            specs.extend(parse_method(part) for part in _split(m))
        elif isinstance(m, tuple) and len(m) == 2 and isinstance(m[0], str) and callable(m[1]):
            specs.append(_custom(m[1], m[0]))
        elif callable(m):
            specs.append(_custom(m, None))
        else:
            raise UserError(
                f"cannot use {m!r} as a method; give a name, a callable or a MethodSpec"
            )
    if not specs:
        raise UserError(f"no methods given; choose from {_valid_names()}")
    wanted = set(KINDS if kinds is None else kinds)
    if not allow_controls:
        wanted.discard("control")
    for s in specs:
        if s.kind not in wanted:
            allowed = ", ".join(method_names(wanted)) or "none"
            raise UserError(
                f"method {s.label!r} ({s.kind}) is not allowed here; choose from {allowed}"
            )
    labels = [s.label for s in specs]
    dupes = sorted({x for x in labels if labels.count(x) > 1})
    if dupes:
        raise UserError(
            f"method labels must be unique, got {', '.join(dupes)} more than once; "
            "give one a label: mylabel=name:..."
        )
    return specs


def _custom(fn: Callable, label: str | None) -> MethodSpec:
    label = label or getattr(fn, "__name__", None) or type(fn).__name__
    if not label or any(c in label for c in ";:,=()"):
        raise UserError(f"label {label!r} of a callable method must be a plain name")
    return MethodSpec("custom", (), label, fn)
