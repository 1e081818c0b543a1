"""Boolean masks applied to activations: ``where(mask, x, 0)``, fast on the CPU.

PyTorch's CPU kernels that mix a bool mask with floats (``where``, ``masked_fill``, ``mul``) are
not vectorised: several ns per element, more than a ReLU. Converting the mask to the floats'
integer width (0 -> 0, 1 -> all bits set) in a small reused buffer and AND-ing it with the floats'
bit patterns gives ``where(mask, x, 0)`` exactly (+0.0 where masked) at the speed of plain
elementwise integer ops. Elsewhere (GPU, other dtypes, strided tensors) ``torch.where`` /
``mul_`` run. Which activations get masked, and when, is :mod:`pathwaygrad.sites`'s business.
"""

from __future__ import annotations

import torch

__all__ = ["KeepOnly", "bitwise_ok", "keep_only", "keep_only_"]

_INT_OF = {
    torch.float32: torch.int32,
    torch.float64: torch.int64,
    torch.float16: torch.int16,
    torch.bfloat16: torch.int16,
}
_CHUNK = 1 << 20  # elements of the mask converted at a time (the reused buffer)


def bitwise_ok(x: torch.Tensor, mask: torch.Tensor) -> bool:
    """Whether the bitwise CPU kernel applies: CPU, a float dtype, both contiguous, same device."""
    return (
        x.device.type == "cpu"
        and x.dtype in _INT_OF
        and x.is_contiguous()
        and mask.is_contiguous()
        and mask.device == x.device
    )


def _bitwise_keep(x: torch.Tensor, mask: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """out = x where mask else +0 (bitwise), all contiguous; ``out`` may be ``x``."""
    itype = _INT_OF[x.dtype]
    xi, oi = x.view(-1).view(itype), out.view(-1).view(itype)
    m = mask.view(-1)
    n = xi.shape[0]
    buf = torch.empty(min(n, _CHUNK), dtype=itype)
    for start in range(0, n, _CHUNK):
        stop = min(n, start + _CHUNK)
        b = buf[: stop - start]
        b.copy_(m[start:stop]).neg_()
        torch.bitwise_and(xi[start:stop], b, out=oi[start:stop])
    return out


def keep_only_(x: torch.Tensor, mask: torch.Tensor) -> None:
    """Zero ``x`` in place where the bool ``mask`` is False (no autograd record)."""
    with torch.no_grad():
        if bitwise_ok(x, mask):
            _bitwise_keep(x, mask, x)
        else:
            x.mul_(mask)


class KeepOnly(torch.autograd.Function):
    """where(mask, x, 0) for a bool ``mask``; backward where(mask, grad, 0). CPU, contiguous."""

    @staticmethod
    def forward(ctx, x, mask):
        ctx.save_for_backward(mask)
        return _bitwise_keep(x, mask, torch.empty_like(x, memory_format=torch.contiguous_format))

    @staticmethod
    def backward(ctx, grad):
        (mask,) = ctx.saved_tensors
        grad = grad.contiguous()
        return _bitwise_keep(grad, mask, torch.empty_like(grad)), None


def keep_only(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``torch.where(mask, x, 0)`` for a bool ``mask`` (differentiable in ``x``), as a new tensor."""
    if bitwise_ok(x, mask):
        return KeepOnly.apply(x, mask)
    return torch.where(mask, x, 0.0)
