"""The recording pass shared by the core: activations and their gradients (step 2's input).

One forward of the (optionally masked) network records every activation call's output ``a``;
one backward of the sum of the target logits gives ``dy/da`` for every call at once. The backward
stops at the first activation call: nothing below it is needed.
"""

from __future__ import annotations

import torch

from pathwaygrad._inputs import resolve_targets, run_model
from pathwaygrad.sites import ReLUOutput, mask_output

__all__ = ["Probe", "probe", "target_outputs"]


class Probe:
    """What one recording pass saw. Shapes: logits (B, K); acts[i], grads[i] like call i's output.

    With gradients asked for, the backward pass runs when ``grads`` is first read (the graph of
    the recording forward is kept until then): :func:`~pathwaygrad.methods.neuron_mct.
    neuron_mct_scores` can instead run it fused with the scoring, without holding every
    gradient at once.
    """

    def __init__(self, logits, targets, acts, grads, names, kinds, pending=None):
        self.logits = logits
        self.targets = targets
        self.acts = acts
        self._grads = grads
        self.names = names
        self.kinds = kinds
        # (the sum of the target logits, the recorded graph tensors) while the backward waits
        self.pending = pending

    @property
    def grads(self) -> list[torch.Tensor] | None:
        if self._grads is None and self.pending is not None:
            y, recorded = self.pending
            self.pending = None
            self._grads = list(
                torch.autograd.grad(y, recorded, allow_unused=True, materialize_grads=True)
            )
        return self._grads

    @grads.setter
    def grads(self, value) -> None:
        self.pending = None
        self._grads = value

    def __repr__(self) -> str:
        return (
            f"Probe(calls={len(self.acts)}, batch={self.logits.shape[0]}, "
            f"grads={'pending' if self.pending is not None else self._grads is not None})"
        )


def target_outputs(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The target logit of each example, shape (B,)."""
    return logits.gather(1, targets[:, None]).squeeze(1)


def probe(runner, inputs, target, extra=(), masks=None, grad=True) -> Probe:
    """Record activations (and, if ``grad``, dy_target/da) of every activation call.

    With ``masks``, the network is the masked one and the recorded activations are the masked
    outputs (pruned neurons record 0).
    """
    return _probe(runner, inputs, target, extra, masks, grad, protect=False)


class _Recorder:
    """The probe's transform: keeps every call's (masked) output as a leaf of the graph."""

    inplace_ok = True  # nothing of ``out`` is kept for backward: the leaf is detached
    takes_relu_output = True

    def __init__(self, masks, grad: bool, protect: bool):
        self.masks = masks
        self.grad = grad
        self.protect = protect
        self.acts: list[torch.Tensor] = []
        self.versions: list[int] = []

    def __call__(self, i, kind, out, relu: ReLUOutput | None = None):
        if self.masks is not None:
            out = mask_output(i, out, self.masks, relu)
        if self.grad and not out.requires_grad:
            out = out.detach().requires_grad_(True)
        self.acts.append(out)
        # A caller that edits the returned tensor in place would change what we recorded:
        # in protected mode it gets a copy.
        return out.clone() if self.protect else out

    def after(self, i, result):
        # Noted once the interceptor has written an in-place call's result back.
        self.versions.append(self.acts[i]._version)


def _edits_leaf(exc: Exception) -> bool:
    return "leaf Variable that requires grad is being used in an in-place" in str(exc)


def _probe(runner, inputs, target, extra, masks, grad, protect) -> Probe:
    rec = _Recorder(masks, grad, protect)
    try:
        with torch.set_grad_enabled(grad):
            logits, names, kinds = run_model(runner, inputs, rec, extra, names=True)
            targets = resolve_targets(target, logits)
            y = target_outputs(logits, targets).sum() if grad else None
    except RuntimeError as exc:
        # The model edits an activation in place after the call: give it copies.
        if protect or not _edits_leaf(exc):
            raise
        return _probe(runner, inputs, target, extra, masks, grad, protect=True)
    acts = rec.acts
    if not protect and any(a._version != v for a, v in zip(acts, rec.versions)):
        return _probe(runner, inputs, targets, extra, masks, grad, protect=True)
    return Probe(
        logits=logits.detach(),
        targets=targets,
        acts=[a.detach() for a in acts],
        grads=None,
        names=names,
        kinds=kinds,
        pending=(y, acts) if grad else None,
    )
