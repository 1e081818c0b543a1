"""NeuronMCT (paper section 2): first-order Taylor contribution of every neuron.

score = |a * dy_c/da| for every element ``a`` of every activation call, from one forward and one
backward pass of the unmasked network. Dead neurons (a = 0) score 0.

When the probe's backward has not run yet, it runs here fused with the scoring: as soon as the
gradient of a ReLU call's output is complete and the ReLU's own backward has used the output, the
call's scores are computed, and the gradient and pathwaygrad's references to the activation are
dropped (its memory returns unless the model itself kept the tensor). The scoring pass then holds
about one activation-sized tensor per call (the activations, becoming the scores) instead of two
(activations and gradients), which is what a plain gradient holds.
"""

from __future__ import annotations

import torch

from pathwaygrad.probe import Probe
from pathwaygrad.sites import ReLUCall


def neuron_mct_scores(probe: Probe) -> list[torch.Tensor]:
    """Scores shaped like each call's output (B, ...), from a recorded probe.

    The probe is consumed: its ``grads`` entries are set to None, and when its backward was still
    pending its ``acts`` are set to None as their scores are computed.
    """
    if probe.pending is not None:
        fused = _fused_scores(probe)
        if fused is not None:
            return fused
    grads = dict(enumerate(probe.grads or []))
    probe.grads = None
    scores = _scores_of(probe.acts, grads)
    return [scores[i] for i in range(len(probe.acts))]


def _scores_of(acts, grads: dict) -> dict[int, torch.Tensor]:
    """|a * g| for the calls of ``grads`` ({call: gradient or None}), which is emptied: each
    gradient is dropped as soon as its scores exist, and overwritten with them when no other
    gradient shares its memory."""
    counts: dict[int, int] = {}
    for g in grads.values():
        if g is not None:
            key = g.untyped_storage().data_ptr()
            counts[key] = counts.get(key, 0) + 1
    scores = {}
    for i in sorted(grads):
        g = grads.pop(i)
        a = acts[i]
        if g is None:
            scores[i] = torch.zeros_like(a)
        elif _owns_memory(g, a, counts):
            scores[i] = g.mul_(a).abs_()
        else:
            scores[i] = (g * a).abs_()
        del g
    return scores


def _owns_memory(g: torch.Tensor, a: torch.Tensor, counts: dict[int, int]) -> bool:
    """Whether ``g`` can be overwritten: dense, shaped like ``a``, sharing memory with no other grad."""
    if g.shape != a.shape or g.dtype != a.dtype or not g.is_contiguous() or g._base is not None:
        return False
    if g.untyped_storage().data_ptr() == a.untyped_storage().data_ptr():
        return False
    return counts.get(g.untyped_storage().data_ptr(), 0) == 1


def _fused_scores(probe: Probe) -> list[torch.Tensor] | None:
    """Runs the probe's pending backward with the scores computed on the fly; None when the
    graph does not allow it (then the plain backward runs)."""
    y, recorded = probe.pending
    leaves = [i for i, t in enumerate(recorded) if t.requires_grad and t.grad_fn is None]
    if not leaves:  # the graph reaches below the first call (inputs requiring grad, ...)
        return None
    probe.pending = None
    n = len(recorded)
    acts = probe.acts
    scores: list[torch.Tensor | None] = [None] * n
    later: dict[int, torch.Tensor] = {}
    handles = []
    for i, t in enumerate(recorded):
        node = t.grad_fn
        if not t.requires_grad or node is None:
            continue
        if ReLUCall.is_node(node):
            # After the ReLU's backward ran, the output's gradient is complete and autograd no
            # longer needs the output: score the call, then drop our references to it.
            def post(grad_inputs, grad_outputs, i=i, node=node):
                ReLUCall.release(node)
                a, acts[i] = acts[i], None
                g = grad_outputs[0]
                scores[i] = torch.zeros_like(a) if g is None else (a * g).abs_()

            handles.append(node.register_hook(post))
        else:
            handles.append(t.register_hook(lambda g, i=i: later.__setitem__(i, g)))
    del t, node  # (the loop's last tensor and node: only the hooks may hold them)
    inputs = [recorded[i] for i in leaves]
    for i in range(n):
        recorded[i] = None  # drop the graph tensors: the hooks hold what they need
    try:
        grads = torch.autograd.grad(y, inputs, allow_unused=True, materialize_grads=True)
    finally:
        for h in handles:
            h.remove()
    del y, inputs
    rest = {**dict(zip(leaves, grads)), **later}
    del grads
    later.clear()
    for i, s in _scores_of(acts, rest).items():
        scores[i] = s
        acts[i] = None
    for i in range(n):
        if scores[i] is None:  # no gradient reached the call: it does not affect the target
            scores[i] = torch.zeros_like(acts[i])
    probe.acts = [None] * n
    probe.grads = None
    return scores  # type: ignore[return-value]
