"""Validation of user inputs: tensors, targets, sparsity. Messages name the problem and the fix."""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence

import torch
from torch import nn

from pathwaygrad._devices import model_device
from pathwaygrad.errors import UserError

TargetLike = int | Sequence[int] | torch.Tensor | None


def check_grad_mode() -> None:
    """Gradients are impossible under ``torch.inference_mode()``: say so before any work."""
    if torch.is_inference_mode_enabled():
        raise UserError(
            "pathwaygrad needs gradients, which torch.inference_mode() forbids; call it outside "
            "the `with torch.inference_mode():` block (torch.no_grad() is fine)"
        )


def check_inputs(inputs, model=None, grad: bool = True) -> torch.Tensor:
    """A floating tensor with a batch dimension and only finite values, fit for ``model``.

    With ``grad`` (the call computes gradients), refuses to run under ``torch.inference_mode()``;
    inputs made under inference mode are copied into a normal tensor. With ``model``, also
    refuses a model on the meta device and a single image without its batch dimension.
    """
    if grad:
        check_grad_mode()
    if model is not None:
        check_model(model)
    if isinstance(inputs, tuple | list):
        raise UserError(
            "inputs must be one tensor of shape (batch, ...); tuple inputs are not supported"
        )
    if not isinstance(inputs, torch.Tensor):
        raise UserError(f"inputs must be a torch.Tensor of shape (batch, ...), got {type(inputs)}")
    if not inputs.is_floating_point():
        raise UserError(
            f"inputs must be a floating-point tensor, got dtype {inputs.dtype}; "
            "convert with inputs.float()"
        )
    if inputs.ndim < 2 or inputs.shape[0] == 0:
        raise UserError(
            f"inputs must have a non-empty batch dimension first, got shape {tuple(inputs.shape)}; "
            "for one example use inputs.unsqueeze(0)"
        )
    if inputs.device.type == "meta":
        raise UserError("inputs are on the meta device (they hold no values); pass real data")
    if model is not None and inputs.ndim == 3:
        first = _first_layer(model)
        if isinstance(first, nn.Conv2d) and inputs.shape[0] == first.in_channels:
            raise UserError(
                f"expected inputs of shape (B, C, H, W), got {tuple(inputs.shape)}: one image "
                "without its batch dimension; add it with x.unsqueeze(0)"
            )
    if not torch.isfinite(inputs).all():
        raise UserError("inputs contain NaN or infinite values; clean or re-normalise them first")
    if grad and inputs.is_inference():
        inputs = inputs.clone()  # an inference tensor cannot take part in autograd
    return inputs


def check_model(model) -> None:
    """A model with real weights: not on the meta device."""
    if isinstance(model, nn.Module) and model_device(model).type == "meta":
        raise UserError(
            "the model is on the meta device (its weights hold no values); load real weights "
            "first, e.g. model.to_empty(device='cpu') then model.load_state_dict(...)"
        )


def _first_layer(model) -> nn.Module | None:
    """The first module (in registration order) holding parameters of its own, e.g. the stem."""
    if not isinstance(model, nn.Module):
        return None
    for module in model.modules():
        if next(module.parameters(recurse=False), None) is not None:
            return module
    return None


def check_sparsity(sparsity) -> float:
    """Sparsity is the percent of neurons pruned: 0 <= s < 100."""
    if isinstance(sparsity, bool):
        raise UserError(
            f"sparsity must be a number of percent pruned in [0, 100), got {sparsity!r} "
            "(a bool is not a number); e.g. sparsity=90"
        )
    try:
        s = float(sparsity)
    except (TypeError, ValueError):
        raise UserError(
            "sparsity must be a number of percent pruned in [0, 100) or 'adaptive', "
            f"got {sparsity!r}"
        ) from None
    if not (0.0 <= s < 100.0) or math.isnan(s):
        raise UserError(
            f"sparsity must be in [0, 100) (percent of neurons pruned), got {sparsity}; "
            "e.g. 90 keeps the top 10 %"
        )
    return s


