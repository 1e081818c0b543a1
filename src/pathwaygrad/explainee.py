"""A model ready to explain, and explanations of image files: what ``pathwaygrad explain`` does.

::

    import pathwaygrad as pg
    from pathwaygrad.explainee import load_explainee, explain_files

    exp = load_explainee("torchvision:resnet50", "IMAGENET1K_V2")   # or a weights file, or None
    x = exp.load_image("cat.jpg")                  # the model's own resize / crop / normalise
    result = exp.explain(x, "neuron_mct;gradient") # maps, prediction (with class names), records
    explain_files(exp, ["cat.jpg"], "explanations/cat")  # figure + JSON + .npy maps per image

:func:`load_explainee` builds the model of a name (ours, ``package.module:factory``,
``torchvision:NAME``, ``timm:NAME``) with its weights (a file; ``"demo"``; ``"shared"``; a
torchvision / timm weights name), its preprocessing (ours: centre square, resize to the input
size, normalise; torchvision / timm: the weights' own transform), its class names and its input
size. :meth:`Explainee.explain` computes the maps of several methods (pathway methods at one or
several sparsities) for one image, and :func:`explain_files` writes them into a run folder
(:mod:`pathwaygrad.runs`) through the atomic writer.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from pathwaygrad.errors import UserError

# Methods defined by a rule at ReLU calls: they need a model that calls ReLU.
RELU_ONLY_METHODS = ("guided_backprop",)

__all__ = [
    "Explainee",
    "Explanation",
    "SAMPLE_PREFIX",
    "check_demo",
    "class_names",
    "explain_demo",
    "explain_files",
    "load_explainee",
    "parse_sparsities",
    "resolve_target",
    "save_explanation",
    "unique_stems",
]

SAMPLE_PREFIX = "skimage:"  # image sources "skimage:chelsea" are scikit-image's bundled photos
MAP_FORMAT = "float32 (C, H, W), attribution w.r.t. the normalised input, signed"


# ------------------------------------------------------------------------------------ explainee
@dataclass
class Explainee:
    """A model ready to explain: its preprocessing, class names and expected input.

    Attributes:
        model: the network (eval mode).
        name: the model's name (``vgg_tiny``, ``torchvision:resnet50``, ...).
        mean, std: per-channel normalisation of the model's input.
        classes: class name of each output.
        channels: input channels.
        input_size: side of the square input the model was trained on (None: any size).
        weights: ``"random"`` (the initialisation), a weights name, or the file loaded.
        transform: the model's own preprocessing (PIL image -> normalised tensor), or None for
            ours (centre square, resize to ``input_size``, normalise).
        preprocessing: the preprocessing in words.
        fixed_size: the model takes ``input_size`` only.
        meta: what the weights file says about itself (``test_accuracy``, ``model``).
    """

    model: nn.Module
    name: str
    mean: tuple[float, ...]
    std: tuple[float, ...]
    classes: list[str]
    channels: int = 3
    input_size: int | None = 32
    weights: str = "random"
    transform: Callable | None = None
    preprocessing: str = ""
    fixed_size: bool = False
    meta: dict = field(default_factory=dict)

    @property
    def pretrained(self) -> bool:
        """False when the weights are the architecture's random initialisation."""
        return self.weights != "random"

    @property
    def device(self) -> torch.device:
        from pathwaygrad._devices import model_device

        return model_device(self.model)

    @property
    def title(self) -> str:
        """The model in words, for figure titles: says when its weights are random."""
        return f"{self.name} (random weights)" if not self.pretrained else self.name

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) in [0, 1] -> normalised model input."""
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        return (x - mean) / std

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised (C, H, W) or (B, C, H, W) -> the image in [0, 1] (for display)."""
        shape = (-1, 1, 1) if x.ndim == 3 else (1, -1, 1, 1)
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(shape)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(shape)
        return (x * std + mean).clamp(0, 1)

    def applicable_methods(
        self, specs: Sequence[Any], x: torch.Tensor
    ) -> tuple[list[Any], list[str]]:
        """``specs`` split into those this model can run and the names of those it cannot.

        Guided Backprop applies its rule at ReLU calls: on a model that calls no ReLU (a ViT,
        EfficientNet) it has nothing to apply it to. ``x``: one normalised image (C, H, W).
        """
        from pathwaygrad.sites import resolve_activations

        needs_relu = [s for s in specs if s.name in RELU_ONLY_METHODS]
        if not needs_relu:
            return list(specs), []
        batch = x.unsqueeze(0).to(self.device)
        if "relu" in resolve_activations(self.model, batch, "auto").kinds:
            return list(specs), []
        return [s for s in specs if s.name not in RELU_ONLY_METHODS], [s.label for s in needs_relu]

    def check_size(self, size: int | None) -> None:
        """Refuse an image size the model cannot take, before any work."""
        if size is None:
            return
        if size < 1:
            raise UserError(
                f"--size must be a positive number of pixels, got {size}; omit it for the "
                f"model's own input size ({self.input_size or 'any'})"
            )
        if self.fixed_size and size != self.input_size:
            raise UserError(
                f"{self.name} takes {self.input_size} x {self.input_size} images only: omit "
                f"--size (or pass --size {self.input_size})"
            )

    def prepare(self, image: torch.Tensor, size: int | None = None) -> torch.Tensor:
        """(C, H, W) image in [0, 1] -> the normalised (C, h, w) model input.

        ``size`` None: the model's own preprocessing (torchvision / timm transform; ours: centre
        square resized to ``input_size``, or the image as it is when the model has none). An int:
        centre square resized to ``size`` x ``size``, then normalised.
        """
        from pathwaygrad.data.images import center_square, resize_array

        self.check_size(size)
        arr = image.mul(255).round_().clamp_(0, 255).byte().permute(1, 2, 0).numpy()
        if size is None and self.transform is not None:
            from PIL import Image

            pil = Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)
            return self.transform(pil).float()
        side = size if size is not None else self.input_size
        if side is not None:
            arr = resize_array(center_square(arr), side)
        x = torch.from_numpy(np.array(arr)).permute(2, 0, 1).float().div_(255.0)
        return self.normalize(x.unsqueeze(0))[0]

    def read_image(self, source: str | os.PathLike, *, convert: bool = False) -> torch.Tensor:
        """The image of a file (or ``skimage:NAME``) as (C, H, W) in [0, 1], full size.

        ``convert`` False refuses a file whose channels differ from the model's (e.g. grey).
        """
        from pathwaygrad.data.images import load_image, sample_photo

        text = str(source)
        if text.startswith(SAMPLE_PREFIX):
            return sample_photo(text[len(SAMPLE_PREFIX) :])
        return load_image(source, None, channels=self.channels, convert=convert)

    def load_image(
        self, source: str | os.PathLike, *, size: int | None = None, convert: bool = False
    ) -> torch.Tensor:
        """:meth:`read_image` then :meth:`prepare`: the normalised (C, h, w) model input."""
        return self.prepare(self.read_image(source, convert=convert), size)

    def explain(
        self,
        x: torch.Tensor,
        methods: str | Sequence[Any] = "neuron_mct;gradient",
        sparsities: float | str | Sequence[float | str] = 90.0,
        target: int | str | None = None,
        *,
        activations: str | Sequence[str] | None = None,
        defaults: Mapping[str, Any] | None = None,
    ) -> Explanation:
        """Maps of ``methods`` for the normalised image ``x`` (C, H, W); see :class:`Explanation`.

        ``methods``: the method grammar of :func:`pathwaygrad.specs.parse_methods`. Pathway methods
        are drawn at each of ``sparsities`` (percent pruned, or ``"adaptive"``) unless their spec
        sets ``sparsity``. ``target``: a class index or name (None: the predicted class).
        ``activations``: kinds of activation calls holding neurons (None / ``"auto"``: ReLU if
        the model calls any, else the kinds it calls; :attr:`Explanation.activations_note` then
        says which). ``defaults``: options applied to every method whose schema has them unless
        its spec sets them (``{"steps": 5, "seed": 1}``).
        """
        from pathwaygrad.sites import resolve_activations
        from pathwaygrad.specs import parse_methods

        specs = parse_methods(methods) if isinstance(methods, str) else parse_methods(list(methods))
        levels = parse_sparsities(sparsities)
        check_sweep(specs, levels)
        specs = [_with_defaults(s, defaults or {}) for s in specs]
        tgt = resolve_target(target, self.classes)
        batch = x.unsqueeze(0).to(self.device)
        kinds, note = resolve_activations(self.model, batch, activations)
        return _explain_one(self, batch, specs, levels, tgt, tuple(kinds), note)


