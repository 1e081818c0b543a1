"""Weights known by a name: the bundled demo model and the shared pretrained CIFAR ResNets.

- ``"demo"``: ``vgg_tiny`` trained on CIFAR-10 by ``pathwaygrad train``, stored as float16 in
  ``pathwaygrad/assets`` (ships with the package; no network, no data).
- ``"shared"``: the pretrained CIFAR-10 ResNet-20/32/44/56 in ``../shared/models/cifar10-resnet``
  (or ``$PATHWAYGRAD_SHARED/models/cifar10-resnet``), for ``--model resnet20`` ... ``resnet56``.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from pathwaygrad._io import save_torch
from pathwaygrad.errors import UserError

__all__ = [
    "DEMO_WEIGHTS",
    "WEIGHT_NAMES",
    "demo_weights_path",
    "export_demo_weights",
    "resolve_weights",
    "shared_weights_path",
]

ASSETS = Path(__file__).resolve().parents[1] / "assets"
DEMO_WEIGHTS = "demo_vgg_tiny.pt"
WEIGHT_NAMES = ("demo", "shared")
_SHARED_DEPTHS = (20, 32, 44, 56)


def demo_weights_path() -> Path:
    """Path of the bundled demo weights."""
    path = ASSETS / DEMO_WEIGHTS
    if not path.is_file():
        raise UserError(f"the demo weights {path} are missing: reinstall pathwaygrad")
    return path


def export_demo_weights(
    weights: str | os.PathLike, dest: str | os.PathLike | None = None, **meta: object
) -> Path:
    """Store the ``weights.pt`` written by ``pathwaygrad train`` as float16 demo weights.

    Extra keyword arguments (e.g. ``command=``, ``data=``) are stored beside the weights.
    """
    src = torch.load(weights, map_location="cpu", weights_only=True)
    state = {
        k: (v.half() if v.is_floating_point() else v).contiguous()
        for k, v in src["state_dict"].items()
    }
    out = {k: v for k, v in src.items() if k != "state_dict"}
    out.update(meta)
    out["state_dict"] = state
    path = Path(dest) if dest is not None else ASSETS / DEMO_WEIGHTS
    return save_torch(out, path)


def shared_weights_path(model: str) -> Path:
    """The shared pretrained CIFAR-10 weights of ``model`` (``resnet20`` ... ``resnet56``)."""
    from pathwaygrad.data.cache import shared_dir

    key = model.lower().replace("-", "")
    if key not in {f"resnet{d}" for d in _SHARED_DEPTHS}:
        raise UserError(
            f"--weights shared holds CIFAR-10 ResNet-20/32/44/56 only, not {model!r}: pass "
            "--model resnet20 (or 32, 44, 56), or a weights file"
        )
    root = shared_dir()
    folder = root / "models" / "cifar10-resnet" if root else None
    found = sorted(folder.glob(f"{key}-*.th")) if folder and folder.is_dir() else []
    if not found:
        raise UserError(
            f"--weights shared: no {key}-*.th in ../shared/models/cifar10-resnet (or "
            "$PATHWAYGRAD_SHARED/models/cifar10-resnet); set PATHWAYGRAD_SHARED or pass the file"
        )
    return found[0]


def resolve_weights(model: str | None, weights: str | os.PathLike | None):
    """``weights`` with the names ``"demo"`` and ``"shared"`` replaced by their file's path."""
    if weights == "demo":
        return demo_weights_path()
    if weights == "shared":
        if not model:
            raise UserError("--weights shared needs --model resnet20 (or 32, 44, 56)")
        return shared_weights_path(model)
    return weights
