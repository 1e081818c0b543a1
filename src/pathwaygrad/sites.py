"""Step 1 of the pipeline: find every activation *call* of a model and intercept it.

A *neuron* is one scalar element of the output of one activation call (paper, section 1). A module
called three times gives three separate sets of neurons, and a functional ``F.relu`` inside a
``forward`` is found as well as an ``nn.ReLU`` module: calls are intercepted with a
:class:`torch.overrides.TorchFunctionMode` that is active for one forward pass only, so nothing
is patched globally and no hook is left on the model.

Every call gets a stable, readable *site name*:

- a call made by an activation module: the module's path and the call's index among that module's
  calls, e.g. ``"layer1.0.relu#1"`` (torchvision's ResNet reuses one ``relu`` per block);
- a functional call: the path of the module whose ``forward`` made it, the function name with
  ``()`` and its index, e.g. ``"layer1.0.relu()#0"``; ``"relu()#0"`` at the top level.

In-place activations (``nn.ReLU(inplace=True)``, ``torch.relu_``, ``x.relu_()``) are run out of
place and the (possibly transformed) result is copied back into the input tensor, so callers that
ignore the return value still see it, and autograd stays correct.

Which calls hold neurons is chosen by *kind* (:data:`ACTIVATION_KINDS`): elementwise activation
functions only. Attention softmax (it normalises over a row, it is not elementwise) and
normalisation layers (BatchNorm, LayerNorm, ...) are not neurons and are never masked. The default,
``activations="auto"`` (or None), means ReLU when the model calls any ReLU (so ReLU models behave
exactly as with ``("relu",)``), otherwise every supported kind the model does call (GELU for a ViT,
SiLU and sigmoid for an EfficientNet, ...): see :func:`resolve_activations`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from pathwaygrad._guard import preserved
from pathwaygrad._inputs import check_inputs
from pathwaygrad.errors import NoActivationError, PathwayMismatchError, UserError
from pathwaygrad.masking import keep_only, keep_only_

__all__ = [
    "ACTIVATION_KINDS",
    "AUTO",
    "ActivationRunner",
    "MaskTransform",
    "ReLUCall",
    "ReLUOutput",
    "ResolvedActivations",
    "Site",
    "activation_sites",
    "activation_table",
    "mask_output",
    "resolve_activations",
]

# Functions that count as an activation call of each kind. Activation modules call these
# functionals (nn.ReLU -> F.relu, nn.ReLU6 -> F.hardtanh, ...), so one table covers both.
ACTIVATION_KINDS: dict[str, tuple[Callable, ...]] = {
    "relu": (F.relu, torch.relu, torch.relu_, torch.Tensor.relu, torch.Tensor.relu_),
    "gelu": (F.gelu,),
    "silu": (F.silu,),
    "leaky_relu": (F.leaky_relu, F.leaky_relu_),
    "elu": (F.elu, F.elu_),
    "relu6": (F.relu6, F.hardtanh, F.hardtanh_),
    "mish": (F.mish,),
    "softplus": (F.softplus,),
    "sigmoid": (torch.sigmoid, torch.Tensor.sigmoid, F.sigmoid),
    "tanh": (torch.tanh, torch.Tensor.tanh, F.tanh),
    "hardswish": (F.hardswish,),
    "hardsigmoid": (F.hardsigmoid,),
}

# ``activations="auto"`` (or None): ReLU if the model calls any ReLU, else every kind it calls.
AUTO = "auto"

# Modules whose own call is the activation (their path names the site).
_ACTIVATION_MODULES = (
    nn.ReLU,
    nn.GELU,
    nn.SiLU,
    nn.LeakyReLU,
    nn.ELU,
    nn.ReLU6,
    nn.Hardtanh,
    nn.Mish,
    nn.Softplus,
    nn.Sigmoid,
    nn.Tanh,
    nn.Hardswish,
    nn.Hardsigmoid,
)

# In-place variants and their out-of-place twins.
_OUT_OF_PLACE = {
    torch.relu_: torch.relu,
    torch.Tensor.relu_: torch.Tensor.relu,
    F.leaky_relu_: F.leaky_relu,
    F.elu_: F.elu,
    F.hardtanh_: F.hardtanh,
}


@dataclass(frozen=True)
class Site:
    """One activation call: its name, its output's shape (batch first) and its kind."""

    name: str
    shape: tuple[int, ...]
    kind: str


