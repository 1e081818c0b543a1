"""``pathwaygrad explain IMAGE...``: saliency maps of pathway gradient and the usual baselines.

Per image it writes into ``--out``:

- ``<name>.png``: the input, the predicted class and its probability, one heat map per method
  (the paper's single-channel reduction, :func:`pathwaygrad.reduce_channels`: red positive, blue
  negative, each map scaled by its max |value|);
- ``<name>.json``: the prediction and, per method, the raw map's ``.npy`` file (float32 (C, H, W),
  in the model's normalised input space), the time taken, and for pathway methods the pathway's
  real sparsity and its target logit beside the full network's;
- ``<name>/<method>.npy``: the raw maps.

With several ``--sparsity`` values (``0,70,80,90,95,99``) one pathway method is drawn at each
sparsity: the paper's sparsity sweep (0 = the plain gradient).
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from pathwaygrad.errors import UserError
from pathwaygrad.methods import PAPER_NAMES

DEFAULT_METHODS = (
    "neuron_mct, neuron_intgrad, gradient, input_x_gradient, integrated_gradients, "
    "guided_backprop, grad_cam, smoothgrad"
)
HELP = "explain images: pathway gradient beside the usual saliency methods, saved as PNG + JSON"

_LABELS = PAPER_NAMES


# ------------------------------------------------------------------------------------- arguments
class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows ``(default: X)`` after each option's help, except where the help states it (None)."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def add_model_arguments(p: argparse.ArgumentParser, *, threads: int | None = None) -> None:
    """Options shared by ``explain`` and ``demo``: the explanation settings."""
    p.add_argument(
        "--methods",
        default=DEFAULT_METHODS,
        help="comma-separated methods: pathway methods (neuron_mct, neuron_intgrad, greedy, "
        "random, dgr, dead) and baselines (gradient, input_x_gradient, integrated_gradients, "
        "guided_backprop, grad_cam, smoothgrad)",
    )
    p.add_argument(
        "--sparsity",
        default="90",
        help="percent of neurons pruned in each pathway, 0 <= s < 100, or 'adaptive'; several "
        "comma-separated values (e.g. 0,70,80,90,95,99) draw the sparsity sweep of one method",
    )
    p.add_argument(
        "--target",
        default=None,
        help="class index or name to explain (default: the predicted class)",
    )
    p.add_argument("--steps", type=int, default=10, help="NeuronIntGrad: alpha steps (K)")
    p.add_argument("--ig-steps", type=int, default=50, help="Integrated Gradients: steps")
    p.add_argument(
        "--smoothgrad-samples", type=int, default=25, help="SmoothGrad: noisy samples per image"
    )
    p.add_argument("--dgr-iterations", type=int, default=1000, help="DGR: optimisation steps")
    p.add_argument(
        "--threshold",
        default=None,
        choices=("global", "per_layer"),
        help="pathway threshold: one over all activation calls or one per call (default: "
        "global, the paper's; per_layer for random)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of Random, DGR and SmoothGrad")
    p.add_argument(
        "--threads",
        type=int,
        default=threads,
        help="torch CPU threads" + (" (default: torch's choice)" if threads is None else ""),
    )


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "explain",
        help=HELP,
        description=HELP + ". Writes a PNG figure, a JSON summary and the raw maps per image.",
        formatter_class=HelpFormatter,
    )
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (PNG, JPEG, ...)")
    p.add_argument(
        "--model",
        default=None,
        help="model: resnet8, resnet20/32/44/56, vgg_small, vgg_tiny, package.module:factory, "
        "torchvision:NAME or timm:NAME (default: the name stored in --weights)",
    )
    p.add_argument(
        "--weights",
        default=None,
        help="weights file: a state_dict or a checkpoint ('demo': the bundled demo model; "
        "default: the model's random initialisation)",
    )
    p.add_argument("--out", default="explanations", help="output folder")
    p.add_argument(
        "--size",
        type=int,
        default=None,
        help="resize images to SIZE x SIZE after a centre crop (default: the model's input size, "
        "32 for the built-in models; 0: keep each image as it is)",
    )
    p.add_argument(
        "--classes",
        default=None,
        help="class names: comma-separated, or a text file with one per line (default: from the "
        "weights file, CIFAR-10's names for 10 outputs, else numbers)",
    )
    p.add_argument(
        "--mean",
        default=None,
        help="per-channel normalisation mean, comma-separated (default: the model's, ImageNet's)",
    )
    p.add_argument(
        "--std", default=None, help="per-channel normalisation std (default: the model's)"
    )
    p.add_argument(
        "--convert-channels",
        action="store_true",
        help="convert images whose channel count differs from the model's (e.g. grey to RGB) "
        "instead of refusing them (default: refuse)",
    )
    p.add_argument("--device", default="cpu", help="torch device")
    add_model_arguments(p)
    p.set_defaults(func=run)


def parse_methods(text: str) -> list[str]:
    """Comma-separated method names -> list, checked against the core's method lists."""
    import pathwaygrad as pg

    methods = [m.strip() for m in text.split(",") if m.strip()]
    known = list(pg.PATHWAY_METHODS) + list(pg.BASELINE_METHODS)
    if not methods:
        raise UserError("--methods is empty")
    for m in methods:
        if m not in known:
            raise UserError(f"unknown method {m!r}; choose from {', '.join(known)}")
    if len(set(methods)) != len(methods):
        raise UserError(f"--methods lists a method twice: {text}")
    return methods


