"""torchvision and timm models with their own weights, preprocessing and class names.

``load_vision_model("torchvision:resnet50", "IMAGENET1K_V2")`` or ``("timm:vit_tiny_patch16_224")``
returns a :class:`VisionModel`: the network in eval mode, the preprocessing its weights were
trained with (torchvision: ``weights.transforms()``; timm: ``resolve_data_config`` /
``create_transform``: resize, centre crop, normalise) and its class names (torchvision:
``weights.meta["categories"]``; timm: :class:`timm.data.ImageNetInfo`).

``weights`` is None (random initialisation: the architecture's default preprocessing and class
names still apply, and both are available offline), a local file (a ``state_dict`` or a
checkpoint, read with ``weights_only=True``), or a weights name: a torchvision enum member
(``IMAGENET1K_V1``, ``IMAGENET1K_V2``, ``DEFAULT``) or a timm pretrained tag (``augreg_in21k_ft_in1k``;
``default`` for timm's default tag). Names download through the package's own cache and so need the
network the first time; without it the error says how to load a downloaded file instead.

torchvision and timm are imported here only, and only when such a model is asked for.
"""

from __future__ import annotations

import importlib
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from pathwaygrad.errors import UserError
from pathwaygrad.models.weights import load_weights

__all__ = ["VISION_EXTRA", "VISION_SOURCES", "VisionModel", "is_weights_name", "load_vision_model"]

VISION_EXTRA = "pip install 'pathwaygrad[vision]'"
VISION_SOURCES = ("torchvision", "timm")
_FILE_SUFFIXES = (".pt", ".pth", ".th", ".bin", ".ckpt", ".safetensors", ".tar")


@dataclass
class VisionModel:
    """A torchvision / timm model with what it needs to be fed and read.

    Attributes:
        model: the network, eval mode.
        transform: the model's own preprocessing, a PIL image -> normalised (C, H, W) tensor.
        input_size: side of the square crop the transform produces.
        mean, std: the normalisation inside ``transform``.
        classes: class names by output index (None when the outputs are not its weights' classes).
        weights: ``"random"``, the weights name, or the file given.
        preprocessing: the transform in words (for figures and JSON).
        fixed_size: the architecture takes ``input_size`` only (ViT-style position embeddings).
    """

    model: nn.Module
    transform: Callable
    input_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    classes: list[str] | None
    weights: str
    preprocessing: str
    fixed_size: bool = False

    @property
    def pretrained(self) -> bool:
        return self.weights != "random"


def _import(module: str):
    package = module.split(".")[0]
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise UserError(f"{package} models need {package} ({exc}): {VISION_EXTRA}") from None
    except Exception as exc:  # noqa: BLE001 - e.g. a torchvision built for another torch
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(
            f"{package} is installed but does not import ({first}); install the {package} "
            f"release built for your torch: {VISION_EXTRA}"
        ) from None


def is_weights_name(weights: str | os.PathLike | None) -> bool:
    """Whether ``weights`` names weights (``IMAGENET1K_V2``) rather than a file."""
    if weights is None or not isinstance(weights, str) or Path(weights).exists():
        return False
    return os.sep not in weights and "/" not in weights and not weights.endswith(_FILE_SUFFIXES)


def _no_network(what: str, url: str | None, exc: BaseException) -> UserError:
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    where = f" from {url}" if url else ""
    return UserError(
        f"cannot download {what}{where} ({first}): without network access, download the file "
        "on a machine that has it and pass its path: --weights FILE"
    )


def _interp(mode) -> str:
    return str(getattr(mode, "value", mode))


def load_vision_model(
    spec: str, weights: str | os.PathLike | None = None, *, num_classes: int | None = None
) -> VisionModel:
    """Build ``torchvision:NAME`` or ``timm:NAME`` (see module docstring); eval mode."""
    source, _, name = spec.partition(":")
    if source not in VISION_SOURCES or not name:
        raise UserError(f"{spec!r} is not torchvision:NAME or timm:NAME")
    load = _torchvision if source == "torchvision" else _timm
    out = load(name, weights, num_classes)
    out.model.eval()
    return out