Activations = str | Sequence[str] | None


def _is_auto(activations: object) -> bool:
    return activations is None or (isinstance(activations, str) and activations == AUTO)


def activation_table(activations: str | Iterable[str]) -> dict[Callable, str]:
    """Map each intercepted function to its kind name; validate the requested kinds."""
    if isinstance(activations, str):
        activations = (activations,)
    table: dict[Callable, str] = {}
    for kind in activations:
        if kind not in ACTIVATION_KINDS:
            raise UserError(
                f"unknown activation kind {kind!r}; choose from {sorted(ACTIVATION_KINDS)}"
            )
        for fn in ACTIVATION_KINDS[kind]:
            table[fn] = kind
    if not table:
        raise UserError("activations is empty; pass e.g. activations=('relu',)")
    return table


_ALL_KINDS = activation_table(ACTIVATION_KINDS)


def _inplace_flag(func: Callable, args: tuple, kwargs: dict) -> tuple[bool, tuple, dict]:
    """Whether a functional call asks for in-place work; returns args/kwargs with it switched off."""
    if "inplace" in kwargs:
        if kwargs["inplace"]:
            return True, args, {**kwargs, "inplace": False}
        return False, args, kwargs
    try:
        params = list(inspect.signature(func).parameters)
    except (TypeError, ValueError):  # builtins without a signature take no inplace flag
        return False, args, kwargs
    if "inplace" in params:
        pos = params.index("inplace")
        if len(args) > pos and args[pos]:
            args = args[:pos] + (False,) + args[pos + 1 :]
            return True, args, kwargs
    return False, args, kwargs


# A transform receives (call index, site kind, activation output) and returns what the network
# should see instead (the same tensor to leave it unchanged). Optional attributes:
# - ``inplace_ok = True``: the transform keeps nothing (e.g. for autograd) that needs ``out`` to
#   stay unchanged once it has returned. An in-place ReLU call then runs in place and ``out`` is
#   the model's own tensor, into which the transform's result is written back; otherwise the
#   call runs out of place and the result is copied into the model's tensor.
# - ``takes_relu_output = True``: the transform is called with a fourth argument, a
#   :class:`ReLUOutput` when ``out`` is the fresh output of a ReLU call (else None), through which
#   it may mask ``out`` in place (see :func:`mask_output`).
# - ``after(index, result)``: called once the interceptor is done with the call (after an
#   in-place call's result has been written back), e.g. to note the result's version counter.
Transform = Callable[..., torch.Tensor]


def _identity(index: int, kind: str, out: torch.Tensor) -> torch.Tensor:
    return out


_identity.inplace_ok = True  # type: ignore[attr-defined]


class ReLUCall(torch.autograd.Function):
    """An intercepted ReLU call (in place on ``x`` when ``inplace``) whose output may then be
    masked in place through its :class:`ReLUOutput`.

    Like PyTorch's ReLU it keeps only its output for backward and passes the gradient where the
    output is > 0. When neurons of the output are zeroed in place (``ReLUOutput.mask_``) before
    anything else uses it, the gradient passes where x > 0 and the neuron is kept: the gradient
    of the masked ReLU. Any other in-place change of the output is refused at backward, as
    autograd does. Its backward node (``output.grad_fn``, which is the ``ctx``) is recognised by
    :meth:`is_node`; once the node has run, the output's gradient is complete and autograd no
    longer needs the output (:meth:`release` drops the node's reference to it).
    """

    @staticmethod
    def forward(ctx, x, inplace, handle=None):
        out = torch.relu_(x) if inplace else torch.relu(x)
        if inplace:
            ctx.mark_dirty(x)
        # Kept detached (no reference cycle through the output's grad_fn); its version is
        # checked by hand in backward.
        ctx.out = out.detach()
        ctx.version = out._version
        ctx.pathwaygrad_relu = True
        if handle is not None:
            handle.node = ctx  # (an in-place call on a view gets autograd's view node as grad_fn)
        return out

    @staticmethod
    def backward(ctx, grad):
        out = ctx.out
        if out is None:
            raise RuntimeError(
                "the output of an intercepted ReLU call was released after its backward ran: "
                "this graph cannot be differentiated twice"
            )
        if out._version != ctx.version:
            raise RuntimeError(
                "one of the variables needed for gradient computation has been modified by an "
                "inplace operation: the output of an intercepted ReLU call"
            )
        return torch.ops.aten.threshold_backward(grad, out, 0), None, None

    @staticmethod
    def is_node(node: object) -> bool:
        """Whether an autograd node is the backward of an intercepted ReLU call."""
        return getattr(node, "pathwaygrad_relu", False) is True

    @staticmethod
    def release(node: object) -> None:
        """Drop the node's reference to the call's output (after the node has run)."""
        node.out = None  # type: ignore[attr-defined]


