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
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from pathwaygrad.errors import NoActivationError, UserError

__all__ = ["ACTIVATION_KINDS", "Site", "activation_sites", "resolve_activations"]

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
}

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


def resolve_activations(activations: str | Iterable[str]) -> dict[Callable, str]:
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

    Boolean masks select with ``torch.where`` (no float copy of the mask, forward or backward);
    other masks (e.g. learned float gates) multiply.
    """
    mask = _checked_mask(index, out, masks)
    if mask.dtype == torch.bool:
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
    """The transform "keep only the neurons of ``masks``": call i's output times ``masks[i]``.

    Same result as ``lambda i, kind, out: mask_output(i, out, masks)``, but the interceptor
    recognises it and fuses the mask into ReLU calls: one ``masked_fill`` that zeroes the neurons
    that are negative or pruned, done in place for in-place ReLUs, keeping one boolean per neuron
    for backward instead of the ReLU's float output, the mask's float copy and the product.
    """

    def __init__(self, masks):
        self.masks = masks

    def __call__(self, index: int, kind: str, out: torch.Tensor) -> torch.Tensor:
        return mask_output(index, out, self.masks)

    def fill(self, index: int, x: torch.Tensor) -> torch.Tensor:
        """Bool, True where masked ReLU(x) is 0: x <= 0 (ReLU) or the neuron is pruned."""
        mask = _checked_mask(index, x, self.masks)
        fill = torch.le(x, 0)
        if mask.dtype == torch.bool:
            return fill.logical_or_(torch.logical_not(mask))
        return fill.logical_or_(mask == 0)


def _relu_input(func: Callable, args: tuple, kwargs: dict):
    """The input tensor of a ReLU call whose only other argument is ``inplace``, else None."""
    if len(args) == 1 and set(kwargs) <= {"inplace"} and isinstance(args[0], torch.Tensor):
        return args[0]
    if len(args) == 2 and not kwargs and func is F.relu and isinstance(args[0], torch.Tensor):
        return args[0]
    return None


class _Interceptor(TorchFunctionMode):
    """Calls ``transform`` on the output of every activation call during one forward pass."""

    def __init__(self, table: dict[Callable, str], transform: Transform, namer: _Namer | None):
        super().__init__()
        self.table = table
        self.transform = transform
        self.after = getattr(transform, "after", None)
        self.fused = isinstance(transform, MaskTransform)
        self.inplace_ok = self.fused or getattr(transform, "inplace_ok", False)
        self.namer = namer
        self.count = 0
        self.kinds: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        kind = self.table.get(func)
        if kind is None:
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
        if (
            x is not None
            and x.is_floating_point()
            and (self.fused or (target is not None and self.inplace_ok))
        ):
            if self.fused:
                # Masked ReLU in one pass: zero what ReLU or the mask zeroes.
                fill = self.transform.fill(index, x)
                new = x.masked_fill_(fill, 0) if target is not None else x.masked_fill(fill, 0)
                return self._done(index, func, kind, new)
            # In-place ReLU stays in place (no copy of the activation) when the transform
            # declares ``inplace_ok``: it keeps nothing that needs ``out`` unchanged after it
            # returns. Under autograd, a masked_fill keeps a boolean for backward instead of the
            # output, so the transform's result may be written back into it.
            if torch.is_grad_enabled() and x.requires_grad:
                x.masked_fill_(torch.le(x, 0), 0)
            else:
                torch.relu_(x)
            out = x
        else:
            if target is not None and kind != "relu":
                # Activations other than ReLU save their *input* for backward: keep it intact.
                args = (args[0].clone(),) + tuple(args[1:])
            out = func(*args, **kwargs)
        self.count += 1
        self.kinds.append(kind)
        if self.namer is not None:
            self.namer.name_call(func, kind)
        new = self.transform(index, kind, out)
        if target is not None and new is not target:
            new = target.copy_(new)  # free when new is an alias of target (same data)
        if self.after is not None:
            self.after(index, new)
        return new

    def _done(self, index, func, kind, new):
        self.count += 1
        self.kinds.append(kind)
        if self.namer is not None:
            self.namer.name_call(func, kind)
        if self.after is not None:
            self.after(index, new)
        return new


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


class ActivationRunner:
    """Runs a model (or any forward function) with a transform applied at every activation call.

    This is the single place where pathwaygrad touches a forward pass. It registers nothing
    permanent: the interception mode and any naming hooks live for one call of :meth:`forward`.

    Args:
        forward_func: an ``nn.Module`` or any callable ``f(inputs, *extra) -> logits (B, K)``.
        activations: kinds of activation to intercept (keys of :data:`ACTIVATION_KINDS`).
    """

    def __init__(self, forward_func: Callable, activations: str | Sequence[str] = ("relu",)):
        if _is_compiled(forward_func):
            raise UserError(
                "torch.compile'd models cannot be intercepted: activation calls are fused into "
                "the compiled graph. Pass the original module (compiled._orig_mod) instead."
            )
        self.forward_func = forward_func
        self.activations = (activations,) if isinstance(activations, str) else tuple(activations)
        self.table = resolve_activations(self.activations)

    def forward(
        self,
        inputs: torch.Tensor,
        transform: Transform | None = None,
        additional_forward_args: tuple = (),
        names: bool = False,
    ) -> tuple[torch.Tensor, list[str] | None, list[str]]:
        """One forward pass. Returns (output, site names or None, site kinds)."""
        namer = (
            _Namer(self.forward_func)
            if names and isinstance(self.forward_func, nn.Module)
            else None
        )
        mode = _Interceptor(self.table, transform or _identity, namer)
        try:
            with mode:
                out = self.forward_func(inputs, *additional_forward_args)
        finally:
            if namer is not None:
                namer.remove()
        if mode.count == 0:
            raise NoActivationError(
                f"the model made no activation call of the kinds {list(self.activations)} "
                f"(looked for: {_describe(self.table)}); pass activations=... with the kinds "
                f"your model uses, one of {sorted(ACTIVATION_KINDS)}"
            )
        site_names = namer.names if namer is not None else None
        if site_names is None and names:
            site_names = [f"{k}()#{i}" for i, k in enumerate(mode.kinds)]
        return out, site_names, mode.kinds


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
    activations: str | Sequence[str] = ("relu",),
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
