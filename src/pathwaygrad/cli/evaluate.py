"""``pathwaygrad evaluate roar|kar|perturbation|road|sanity``: the evaluation protocols in one command.

Writes into ``--out``: ``results.csv`` (one row per method x setting x repeat), ``summary.json``
(settings, methods, score directions, aggregate scores) and PNG plots. ROAR / KAR runs are
resumable: run the same command again after an interruption and finished cells are kept.

Presets (explicit options override them):

- ``quick`` (default; minutes on 2 CPU cores): the pretrained CIFAR-10 ResNet-20 of ``../shared``
  and a class-balanced subset of the CIFAR-10 test set (perturbation, ROAD, sanity); for ROAR / KAR
  a narrow ResNet-8 (widths 16/32/64) trained here for 4 epochs (batch 64) on 2,000 images.
- ``paper``: the paper's settings (section 3.4-3.6): ResNet-8 (64/128/256), 50 epochs, all of
  CIFAR-10, t = 10..90 %, 5 retrains per cell; 1,000 images for the sanity check and pixel
  perturbation. Many hours on a CPU: run the ROAR cells on more machines (see docs/evaluation.md).
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from pathlib import Path

from pathwaygrad.errors import UserError

HELP = "evaluate saliency methods: ROAR / KAR, LeRF / MoRF, ROAD, sanity checks"
PROTOCOLS = ("roar", "kar", "perturbation", "road", "sanity")

PAPER_METHODS = (
    "gradient;guided_backprop;grad_cam;input_x_gradient;integrated_gradients;"
    "neuron_mct;neuron_intgrad"
)
PRESETS = {
    "quick": {
        "methods": "gradient;grad_cam;neuron_mct",
        "n_images": {"perturbation": 256, "road": 128, "sanity": 16},
        "train_subset": 2000,
        "test_subset": 500,
        "epochs": 4,
        "train_batch_size": 64,
        "fractions": {
            "roar": (0.1, 0.5, 0.9),
            "kar": (0.1, 0.5, 0.9),
            "road": (0.1, 0.3, 0.5, 0.7, 0.9),
        },
        "repeats": 1,
        "roar_widths": (16, 32, 64),
        "granularity": "blocks",
    },
    "paper": {
        "methods": PAPER_METHODS,
        "n_images": {"perturbation": 1000, "road": 1000, "sanity": 1000},
        "train_subset": None,
        "test_subset": None,
        "epochs": 50,
        "train_batch_size": 256,
        "fractions": {
            "roar": (0.1, 0.3, 0.5, 0.7, 0.9),
            "kar": (0.1, 0.3, 0.5, 0.7, 0.9),
            "road": tuple(round(0.1 * i, 1) for i in range(1, 10)),
        },
        "repeats": 5,
        "roar_widths": None,
        "granularity": "blocks",
    },
}


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    pass


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate", help=HELP, description=__doc__, formatter_class=_Formatter
    )
    p.add_argument("protocol", choices=PROTOCOLS, help="which protocol to run")
    p.add_argument("--out", required=True, help="output folder (results.csv, summary.json, PNGs)")
    p.add_argument("--preset", choices=tuple(PRESETS), default="quick", help="settings bundle")
    p.add_argument(
        "--model",
        default=None,
        help="model: resnet8, resnet20/32/44/56, vgg_small, package.module:factory, ... "
        "(default: pretrained ResNet-20 of ../shared; ROAR/KAR: ResNet-8, trained here)",
    )
    p.add_argument(
        "--weights",
        default=None,
        help="weights file for --model (ROAR/KAR: the model that explains)",
    )
    p.add_argument(
        "--data",
        default=None,
        help="CIFAR-10 (cifar-10-batches-py folder, ImageFolder tree with train/ test/, or .tar.gz); "
        "default ../shared/data/cifar10-jpeg.tar.gz",
    )
    p.add_argument(
        "--methods",
        default=None,
        help="';'-separated methods, each 'name' or 'name:option=value,...' or 'label=name:...', "
        "e.g. 'gradient;grad_cam;neuron_mct:sparsity=90'; 'random_ranking' and 'edge' are "
        "controls (default: the preset's)",
    )
    p.add_argument("--n-images", type=int, default=None, help="images (perturbation, road, sanity)")
    p.add_argument("--fractions", default=None, help="comma-separated percent, e.g. 10,30,50")
    p.add_argument(
        "--rank-by",
        choices=("max", "abs"),
        default="max",
        help="pixel ranking: max over channels (paper) or max |value|",
    )
    p.add_argument(
        "--seed", type=int, default=0, help="seed (ties, random ranking, noise, training)"
    )
    p.add_argument("--batch-size", type=int, default=64, help="images per explanation batch")
    p.add_argument("--device", default=None, help="torch device (default: cpu)")
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch intra-op threads of this process (default: torch's); 1 is often faster for "
        "small CIFAR models on a busy machine",
    )
    g = p.add_argument_group("ROAR / KAR")
    g.add_argument("--epochs", type=int, default=None, help="epochs per retrain")
    g.add_argument(
        "--repeats", type=int, default=None, help="retrains per cell (seeds seed..seed+n-1)"
    )
    g.add_argument(
        "--train-subset", type=int, default=None, help="class-balanced training images (0 = all)"
    )
    g.add_argument(
        "--test-subset", type=int, default=None, help="class-balanced test images (0 = all)"
    )
    g.add_argument(
        "--target",
        choices=("predicted", "label"),
        default="predicted",
        help="class each map explains",
    )
    g.add_argument("--no-random", action="store_true", help="skip the random-ranking baseline")
    g.add_argument(
        "--executor",
        choices=("local", "sequential"),
        default="local",
        help="run cells in local worker processes or one after the other",
    )
    g.add_argument(
        "--workers", type=int, default=None, help="worker processes (default: CPU cores)"
    )
    g = p.add_argument_group("sanity")
    g.add_argument("--mode", choices=("cascading", "independent"), default="cascading")
    g.add_argument(
        "--init",
        choices=("paper", "default"),
        default="paper",
        help="paper: N(0, 0.1) for every parameter; default: reset_parameters() (Quantus)",
    )
    g.add_argument("--granularity", choices=("blocks", "layers"), default=None)
    g = p.add_argument_group("perturbation / road")
    g.add_argument("--no-curves", action="store_true", help="perturbation: skip deletion/insertion")
    g.add_argument("--noise", type=float, default=0.01, help="ROAD imputation noise (std)")
    p.set_defaults(func=run)


# ------------------------------------------------------------------------------------ helpers
def _fractions(text: str | None, default) -> tuple[float, ...]:
    if not text:
        return tuple(default)
    try:
        values = [float(v) / 100.0 for v in text.split(",") if v.strip()]
    except ValueError:
        raise UserError(f"--fractions takes comma-separated percentages, got {text!r}") from None
    if not values or any(not 0 < v < 1 for v in values):
        raise UserError(f"--fractions must be percentages strictly between 0 and 100, got {text!r}")
    return tuple(values)


def _pretrained_resnet20() -> Path:
    from pathwaygrad.data import shared_dir

    shared = shared_dir()
    files = sorted((shared / "models" / "cifar10-resnet").glob("resnet20-*.th")) if shared else []
    if not files:
        raise UserError(
            "no --model given and the pretrained ResNet-20 (../shared/models/cifar10-resnet) is "
            "not here: pass --model and --weights"
        )
    return files[0]


def _load_trained_model(args):
    from pathwaygrad.models import load_model

    if args.model is None:
        if args.weights is not None:
            raise UserError("--weights needs --model (which architecture the weights are for)")
        return load_model("resnet20", _pretrained_resnet20()), "resnet20 (pretrained, ../shared)"
    if args.weights is None:
        print(f"warning: --model {args.model} without --weights: evaluating an untrained model")
    return load_model(args.model, args.weights), f"{args.model} ({args.weights or 'untrained'})"


def _dataset(args, split: str, spec: str | None):
    from pathwaygrad.data import load_cifar10
    from pathwaygrad.models import model_info

    info = model_info(spec or "resnet20")
    return load_cifar10(args.data, split, mean=info.mean, std=info.std)


def _subset(ds, n: int | None, seed: int):
    if not n:
        return ds
    balanced = n >= len(getattr(ds, "classes", ())) and n % max(1, len(ds.classes)) == 0
    return ds.subset(n, seed=seed, per_class=balanced)


def _images(args, preset, spec):
    import numpy as np

    n = args.n_images or preset["n_images"][args.protocol]
    ds = _subset(_dataset(args, "test", spec), n, args.seed)
    x, y = ds.get_batch(np.arange(len(ds)))
    return x, y


def _print_rows(rows, columns) -> None:
    print("  ".join(f"{c:>14}" for c in columns))
    for r in rows:
        cells = []
        for c in columns:
            v = r.get(c)
            cells.append(f"{v:>14.4f}" if isinstance(v, float) else f"{str(v)[:14]:>14}")
        print("  ".join(cells))


# ---------------------------------------------------------------------------------- protocols
def _run_roar(args, preset, out: Path) -> None:
    from pathwaygrad.evaluation import plots
    from pathwaygrad.evaluation.roar import remove_and_retrain
    from pathwaygrad.models import ResNet8, load_model

    spec = args.model or "resnet8"
    if args.model is None and preset["roar_widths"] is not None:
        factory = functools.partial(ResNet8, widths=tuple(preset["roar_widths"]))
        arch = f"ResNet-8 widths {preset['roar_widths']}"
    else:
        factory = functools.partial(load_model, spec)
        arch = spec
    explain_model = load_model(spec, args.weights) if args.weights else None
    train_n = preset["train_subset"] if args.train_subset is None else args.train_subset
    test_n = preset["test_subset"] if args.test_subset is None else args.test_subset
    train = _subset(_dataset(args, "train", spec), train_n, args.seed)
    test = _subset(_dataset(args, "test", spec), test_n, args.seed)
    epochs = args.epochs or preset["epochs"]
    print(
        f"{args.protocol.upper()}: {arch}, {len(train)} train / {len(test)} test images, "
        f"{epochs} epochs per retrain -> {out}"
    )
    table = remove_and_retrain(
        factory,
        train,
        test,
        args.methods or preset["methods"],
        out_dir=out,
        modes=(args.protocol,),
        fractions=_fractions(args.fractions, preset["fractions"][args.protocol]),
        repeats=args.repeats or preset["repeats"],
        explain_model=explain_model,
        include_random=not args.no_random,
        rank_by=args.rank_by,
        target=args.target,
        train_kwargs={"epochs": epochs, "batch_size": preset["train_batch_size"]},
        executor=args.executor,
        workers=args.workers,
        device=args.device,
        map_batch_size=args.batch_size,
        seed=args.seed,
    )
    plots.plot_roar(table, out / f"{args.protocol}.png")
    _print_rows(
        table.summary["cells"],
        ["protocol", "method", "fraction", "accuracy_mean", "accuracy_std", "n"],
    )


def _run_perturbation(args, preset, out: Path) -> None:
    from pathwaygrad.evaluation import plots
    from pathwaygrad.evaluation._results import write_csv, write_json
    from pathwaygrad.evaluation.perturbation import (
        DEFAULT_FRACTIONS,
        deletion_insertion,
        pixel_perturbation,
    )

    model, desc = _load_trained_model(args)
    model.to(args.device or "cpu")
    x, _ = _images(args, preset, args.model)
    methods = args.methods or preset["methods"]
    fr = _fractions(args.fractions, DEFAULT_FRACTIONS) if args.fractions else DEFAULT_FRACTIONS
    table = pixel_perturbation(
        model,
        x,
        methods,
        fractions=fr,
        rank_by=args.rank_by,
        batch_size=args.batch_size,
        seed=args.seed,
    )
    table.meta["model"] = desc
    table.save(out)
    plots.plot_perturbation(table, out / "perturbation.png")
    summary = {**table.meta, "summary": table.summary}
    if not args.no_curves:
        curves = deletion_insertion(
            model, x, methods, rank_by=args.rank_by, batch_size=args.batch_size, seed=args.seed
        )
        write_csv(out / "deletion_insertion.csv", curves)
        plots.plot_deletion_insertion(curves, out / "deletion_insertion.png")
        summary["deletion_insertion"] = {**curves.meta, "summary": curves.summary}
    write_json(out / "summary.json", summary)
    rows = [{"method": m, "order": o, **v} for m, d in table.summary.items() for o, v in d.items()]
    _print_rows(rows, ["method", "order", "drop_at_10", "area_0_10", "area"])


def _run_road(args, preset, out: Path) -> None:
    from pathwaygrad.evaluation import plots
    from pathwaygrad.evaluation.road import road

    model, desc = _load_trained_model(args)
    model.to(args.device or "cpu")
    x, y = _images(args, preset, args.model)
    table = road(
        model,
        x,
        args.methods or preset["methods"],
        labels=y,
        fractions=_fractions(args.fractions, preset["fractions"]["road"]),
        noise=args.noise,
        rank_by=args.rank_by,
        batch_size=args.batch_size,
        seed=args.seed,
    )
    table.meta["model"] = desc
    table.save(out)
    plots.plot_road(table, out / "road.png")
    rows = [{"method": m, "order": o, **v} for m, d in table.summary.items() for o, v in d.items()]
    _print_rows(rows, ["method", "order", "area", "mean_accuracy"])


def _run_sanity(args, preset, out: Path) -> None:
    from pathwaygrad.evaluation import plots
    from pathwaygrad.evaluation.sanity import sanity_check

    model, desc = _load_trained_model(args)
    model.to(args.device or "cpu")
    x, _ = _images(args, preset, args.model)
    table = sanity_check(
        model,
        x,
        args.methods or preset["methods"],
        mode=args.mode,
        init=args.init,
        granularity=args.granularity or preset["granularity"],
        batch_size=args.batch_size,
        seed=args.seed,
    )
    table.meta["model"] = desc
    table.save(out)
    plots.plot_sanity(table, out / "sanity.png")
    _print_rows(list(table), ["method", "layer", "spearman", "spearman_abs", "ssim", "hog"])


def run(args) -> int:
    preset = PRESETS[args.preset]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.n_images is not None and args.n_images < 1:
        raise UserError("--n-images must be >= 1")
    _fractions(args.fractions, ())  # validate before any data is loaded
    if args.threads is not None:
        if args.threads < 1:
            raise UserError("--threads must be >= 1")
        import torch

        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    runner = {
        "roar": _run_roar,
        "kar": _run_roar,
        "perturbation": _run_perturbation,
        "road": _run_road,
        "sanity": _run_sanity,
    }[args.protocol]
    runner(args, preset, out)
    took = time.perf_counter() - t0
    (out / "command.json").write_text(
        json.dumps(
            {
                "args": {k: v for k, v in vars(args).items() if k != "func"},
                "seconds": round(took, 1),
            },
            indent=2,
            default=str,
        )
    )
    print(f"wrote {out}/results.csv, summary.json and plots in {took:.0f} s")
    return 0
