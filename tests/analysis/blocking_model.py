"""A small CNN for the kill-and-resume test of ``pathwaygrad analyze`` (loaded by a subprocess as
``--model blocking_model:make``).

When ``PG_TEST_BLOCK_WHEN`` names a file that exists, every forward sleeps: the test sets it to the
first saved batch, so the command finishes its first batch and then waits to be killed.
"""

from __future__ import annotations

import os
import time

import torch
import torch.nn.functional as F
from torch import nn


class SmallCNN(nn.Module):
    """conv-ReLU-conv-ReLU-global average-fc on (B, 3, H, W); 2 classes; fixed seed."""

    def __init__(self, num_classes: int = 2):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.c1 = nn.Conv2d(3, 6, 3, padding=1)
        self.c2 = nn.Conv2d(6, 8, 3, padding=1)
        self.fc = nn.Linear(8, num_classes)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)

    def forward(self, x):
        flag = os.environ.get("PG_TEST_BLOCK_WHEN")
        if flag and os.path.exists(flag):
            time.sleep(600)
        h = F.relu(self.c2(F.relu(self.c1(x))))
        return self.fc(h.mean((2, 3)))


def make(num_classes: int = 2) -> nn.Module:
    return SmallCNN(num_classes).eval()
