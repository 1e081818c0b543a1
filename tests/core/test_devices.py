"""model_device: first parameter, else first buffer, else the CPU."""

from __future__ import annotations

import torch
from torch import nn

from pathwaygrad._devices import model_device


def test_parameter_then_buffer_then_cpu():
    assert model_device(nn.Linear(2, 2)) == torch.device("cpu")
    assert model_device(nn.Linear(2, 2).to("meta")) == torch.device("meta")

    class BufferOnly(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("b", torch.zeros(1, device="meta"))

    assert model_device(BufferOnly()) == torch.device("meta")
    assert model_device(nn.ReLU()) == torch.device("cpu")
    assert model_device(lambda x: x) == torch.device("cpu")
