"""``pathwaygrad analyze overlap|fidelity|linearity|decode|all``: study pathways themselves.

- ``overlap``: Jaccard matrix between the methods' pathways and the share of dead neurons in each
  (overall and per activation call), paper section 3.1;
- ``fidelity``: the pathway network's target logit / probability beside the full network's;
- ``linearity``: L2 radius within which the pathway's on/off pattern holds (full network beside
  pathways) and the linearisation error, paper section 4;
- ``decode``: feature visualisation through each pathway and of its top neuron, section 3.2;
- ``all``: all four, sharing the pathways of each batch.

Only parses the arguments: the work is :func:`pathwaygrad.analysis.run_analysis` (settings from
:data:`pathwaygrad.presets.ANALYSIS`). Writes CSV + JSON tables and PNG figures into ``--out`` (a
run folder with ``manifest.json``; a rerun with the same settings resumes the finished batches).
``--preset quick`` with no ``--model`` / ``--data`` uses the pretrained CIFAR ResNet-20 and 200
CIFAR-10 test images from ``../shared`` with reduced settings (stated in every JSON under
``notes``).
"""

from __future__ import annotations

import argparse

from pathwaygrad.errors import UserError

HELP = "analyse pathways: overlap, dead neurons, fidelity, local linearity, decoding"
_KINDS = ("overlap", "fidelity", "linearity", "decode", "all")


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
    p.add_argument(
        "--weights",
        default=None,
        help="weights of --model: a file, 'shared' (the ../shared CIFAR-10 ResNets), 'demo', or "
        "a torchvision / timm weights name",
    )
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
        help="pathway methods separated by ';' (a ',' list works for plain names), each "
        "name[:key=value,key=value], e.g. 'neuron_mct;dgr:init=random,iterations=300'; "
        "dgr_ones / dgr_random are short forms. Default: the paper's six "
        "(neuron_intgrad;neuron_mct;dgr_ones;dgr_random;greedy;random; linearity: "
        "neuron_mct;random;dgr_ones;dgr_random)",
    )
    p.add_argument(
        "--sparsity",
        default=None,
        help="comma-separated sparsities (percent pruned); default 80,90,99",
    )
    p.add_argument(
        "--activations",
        default=None,
        help="activation kinds that hold neurons, comma-separated (relu,gelu,silu,...) or "
        "auto; unset: ReLU when the model calls it, else the elementwise activations it "
        "calls (a note says which)",
    )
    p.add_argument(
        "--out",
        default="analysis",
        help="output folder (a run folder: rerunning the same settings resumes it)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace another run's results in --out (without it: refuse)",
    )
    p.add_argument(
        "--preset",
        choices=("paper", "quick"),
        default="paper",
        help="settings: 'paper' (DGR 1000 iterations, Greedy step 1, ...) or "
        "'quick' (200 images, reduced DGR and Greedy schedules: overlap or fidelity take "
        "about 13 CPU-minutes, an estimated 7-13 minutes on 2 cores; see docs/commands/analyze.md)",
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
        help="pathways measured by 'linearity' (default neuron_mct;random;dgr_ones;"
        "dgr_random); the full network is always measured",
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


def _floats(text: str | None, name: str) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        vals = tuple(float(v) for v in str(text).split(",") if v.strip())
    except ValueError:
        raise UserError(f"--{name} takes comma-separated numbers, got {text!r}") from None
    if not vals:
        raise UserError(f"--{name} is empty")
    return vals


def run(args) -> int:
    import torch

    from pathwaygrad.analysis.run import analysis_config, load_data, run_config
    from pathwaygrad.cli.explain import activations
    from pathwaygrad.explainee import load_explainee

    if args.threads:
        torch.set_num_threads(args.threads)
    kinds = None if args.activations is None else activations(args.activations)
    model_name, weights = args.model, args.weights
    notes = []
    if model_name is None and weights is None:
        if args.preset != "quick":
            raise UserError("no --model given: pass --model/--weights (or use --preset quick)")
        model_name, weights = "resnet20", "shared"
        notes.append("model: pretrained CIFAR-10 ResNet-20 from ../shared/models/cifar10-resnet")
    if args.data is None and args.preset != "quick" and args.model is not None:
        raise UserError("no --data given: pass a dataset path (or use --preset quick)")
    options = dict(
        methods=args.methods,
        sparsities=args.sparsity,
        preset=args.preset,
        n_images=args.n_images,
        batch_size=args.batch_size,
        activations=kinds,
        dgr_iterations=args.dgr_iterations,
        dgr_lr=args.dgr_lr,
        greedy_step=args.greedy_step,
        intgrad_steps=args.intgrad_steps,
        linearity_methods=args.linearity_methods,
        linearity_sparsities=args.linearity_sparsity,
        linearity_images=args.linearity_images,
        directions=args.directions,
        radii=args.radii,
        rtol=args.rtol,
        float32=args.float32,
        decode_sparsity=args.decode_sparsity,
        decode_images=args.decode_images,
        decode_steps=args.decode_steps,
        seed=args.seed,
    )
    analysis_config(args.analysis, **options)  # every option checked before loading anything
    from pathwaygrad.runs import check_writable

    check_writable(args.out)
    net = load_explainee(
        model_name, weights, mean=_floats(args.mean, "mean"), std=_floats(args.std, "std")
    )
    data, data_desc = load_data(
        args.data, split=args.split, mean=net.mean, std=net.std, size=net.input_size
    )
    cfg = analysis_config(args.analysis, **options, mean=net.mean, std=net.std)
    cfg.notes[:0] = notes
    if hasattr(data, "subset"):
        data = data.subset(cfg.n_images, seed=cfg.seed)
    info = {"model": net.name, "weights": str(net.weights), "data": data_desc, "split": args.split}
    summaries = run_config(
        net.model,
        data,
        cfg,
        args.out,
        overwrite=args.overwrite,
        progress=not args.no_progress,
        info=info,
    )
    _print_summary(summaries, cfg)
    print(f"wrote {', '.join(summaries)} results to {args.out}")
    for n in cfg.notes:
        print(f"note: {n}")
    return 0


def _print_summary(summaries: dict, cfg) -> None:
    ov = summaries.get("overlap")
    if ov:
        for s in cfg.sparsities:
            d = ov[str(s)]
            print(f"\nsparsity {s:g}: Jaccard % (mean over {ov['n_examples']} images)")
            names = ov["display"]
            width = max(13, *(len(n) + 2 for n in names))
            first = max(16, *(len(n) + 1 for n in names))
            print(" " * first + "".join(f"{n:>{width}}" for n in names))
            for i, n in enumerate(names):
                row = "".join(
                    f"{100 * v:{width}.2f}" if v is not None else f"{'-':>{width}}"
                    for v in d["jaccard_mean"][i]
                )
                print(f"{n:<{first}}{row}")
            print(
                f"{'dead share %:':<{first}}"
                + "".join(
                    f"{100 * v:{width}.2f}" if v is not None else f"{'-':>{width}}"
                    for v in d["dead_share_mean"]
                )
            )
            print(
                f"{'real sparsity %:':<{first}}"
                + "".join(f"{v:{width}.2f}" for v in d["real_sparsity_mean"])
            )
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