class ReLUOutput:
    """The fresh output of the ReLU call being intercepted, handed to transforms that take it
    (``takes_relu_output``): it may be masked in place before anything else has used it."""

    def __init__(self) -> None:
        self.out: torch.Tensor | None = None
        self.node: Any = None  # the ReLUCall node (its ctx) when autograd records the call

    def mask_(self, mask: torch.Tensor) -> None:
        """Zero the neurons of the output where the bool ``mask`` is False, in place."""
        assert self.out is not None
        keep_only_(self.out, mask)
        if self.node is not None:
            self.node.version = self.out._version


def mask_output(
    index: int, out: torch.Tensor, masks, relu: ReLUOutput | None = None
) -> torch.Tensor:
    """``out`` with the neurons where ``masks[index]`` is False set to 0; a clear error on misfit.

    Boolean masks select (the result is ``torch.where(mask, out, 0)``, with a fast kernel on the
    CPU, :mod:`pathwaygrad.masking`); other masks (e.g. learned float gates) multiply. When
    ``relu`` is the handle of ``out`` (the fresh output of a ReLU call being intercepted), a
    boolean mask is applied to it in place: ReLU and mask then cost about what the ReLU alone
    costs, forward and backward (see :class:`ReLUCall`).
    """
    mask = _checked_mask(index, out, masks)
    if mask.dtype == torch.bool:
        if relu is not None and relu.out is out and mask.device == out.device:
            relu.mask_(mask)
            return out
        return keep_only(out, mask)
    return out * mask


def _checked_mask(index: int, out: torch.Tensor, masks) -> torch.Tensor:
    if index >= len(masks):
        raise PathwayMismatchError(
            f"the model made more activation calls ({index + 1}+) than the pathway has masks "
            f"({len(masks)}); select the pathway on this model with the same inputs shape"
        )
    mask = masks[index]
    if mask.shape != out.shape:
        raise PathwayMismatchError(
            f"pathway mask {index} has shape {tuple(mask.shape)} but the model's activation call "
            f"{index} outputs {tuple(out.shape)}; select the pathway on the same model and inputs"
        )
    return mask


class MaskTransform:
    """The transform "keep only the neurons of ``masks``": ``mask_output(i, out, masks)``.

    Boolean masks select; float masks (e.g. DGR's learned gates) multiply, which keeps ``out``
    for the gates' gradient, so an in-place call's output is then saved as a copy.
    """

    takes_relu_output = True

    def __init__(self, masks):
        self.masks = masks
        self.inplace_ok = all(m.dtype == torch.bool for m in masks)

    def __call__(
        self, index: int, kind: str, out: torch.Tensor, relu: ReLUOutput | None = None
    ) -> torch.Tensor:
        return mask_output(index, out, self.masks, relu)


def _relu_input(func: Callable, args: tuple, kwargs: dict):
    """The input tensor of a ReLU call whose only other argument is ``inplace``, else None."""
    if len(args) == 1 and set(kwargs) <= {"inplace"} and isinstance(args[0], torch.Tensor):
        return args[0]
    if len(args) == 2 and not kwargs and func is F.relu and isinstance(args[0], torch.Tensor):
        return args[0]
    return None


