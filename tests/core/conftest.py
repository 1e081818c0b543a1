"""The ``device`` fixture: every oracle test runs on the CPU, and on CUDA when there is one.

The CUDA parameter is generated only where ``torch.cuda.is_available()``: on a CPU machine the
tests are not skipped, they simply do not exist for CUDA.
"""

from __future__ import annotations

import pytest
import torch

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request) -> torch.device:
    return torch.device(request.param)
