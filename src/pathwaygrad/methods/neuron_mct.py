"""NeuronMCT (paper section 2): first-order Taylor contribution of every neuron.

score = |a * dy_c/da| for every element ``a`` of every activation call, from one forward and one
backward pass of the unmasked network. Dead neurons (a = 0) score 0.

When the probe's backward has not run yet, it runs here fused with the scoring: as soon as the
gradient of a ReLU call's output is complete and the ReLU's own backward has used the output, the
score is written into the output's memory and the gradient is dropped. The scoring pass then holds
about one activation-sized tensor per call (the activations, becoming the scores) instead of two
(activations and gradients), which is what a plain gradient holds.
"""

from __future__ import annotations

import torch

from pathwaygrad.methods._probe import Probe


def neuron_mct_scores(probe: Probe) -> list[torch.Tensor]:
    """Scores shaped like each call's output (B, ...), from a recorded probe.

    The probe is consumed: its ``grads`` entries are set to None, and when its backward was still
    pending the scores are computed in the memory of its ``acts`` (which are then set to None).
    """
    if probe.pending is not None:
        fused = _fused_scores(probe)
        if fused is not None:
            return fused
    grads = probe.grads
    counts: dict[int, int] = {}
    for g in grads:
        if g is not None:
            key = g.untyped_storage().data_ptr()
            counts[key] = counts.get(key, 0) + 1
    scores = []
    for i, a in enumerate(probe.acts):
        g = grads[i]
        grads[i] = None  # free each gradient as soon as its scores exist
        if _owns_memory(g, a, counts):
            scores.append(g.mul_(a).abs_())
        else:
            scores.append((g * a).abs_())
    return scores


def _owns_memory(g: torch.Tensor, a: torch.Tensor, counts: dict[int, int]) -> bool:
    """Whether ``g`` can be overwritten: dense, shaped like ``a``, sharing memory with no other grad."""
    if g.shape != a.shape or g.dtype != a.dtype or not g.is_contiguous() or g._base is not None:
        return False
    if g.untyped_storage().data_ptr() == a.untyped_storage().data_ptr():
        return False
    return counts.get(g.untyped_storage().data_ptr(), 0) == 1


def _only_ours(a: torch.Tensor, holders: int) -> bool:
    """Whether no tensor but ours (``holders`` of them) uses ``a``'s memory, so that it may be
    overwritten: a model or hook that kept the activation keeps it unchanged."""
    use_count = getattr(torch._C, "_storage_Use_Count", None)
    if use_count is None or not a.is_contiguous():
        return False
    storage = a.untyped_storage()
    return use_count(storage._cdata) - 1 <= holders  # (- the storage object just made)


def _score_into(probe: Probe, i: int, g: torch.Tensor | None, holders: int) -> torch.Tensor:
    a = probe.acts[i]
    if g is None:
        return torch.zeros_like(a)
    if g.shape == a.shape and g.dtype == a.dtype and _only_ours(a, holders):
        return a.mul_(g).abs_()
    return (a * g).abs_()


def _fused_scores(probe: Probe) -> list[torch.Tensor] | None:
    """Runs the probe's pending backward with the scores computed on the fly; None when the
    graph does not allow it (then the plain backward runs)."""
    from pathwaygrad.sites import _ReLU

    y, recorded = probe.pending
    relu_node = _ReLU._backward_cls
    leaves = [i for i, t in enumerate(recorded) if t.requires_grad and t.grad_fn is None]
    if not leaves:  # the graph reaches below the first call (inputs requiring grad, ...)
        return None
    probe.pending = None
    n = len(recorded)
    scores: list[torch.Tensor | None] = [None] * n
    later: dict[int, torch.Tensor] = {}
    handles = []
    for i, t in enumerate(recorded):
        if not t.requires_grad or t.grad_fn is None:
            continue
        if isinstance(t.grad_fn, relu_node):
            # After the ReLU's backward ran: the output's gradient is complete and the output
            # is no longer needed by autograd (holders: the probe's alias and the ReLU's).
            def post(grad_inputs, grad_outputs, i=i):
                scores[i] = _score_into(probe, i, grad_outputs[0], holders=2)

            handles.append(t.grad_fn.register_hook(post))
        else:
            handles.append(t.register_hook(lambda g, i=i: later.__setitem__(i, g)))
    inputs = [recorded[i] for i in leaves]
    for i in range(n):
        recorded[i] = None  # drop the graph tensors: the hooks hold what they need
    try:
        grads = torch.autograd.grad(y, inputs, allow_unused=True, materialize_grads=True)
    finally:
        for h in handles:
            h.remove()
    del y, inputs
    for i, g in zip(leaves, grads):
        scores[i] = _score_into(probe, i, g, holders=1)
    del grads
    for i, g in later.items():
        scores[i] = _score_into(probe, i, g, holders=1)
    later.clear()
    for i in range(n):
        if scores[i] is None:  # no gradient reached the call: it does not affect the target
            scores[i] = torch.zeros_like(probe.acts[i])
    probe.acts = [None] * n
    probe.grads = None
    return scores
