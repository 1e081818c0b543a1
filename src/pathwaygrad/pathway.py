"""The :class:`Pathway`: a sparse set of neurons of one network, per example, as boolean masks."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from pathwaygrad.thresholds import real_sparsity


@dataclass
class Pathway:
    """A critical pathway for each example of a batch.

    Attributes:
        masks: one bool tensor per activation call, in forward order, shaped like that call's
            output (batch first). True = the neuron is kept.
        sites: a readable name per call, same order (e.g. ``"layer1.0.relu#1"``).
        targets: (B,) the class whose logit the pathway was selected for.
        method: the selection method (``"neuron_mct"``, ...).
        requested_sparsity: percent pruned that was asked for, (B,) (per example in adaptive mode).
        activations: kinds of activation calls the masks apply to.
        full_logits: (B,) target logit of the full network, when known.
        info: method-specific extras (e.g. ``"pathway_logits"`` in adaptive mode).
    """

    masks: list[torch.Tensor]
    sites: list[str]
    targets: torch.Tensor
    method: str
    requested_sparsity: torch.Tensor
    activations: tuple[str, ...] = ("relu",)
    full_logits: torch.Tensor | None = None
    info: dict = field(default_factory=dict)

    @property
    def batch_size(self) -> int:
        return self.masks[0].shape[0]

    @property
    def num_neurons(self) -> int:
        """Neurons per example (all calls)."""
        return sum(m[0].numel() for m in self.masks)

    @property
    def sparsity(self) -> torch.Tensor:
        """Percent of all neurons actually pruned, float (B,)."""
        return real_sparsity(self.masks)

    def layer_sparsity(self) -> torch.Tensor:
        """Percent pruned per example and call, float (B, calls)."""
        cols = [100.0 * (1.0 - m.reshape(m.shape[0], -1).float().mean(dim=1)) for m in self.masks]
        return torch.stack(cols, dim=1)

    def empty_calls(self) -> dict[int, int]:
        """Calls in which some example keeps no neuron: {call index: number of such examples}."""
        out = {}
        for i, m in enumerate(self.masks):
            n = int((~m.reshape(m.shape[0], -1).any(dim=1)).sum())
            if n:
                out[i] = n
        return out

    def flat(self) -> torch.Tensor:
        """All masks of each example side by side: bool (B, N)."""
        return torch.cat([m.reshape(m.shape[0], -1) for m in self.masks], dim=1)

    def iou(self, other: Pathway) -> torch.Tensor:
        """Jaccard similarity |A and B| / |A or B| over all neurons, per example, float (B,).

        Two empty pathways have IoU 1.
        """
        self._check_compatible(other)
        inter = torch.zeros(self.batch_size, dtype=torch.float64, device=self.masks[0].device)
        union = torch.zeros_like(inter)
        for a, b in zip(self.masks, other.masks):
            a2, b2 = a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1)
            inter += (a2 & b2).sum(dim=1, dtype=torch.float64)
            union += (a2 | b2).sum(dim=1, dtype=torch.float64)
        return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union)).float()

    def complement(self) -> Pathway:
        """The pruned neurons as a pathway."""
        return self._with_masks([~m for m in self.masks], method=f"not {self.method}")

    def __getitem__(self, index) -> Pathway:
        """The pathways of some examples (an int, slice, list or bool/long tensor)."""
        if isinstance(index, int):
            index = slice(index, index + 1 if index != -1 else None)
        return Pathway(
            masks=[m[index] for m in self.masks],
            sites=list(self.sites),
            targets=self.targets[index],
            method=self.method,
            requested_sparsity=self.requested_sparsity[index],
            activations=self.activations,
            full_logits=None if self.full_logits is None else self.full_logits[index],
            info={
                k: v[index] if isinstance(v, torch.Tensor) and v.ndim else v
                for k, v in self.info.items()
            },
        )

    def to(self, device) -> Pathway:
        return Pathway(
            masks=[m.to(device) for m in self.masks],
            sites=list(self.sites),
            targets=self.targets.to(device),
            method=self.method,
            requested_sparsity=self.requested_sparsity.to(device),
            activations=self.activations,
            full_logits=None if self.full_logits is None else self.full_logits.to(device),
            info=dict(self.info),
        )

    def _with_masks(self, masks, method) -> Pathway:
        return Pathway(
            masks=masks,
            sites=list(self.sites),
            targets=self.targets,
            method=method,
            requested_sparsity=self.requested_sparsity,
            activations=self.activations,
            full_logits=self.full_logits,
            info={},
        )

    def _check_compatible(self, other: Pathway) -> None:
        from pathwaygrad.errors import PathwayMismatchError

        shapes_a = [tuple(m.shape) for m in self.masks]
        shapes_b = [tuple(m.shape) for m in other.masks]
        if shapes_a != shapes_b:
            raise PathwayMismatchError(
                "the two pathways do not cover the same neurons (different calls or shapes); "
                "compare pathways selected on the same model and inputs"
            )

    def __repr__(self) -> str:
        sp = ", ".join(f"{v:.1f}" for v in self.sparsity.tolist()[:4])
        more = ", ..." if self.batch_size > 4 else ""
        return (
            f"Pathway(method={self.method!r}, batch={self.batch_size}, calls={len(self.masks)}, "
            f"neurons={self.num_neurons}, sparsity=[{sp}{more}] %)"
        )