@dataclass
class Explanation:
    """One image's maps and what they were computed from.

    ``prediction``: class, name and probability of the prediction and of the explained target,
    the target's logit. ``maps``: label -> float32 (C, H, W) numpy map (raw, signed, w.r.t. the
    normalised input). ``records``: label -> JSON dict (method, kind, options, seconds; for pathway
    methods the real sparsity, the pathway's target logit and activation calls left empty).
    ``image``: the model's input in [0, 1] (C, H, W), for display.
    """

    image: torch.Tensor
    prediction: dict
    maps: dict[str, np.ndarray]
    records: dict[str, dict]
    activations: tuple[str, ...] = ("relu",)
    activations_note: str | None = None


# --------------------------------------------------------------------------------- loading
def load_explainee(
    model: str | nn.Module | None = None,
    weights: str | os.PathLike | None = None,
    *,
    classes: str | Sequence[str] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    input_size: int | None = None,
    device: str | torch.device = "cpu",
) -> Explainee:
    """A model with its preprocessing and class names, ready to explain.

    Args:
        model: a name (``resnet20``, ``vgg_tiny``, ``package.module:factory``,
            ``torchvision:NAME``, ``timm:NAME``), an ``nn.Module`` of your own, or None (the name
            stored in the weights file, as ``pathwaygrad train`` writes it).
        weights: None (random initialisation), a file (``state_dict`` or checkpoint; read with
            ``weights_only=True``), ``"demo"`` (the bundled CIFAR-10 ``vgg_tiny``), ``"shared"``
            (the pretrained CIFAR-10 ResNets of ``../shared``), or for torchvision / timm a
            weights name (``IMAGENET1K_V2``, ``DEFAULT``; a timm tag; needs the network once).
        classes: class names (a list, a comma-separated string, or a text file with one per
            line); default: the weights' (torchvision / timm metadata, the checkpoint's),
            CIFAR-10's for 10 outputs, else numbers.
        mean, std: override the normalisation (default: the model's).
        input_size: override the input size (default: the model's; ImageNet models 224 x 224).
        device: where the model runs.
    """
    from pathwaygrad.models import input_channels, load_model, model_info
    from pathwaygrad.models.named import resolve_weights
    from pathwaygrad.models.vision import VISION_SOURCES, load_vision_model
    from pathwaygrad.models.weights import read_checkpoint

    given = _given_class_names(classes)
    meta: dict = {}
    vision = None
    spec: str
    if isinstance(model, nn.Module):
        net, spec = model, type(model).__name__
        if weights is not None:
            from pathwaygrad.models import load_weights

            load_weights(net, resolve_weights(None, weights), name=spec)
    else:
        path = resolve_weights(model, weights)
        vision_spec = bool(model) and str(model).partition(":")[0] in VISION_SOURCES
        if path is not None and not (vision_spec and _is_name(path)):
            meta = read_checkpoint(path)[1]
        named = model or meta.get("model")
        if not named:
            raise UserError("no --model given and the weights file names none")
        spec = str(named)
        names = given or meta.get("classes")
        n = len(names) if names else None
        if vision_spec:
            vision = load_vision_model(spec, path, num_classes=n)
            net = vision.model
        else:
            net = load_model(spec, path, num_classes=n)
    net = net.to(device).eval()
    channels = input_channels(net)
    info = None if vision is not None or isinstance(model, nn.Module) else model_info(spec)
    own_mean = vision.mean if vision else (meta.get("mean") or (info.mean if info else None))
    own_std = vision.std if vision else (meta.get("std") or (info.std if info else None))
    m = tuple(float(v) for v in (mean if mean is not None else own_mean or (0.0,) * channels))
    s = tuple(float(v) for v in (std if std is not None else own_std or (1.0,) * channels))
    if len(m) != channels or len(s) != channels:
        raise UserError(f"--mean/--std need {channels} values (one per input channel)")
    if any(v <= 0 for v in s):
        raise UserError("--std values must be positive")
    if input_size is not None and input_size < 1:
        raise UserError(f"input size must be positive, got {input_size}")
    size = input_size or (vision.input_size if vision else (info.input_size if info else None))
    custom_norm = mean is not None or std is not None or input_size is not None
    transform = vision.transform if vision and not custom_norm else None
    with torch.no_grad():
        probe = torch.zeros(1, channels, size or 224, size or 224, device=torch.device(device))
        n_out = int(net(probe).shape[-1])
    label = "random"
    if vision is not None:
        label = vision.weights
    elif weights is not None:
        label = str(weights)
    return Explainee(
        model=net,
        name=spec,
        mean=m,
        std=s,
        classes=class_names(
            given, (vision.classes if vision else None) or meta.get("classes"), n_out
        ),
        channels=channels,
        input_size=size,
        weights=label,
        transform=transform,
        preprocessing=(
            vision.preprocessing
            if vision is not None and transform is not None
            else (f"centre square, resize to {size} x {size} (bicubic), " if size else "")
            + f"normalise mean {list(m)} std {list(s)}"
        ),
        fixed_size=bool(vision and vision.fixed_size),
        meta={k: v for k, v in meta.items() if k in ("test_accuracy", "model")},
    )


