"""Load weight files into models, with one clear error when they do not fit.

Accepted files (``torch.load(..., weights_only=True)``, or ``.safetensors``; no file can run
code): a plain ``state_dict``; a dict holding one
under ``"state_dict"`` or ``"model"`` (the checkpoints of :mod:`pathwaygrad.training` and of
akamaster/pytorch_resnet_cifar10). A ``module.`` prefix (``DataParallel``) is stripped; float16
tensors are cast to the model's dtype.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pathwaygrad.errors import UserError

__all__ = ["load_weights", "read_checkpoint", "read_state_dict"]


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict]:
    """Read ``path``: its ``state_dict`` and the metadata stored beside it (may be empty).

    No file can run code here: ``torch.load(..., weights_only=True)`` (plain tensors, dicts, lists,
    numbers and strings only), or ``safetensors`` for ``.safetensors`` files. A checkpoint of
    ``pathwaygrad train`` keeps ``model``, ``classes``, ``mean``, ``std`` beside its weights.
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"weights file not found: {path}")
    if not path.is_file():
        raise UserError(f"weights {path} is a folder, not a file: pass the weights file in it")
    meta: dict = {}
    obj: Any
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            obj = load_file(path, device="cpu")
        else:
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is a user problem
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(
            f"cannot read weights file {path} ({type(exc).__name__}: {first[:120]}): pass a "
            "state_dict or checkpoint written by torch.save (or a .safetensors file)"
        ) from None
    if isinstance(obj, dict):
        for key in ("state_dict", "model", "model_state_dict"):
            if isinstance(obj.get(key), dict):
                meta = {k: v for k, v in obj.items() if k != key}
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise UserError(f"weights file {path} holds no state_dict (a dict of tensors)")
    prefix = "module."
    if obj and all(k.startswith(prefix) for k in obj):
        obj = {k[len(prefix) :]: v for k, v in obj.items()}
    return obj, meta


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read the ``state_dict`` stored in ``path`` (see module docstring for accepted layouts)."""
    return read_checkpoint(path)[0]


def load_weights(
    model: nn.Module, path: str | os.PathLike, *, name: str | None = None
) -> nn.Module:
    """Load the weights in ``path`` into ``model`` (strict); return ``model`` in eval mode.

    Raises :class:`~pathwaygrad.errors.UserError` naming missing, unexpected and mis-shaped keys when
    the weights do not fit.
    """
    state = read_state_dict(path)
    own = model.state_dict()
    # BatchNorm's step counter is absent from older checkpoints and unused in eval: keep ours.
    for k in own:
        if k.endswith("num_batches_tracked") and k not in state:
            state[k] = own[k]
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
        for k in own
        if k in state and state[k].shape != own[k].shape
    ]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys (e.g. {', '.join(unexpected[:3])})")
        if shapes:
            parts.append(f"{len(shapes)} shape mismatches (e.g. {'; '.join(shapes[:2])})")
        label = name or type(model).__name__
        raise UserError(f"weights {path} do not fit model {label}: " + "; ".join(parts))
    cast = {
        k: (v.to(own[k].dtype) if v.is_floating_point() and own[k].is_floating_point() else v)
        for k, v in state.items()
    }
    model.load_state_dict(cast, strict=True)
    return model.eval()