def parse_sparsity(text: str) -> list[float | str]:
    """``"90"`` / ``"0,70,90"`` / ``"adaptive"`` -> list of sparsities (percent pruned)."""
    out: list[float | str] = []
    for part in str(text).split(","):
        part = part.strip()
        if part == "adaptive":
            out.append(part)
            continue
        try:
            value = float(part)
        except ValueError:
            raise UserError(
                f"--sparsity takes numbers in [0, 100) or 'adaptive', got {part!r}"
            ) from None
        if not 0.0 <= value < 100.0:
            raise UserError(f"--sparsity must lie in [0, 100), got {value:g}")
        out.append(value)
    if not out:
        raise UserError("--sparsity is empty")
    return out


def _floats(text: str | None, name: str) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise UserError(f"--{name} takes comma-separated numbers, got {text!r}") from None


# ---------------------------------------------------------------------------------- model set-up
@dataclass
class Explainee:
    """A model ready to explain: normalisation, class names and expected input."""

    model: torch.nn.Module
    name: str
    mean: tuple[float, ...]
    std: tuple[float, ...]
    classes: list[str]
    channels: int = 3
    input_size: int | None = 32
    meta: dict = field(default_factory=dict)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) in [0, 1] -> normalised model input."""
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        return (x - mean) / std


def _weights_meta(path: str | None) -> dict:
    """Metadata stored beside the state_dict by ``pathwaygrad train`` (model, classes, mean...)."""
    if path is None:
        return {}
    p = Path(path)
    if not p.is_file():
        raise UserError(f"weights file not found: {p}")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - reported as one line
        raise UserError(f"cannot read weights file {p}: {str(exc).splitlines()[0]}") from exc
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        return {k: v for k, v in obj.items() if k != "state_dict"}
    return {}


def _input_channels(model: torch.nn.Module) -> int:
    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d):
            return m.in_channels
    return 3


def _given_class_names(text: str | None) -> list[str] | None:
    """``--classes``: comma-separated names, or a text file with one per line."""
    if not text:
        return None
    p = Path(text)
    if p.is_file():
        return [ln.strip() for ln in p.read_text().splitlines() if ln.strip()]
    return [n.strip() for n in text.split(",")]


def _class_names(given: list[str] | None, meta: dict, num_classes: int) -> list[str]:
    from pathwaygrad.data import CIFAR10_CLASSES

    if given is not None:
        if len(given) != num_classes:
            raise UserError(f"--classes names {len(given)} classes but the model has {num_classes}")
        return given
    if meta.get("classes") and len(meta["classes"]) == num_classes:
        return [str(c) for c in meta["classes"]]
    if num_classes == 10:
        return list(CIFAR10_CLASSES)
    return [str(i) for i in range(num_classes)]


def prepare_model(
    model: str | None,
    weights: str | None,
    *,
    classes: str | None = None,
    mean: str | None = None,
    std: str | None = None,
    device: str = "cpu",
) -> Explainee:
    """Build the model of ``--model``/``--weights`` with its normalisation and class names."""
    from pathwaygrad.models import load_model, model_info

    if weights == "demo":
        from pathwaygrad.cli.demo import demo_weights_path

        weights = str(demo_weights_path())
    meta = _weights_meta(weights)
    spec = model or meta.get("model")
    if not spec:
        raise UserError("no --model given and the weights file names none")
    info = model_info(spec)
    given = _given_class_names(classes)
    names = given or meta.get("classes")
    net = load_model(spec, weights, num_classes=len(names) if names else None)
    net = net.to(device).eval()
    channels = _input_channels(net)
    m = _floats(mean, "mean") or tuple(meta.get("mean") or info.mean)
    s = _floats(std, "std") or tuple(meta.get("std") or info.std)
    if len(m) != channels or len(s) != channels:
        raise UserError(f"--mean/--std need {channels} values (one per input channel)")
    if any(v <= 0 for v in s):
        raise UserError("--std values must be positive")
    with torch.no_grad():
        size = info.input_size or 224
        n_out = net(torch.zeros(1, channels, size, size, device=device)).shape[-1]
    return Explainee(
        model=net,
        name=spec,
        mean=m,
        std=s,
        classes=_class_names(given, meta, n_out),
        channels=channels,
        input_size=info.input_size,
        meta={k: v for k, v in meta.items() if k in ("test_accuracy", "model")},
    )


def resolve_target(text: str | None, classes: list[str]) -> int | None:
    """``--target`` as a class index (None = predicted class)."""
    if text is None:
        return None
    if text in classes:
        return classes.index(text)
    try:
        index = int(text)
    except ValueError:
        raise UserError(f"--target {text!r} is neither a class index nor a class name") from None
    if not 0 <= index < len(classes):
        raise UserError(f"--target {index} out of range: the model has {len(classes)} classes")
    return index


# ----------------------------------------------------------------------------------- explaining
def method_options(method: str, args) -> dict:
    """The ``pg.explain`` / ``pg.select_pathway`` options of ``method`` from the CLI arguments."""
    return {
        "neuron_intgrad": {"steps": args.steps},
        "random": {"seed": args.seed},
        "dgr": {"seed": args.seed, "iterations": args.dgr_iterations},
        "integrated_gradients": {"n_steps": args.ig_steps},
        "smoothgrad": {"nt_samples": args.smoothgrad_samples, "seed": args.seed},
    }.get(method, {})


def _pathway_logit(model, x: torch.Tensor, pathway) -> float:
    """Target logit of the network restricted to ``pathway`` (x: (1, C, H, W))."""
    import pathwaygrad as pg

    logits = pg.pathway_logits(model, x, pathway)
    return float(logits[0, int(pathway.targets[0])])


def explain_image(
    exp: Explainee,
    image: torch.Tensor,
    methods: list[str],
    sparsities: list[float | str],
    target: int | None,
    args,
) -> dict:
    """Explain one image (3, H, W) in [0, 1]; return ``{"prediction", "maps", "records"}``.

    ``maps``: label -> float32 (C, H, W) numpy map (raw, signed). ``records``: label -> JSON dict.
    """
    import pathwaygrad as pg

    device = next(exp.model.parameters()).device
    x = exp.normalize(image.unsqueeze(0).to(device))
    with torch.no_grad():
        logits = exp.model(x)[0]
    probs = logits.softmax(-1)
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
    for method in methods:
        options = method_options(method, args)
        for s in sparsities if method in pg.PATHWAY_METHODS else [None]:
            label = f"{method}@{s:g}" if sweep and s != "adaptive" else method
            t0 = time.perf_counter()
            rec: dict = {"method": method}
            if method in pg.PATHWAY_METHODS:
                threshold = getattr(args, "threshold", None)
                with warnings.catch_warnings():
                    # an emptied call is reported in the JSON (empty_calls) and the summary line
                    warnings.filterwarnings("ignore", message=".*keeps no neuron of call")
                    pathway = pg.select_pathway(
                        exp.model, x, tgt, method, sparsity=s, threshold=threshold, **options
                    )
                attr = pg.pathway_gradient(exp.model, x, pathway)
                seconds = time.perf_counter() - t0
                layer = pathway.layer_sparsity()[0]
                rec.update(
                    kind="pathway_gradient",
                    threshold=threshold or ("per_layer" if method == "random" else "global"),
                    sparsity_requested=float(pathway.requested_sparsity[0]),
                    sparsity=float(pathway.sparsity[0]),
                    pathway_logit=_pathway_logit(exp.model, x, pathway),
                    full_logit=prediction["full_logit"],
                    # calls with every neuron pruned cut the pathway: its gradient is then 0
                    empty_calls=[n for n, v in zip(pathway.sites, layer.tolist()) if v >= 100.0],
                )
            else:
                attr = pg.explain(exp.model, x, method, tgt, **options)
                seconds = time.perf_counter() - t0
                rec["kind"] = "baseline"
            rec["seconds"] = round(seconds, 4)
            rec["options"] = options
            maps[label] = attr[0].detach().float().cpu().numpy()
            records[label] = rec
    return {"prediction": prediction, "maps": maps, "records": records}


# -------------------------------------------------------------------------------------- figures
def render_figure(
    image: torch.Tensor, result: dict, path: Path, *, title: str | None = None
) -> None:
    """Save a one-row figure: the input (with prediction) and one heat map per method."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    import pathwaygrad as pg

    labels = list(result["maps"])
    n = len(labels) + 1
    fig, axes = plt.subplots(1, n, figsize=(1.9 * n, 2.35), squeeze=False)
    axes = axes[0]
    pred = result["prediction"]
    axes[0].imshow(image.permute(1, 2, 0).clamp(0, 1).cpu().numpy(), interpolation="nearest")
    axes[0].set_title(f"{pred['name']}\np = {pred['probability']:.2f}", fontsize=9)
    for ax, label in zip(axes[1:], labels):
        amap = torch.from_numpy(result["maps"][label]).unsqueeze(0)
        heat = pg.reduce_channels(amap)[0].numpy()
        ax.imshow(heat, cmap="bwr", vmin=-1, vmax=1, interpolation="nearest")
        rec = result["records"][label]
        name = _LABELS.get(rec["method"], rec["method"])
        sub = ""
        if rec["kind"] == "pathway_gradient":
            sub = f"\n{rec['sparsity']:.1f}% pruned"
            if "@" in label:
                name = f"{name} s={rec['sparsity_requested']:g}"
        ax.set_title(name + sub, fontsize=8)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_outputs(
    out: Path, stem: str, source: str, image: torch.Tensor, result: dict, exp: Explainee, args
) -> dict:
    """Write ``<stem>.png``, ``<stem>.json`` and ``<stem>/<label>.npy``; return the JSON dict."""
    out.mkdir(parents=True, exist_ok=True)
    (out / stem).mkdir(exist_ok=True)
    methods = {}
    for label, amap in result["maps"].items():
        npy = Path(stem) / f"{label.replace('@', '_s')}.npy"
        np.save(out / npy, amap.astype(np.float32))
        methods[label] = {"map": str(npy), **result["records"][label]}
    figure = f"{stem}.png"
    title = f"{Path(source).name} - {exp.name}"
    render_figure(image, result, out / figure, title=title)
    summary = {
        "image": source,
        "model": exp.name,
        "weights": getattr(args, "weights", None),
        "input_shape": list(image.shape),
        "normalization": {"mean": list(exp.mean), "std": list(exp.std)},
        "prediction": result["prediction"],
        "figure": figure,
        "map_format": "float32 (C, H, W), attribution w.r.t. the normalised input, signed",
        "methods": methods,
    }
    (out / f"{stem}.json").write_text(json.dumps(summary, indent=2))
    return summary