def _is_name(weights: object) -> bool:
    from pathwaygrad.models.vision import is_weights_name

    return is_weights_name(weights if isinstance(weights, str) else None)


def _given_class_names(classes: str | Sequence[str] | None) -> list[str] | None:
    """Class names given as a list, ``"a,b,c"``, or a text file with one per line."""
    if classes is None or (isinstance(classes, str) and not classes):
        return None
    if not isinstance(classes, str):
        return [str(c) for c in classes]
    p = Path(classes)
    if p.is_file():
        return [ln.strip() for ln in p.read_text().splitlines() if ln.strip()]
    return [n.strip() for n in classes.split(",")]


def class_names(
    given: list[str] | None, known: Sequence[str] | None, num_classes: int
) -> list[str]:
    """The names of ``num_classes`` outputs: ``given``, else ``known``, else CIFAR-10's / numbers."""
    from pathwaygrad.data import CIFAR10_CLASSES

    if given is not None:
        if len(given) != num_classes:
            raise UserError(f"--classes names {len(given)} classes but the model has {num_classes}")
        return list(given)
    if known and len(known) == num_classes:
        return [str(c) for c in known]
    if num_classes == 10:
        return list(CIFAR10_CLASSES)
    return [str(i) for i in range(num_classes)]


def resolve_target(target: int | str | None, classes: Sequence[str]) -> int | None:
    """A class index or name as an index (None: the predicted class)."""
    if target is None:
        return None
    if isinstance(target, str):
        if target in classes:
            return list(classes).index(target)
        try:
            target = int(target)
        except ValueError:
            raise UserError(
                f"--target {target!r} is neither a class index nor a class name"
            ) from None
    if not 0 <= int(target) < len(classes):
        raise UserError(f"--target {target} out of range: the model has {len(classes)} classes")
    return int(target)


