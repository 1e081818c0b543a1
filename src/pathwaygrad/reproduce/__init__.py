"""``pathwaygrad reproduce``: the paper's experiments end to end, with a report beside its numbers."""

from pathwaygrad.reproduce.presets import PRESETS, Preset
from pathwaygrad.reproduce.run import reproduce

__all__ = ["PRESETS", "Preset", "reproduce"]
