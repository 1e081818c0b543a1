"""``pathwaygrad analyze overlap|fidelity|linearity|decode|all``: study pathways themselves.

- ``overlap``: Jaccard matrix between the methods' pathways and the share of dead neurons in each
  (overall and per activation call), paper section 3.1;
- ``fidelity``: the pathway network's target logit / probability beside the full network's;
- ``linearity``: L2 radius within which the pathway's on/off pattern holds (full network beside
  pathways) and the linearisation error, paper section 4;
- ``decode``: feature visualisation through each pathway and of its top neuron, section 3.2;
- ``all``: all four, sharing the pathways of each batch.

Writes CSV + JSON tables and PNG figures into ``--out``. ``--preset quick`` with no ``--model`` /
``--data`` uses the pretrained CIFAR ResNet-20 and 200 CIFAR-10 test images from ``../shared``
with reduced settings (stated in every JSON under ``notes``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pathwaygrad.errors import UserError

HELP = "analyse pathways: overlap, dead neurons, fidelity, local linearity, decoding"
_KINDS = ("overlap", "fidelity", "linearity", "decode", "all")
_DEFAULT_METHODS = "neuron_intgrad,neuron_mct,dgr_ones,dgr_random,greedy,random"
_LINEARITY_METHODS = "neuron_mct,random,dgr_ones,dgr_random"

# Settings of each preset; explicit options override them.
PRESETS = {
    "quick": {
        "n_images": 200,
        "dgr_iterations": 100,
        "dgr_lr": 0.1,
        "greedy_step": 3.0,
        "linearity_images": 20,
        "linearity_sparsity": "90",
        "directions": 8,
        "rtol": 0.05,
        "decode_steps": 128,
        "decode_sparsity": 90.0,
        "decode_images": 3,
    },
    "paper": {
        "n_images": 1000,
        "dgr_iterations": 1000,
        "dgr_lr": 0.01,
        "greedy_step": 1.0,
        "linearity_images": 100,
        "linearity_sparsity": None,
        "directions": 32,
        "rtol": 0.02,
        "decode_steps": 512,
        "decode_sparsity": 98.0,
        "decode_images": 4,
    },
}


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "analyze",
        help=HELP,
        description=HELP + ". Writes CSV + JSON tables and PNG figures.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("analysis", choices=_KINDS, help="which analysis ('all': every one)")
    p.add_argument(
        "--model",
        default=None,
        help="model (resnet20, ..., package.module:factory, torchvision:NAME); "
        "with --preset quick and no --model: the pretrained CIFAR ResNet-20",
    )
    p.add_argument("--weights", default=None, help="weights file of --model")
    p.add_argument(
        "--data",
        default=None,
        help="CIFAR-10 (cifar-10-batches-py folder, ImageFolder tree or archive) or "
        "any ImageFolder tree; with --preset quick and no --data: ../shared CIFAR-10",
    )
    p.add_argument("--split", default="test", help="CIFAR-10 split")
    p.add_argument(
        "--n-images",
        type=int,
        default=None,
        help="images analysed (a seeded random subset; preset: quick 200, paper 1000)",
    )
    p.add_argument("--batch-size", type=int, default=50, help="images per batch")
    p.add_argument(
        "--methods",
        default=None,
        help="comma-separated pathway methods; options as name:key=value, e.g. "
        "dgr:init=random:iterations=300; dgr_ones / dgr_random are short forms. "
        f"Default: {_DEFAULT_METHODS} (linearity: {_LINEARITY_METHODS})",
    )
    p.add_argument(
        "--sparsity",
        default=None,
        help="comma-separated sparsities (percent pruned); default 80,90,99",
    )
    p.add_argument("--out", default="analysis", help="output folder")
    p.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default="paper",
        help="settings: 'paper' (DGR 1000 iterations, Greedy step 1, ...) or "
        "'quick' (fits ~10 minutes per analysis on 2 CPU cores; reduced DGR and "
        "Greedy schedules, see docs/analysis.md)",
    )
    p.add_argument("--dgr-iterations", type=int, default=None, help="DGR iterations")
    p.add_argument(
        "--dgr-lr",
        type=float,
        default=None,
        help="DGR learning rate (quick: 0.1 with 100 iterations, the paper's lr x iterations)",
    )
    p.add_argument(
        "--greedy-step",
        type=float,
        default=None,
        help="Greedy: percent per iteration (adjusted to end exactly at each sparsity)",
    )
    p.add_argument("--intgrad-steps", type=int, default=10, help="NeuronIntGrad alpha steps")
    p.add_argument(
        "--linearity-methods",
        default=None,
        help=f"pathways measured by 'linearity' (default {_LINEARITY_METHODS}); the "
        "full network is always measured",
    )
    p.add_argument(
        "--linearity-sparsity",
        default=None,
        help="sparsities for linearity (quick: 90; paper: --sparsity)",
    )
    p.add_argument(
        "--linearity-images",
        type=int,
        default=None,
        help="images measured by linearity (the first of the analysed ones)",
    )
    p.add_argument(
        "--directions",
        type=int,
        default=None,
        help="random directions per image (plus the gradient direction)",
    )
    p.add_argument(
        "--radii",
        default="0.001,0.01,0.1,1",
        help="step lengths (L2, input space) of the linearisation error",
    )
    p.add_argument("--rtol", type=float, default=None, help="relative precision of the radius")
    p.add_argument(
        "--float32",
        action="store_true",
        help="measure linearity in float32 (default float64: rounding flips "
        "near-zero neurons in float32)",
    )
    p.add_argument(
        "--decode-sparsity",
        type=float,
        default=None,
        help="sparsity of the decoded pathways (paper 98; quick 90)",
    )
    p.add_argument("--decode-images", type=int, default=None, help="images decoded")
    p.add_argument("--decode-steps", type=int, default=None, help="optimisation steps")
    p.add_argument("--mean", default=None, help="normalisation mean (None: the model's)")
    p.add_argument("--std", default=None, help="normalisation std (None: the model's)")
    p.add_argument("--seed", type=int, default=0, help="seed (image subset, Random, DGR, ...)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=run)


def _floats(text: str, name: str) -> list[float]:
    try:
        vals = [float(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise UserError(f"--{name} takes comma-separated numbers, got {text!r}") from None
    if not vals:
        raise UserError(f"--{name} is empty")
    return vals


def _sparsities(text: str, name: str = "sparsity") -> list[float]:
    vals = _floats(text, name)
    for v in vals:
        if not 0 <= v < 100:
            raise UserError(f"--{name} values are percent pruned in [0, 100), got {v}")
    return vals


def _shared_weights() -> Path:
    from pathwaygrad.data import shared_dir

    shared = shared_dir()
    found = sorted((shared / "models" / "cifar10-resnet").glob("resnet20-*.th")) if shared else []
    if not found:
        raise UserError(
            "pretrained ResNet-20 not found in ../shared/models/cifar10-resnet: "
            "pass --model and --weights"
        )
    return found[0]


def _load_data(args, net):
    from pathwaygrad.data import find_cifar10, load_cifar10, load_image_folder

    if args.data is None:
        if args.preset != "quick" and args.model is not None:
            raise UserError("no --data given: pass a dataset path (or use --preset quick)")
        ds = load_cifar10(None, args.split, mean=net.mean, std=net.std)
        return ds, "CIFAR-10 (../shared/data)"
    try:
        find_cifar10(args.data)
        ds = load_cifar10(args.data, args.split, mean=net.mean, std=net.std)
        return ds, f"CIFAR-10 {args.data}"
    except UserError:
        ds = load_image_folder(args.data, size=net.input_size, mean=net.mean, std=net.std)
        return ds, f"image folder {args.data}"


def _setting(args, name):
    val = getattr(args, name)
    return PRESETS[args.preset][name] if val is None else val


def run(args) -> int:
    import torch

    from pathwaygrad.analysis._run import RunConfig, run_analyses
    from pathwaygrad.analysis._specs import apply_defaults, parse_methods
    from pathwaygrad.cli.explain import prepare_model

    if args.threads:
        torch.set_num_threads(args.threads)
    notes = []
    model_name, weights = args.model, args.weights
    if model_name is None and weights is None:
        if args.preset != "quick":
            raise UserError("no --model given: pass --model/--weights (or use --preset quick)")
        model_name, weights = "resnet20", str(_shared_weights())
        notes.append("model: pretrained CIFAR-10 ResNet-20 from ../shared/models/cifar10-resnet")
    net = prepare_model(model_name, weights, mean=args.mean, std=args.std)
    data, data_desc = _load_data(args, net)
    n_images = _setting(args, "n_images")
    if n_images < 1:
        raise UserError("--n-images must be >= 1")
    data = data.subset(n_images, seed=args.seed) if hasattr(data, "subset") else data
    kind = args.analysis
    analyses = ("overlap", "fidelity", "linearity", "decode") if kind == "all" else (kind,)

    default_methods = _LINEARITY_METHODS if kind == "linearity" else _DEFAULT_METHODS
    specs = parse_methods(args.methods or default_methods)
    if args.linearity_methods:
        lin_specs = parse_methods(args.linearity_methods)
    elif args.methods:
        lin_specs = [s for s in specs if s.method in ("neuron_mct", "random", "dgr")] or specs
    else:
        lin_specs = parse_methods(_LINEARITY_METHODS)
    if "linearity" in analyses:
        known = {s.label for s in specs}
        specs += [s for s in lin_specs if s.label not in known]
    sparsities = _sparsities(args.sparsity or "80,90,99")
    lin_text = (
        args.linearity_sparsity
        or (args.sparsity if kind == "linearity" and args.sparsity else None)
        or PRESETS[args.preset]["linearity_sparsity"]
    )
    lin_sps = _sparsities(lin_text, "linearity-sparsity") if lin_text else sparsities
    dec_sp = args.decode_sparsity
    if dec_sp is None:
        dec_sp = (
            sparsities[0]
            if kind == "decode" and args.sparsity
            else PRESETS[args.preset]["decode_sparsity"]
        )

    dgr_its, dgr_lr = _setting(args, "dgr_iterations"), _setting(args, "dgr_lr")
    greedy_step = _setting(args, "greedy_step")
    defaults = {
        "dgr": {"iterations": dgr_its, "lr": dgr_lr, "seed": args.seed},
        "greedy": {"step": greedy_step},
        "neuron_intgrad": {"steps": args.intgrad_steps},
        "random": {"seed": args.seed},
    }
    specs = apply_defaults(specs, defaults)
    notes += _method_notes(specs)
    lin_images = min(_setting(args, "linearity_images"), n_images)
    if "linearity" in analyses and lin_images < n_images:
        notes.append(f"linearity measured on the first {lin_images} of the {n_images} images")
    directions = _setting(args, "directions")
    rtol = _setting(args, "rtol")
    lin_opts = {
        "n_random": directions,
        "radii": _floats(args.radii, "radii"),
        "radius_multiples": (0.5, 2.0),
        "t_min": 1e-8,
        "t_max": 1e2,
        "rtol": rtol,
        "seed": args.seed,
        "dtype": torch.float32 if args.float32 else torch.float64,
    }
    dec_steps = _setting(args, "decode_steps")
    if "decode" in analyses and dec_sp != 98.0:
        notes.append(f"decoding at sparsity {dec_sp:g} (paper: 98)")
    cfg = RunConfig(
        analyses=analyses,
        specs=specs,
        sparsities=sparsities,
        n_images=n_images,
        batch_size=args.batch_size,
        linearity_labels=[s.label for s in lin_specs],
        linearity_sparsities=lin_sps,
        linearity_images=lin_images,
        linearity_options=lin_opts,
        decode_sparsity=float(dec_sp),
        decode_images=_setting(args, "decode_images"),
        decode_options={"steps": dec_steps, "seed": args.seed, "mean": net.mean, "std": net.std},
        mean=net.mean,
        std=net.std,
        progress=not args.no_progress,
        meta={
            "model": net.name,
            "weights": weights,
            "data": data_desc,
            "split": args.split,
            "seed": args.seed,
            "preset": args.preset,
            "notes": notes,
            "linearity": {k: (str(v) if k == "dtype" else v) for k, v in lin_opts.items()},
        },
    )
    summaries = run_analyses(net.model, data, cfg, args.out)
    _print_summary(summaries, cfg)
    print(f"wrote {', '.join(summaries)} results to {args.out}")
    for n in notes:
        print(f"note: {n}")
    return 0


def _method_notes(specs) -> list[str]:
    """Say where a method ran with settings other than the paper's."""
    notes = []
    for s in specs:
        kw = s.kwargs
        if s.method == "dgr":
            its, lr = kw.get("iterations", 1000), kw.get("lr", 0.01)
            if (its, lr) != (1000, 0.01):
                same = abs(its * lr - 10.0) < 1e-9
                notes.append(
                    f"{s.display}: {its} iterations at lr {lr:g} (paper: 1000 at lr 0.01)"
                    + (
                        "; lr x iterations kept at the paper's 10 so gates travel as far"
                        if same
                        else ""
                    )
                )
        if s.method == "greedy" and float(kw.get("step", 1.0)) != 1.0:
            notes.append(
                f"{s.display}: about {float(kw['step']):g} percentile points pruned per "
                "iteration (paper: 1), the step adjusted to end exactly at each sparsity"
            )
        if s.method == "neuron_intgrad" and kw.get("steps", 10) != 10:
            notes.append(f"{s.display}: {kw['steps']} alpha steps (paper: 10)")
    return notes