def parse_sparsities(value: float | str | Sequence[float | str]) -> list[float | str]:
    """``90`` / ``"0,70,90"`` / ``"adaptive"`` / a list -> sparsities (percent pruned), checked."""
    parts = str(value).split(",") if isinstance(value, (str, int, float)) else list(value)
    out: list[float | str] = []
    for part in parts:
        part = part.strip() if isinstance(part, str) else part
        if part == "adaptive":
            out.append("adaptive")
            continue
        if isinstance(part, bool):
            raise UserError(f"sparsity takes numbers in [0, 100) or 'adaptive', got {part!r}")
        try:
            v = float(part)
        except (TypeError, ValueError):
            raise UserError(
                f"--sparsity takes numbers in [0, 100) or 'adaptive', got {part!r}"
            ) from None
        if not 0.0 <= v < 100.0:
            raise UserError(f"--sparsity must lie in [0, 100), got {v:g}")
        out.append(v)
    if not out:
        raise UserError("--sparsity is empty")
    return out


def check_sweep(specs: Sequence[Any], sparsities: Sequence[float | str]) -> None:
    """Several sparsities draw one pathway method (the paper's sparsity sweep)."""
    if len(sparsities) > 1 and (len(specs) != 1 or not specs[0].is_pathway):
        raise UserError(
            "a sparsity sweep (several --sparsity values) draws one pathway method: "
            "pass exactly one, e.g. --methods neuron_mct"
        )


