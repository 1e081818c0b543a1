"""Real architecture code: torchvision / timm (offline: ``HF_HUB_OFFLINE=1``) and a text transformer.

The torchvision / timm modules need the ``vision`` extra (``pip install 'pathwaygrad[vision]'``)
and skip without it; the ``device`` fixture runs the oracle tests on the CPU and, where there is
one, on CUDA.
"""

from __future__ import annotations

import pytest
import torch

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """No model hub: random weights only, and a name that needs a download fails fast."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(params=DEVICES)
def device(request) -> torch.device:
    return torch.device(request.param)
