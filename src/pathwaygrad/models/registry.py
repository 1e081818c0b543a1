"""Model registry: names -> constructors, with each model's expected input preprocessing.

``build_model(name)`` builds one of our models; ``load_model(spec, weights)`` also accepts
``package.module:factory`` (any importable callable returning an ``nn.Module``) and
``torchvision:NAME`` / ``timm:NAME`` (see :mod:`pathwaygrad.models.vision`; those packages are
imported only then).

Every model here expects RGB in [0, 1] normalised per channel: ``x_norm = (x - mean) / std`` with
the ``mean``/``std`` of its :class:`ModelInfo` (ImageNet statistics for all built-in CIFAR models,
as the pretrained CIFAR ResNets were trained with them).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from pathwaygrad.data.arrays import IMAGENET_MEAN, IMAGENET_STD
from pathwaygrad.errors import UserError
from pathwaygrad.models.cifar_resnet import resnet20, resnet32, resnet44, resnet56
from pathwaygrad.models.resnet8 import resnet8
from pathwaygrad.models.vgg import vgg_small, vgg_tiny
from pathwaygrad.models.vision import VISION_SOURCES, load_vision_model
from pathwaygrad.models.weights import load_weights

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "MODELS",
    "ModelInfo",
    "Normalize",
    "build_model",
    "input_channels",
    "load_model",
    "model_info",
]


@dataclass(frozen=True)
class ModelInfo:
    """What a model needs: its constructor, input size (pixels, square) and normalisation."""

    factory: Callable[..., nn.Module]
    input_size: int | None = 32
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    description: str = ""
    extra: dict = field(default_factory=dict)


MODELS: dict[str, ModelInfo] = {
    "resnet8": ModelInfo(resnet8, description="ResNet-8 of the paper's ROAR setup (1.2 M params)"),
    "resnet20": ModelInfo(resnet20, description="CIFAR ResNet-20, option-A shortcuts, F.relu"),
    "resnet32": ModelInfo(resnet32, description="CIFAR ResNet-32"),
    "resnet44": ModelInfo(resnet44, description="CIFAR ResNet-44"),
    "resnet56": ModelInfo(resnet56, description="CIFAR ResNet-56"),
    "vgg_small": ModelInfo(vgg_small, description="small VGG-style CIFAR net (0.29 M params)"),
    "vgg_tiny": ModelInfo(
        vgg_tiny, description="tiny VGG-style CIFAR net (72 k params), the demo's"
    ),
}


class Normalize(nn.Module):
    """``(x - mean) / std`` per channel; put in front of a model to feed it [0, 1] images."""

    def __init__(self, mean=IMAGENET_MEAN, std=IMAGENET_STD):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    mean: torch.Tensor
    std: torch.Tensor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def _unknown(name: str) -> UserError:
    return UserError(
        f"unknown model {name!r}: use one of {', '.join(MODELS)}, 'package.module:factory', "
        "or 'torchvision:NAME' / 'timm:NAME' (pip install 'pathwaygrad[vision]')"
    )


def build_model(
    name: str, num_classes: int = 10, weights: str | os.PathLike | None = None
) -> nn.Module:
    """Build our model ``name`` (see :data:`MODELS`); load ``weights`` when given. Eval mode."""
    key = name.lower().replace("-", "")
    if key not in MODELS:
        raise _unknown(name)
    model = MODELS[key].factory(num_classes=num_classes)
    if weights is not None:
        load_weights(model, weights, name=name)
    return model.eval()


def model_info(spec: str) -> ModelInfo:
    """The :class:`ModelInfo` for ``spec``: ours by name, ImageNet defaults for anything else."""
    key = spec.lower().replace("-", "")
    if key in MODELS:
        return MODELS[key]
    return ModelInfo(factory=_no_factory, input_size=None, description=spec)


def _no_factory(**_: object) -> nn.Module:
    raise UserError("build this model with load_model(spec), not from its ModelInfo")


def _from_factory(spec: str, num_classes: int | None) -> nn.Module:
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UserError(f"cannot import module {module_name!r} of model {spec!r}: {exc}") from exc
    factory: Any = module
    for part in attr.split("."):
        factory = getattr(factory, part, None)
        if factory is None:
            raise UserError(f"module {module_name!r} has no attribute {attr!r}")
    if not callable(factory):
        raise UserError(f"{spec!r} is not callable")
    try:
        model = factory() if num_classes is None else _call_with_classes(factory, num_classes)
    except TypeError as exc:
        raise UserError(f"calling {spec!r} without arguments failed: {exc}") from exc
    if not isinstance(model, nn.Module):
        raise UserError(f"{spec!r} returned {type(model).__name__}, not a torch.nn.Module")
    return model


def _call_with_classes(factory, num_classes: int):
    try:
        return factory(num_classes=num_classes)
    except TypeError:
        return factory()


def load_model(
    spec: str,
    weights: str | os.PathLike | None = None,
    *,
    num_classes: int | None = None,
) -> nn.Module:
    """Build the model named by ``spec`` and load ``weights``; return it in eval mode.

    ``spec``: one of :data:`MODELS`; ``package.module:factory`` (called with ``num_classes=`` when
    given and accepted, else without arguments); ``torchvision:NAME`` or ``timm:NAME`` (``weights``
    may then also name weights, see :func:`pathwaygrad.models.load_vision_model`). ``num_classes``
    None means the model's default (10 for ours).
    """
    if not spec:
        raise UserError("no model given")
    key = spec.lower().replace("-", "")
    if key in MODELS:
        return build_model(key, 10 if num_classes is None else num_classes, weights)
    source, sep, _ = spec.partition(":")
    if sep and source in VISION_SOURCES:
        return load_vision_model(spec, weights, num_classes=num_classes).model
    if not sep:
        raise _unknown(spec)
    model = _from_factory(spec, num_classes)
    if weights is not None:
        load_weights(model, weights, name=spec)
    return model.eval()


def input_channels(model: nn.Module) -> int:
    """Input channels of ``model``'s first 2-D convolution (3 when it has none)."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            return m.in_channels
    return 3