def _with_defaults(spec: Any, defaults: Mapping[str, Any]) -> Any:
    if spec.info is None:
        return spec
    own = {k: v for k, v in defaults.items() if k in spec.info.options and v is not None}
    return spec.with_options(override=False, relabel=False, **own) if own else spec


# ------------------------------------------------------------------------------- explaining
def _explain_one(
    exp: Explainee,
    x: torch.Tensor,
    specs: Sequence[Any],
    sparsities: Sequence[float | str],
    target: int | None,
    activations: tuple[str, ...],
    note: str | None,
) -> Explanation:
    import pathwaygrad as pg

    with torch.no_grad():
        logits = exp.model(x)[0]
    probs = logits.float().softmax(-1)
    pred = int(probs.argmax())
    tgt = pred if target is None else target
    prediction = {
        "class": pred,
        "name": exp.classes[pred],
        "probability": float(probs[pred]),
        "target": tgt,
        "target_name": exp.classes[tgt],
        "target_probability": float(probs[tgt]),
        "full_logit": float(logits[tgt]),
    }
    maps: dict[str, np.ndarray] = {}
    records: dict[str, dict] = {}
    sweep = len(sparsities) > 1
    for spec in specs:
        own = dict(spec.options)
        levels = [own["sparsity"]] if "sparsity" in own else list(sparsities)
        for s in levels if spec.is_pathway else [90.0]:
            label = f"{spec.label}@{s:g}" if sweep and s != "adaptive" else spec.label
            t0 = time.perf_counter()
            rec: dict = {"method": spec.name}
            if spec.is_pathway:
                options = spec.selection_kwargs
                with warnings.catch_warnings():
                    # an emptied call is reported in the JSON (empty_calls) and the summary line
                    warnings.filterwarnings("ignore", message=".*keeps no neuron of call")
                    pathway = pg.select_pathway(
                        exp.model, x, tgt, spec.name, sparsity=s, activations=activations, **options
                    )
                attr = pg.pathway_gradient(exp.model, x, pathway)
                seconds = time.perf_counter() - t0
                layer = pathway.layer_sparsity()[0]
                pl = pg.pathway_logits(exp.model, x, pathway)
                rec.update(
                    kind="pathway_gradient",
                    threshold=options.get("threshold") or "global",
                    sparsity_requested=float(pathway.requested_sparsity[0]),
                    sparsity=float(pathway.sparsity[0]),
                    pathway_logit=float(pl[0, tgt]),
                    full_logit=prediction["full_logit"],
                    activations=list(activations),
                    # calls with every neuron pruned cut the pathway: its gradient is then 0
                    empty_calls=[n for n, v in zip(pathway.sites, layer.tolist()) if v >= 100.0],
                )
            else:
                options = spec.kwargs
                attr = spec.explain(exp.model, x, torch.tensor([tgt], device=x.device))
                seconds = time.perf_counter() - t0
                rec["kind"] = "baseline"
            rec["display"] = spec.display
            rec["seconds"] = round(seconds, 4)
            rec["options"] = {k: v for k, v in options.items() if v is not None}
            maps[label] = attr[0].detach().float().cpu().numpy()
            records[label] = rec
    return Explanation(
        image=exp.denormalize(x[0].detach().cpu()),
        prediction=prediction,
        maps=maps,
        records=records,
        activations=activations,
        activations_note=note,
    )


