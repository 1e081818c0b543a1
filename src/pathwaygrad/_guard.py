"""Keeps the user's model exactly as it was: weights, buffers, modes, ``requires_grad`` flags."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

import torch
from torch import nn


@contextlib.contextmanager
def preserved(model) -> Iterator[None]:
    """Context in which pathwaygrad may run ``model``; everything is restored on exit.

    Inside, parameters do not require grad (no weight gradients are built or accumulated, which
    also saves memory); on exit, success or exception, ``requires_grad`` flags, train/eval modes
    and (when a module was in training mode, so BatchNorm statistics could move) buffers are
    restored. Non-module forward functions are run as they are.
    """
    if not isinstance(model, nn.Module):
        yield
        return
    modes = [(m, m.training) for m in model.modules()]
    flags = [(p, p.requires_grad) for p in model.parameters()]
    buffers = None
    if any(training for _, training in modes):
        warnings.warn(
            "the model is in training mode: BatchNorm uses batch statistics and dropout is "
            "random, so results depend on the batch; call model.eval() for the paper's setting",
            stacklevel=3,
        )
        buffers = [(b, b.detach().clone()) for b in model.buffers()]
    try:
        for p, _ in flags:
            p.requires_grad_(False)
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        for m, training in modes:
            m.training = training
        if buffers is not None:
            with torch.no_grad():
                for b, saved in buffers:
                    b.copy_(saved)