class _Interceptor(TorchFunctionMode):
    """Calls ``transform`` on the output of every activation call during one forward pass."""

    def __init__(
        self,
        table: dict[Callable, str],
        transform: Transform,
        namer: _Namer | None,
        active: frozenset[str] | None = None,
    ):
        super().__init__()
        self.table = table
        self.transform = transform
        self.after = getattr(transform, "after", None)
        self.inplace_ok = getattr(transform, "inplace_ok", False)
        self.takes_relu_output = getattr(transform, "takes_relu_output", False)
        self.namer = namer
        # Kinds whose calls are transformed (None: every kind of ``table``); calls of the other
        # kinds of ``table`` run unchanged and are only noted in ``seen``.
        self.active = active
        self.seen: set[str] = set()
        self.count = 0
        self.kinds: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        kind = self.table.get(func)
        if kind is None:
            return func(*args, **kwargs)
        if self.active is not None and kind not in self.active:
            self.seen.add(kind)
            return func(*args, **kwargs)
        target = None
        if func in _OUT_OF_PLACE:
            target, func = args[0], _OUT_OF_PLACE[func]
        else:
            inplace, args, kwargs = _inplace_flag(func, args, kwargs)
            if inplace:
                target = args[0]
        index = self.count
        x = _relu_input(func, args, kwargs) if kind == "relu" else None
        if x is not None and x.is_floating_point():
            new = self._relu(index, kind, x, target)
        else:
            if target is not None and kind != "relu":
                # Activations other than ReLU save their *input* for backward: keep it intact.
                args = (args[0].clone(),) + tuple(args[1:])
            out = func(*args, **kwargs)
            new = self._call(index, kind, out, None)
            if target is not None and new is not target and new.shape == target.shape:
                new = target.copy_(new)
        self.count += 1
        self.kinds.append(kind)
        if self.namer is not None:
            self.namer.name_call(func, kind)
        if self.after is not None:
            self.after(index, new)
        return new

    def _relu(self, index: int, kind: str, x: torch.Tensor, target) -> torch.Tensor:
        """A ReLU call: run it (in place for an in-place call, as the model asked: no copy of
        the activation), let the transform see the output, write its result back for an
        in-place call."""
        in_place = target is not None
        relu = ReLUOutput()
        if torch.is_grad_enabled() and x.requires_grad:
            out = ReLUCall.apply(x, in_place, relu)
            node = relu.node
            assert node is not None
            node.version = out._version  # (autograd bumps a dirty input's version after forward)
        else:
            out = torch.relu_(x) if in_place else torch.relu(x)
            node = None
        relu.out = out
        if in_place and not self.inplace_ok and torch.is_grad_enabled():
            # The transform may keep ``out`` for backward (e.g. out * gate), and ``out`` is
            # the model's tensor, overwritten below with the transform's result: what the
            # transform saves from that memory is saved as a copy.
            def pack(t):
                return t.detach().clone() if _same_memory(t, out) else t

            with torch.autograd.graph.saved_tensors_hooks(pack, _unpack):
                new = self._call(index, kind, out, relu)
        else:
            new = self._call(index, kind, out, relu)
        if not in_place or new is target or new.shape != target.shape:
            # (A transform that changes the batch, e.g. NeuronIntGrad's widening, returns its
            # result without writing it back: the model must use the call's return value.)
            return new
        if node is not None and _same_memory(node.out, target):
            # ReLU's backward needs its own output, about to be overwritten: keep a copy.
            node.out = out.detach().clone()
            node.version = node.out._version
        if _same_memory(new, target) and not _same_layout(new, target):
            new = new.clone()
        return target.copy_(new)  # free when new is target's data in the same layout

    def _call(self, index: int, kind: str, out: torch.Tensor, relu: ReLUOutput | None):
        if self.takes_relu_output:
            return self.transform(index, kind, out, relu)
        return self.transform(index, kind, out)


def _unpack(t):
    return t