# ----------------------------------------------------------------------------------- writing
def unique_stems(sources: Sequence[str | os.PathLike]) -> list[str]:
    """File stems of ``sources``, made unique by a numeric suffix."""
    seen: dict[str, int] = {}
    stems = []
    for src in sources:
        text = str(src)
        stem = text[len(SAMPLE_PREFIX) :] if text.startswith(SAMPLE_PREFIX) else Path(text).stem
        stem = stem or "image"
        if stem in seen:
            seen[stem] += 1
            stem = f"{stem}-{seen[stem]}"
        else:
            seen[stem] = 0
        stems.append(stem)
    return stems


def save_explanation(
    folder: str | os.PathLike, stem: str, source: str, result: Explanation, exp: Explainee
) -> dict:
    """Write ``<stem>.png``, ``<stem>.json`` and ``<stem>/<label>.npy`` atomically; return the JSON."""
    from pathwaygrad._io import save_npy, write_json
    from pathwaygrad.viz import explanation_figure, save_and_close

    folder = Path(folder)
    methods = {}
    for label, amap in result.maps.items():
        npy = Path(stem) / f"{label.replace('@', '_s')}.npy"
        (folder / stem).mkdir(parents=True, exist_ok=True)
        save_npy(folder / npy, amap.astype(np.float32))
        methods[label] = {"map": npy.as_posix(), **result.records[label]}
    figure = f"{stem}.png"
    title = f"{Path(source).name if not source.startswith(SAMPLE_PREFIX) else source} - {exp.title}"
    save_and_close(explanation_figure(result, title=title), folder / figure)
    summary = {
        "image": source,
        "model": exp.name,
        "weights": exp.weights,
        "pretrained": exp.pretrained,
        "input_shape": list(result.image.shape),
        "preprocessing": exp.preprocessing,
        "normalization": {"mean": list(exp.mean), "std": list(exp.std)},
        "activations": list(result.activations),
        "activations_note": result.activations_note,
        "prediction": result.prediction,
        "figure": figure,
        "map_format": MAP_FORMAT,
        "methods": methods,
    }
    write_json(folder / f"{stem}.json", summary)
    return summary


def explain_files(
    exp: Explainee,
    sources: Sequence[str | os.PathLike],
    folder: str | os.PathLike,
    methods: str | Sequence[Any] = "neuron_mct;gradient",
    sparsities: float | str | Sequence[float | str] = 90.0,
    target: int | str | None = None,
    *,
    activations: str | Sequence[str] | None = None,
    defaults: Mapping[str, Any] | None = None,
    size: int | None = None,
    convert: bool = False,
    on_result: Callable[[str, Explanation, float, Path], None] | None = None,
) -> list[dict]:
    """Explain each image file and write its figure, JSON and maps into ``folder``.

    Everything is checked (methods, sparsities, target, size, every image file) before the first
    map is computed. ``on_result(source, explanation, seconds, figure_path)`` is called after each
    image (the command line prints from it). Returns the JSON summaries.
    """
    from pathwaygrad.specs import parse_methods

    specs = parse_methods(methods) if isinstance(methods, str) else parse_methods(list(methods))
    levels = parse_sparsities(sparsities)
    check_sweep(specs, levels)
    resolve_target(target, exp.classes)
    exp.check_size(size)
    images = [exp.read_image(src, convert=convert) for src in sources]  # fail before any work
    folder = Path(folder)
    summaries = []
    for src, stem, image in zip(sources, unique_stems(sources), images):
        t0 = time.perf_counter()
        x = exp.prepare(image, size)
        result = exp.explain(x, specs, levels, target, activations=activations, defaults=defaults)
        summaries.append(save_explanation(folder, stem, str(src), result, exp))
        if on_result is not None:
            on_result(str(src), result, time.perf_counter() - t0, folder / f"{stem}.png")
    return summaries