def _print_summary(summaries: dict, cfg) -> None:
    ov = summaries.get("overlap")
    if ov:
        for s in cfg.sparsities:
            d = ov[str(s)]
            print(f"\nsparsity {s:g}: Jaccard % (mean over {ov['n_examples']} images)")
            names = ov["display"]
            print(" " * 16 + "".join(f"{n[:12]:>13}" for n in names))
            for i, n in enumerate(names):
                row = "".join(
                    f"{100 * v:13.2f}" if v is not None else f"{'-':>13}"
                    for v in d["jaccard_mean"][i]
                )
                print(f"{n[:15]:<16}{row}")
            print(
                "dead share %:   "
                + "".join(
                    f"{100 * v:13.2f}" if v is not None else f"{'-':>13}"
                    for v in d["dead_share_mean"]
                )
            )
            print("real sparsity %:" + "".join(f"{v:13.2f}" for v in d["real_sparsity_mean"]))
    li = summaries.get("linearity")
    if li:
        print("\nlocal linearity (median over images of the per-image radius, L2):")

        def g(v):
            return "-" if v is None else f"{v:.3g}"

        for r in li["rows"]:
            print(
                f"  {r['pathway']:<20} s={r['sparsity']:<5g} min {g(r['radius_min_median'])}"
                f"  median {g(r['radius_median_median'])}  grad {g(r['radius_grad_median'])}"
            )
