"""``pathwaygrad explain IMAGE...``: saliency maps of pathway gradient and the usual baselines.

Only parses the arguments: the work is :func:`pathwaygrad.explainee.load_explainee` and
:func:`pathwaygrad.explainee.explain_files`. Per image it writes into the run folder (``--out``, or
a fresh ``explanations/explain-DATE-TIME``; see :mod:`pathwaygrad.runs`):

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
from pathlib import Path

from pathwaygrad.errors import UserError

DEFAULT_METHODS = (
    "neuron_mct, neuron_intgrad, gradient, input_x_gradient, integrated_gradients, "
    "guided_backprop, grad_cam, smoothgrad"
)
HELP = "explain images: pathway gradient beside the usual saliency methods, saved as PNG + JSON"
DEFAULT_ROOT = "explanations"


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
        help="methods separated by ',' (or ';' when options follow a name after ':', e.g. "
        "'neuron_mct;ig=integrated_gradients:n_steps=20'): pathway methods (neuron_mct, "
        "neuron_intgrad, greedy, random, dgr, dead) and baselines (gradient, input_x_gradient, "
        "integrated_gradients, guided_backprop, grad_cam, smoothgrad)",
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
    p.add_argument(
        "images",
        nargs="+",
        metavar="IMAGE",
        help="image files (PNG, JPEG, ...), or skimage:NAME for a photo bundled with "
        "scikit-image (chelsea, coffee, rocket, astronaut)",
    )
    p.add_argument(
        "--model",
        default=None,
        help="model: resnet8, resnet20/32/44/56, vgg_small, vgg_tiny, package.module:factory, "
        "torchvision:NAME or timm:NAME (pip install 'pathwaygrad[vision]') (default: the name "
        "stored in --weights)",
    )
    p.add_argument(
        "--weights",
        default=None,
        help="weights: a file (state_dict or checkpoint); 'demo' (the bundled CIFAR-10 vgg_tiny); "
        "'shared' (the pretrained CIFAR-10 ResNet-20/32/44/56 of ../shared); for torchvision / "
        "timm models a weights name (IMAGENET1K_V2, DEFAULT; a timm tag; downloads once) "
        "(default: random initialisation, said in the figure's title)",
    )
    p.add_argument(
        "--out",
        default=None,
        help=f"output folder (default: a fresh folder under {DEFAULT_ROOT}, named by date and "
        "time); a folder holding another run is refused unless --overwrite",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the results of an earlier run in --out",
    )
    p.add_argument(
        "--size",
        type=int,
        default=None,
        help="resize images to SIZE x SIZE after a centre crop (default: the model's own "
        "preprocessing: 32 x 32 for the built-in models; torchvision / timm: their weights' "
        "resize, centre crop and normalisation)",
    )
    p.add_argument(
        "--activations",
        default="auto",
        help="kinds of activation calls that hold neurons, comma-separated (relu, gelu, silu, "
        "relu6, hardswish, ...); 'auto': ReLU if the model calls any, else the kinds it calls "
        "(printed)",
    )
    p.add_argument(
        "--classes",
        default=None,
        help="class names: comma-separated, or a text file with one per line (default: from the "
        "weights, CIFAR-10's names for 10 outputs, else numbers)",
    )
    p.add_argument(
        "--mean",
        default=None,
        help="per-channel normalisation mean, comma-separated (default: the model's)",
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


def floats(text: str | None, name: str) -> tuple[float, ...] | None:
    """``--mean 0.5,0.5,0.5`` -> a tuple of floats (None when not given)."""
    if text is None:
        return None
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise UserError(f"--{name} takes comma-separated numbers, got {text!r}") from None


def activations(text: str) -> str | tuple[str, ...]:
    """``--activations relu,gelu`` -> ("relu", "gelu"); ``auto`` stays "auto"."""
    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    if not kinds:
        raise UserError("--activations is empty: pass e.g. relu,gelu or auto")
    if kinds == ("auto",):
        return "auto"
    from pathwaygrad.sites import ACTIVATION_KINDS

    for k in kinds:
        if k not in ACTIVATION_KINDS:
            raise UserError(
                f"--activations: unknown kind {k!r}; choose from {', '.join(ACTIVATION_KINDS)} "
                "or auto"
            )
    return kinds


def check_counts(args) -> None:
    for name in ("steps", "ig_steps", "smoothgrad_samples", "dgr_iterations"):
        if getattr(args, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be >= 1")


def method_defaults(args) -> dict:
    """The method options set by flags: applied to every method whose schema has them."""
    return {
        "steps": args.steps,
        "n_steps": args.ig_steps,
        "nt_samples": args.smoothgrad_samples,
        "iterations": args.dgr_iterations,
        "seed": args.seed,
        "threshold": args.threshold,
    }


def parse_methods(text: str) -> list:
    """``--methods``: the method grammar of :mod:`pathwaygrad.specs`; names listed twice refused."""
    from pathwaygrad.specs import parse_methods as parse

    if not text.strip():
        raise UserError("--methods is empty")
    specs = parse(text)
    labels = [s.label for s in specs]
    if len(set(labels)) != len(labels):
        raise UserError(f"--methods lists a method twice: {text}")
    return specs


def print_result(source: str, result, seconds: float, figure: Path) -> None:
    pred = result.prediction
    print(
        f"{source}: {pred['name']} (p = {pred['probability']:.2f}), "
        f"{len(result.maps)} maps in {seconds:.1f} s -> {figure}"
    )
    cut = [label for label, rec in result.records.items() if rec.get("empty_calls")]
    if cut:
        print(
            f"  note: the pathway of {', '.join(cut)} keeps no neuron of some activation "
            "call, so its map is 0 there (see empty_calls in the JSON); lower the sparsity"
        )


def run(args) -> int:
    import torch

    from pathwaygrad.explainee import (
        SAMPLE_PREFIX,
        check_sweep,
        explain_files,
        load_explainee,
        parse_sparsities,
        resolve_target,
    )
    from pathwaygrad.runs import check_writable, default_run_dir, open_run

    methods = parse_methods(args.methods)
    sparsities = parse_sparsities(args.sparsity)
    check_sweep(methods, sparsities)
    check_counts(args)
    kinds = activations(args.activations)
    mean, std = floats(args.mean, "mean"), floats(args.std, "std")
    if args.size is not None and args.size < 1:
        raise UserError(
            f"--size must be a positive number of pixels, got {args.size}; omit it for the "
            "model's own input size"
        )
    if args.out is not None:
        check_writable(args.out)
    for path in args.images:  # a missing file or a folder fails before any work
        if str(path).startswith(SAMPLE_PREFIX):
            continue
        if not Path(path).exists():
            raise UserError(f"image file not found: {path}")
        if Path(path).is_dir():
            raise UserError(f"{path} is a folder, not an image file: pass the image files in it")
    if args.threads:
        torch.set_num_threads(args.threads)
    exp = load_explainee(
        args.model,
        args.weights,
        classes=args.classes,
        mean=mean,
        std=std,
        device=args.device,
    )
    target = resolve_target(args.target, exp.classes)
    exp.check_size(args.size)
    images = [exp.read_image(p, convert=args.convert_channels) for p in args.images]
    methods, unusable = exp.applicable_methods(methods, exp.prepare(images[0], args.size))
    del images  # every image readable: checked before the run folder is made
    if unusable and args.methods != DEFAULT_METHODS:
        raise UserError(
            f"{', '.join(unusable)} applies its rule at ReLU calls and {exp.name} calls no ReLU: "
            "drop it from --methods"
        )
    if unusable:
        print(f"note: {exp.name} calls no ReLU; leaving out {', '.join(unusable)} (a ReLU rule)")
    settings = {
        "images": [str(p) for p in args.images],
        "model": exp.name,
        "weights": exp.weights,
        "methods": [s.text for s in methods],
        "sparsity": sparsities,
        "target": target,
        "size": args.size,
        "activations": kinds,
        "classes": args.classes,
        "mean": list(exp.mean),
        "std": list(exp.std),
        "convert_channels": args.convert_channels,
        **method_defaults(args),
    }
    out = args.out if args.out is not None else default_run_dir(DEFAULT_ROOT, "explain")
    notes: set[str] = set()

    def report(source, result, seconds, figure):
        if result.activations_note and result.activations_note not in notes:
            notes.add(result.activations_note)
            print(f"note: {result.activations_note}")
        print_result(source, result, seconds, figure)

    with open_run(
        out, "explain", settings, overwrite=args.overwrite, info={"device": args.device}
    ) as run_folder:
        if not exp.pretrained:
            print(f"note: {exp.name} has random weights (pass --weights for trained ones)")
        explain_files(
            exp,
            args.images,
            run_folder.path,
            methods,
            sparsities,
            target,
            activations=kinds,
            defaults=method_defaults(args),
            size=args.size,
            convert=args.convert_channels,
            on_result=report,
        )
    print(f"wrote {len(args.images)} figure(s) and JSON file(s) to {run_folder.path}")
    return 0