# ------------------------------------------------------------------------------------ torchvision
def _torchvision(name: str, weights, num_classes: int | None) -> VisionModel:
    tvm = _import("torchvision.models")
    try:
        enum = tvm.get_model_weights(name)
    except (ValueError, KeyError):
        raise UserError(
            f"torchvision has no model {name!r} (see torchvision.models.list_models())"
        ) from None
    default = enum.DEFAULT  # its metadata and transforms need no download
    chosen = default
    kwargs: dict = {}
    if is_weights_name(weights):
        try:
            chosen = enum[str(weights)]
        except KeyError:
            names = ", ".join(enum.__members__)
            raise UserError(
                f"torchvision's {name} has no weights named {weights!r}: pass a file or one of "
                f"{names}"
            ) from None
        if num_classes is not None and num_classes != len(chosen.meta["categories"]):
            raise UserError(
                f"{name} weights {weights} have {len(chosen.meta['categories'])} classes, "
                f"not {num_classes}"
            )
        try:
            model = tvm.get_model(name, weights=chosen)
        except OSError as exc:  # URLError, socket errors, HTTP errors
            raise _no_network(f"torchvision weights {chosen}", chosen.url, exc) from None
        label = f"{type(chosen).__name__}.{chosen.name}"
    else:
        if num_classes is not None:
            kwargs["num_classes"] = num_classes
        model = tvm.get_model(name, weights=None, **kwargs)
        if weights is not None:
            load_weights(model, weights, name=f"torchvision:{name}")
        label = "random" if weights is None else str(weights)
    transform = chosen.transforms()
    categories = list(chosen.meta.get("categories") or [])
    size = int(transform.crop_size[0])
    resize = int(transform.resize_size[0])
    interp = _interp(transform.interpolation)
    return VisionModel(
        model=model,
        transform=transform,
        input_size=size,
        mean=tuple(float(v) for v in transform.mean),
        std=tuple(float(v) for v in transform.std),
        classes=categories or None,
        weights=label,
        preprocessing=(
            f"torchvision {type(chosen).__name__}.{chosen.name}.transforms(): resize {resize} "
            f"({interp}), centre crop {size}, normalise"
        ),
        fixed_size=hasattr(model, "image_size"),  # torchvision's ViTs check the size
    )


# ------------------------------------------------------------------------------------------ timm
def _timm(name: str, weights, num_classes: int | None) -> VisionModel:
    timm = _import("timm")
    data = _import("timm.data")
    arch = name.split(".")[0]
    if not timm.is_model(arch):
        raise UserError(f"timm has no model {arch!r} (see timm.list_models())")
    kwargs: dict = {}
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    if is_weights_name(weights):
        tag = str(weights)
        full = arch if tag == "default" else f"{arch}.{tag}"
        known = timm.list_pretrained(f"{arch}.*")
        if tag != "default" and full not in known:
            shown = ", ".join(k.split(".", 1)[1] for k in known[:8]) or "none"
            raise UserError(f"timm has no pretrained tag {tag!r} for {arch}: e.g. {shown}")
        try:
            model = timm.create_model(full, pretrained=True, **kwargs)
        except (OSError, RuntimeError) as exc:  # hub unreachable, offline mode, no such file
            raise _no_network(f"timm weights {full}", None, exc) from None
        label = full
    else:
        model = timm.create_model(name, pretrained=False, **kwargs)
        if weights is not None:
            load_weights(model, weights, name=f"timm:{name}")
        label = "random" if weights is None else str(weights)
    cfg = data.resolve_data_config({}, model=model)
    transform = data.create_transform(**cfg)
    size = int(cfg["input_size"][-1])
    classes = None
    subset = data.infer_imagenet_subset(model)
    if subset is not None:
        info = data.ImageNetInfo(subset)
        n = info.num_classes()
        if n == _num_outputs(model, n):
            # short names ("goldfish"), as torchvision's categories
            classes = [info.index_to_description(i).split(",")[0] for i in range(n)]
    resize = math.floor(size / cfg["crop_pct"])
    return VisionModel(
        model=model,
        transform=transform,
        input_size=size,
        mean=tuple(float(v) for v in cfg["mean"]),
        std=tuple(float(v) for v in cfg["std"]),
        classes=classes,
        weights=label,
        preprocessing=(
            f"timm create_transform(resolve_data_config(model)): resize {resize} "
            f"({cfg['interpolation']}), centre crop {size}, normalise"
        ),
        fixed_size=bool(getattr(model, "pretrained_cfg", {}).get("fixed_input_size", False)),
    )


def _num_outputs(model: nn.Module, fallback: int) -> int:
    n = getattr(model, "num_classes", None)
    return int(n) if isinstance(n, int) else fallback
