"""The dead path (paper section 2, for analysis only): the neurons whose activation is <= 0."""

from __future__ import annotations

import torch

from pathwaygrad.probe import Probe


def dead_masks(probe: Probe) -> list[torch.Tensor]:
    """Boolean masks, True where the original activation is <= 0."""
    return [a <= 0 for a in probe.acts]
