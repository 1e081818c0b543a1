"""DGR / CDRP, the pruning objective (paper section 2; Wang et al. CVPR 2018).

One non-negative gate per neuron is multiplied onto every activation call's output. The gates
minimise  CE(original softmax as soft target, gated softmax) + lam * sum|gate|  by SGD
(lr 0.01, momentum 0.9, lam 0.01, 1000 iterations), clamped to [0, 100] after every step; the
gates of the lowest-loss iteration whose prediction equals the original are kept and used as
neuron scores. ``init="ones"`` starts all gates at 1, ``init="random"`` at U(0, 1); with random
init, an example for which no iteration keeps the prediction restarts with lam / 10.

Examples of a batch are optimised jointly but independently: the loss is a sum of per-example
losses over per-example gates, so a batch gives the per-example result.
"""

from __future__ import annotations

import warnings

import torch
from tqdm.auto import tqdm

from pathwaygrad._inputs import run_model
from pathwaygrad.probe import Probe
from pathwaygrad.sites import MaskTransform


def _subset(t, idx, batch):
    if isinstance(t, torch.Tensor) and t.ndim > 0 and t.shape[0] == batch:
        return t[idx]
    return t


def dgr_scores(
    runner,
    inputs: torch.Tensor,
    probe: Probe,
    extra: tuple = (),
    init: str = "ones",
    lam: float = 0.01,
    lr: float = 0.01,
    momentum: float = 0.9,
    iterations: int = 1000,
    seed: int = 0,
    max_restarts: int = 3,
    progress: bool = False,
) -> list[torch.Tensor]:
    """Gate values (B, ...) per call, used as scores; shapes like each call's output.

    Option values are checked by the caller (:func:`pathwaygrad.methods.check_values`).
    """
    batch = inputs.shape[0]
    soft_target = torch.softmax(probe.logits, dim=1)
    original = probe.logits.argmax(dim=1)
    result = [torch.zeros_like(a) for a in probe.acts]
    todo = torch.arange(batch, device=inputs.device)
    lam_now = float(lam)
    for attempt in range(max_restarts + 1):
        best, found = _optimise(
            runner,
            inputs[todo],
            tuple(_subset(e, todo, batch) for e in extra),
            [a[todo] for a in probe.acts],
            soft_target[todo],
            original[todo],
            init,
            lam_now,
            lr,
            momentum,
            int(iterations),
            seed + attempt,
            progress,
        )
        for r, b in zip(result, best):
            r[todo] = b
        if found.all() or init == "ones" or attempt == max_restarts:
            if not found.all():
                warnings.warn(
                    f"DGR: for {int((~found).sum())} example(s) no iteration kept the original "
                    "prediction; their initial gates are used",
                    stacklevel=2,
                )
            break
        todo = todo[~found]
        lam_now /= 10.0
    return result


def _optimise(
    runner,
    inputs,
    extra,
    acts,
    soft_target,
    original,
    init,
    lam,
    lr,
    momentum,
    iterations,
    seed,
    progress,
):
    n = inputs.shape[0]
    if init == "ones":
        gates = [torch.ones_like(a) for a in acts]
    else:
        gen = torch.Generator().manual_seed(int(seed))
        gates = [torch.rand(a.shape, generator=gen).to(a) for a in acts]
    velocity = [torch.zeros_like(g) for g in gates]
    best = [g.clone() for g in gates]
    best_loss = torch.full((n,), float("inf"), device=inputs.device)
    found = torch.zeros(n, dtype=torch.bool, device=inputs.device)
    bar = tqdm(range(iterations), desc="DGR gates", disable=not progress, leave=False)
    for _ in bar:
        for g in gates:
            g.requires_grad_(True)
        with torch.enable_grad():
            logits, _, _ = run_model(runner, inputs, MaskTransform(gates), extra)
            ce = -(soft_target * torch.log_softmax(logits, dim=1)).sum(dim=1)
            l1 = sum(g.abs().flatten(1).sum(dim=1) for g in gates)
            loss = ce + lam * l1
            grads = torch.autograd.grad(loss.sum(), gates)
        with torch.no_grad():
            better = (logits.argmax(dim=1) == original) & (loss < best_loss)
            if better.any():
                best_loss = torch.where(better, loss.detach(), best_loss)
                found |= better
                for b, g in zip(best, gates):
                    b[better] = g.detach()[better]
            for g, v, d in zip(gates, velocity, grads):
                g.requires_grad_(False)
                v.mul_(momentum).add_(d)
                g.sub_(lr * v).clamp_(0.0, 100.0)
    return best, found
