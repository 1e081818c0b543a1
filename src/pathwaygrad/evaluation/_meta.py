"""Metadata every protocol module exposes as ``PROTOCOL``: what it needs and how to read its scores."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["HIGHER", "LOWER", "ProtocolInfo"]

HIGHER = "higher is better"
LOWER = "lower is better"


@dataclass(frozen=True)
class ProtocolInfo:
    """``name``; ``needs``: what the caller must supply; ``scores``: metric name -> direction
    (:data:`HIGHER` / :data:`LOWER`) *for the explanation being evaluated*; ``reference``."""

    name: str
    summary: str
    needs: tuple[str, ...]
    scores: dict = field(default_factory=dict)
    reference: str = ""

    def to_dict(self) -> dict:
        return {
            "protocol": self.name,
            "summary": self.summary,
            "needs": list(self.needs),
            "scores": dict(self.scores),
            "reference": self.reference,
        }