def _same_memory(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()


def _same_layout(a: torch.Tensor, b: torch.Tensor) -> bool:
    return (
        a.data_ptr() == b.data_ptr()
        and a.stride() == b.stride()
        and a.shape == b.shape
        and a.dtype == b.dtype
    )


class _Namer:
    """Tracks the module stack with forward hooks to give each call its site name."""

    def __init__(self, model: nn.Module):
        self.names: list[str] = []
        self._stack: list[tuple[str, nn.Module]] = []
        self._counts: dict[str, int] = {}
        self._handles = []
        for path, module in model.named_modules():
            self._handles.append(module.register_forward_pre_hook(self._push(path)))
            self._handles.append(module.register_forward_hook(self._pop, always_call=True))

    def _push(self, path: str):
        def hook(module, args):
            self._stack.append((path, module))

        return hook

    def _pop(self, module, args, output):
        if self._stack:
            self._stack.pop()

    def name_call(self, func: Callable, kind: str) -> None:
        path, module = self._stack[-1] if self._stack else ("", None)
        if isinstance(module, _ACTIVATION_MODULES):
            base = path
        else:
            fname = getattr(func, "__name__", kind).rstrip("_")
            base = f"{path}.{fname}()" if path else f"{fname}()"
        k = self._counts.get(base, 0)
        self._counts[base] = k + 1
        self.names.append(f"{base}#{k}")

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()


class ResolvedActivations(NamedTuple):
    """The activation kinds that hold neurons for a model, and why (None when as asked or ReLU)."""

    kinds: tuple[str, ...]
    note: str | None


def _auto_kinds(seen: set[str]) -> ResolvedActivations:
    """What "auto" means, given the kinds a model called: ReLU if any, else all of them."""
    if "relu" in seen:
        return ResolvedActivations(("relu",), None)
    kinds = tuple(k for k in ACTIVATION_KINDS if k in seen)
    if not kinds:
        raise NoActivationError(
            "the model made no activation call of any supported kind "
            f"({sorted(ACTIVATION_KINDS)}): neurons are outputs of elementwise activation calls "
            "(attention softmax and normalisation layers are not neurons); write the model's "
            "activation with one of these functions, then activations='auto' or activations=... "
            "finds it"
        )
    return ResolvedActivations(kinds, f"this model calls no ReLU; using {', '.join(kinds)}")


class ActivationRunner:
    """Runs a model (or any forward function) with a transform applied at every activation call.

    This is the single place where pathwaygrad touches a forward pass. It registers nothing
    permanent: the interception mode and any naming hooks live for one call of :meth:`forward`.

    Args:
        forward_func: an ``nn.Module`` or any callable ``f(inputs, *extra) -> logits (B, K)``.
        activations: kinds of activation to intercept (keys of :data:`ACTIVATION_KINDS`), or
            ``"auto"`` / None: resolved on the first :meth:`forward` (ReLU if the model calls
            any ReLU, else every supported kind it calls; see :func:`resolve_activations`).
            ``activations`` then holds the kinds and ``note`` says why when they are not ReLU.
    """

    def __init__(self, forward_func: Callable, activations: Activations = AUTO):
        if _is_compiled(forward_func):
            raise UserError(
                "torch.compile'd models cannot be intercepted: activation calls are fused into "
                "the compiled graph. Pass the original module (compiled._orig_mod) instead."
            )
        self.forward_func = forward_func
        self.note: str | None = None
        self.activations: tuple[str, ...] | None = None
        self.table: dict[Callable, str] = _ALL_KINDS
        if not _is_auto(activations):
            self.table = activation_table(activations)  # type: ignore[arg-type]
            kinds = (activations,) if isinstance(activations, str) else activations
            self.activations = tuple(kinds)  # type: ignore[arg-type]

    def forward(
        self,
        inputs: torch.Tensor,
        transform: Transform | None = None,
        additional_forward_args: tuple = (),
        names: bool = False,
    ) -> tuple[torch.Tensor, list[str] | None, list[str]]:
        """One forward pass. Returns (output, site names or None, site kinds)."""
        if self.activations is None:
            # "auto": run with ReLU calls transformed and the other kinds noted. A model that
            # calls ReLU is done in this one pass; any other runs again with the kinds it called.
            out, site_names, mode = self._run(
                inputs, transform, additional_forward_args, names, frozenset({"relu"})
            )
            if mode.count:
                self._resolved(_auto_kinds({"relu"}))
                return out, site_names, mode.kinds
            self._resolved(_auto_kinds(mode.seen))
        out, site_names, mode = self._run(inputs, transform, additional_forward_args, names, None)
        if mode.count == 0:
            raise NoActivationError(
                f"the model made no activation call of the kinds {list(self.activations or ())} "
                f"(looked for: {_describe(self.table)}); pass activations=... with the kinds "
                f"your model uses, one of {sorted(ACTIVATION_KINDS)}, or activations='auto'"
            )
        return out, site_names, mode.kinds

    def _resolved(self, resolved: ResolvedActivations) -> None:
        self.activations, self.note = resolved
        self.table = activation_table(resolved.kinds)

    def _run(self, inputs, transform, extra, names, active):
        namer = (
            _Namer(self.forward_func)
            if names and isinstance(self.forward_func, nn.Module)
            else None
        )
        mode = _Interceptor(self.table, transform or _identity, namer, active)
        try:
            with mode:
                out = self.forward_func(inputs, *extra)
        finally:
            if namer is not None:
                namer.remove()
        site_names = namer.names if namer is not None else None
        if site_names is None and names:
            site_names = [f"{k}()#{i}" for i, k in enumerate(mode.kinds)]
        return out, site_names, mode


def resolve_activations(
    model: Callable,
    inputs: torch.Tensor,
    activations: Activations = AUTO,
    additional_forward_args: tuple = (),
) -> ResolvedActivations:
    """The kinds of activation calls that hold neurons when ``activations`` is used on ``model``.

    Explicit kinds are validated and returned as they are (note None). ``"auto"`` or None runs
    one forward pass (no gradient) and returns ``("relu",)`` if the model calls any ReLU
    (note None), otherwise every supported kind it calls, in :data:`ACTIVATION_KINDS` order, with
    a note such as ``"this model calls no ReLU; using gelu"`` for the user. Attention softmax and
    normalisation layers are not neurons and never count. The model is left unchanged. Raises
    :class:`~pathwaygrad.errors.NoActivationError` when the model calls no supported kind.
    """
    if not _is_auto(activations):
        activation_table(activations)  # type: ignore[arg-type]
        kinds = (activations,) if isinstance(activations, str) else activations
        return ResolvedActivations(tuple(kinds), None)  # type: ignore[arg-type]
    runner = ActivationRunner(model, AUTO)
    with preserved(model), torch.no_grad():
        _, _, mode = runner._run(inputs, None, tuple(additional_forward_args), False, frozenset())
    return _auto_kinds(mode.seen)


def _describe(table: dict[Callable, str]) -> str:
    names = []
    for fn in table:
        mod = getattr(fn, "__module__", None) or "torch.Tensor"
        names.append(f"{mod}.{getattr(fn, '__name__', fn)}")
    return ", ".join(sorted(set(names)))


def _is_compiled(fn) -> bool:
    """Whether ``fn`` is a ``torch.compile``'d module (it wraps the original as ``_orig_mod``)."""
    return isinstance(fn, nn.Module) and isinstance(getattr(fn, "_orig_mod", None), nn.Module)


def activation_sites(
    model: Callable,
    inputs: torch.Tensor,
    activations: Activations = AUTO,
    additional_forward_args: tuple = (),
) -> list[Site]:
    """List the activation calls the model makes on ``inputs``, in call order.

    Returns one :class:`Site` per call (name, output shape with batch first, kind). Raises
    :class:`~pathwaygrad.errors.NoActivationError` if there is none.
    """
    inputs = check_inputs(inputs, model, grad=False)
    runner = ActivationRunner(model, activations)
    shapes: list[tuple[int, ...]] = []

    def record(i, kind, a):
        shapes.append(tuple(a.shape))
        return a

    with preserved(model), torch.no_grad():
        _, names, kinds = runner.forward(inputs, record, additional_forward_args, names=True)
    assert names is not None
    return [Site(n, s, k) for n, s, k in zip(names, shapes, kinds)]
