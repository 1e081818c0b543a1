"""The activation transform of the analyses that look inside a masked network.

Linearity (on/off patterns) and decoding (a neuron's activation) need each activation call's
masked output, which :func:`pathwaygrad.pathway_logits` does not return: they run
:class:`pathwaygrad.sites.ActivationRunner` with :func:`mask_transform`. Plain masked logits come
from :func:`pathwaygrad.pathway_logits`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from pathwaygrad.errors import PathwayMismatchError


def mask_transform(
    masks: Sequence[torch.Tensor] | None, record: list | None = None
) -> Callable[[int, str, torch.Tensor], torch.Tensor]:
    """A transform for :meth:`ActivationRunner.forward`: ``out * masks[i]`` (None: unchanged).

    With ``record``, each call's (masked) output is appended to it; without it, the core's fused
    :class:`pathwaygrad.sites.MaskTransform` is used.
    """
    if record is None and masks is not None:
        from pathwaygrad.sites import MaskTransform

        return MaskTransform(list(masks))

    def transform(i: int, kind: str, out: torch.Tensor) -> torch.Tensor:
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