def unique_stems(paths: list[str]) -> list[str]:
    """File stems, made unique by a numeric suffix."""
    seen: dict[str, int] = {}
    stems = []
    for p in paths:
        stem = Path(p).stem or "image"
        if stem in seen:
            seen[stem] += 1
            stem = f"{stem}-{seen[stem]}"
        else:
            seen[stem] = 0
        stems.append(stem)
    return stems


def check_sweep(methods: list[str], sparsities: list) -> None:
    import pathwaygrad as pg

    if len(sparsities) > 1:
        pathway = [m for m in methods if m in pg.PATHWAY_METHODS]
        if len(methods) != 1 or not pathway:
            raise UserError(
                "a sparsity sweep (several --sparsity values) draws one pathway method: "
                "pass exactly one, e.g. --methods neuron_mct"
            )


def check_counts(args) -> None:
    for name in ("steps", "ig_steps", "smoothgrad_samples", "dgr_iterations"):
        if getattr(args, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be >= 1")


def run(args) -> int:
    from pathwaygrad.data import load_image

    methods = parse_methods(args.methods)
    sparsities = parse_sparsity(args.sparsity)
    check_sweep(methods, sparsities)
    check_counts(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    for path in args.images:  # fail on a bad file before any work
        if not Path(path).is_file():
            raise UserError(f"image file not found: {path}")
    exp = prepare_model(
        args.model,
        args.weights,
        classes=args.classes,
        mean=args.mean,
        std=args.std,
        device=args.device,
    )
    target = resolve_target(args.target, exp.classes)
    if args.size is not None and args.size < 0:
        raise UserError(f"--size must be >= 0, got {args.size}")
    size = exp.input_size if args.size is None else (args.size or None)
    images = [
        load_image(
            p, size, channels=exp.channels, convert=args.convert_channels, crop=size is not None
        )
        for p in args.images
    ]
    out = Path(args.out)
    for path, stem, image in zip(args.images, unique_stems(args.images), images):
        t0 = time.perf_counter()
        result = explain_image(exp, image, methods, sparsities, target, args)
        write_outputs(out, stem, path, image, result, exp, args)
        pred = result["prediction"]
        print(
            f"{path}: {pred['name']} (p = {pred['probability']:.2f}), "
            f"{len(result['maps'])} maps in {time.perf_counter() - t0:.1f} s -> {out / stem}.png"
        )
        cut = [label for label, rec in result["records"].items() if rec.get("empty_calls")]
        if cut:
            print(
                f"  note: the pathway of {', '.join(cut)} keeps no neuron of some activation "
                "call, so its map is 0 there (see empty_calls in the JSON); lower the sparsity"
            )
    print(f"wrote {len(images)} figure(s) and JSON file(s) to {out}")
    return 0