def check_options(method: str, options, allowed) -> None:
    """Refuse options a method does not take, naming the ones it does."""
    unknown = set(options) - set(allowed)
    if unknown:
        raise UserError(
            f"method {method!r} takes no option(s) {sorted(unknown)}; "
            f"its options are {list(allowed) or 'none'}"
        )


def check_int(
    method: str, name: str, value, minimum: int | None = None, none_ok: bool = False
) -> None:
    """An option that must be an integer (>= ``minimum``; None allowed when ``none_ok``)."""
    if value is None and none_ok:
        return
    try:
        number = operator.index(value)  # ints and numpy ints, not floats
        ok = not isinstance(value, bool) and (minimum is None or number >= minimum)
    except TypeError:
        ok = False
    if not ok:
        bound = "" if minimum is None else f" >= {minimum}"
        raise UserError(
            f"{method}: {name} must be an integer{bound}{' or None' if none_ok else ''}, "
            f"got {value!r}"
        )


def check_number(method: str, name: str, value, minimum: float, above: bool = False) -> None:
    """An option that must be a finite number >= ``minimum`` (> when ``above``)."""
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < minimum or (above and value == minimum):
        raise UserError(
            f"{method}: {name} must be a number {'>' if above else '>='} {minimum}, got {value!r}"
        )


def check_logits(logits) -> torch.Tensor:
    if not isinstance(logits, torch.Tensor) or logits.ndim != 2:
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits)
        raise UserError(
            f"the model must return logits of shape (batch, classes), got {shape}; "
            "wrap the model so that it does"
        )
    return logits


def resolve_targets(target: TargetLike, logits: torch.Tensor) -> torch.Tensor:
    """Turn ``target`` into a long tensor (batch,) of class indices, validated against ``logits``.

    ``None`` means each example's predicted class (argmax of the logits).
    """
    check_logits(logits)
    batch, classes = logits.shape
    if target is None:
        return logits.detach().argmax(dim=1)
    if isinstance(target, bool):
        raise UserError(f"target must be a class index, got {target!r}")
    if isinstance(target, int):
        t = torch.full((batch,), target, dtype=torch.long, device=logits.device)
    else:
        if isinstance(target, torch.Tensor):
            t = target.detach().to(logits.device)
        else:
            try:
                t = torch.as_tensor(list(target), device=logits.device)
            except (TypeError, ValueError):
                raise UserError(
                    f"target must be None, an int, or one class index per example; got {target!r}"
                ) from None
        if t.is_floating_point() or t.dtype == torch.bool:
            raise UserError(f"target must hold integer class indices, got dtype {t.dtype}")
        t = t.long()
        if t.ndim == 0:
            t = t.expand(batch).clone()
        elif t.ndim != 1 or t.shape[0] != batch:
            raise UserError(
                f"target must have one entry per example: got shape {tuple(t.shape)} "
                f"for a batch of {batch}"
            )
    if t.numel() and (int(t.min()) < 0 or int(t.max()) >= classes):
        raise UserError(
            f"target out of range: the model has {classes} classes (0..{classes - 1}), "
            f"got {sorted(set(t.tolist()))}"
        )
    return t


def forward_args(additional_forward_args) -> tuple:
    if additional_forward_args is None:
        return ()
    if isinstance(additional_forward_args, tuple):
        return additional_forward_args
    return (additional_forward_args,)


def run_model(runner, inputs, transform=None, extra=(), names=False):
    """Forward through ``runner``, checking that the model returns logits (B, K).

    An exception raised inside the model propagates with its own type (a CUDA out-of-memory
    error stays a ``torch.OutOfMemoryError``); a note names the inputs it failed on.
    """
    try:
        out, site_names, kinds = runner.forward(inputs, transform, extra, names=names)
    except UserError:
        raise
    except Exception as exc:
        exc.add_note(
            f"pathwaygrad: raised in the model's forward pass on inputs of shape "
            f"{tuple(inputs.shape)}, dtype {inputs.dtype}, device {inputs.device}"
        )
        raise
    return check_logits(out), site_names, kinds
