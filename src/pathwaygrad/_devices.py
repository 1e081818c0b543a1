"""The one way to find the device a model lives on (library-wide utility)."""

from __future__ import annotations

import torch
from torch import nn


def model_device(model: object) -> torch.device:
    """The device of ``model``: its first parameter's, else its first buffer's, else the CPU.

    A callable that is not an ``nn.Module`` (a forward function) is taken to run on the CPU.
    """
    if isinstance(model, nn.Module):
        for p in model.parameters():
            return p.device
        for b in model.buffers():
            return b.device
    return torch.device("cpu")
