"""Forward passes of the network restricted to a pathway (masks multiplied onto activations)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from pathwaygrad.errors import PathwayMismatchError
from pathwaygrad.sites import ActivationRunner


def mask_transform(masks: Sequence[torch.Tensor] | None, record: list | None = None):
    """A transform for :meth:`ActivationRunner.forward`: ``out * masks[i]`` (None: unchanged).

    With ``record``, each call's (masked) output is appended to it. Without it, the core's fused
    :class:`pathwaygrad.sites.MaskTransform` is used when it exists (same result, less memory).
    """
    if record is None and masks is not None:
        try:
            from pathwaygrad.sites import MaskTransform
        except ImportError:  # older core
            pass
        else:
            return MaskTransform(list(masks))

    def transform(i, kind, out):
        if masks is not None:
            if i >= len(masks) or masks[i].shape != out.shape:
                raise PathwayMismatchError(
                    f"activation call {i} outputs {tuple(out.shape)} but the pathway has "
                    f"{'no mask' if i >= len(masks) else tuple(masks[i].shape)} for it; select the "
                    "pathway on this model and these inputs"
                )
            out = out * masks[i]
        if record is not None:
            record.append(out)
        return out

    return transform


def masked_logits(
    model,
    inputs: torch.Tensor,
    masks: Sequence[torch.Tensor] | None,
    activations: Sequence[str] = ("relu",),
) -> torch.Tensor:
    """Logits (B, K) of the network restricted to ``masks`` (None: the full network), no grad."""
    from pathwaygrad._guard import preserved

    runner = ActivationRunner(model, activations)
    with preserved(model), torch.no_grad():
        out, _, _ = runner.forward(inputs, mask_transform(masks))
    return out
