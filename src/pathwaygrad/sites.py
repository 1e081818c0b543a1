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
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from pathwaygrad.errors import NoActivationError, UserError

__all__ = [
    "ACTIVATION_KINDS",
    "AUTO",
    "ActivationRunner",
    "ResolvedActivations",
    "Site",
    "activation_sites",
    "activation_table",
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
# - ``after(index, result)``: called once the interceptor is done with the call (after an
#   in-place call's result has been written back), e.g. to note the result's version counter.
Transform = Callable[[int, str, torch.Tensor], torch.Tensor]


def _identity(index: int, kind: str, out: torch.Tensor) -> torch.Tensor:
    return out


_identity.inplace_ok = True  # type: ignore[attr-defined]


def mask_output(index: int, out: torch.Tensor, masks) -> torch.Tensor:
    """``out`` with the neurons where ``masks[index]`` is False set to 0; a clear error on misfit.

    Boolean masks select (the result is ``torch.where(mask, out, 0)``, with a fast kernel on the
    CPU); other masks (e.g. learned float gates) multiply. When ``out`` is the fresh output of a
    ReLU call that the interceptor is handling, a boolean mask is applied to it in place: ReLU
    and mask then cost about what the ReLU alone costs, forward and backward (see ``_ReLU``).
    """
    mask = _checked_mask(index, out, masks)
    if mask.dtype == torch.bool:
        pending = getattr(_PENDING, "call", None)
        if pending is not None and pending.out is out and mask.device == out.device:
            pending.mask_(mask)
            return out
        if _bitwise_ok(out, mask):
            return _KeepOnly.apply(out, mask)
        return torch.where(mask, out, 0.0)
    return out * mask


def _checked_mask(index: int, out: torch.Tensor, masks) -> torch.Tensor:
    from pathwaygrad.errors import PathwayMismatchError

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
    """The transform "keep only the neurons of ``masks``": ``mask_output(i, out, masks)``."""

    inplace_ok = True

    def __init__(self, masks):
        self.masks = masks

    def __call__(self, index: int, kind: str, out: torch.Tensor) -> torch.Tensor:
        return mask_output(index, out, self.masks)


# --- Boolean masks on the CPU -----------------------------------------------------------------
# PyTorch's CPU kernels that mix a bool mask with floats (``where``, ``masked_fill``, ``mul``)
# are not vectorised: several ns per element, more than a ReLU. Converting the mask to the
# floats' integer width (0 -> 0, 1 -> all bits set) in a small reused buffer and AND-ing it with
# the floats' bit patterns gives ``where(mask, x, 0)`` exactly (+0.0 where masked) at the speed
# of plain elementwise integer ops.

_INT_OF = {
    torch.float32: torch.int32,
    torch.float64: torch.int64,
    torch.float16: torch.int16,
    torch.bfloat16: torch.int16,
}
_KEEP_CHUNK = 1 << 20


def _bitwise_ok(x: torch.Tensor, mask: torch.Tensor) -> bool:
    return (
        x.device.type == "cpu"
        and x.dtype in _INT_OF
        and x.is_contiguous()
        and mask.is_contiguous()
        and mask.device == x.device
    )


def _keep_only_(x: torch.Tensor, mask: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """out = x where mask else +0 (bitwise), all contiguous; ``out`` may be ``x``."""
    itype = _INT_OF[x.dtype]
    xi, oi = x.view(-1).view(itype), out.view(-1).view(itype)
    m = mask.view(-1)
    n = xi.shape[0]
    buf = torch.empty(min(n, _KEEP_CHUNK), dtype=itype)
    for start in range(0, n, _KEEP_CHUNK):
        stop = min(n, start + _KEEP_CHUNK)
        b = buf[: stop - start]
        b.copy_(m[start:stop]).neg_()
        torch.bitwise_and(xi[start:stop], b, out=oi[start:stop])
    return out


def _mask_inplace(x: torch.Tensor, mask: torch.Tensor) -> None:
    with torch.no_grad():
        if _bitwise_ok(x, mask):
            _keep_only_(x, mask, x)
        else:
            x.mul_(mask)


class _KeepOnly(torch.autograd.Function):
    """where(mask, x, 0) for a bool ``mask``; backward where(mask, grad, 0). CPU, contiguous."""

    @staticmethod
    def forward(ctx, x, mask):
        ctx.save_for_backward(mask)
        return _keep_only_(x, mask, torch.empty_like(x, memory_format=torch.contiguous_format))

    @staticmethod
    def backward(ctx, grad):
        (mask,) = ctx.saved_tensors
        grad = grad.contiguous()
        return _keep_only_(grad, mask, torch.empty_like(grad)), None


class _ReLU(torch.autograd.Function):
    """ReLU (in place on ``x`` when ``inplace``) whose output may then be masked in place.

    Like PyTorch's ReLU it keeps only its output for backward and passes the gradient where the
    output is > 0. ``mask_output`` may zero neurons of the output in place before anything else
    uses it (the interceptor's pending call): the gradient then passes where x > 0 and the neuron
    is kept, which is the gradient of the masked ReLU. Any other in-place change of the output
    is refused at backward, as autograd does.
    """

    @staticmethod
    def forward(ctx, x, inplace):
        out = torch.relu_(x) if inplace else torch.relu(x)
        if inplace:
            ctx.mark_dirty(x)
        # Kept detached (no reference cycle through the output's grad_fn); its version is
        # checked by hand in backward.
        ctx.out = out.detach()
        ctx.version = out._version
        _PENDING.ctx = ctx  # picked up (and cleared) by the interceptor
        return out

    @staticmethod
    def backward(ctx, grad):
        out = ctx.out
        if out._version != ctx.version:
            raise RuntimeError(
                "one of the variables needed for gradient computation has been modified by an "
                "inplace operation: the output of an intercepted ReLU call"
            )
        return torch.ops.aten.threshold_backward(grad, out, 0), None


class _Pending:
    """The ReLU call the interceptor is handling: its fresh output may be masked in place."""

    def __init__(self, out: torch.Tensor, ctx=None):
        self.out = out
        self.ctx = ctx

    def mask_(self, mask: torch.Tensor) -> None:
        _mask_inplace(self.out, mask)
        if self.ctx is not None:
            self.ctx.version = self.out._version


_PENDING = threading.local()


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
            new = self.transform(index, kind, out)
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
        ctx = None
        if torch.is_grad_enabled() and x.requires_grad:
            out = _ReLU.apply(x, in_place)
            ctx, _PENDING.ctx = _PENDING.ctx, None
            ctx.version = out._version  # (autograd bumps a dirty input's version after forward)
        else:
            out = torch.relu_(x) if in_place else torch.relu(x)
        _PENDING.call = _Pending(out, ctx)
        try:
            if in_place and not self.inplace_ok and torch.is_grad_enabled():
                # The transform may keep ``out`` for backward (e.g. out * gate), and ``out`` is
                # the model's tensor, overwritten below with the transform's result: what the
                # transform saves from that memory is saved as a copy.
                def pack(t):
                    return t.detach().clone() if _same_memory(t, out) else t

                with torch.autograd.graph.saved_tensors_hooks(pack, _unpack):
                    new = self.transform(index, kind, out)
            else:
                new = self.transform(index, kind, out)
        finally:
            _PENDING.call = None
        if not in_place or new is target or new.shape != target.shape:
            # (A transform that changes the batch, e.g. NeuronIntGrad's widening, returns its
            # result without writing it back: the model must use the call's return value.)
            return new
        if ctx is not None and _same_memory(ctx.out, target):
            # ReLU's backward needs its own output, about to be overwritten: keep a copy.
            ctx.out = out.detach().clone()
            ctx.version = ctx.out._version
        if _same_memory(new, target) and not _same_layout(new, target):
            new = new.clone()
        return target.copy_(new)  # free when new is target's data in the same layout


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
    from pathwaygrad._guard import preserved

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
    try:
        from torch._dynamo.eval_frame import OptimizedModule
    except Exception:  # pragma: no cover - very old torch
        return False
    return isinstance(fn, OptimizedModule)


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
    from pathwaygrad._guard import preserved

    runner = ActivationRunner(model, activations)
    shapes: list[tuple[int, ...]] = []

    def record(i, kind, a):
        shapes.append(tuple(a.shape))
        return a

    with preserved(model), torch.no_grad():
        _, names, kinds = runner.forward(inputs, record, additional_forward_args, names=True)
    return [Site(n, s, k) for n, s, k in zip(names, shapes, kinds)]