# -------------------------------------------------------------------------------------- demo
def explain_demo(
    folder: str | os.PathLike,
    photos: Sequence[str] | None = None,
    methods: str | Sequence[Any] = (
        "neuron_mct;neuron_intgrad;gradient;input_x_gradient;integrated_gradients;"
        "guided_backprop;grad_cam;smoothgrad"
    ),
    sparsities: float | str | Sequence[float | str] = 90.0,
    target: int | str | None = None,
    *,
    sweep_method: str | None = "neuron_mct",
    sweep: Sequence[float | str] | str = "0,70,80,90,95,99",
    defaults: Mapping[str, Any] | None = None,
    on_result: Callable[[str, Explanation], None] | None = None,
) -> dict:
    """Explain scikit-image's sample photos with the bundled CIFAR-10 ``vgg_tiny`` into ``folder``.

    Writes per photo a figure, JSON and maps (as :func:`explain_files`), ``demo.png`` (all photos,
    all methods), ``sweep.png`` (``sweep_method`` at each of ``sweep`` on the first photo) and
    ``index.json``; returns the index. Needs no network and no data.
    """
    from pathwaygrad._io import write_json
    from pathwaygrad.viz import grid_figure, save_and_close

    t_start = time.perf_counter()
    photos, specs, levels, sweep_levels, sweep_spec = check_demo(
        photos, methods, sparsities, sweep_method, sweep
    )
    exp = load_explainee(None, "demo")
    resolve_target(target, exp.classes)
    folder = Path(folder)
    rows = []
    for name in photos:
        x = exp.load_image(SAMPLE_PREFIX + name)
        result = exp.explain(x, specs, levels, target, defaults=defaults)
        save_explanation(folder, name, f"skimage.data.{name}()", result, exp)
        rows.append((result, name))
        if on_result is not None:
            on_result(name, result)
    acc = exp.meta.get("test_accuracy")
    acc_text = f", CIFAR-10 test accuracy {acc:.1%}" if acc else ""
    title = f"{exp.name} (pathwaygrad demo model{acc_text}); photos resized to 32x32"
    save_and_close(grid_figure(rows, title=title), folder / "demo.png")
    files = ["demo.png"] + [f"{n}.png" for n in photos]
    if sweep_spec is not None:
        first = exp.load_image(SAMPLE_PREFIX + photos[0])
        result = exp.explain(first, [sweep_spec], sweep_levels, target, defaults=defaults)
        save_and_close(
            grid_figure(
                [(result, photos[0])], title=f"{sweep_spec.label}: pathway gradient by sparsity"
            ),
            folder / "sweep.png",
        )
        files.append("sweep.png")
    index = {
        "model": exp.name,
        "test_accuracy": acc,
        "photos": {n: f"{n}.json" for n in photos},
        "figures": files,
        "seconds": round(time.perf_counter() - t_start, 1),
    }
    write_json(folder / "index.json", index)
    return index


def check_demo(
    photos: Sequence[str] | None,
    methods: str | Sequence[Any],
    sparsities: float | str | Sequence[float | str],
    sweep_method: str | None,
    sweep: Sequence[float | str] | str,
) -> tuple[list[str], list[Any], list[float | str], list[float | str], Any]:
    """Check :func:`explain_demo`'s arguments (before any work); return them parsed."""
    from pathwaygrad.data import SAMPLE_PHOTOS
    from pathwaygrad.specs import parse_methods

    photos = list(SAMPLE_PHOTOS if photos is None else photos)
    if not photos:
        raise UserError("--photos is empty")
    for p in photos:
        if p not in SAMPLE_PHOTOS:
            raise UserError(f"unknown photo {p!r}; choose from {', '.join(SAMPLE_PHOTOS)}")
    specs = parse_methods(methods) if isinstance(methods, str) else parse_methods(list(methods))
    levels = parse_sparsities(sparsities)
    check_sweep(specs, levels)
    sweep_levels = parse_sparsities(sweep)
    sweep_spec = None
    if sweep_method is not None:
        import pathwaygrad as pg

        (sweep_spec,) = parse_methods(sweep_method)
        if not sweep_spec.is_pathway:
            raise UserError(
                f"--sweep-method must be a pathway method ({', '.join(pg.PATHWAY_METHODS)}) "
                "or 'none'"
            )
    return photos, specs, levels, sweep_levels, sweep_spec
