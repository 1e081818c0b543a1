"""The recording pass shared by the scoring methods: activations and their gradients.

One forward of the (optionally masked) network records every activation call's output ``a``;
one backward of the sum of the target logits gives ``dy/da`` for every call at once. The backward
stops at the first activation call: nothing below it is needed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from pathwaygrad._inputs import resolve_targets, run_model
from pathwaygrad.errors import PathwayMismatchError


@dataclass
class Probe:
    """What one recording pass saw. Shapes: logits (B, K); acts[i], grads[i] like call i's output."""

    logits: torch.Tensor
    targets: torch.Tensor
    acts: list[torch.Tensor]
    grads: list[torch.Tensor] | None
    names: list[str]
    kinds: list[str]


def target_outputs(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The target logit of each example, shape (B,)."""
    return logits.gather(1, targets[:, None]).squeeze(1)


def apply_mask(index: int, out: torch.Tensor, masks) -> torch.Tensor:
    """``out * masks[index]``, with a clear error when the pathway does not fit this call."""
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
    return out * mask


def probe(runner, inputs, target, extra=(), masks=None, grad=True) -> Probe:
    """Record activations (and, if ``grad``, dy_target/da) of every activation call.

    With ``masks``, the network is the masked one and the recorded activations are the masked
    outputs (pruned neurons record 0).
    """
    return _probe(runner, inputs, target, extra, masks, grad, protect=False)


def _probe(runner, inputs, target, extra, masks, grad, protect) -> Probe:
    acts: list[torch.Tensor] = []
    versions: list[int] = []

    def record(i, kind, out):
        if masks is not None:
            out = apply_mask(i, out, masks)
        if grad and not out.requires_grad:
            out = out.detach().requires_grad_(True)
        acts.append(out)
        versions.append(out._version)
        # A caller that edits the returned tensor in place would change what we recorded:
        # in protected mode it gets a copy.
        return out.clone() if protect else out

    with torch.set_grad_enabled(grad):
        logits, names, kinds = run_model(runner, inputs, record, extra, names=True)
        targets = resolve_targets(target, logits)
        grads = None
        if grad:
            y = target_outputs(logits, targets).sum()
            grads = list(torch.autograd.grad(y, acts, allow_unused=True, materialize_grads=True))
    if not protect and any(a._version != v for a, v in zip(acts, versions)):
        return _probe(runner, inputs, targets, extra, masks, grad, protect=True)
    return Probe(
        logits=logits.detach(),
        targets=targets,
        acts=[a.detach() for a in acts],
        grads=grads,
        names=names,
        kinds=kinds,
    )
