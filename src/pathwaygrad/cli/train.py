"""``pathwaygrad train``: train a CIFAR-10 (or any ImageFolder) classifier, resumably.

Writes to ``--out``: ``manifest.json`` (command, settings, versions, status; see
:mod:`pathwaygrad.runs`), ``last.pt`` (full checkpoint, every epoch), ``best.pt`` (best-validation
weights), ``weights.pt`` (final weights + model name, classes, normalisation, test accuracy; what
``explain --weights`` takes), and ``result.json`` (settings, history and test accuracy), all atomically.

A run is keyed by every setting that changes the trained weights (model, the data's content, subsets,
validation share, batch size, learning-rate schedule, weight decay, augmentation, seed), not by
``--epochs``: rerunning with the same settings and more epochs continues the run. Other settings in a
folder holding a run are refused (``--overwrite`` starts afresh).
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from torch.utils.data import Subset

from pathwaygrad.cli.explain import HelpFormatter
from pathwaygrad.errors import UserError

HELP = "train a classifier (ResNet-8, small VGG, CIFAR ResNets, or your own) on CIFAR-10"


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help=HELP,
        description=HELP
        + ". Checkpoints after every epoch into --out and resumes from it when run again with the "
        "same settings (--epochs may grow); other settings are refused unless --overwrite.",
        formatter_class=HelpFormatter,
    )
    p.add_argument(
        "--model",
        default="resnet8",
        help="model: resnet8, resnet20/32/44/56, vgg_small, vgg_tiny, or package.module:factory",
    )
    p.add_argument(
        "--data",
        default=None,
        help="CIFAR-10 as a cifar-10-batches-py folder, an ImageFolder tree with train/ and test/, "
        "or a .tar.gz of either (default: ../shared/data/cifar10-jpeg.tar.gz, unpacked into "
        "the cache folder)",
    )
    p.add_argument(
        "--out", required=True, help="output folder (checkpoints, weights, result); required"
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace what --out holds (another run, or a run with other settings) and start afresh",
    )
    p.add_argument(
        "--epochs",
        type=int,
        default=50,
        help="number of epochs (more epochs with the same other settings continue a run)",
    )
    p.add_argument("--batch-size", type=int, default=256, help="batch size")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    p.add_argument("--weight-decay", type=float, default=1e-4, help="Adam weight decay")
    p.add_argument(
        "--lr-step",
        type=int,
        default=10,
        help="multiply the learning rate by --lr-gamma every N epochs",
    )
    p.add_argument("--lr-gamma", type=float, default=0.5, help="factor applied every --lr-step")
    p.add_argument(
        "--val-fraction",
        type=float,
        default=0.125,
        help="share of the training split held out for validation (best epoch restored); 0 = none",
    )
    p.add_argument(
        "--train-subset",
        type=int,
        default=None,
        help="use only N training images (quick runs; default: all)",
    )
    p.add_argument(
        "--test-subset",
        type=int,
        default=None,
        help="evaluate on N test images (quick runs; default: all)",
    )
    p.add_argument(
        "--no-augment", action="store_true", help="train without the flip + crop augmentation"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the initialisation and batch order")
    p.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)"
    )
    p.add_argument(
        "--device",
        default=None,
        help="torch device, e.g. cpu or cuda (default: the CPU)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar or per-epoch lines")
    p.set_defaults(func=run)


def _check(args) -> None:
    for name in ("epochs", "batch_size", "lr_step"):
        value = getattr(args, name)
        if value < (0 if name == "epochs" else 1):
            raise UserError(f"--{name.replace('_', '-')} must be positive, got {value}")
    if args.lr <= 0:
        raise UserError(f"--lr must be positive, got {args.lr}")
    if not 0 <= args.val_fraction < 1:
        raise UserError(f"--val-fraction must lie in [0, 1), got {args.val_fraction}")
    for name in ("train_subset", "test_subset"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UserError(f"--{name.replace('_', '-')} must be >= 1, got {value}")


def _settings(args, train, test) -> dict:
    """Everything that changes the trained weights (the run's key); not --epochs, threads, device."""
    return {
        "model": args.model,
        "train_data": train.fingerprint(),
        "test_data": test.fingerprint(),
        "train_subset": args.train_subset,
        "test_subset": args.test_subset,
        "val_fraction": args.val_fraction,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "weight_decay": args.weight_decay,
        "lr_step": args.lr_step,
        "lr_gamma": args.lr_gamma,
        "augment": not args.no_augment,
        "seed": args.seed,
    }


def _check_epochs(out: Path, settings: dict, epochs: int) -> None:
    """Refuse --epochs below what the run to be resumed has already trained (before any work)."""
    from pathwaygrad.runs import read_manifest, settings_key
    from pathwaygrad.training import LAST_CHECKPOINT, load_checkpoint

    old = read_manifest(out)
    last = out / LAST_CHECKPOINT
    if old is None or old.get("command") != "train" or not last.is_file():
        return
    if old.get("settings_key") != settings_key(settings):
        return  # open_run refuses it with its own message
    done = int(load_checkpoint(last)["epoch"])
    if done > epochs:
        raise UserError(
            f"{out} holds a `train` run already trained for {done} epochs, more than --epochs "
            f"{epochs}: pass --epochs {done} or more to continue it, --overwrite to start afresh, "
            "or choose another --out"
        )


def _remove_unmanaged_checkpoints(out: Path) -> None:
    """--overwrite on a folder of a train run older than manifests: its checkpoints must not resume."""
    from pathwaygrad.runs import read_manifest
    from pathwaygrad.training import BEST_WEIGHTS, LAST_CHECKPOINT

    if out.is_dir() and read_manifest(out) is None:
        for name in (LAST_CHECKPOINT, BEST_WEIGHTS, "weights.pt", "result.json"):
            (out / name).unlink(missing_ok=True)


def run(args) -> int:
    from pathwaygrad._io import save_torch, write_json
    from pathwaygrad.data import ArrayImageDataset, load_cifar10
    from pathwaygrad.models import load_model, model_info
    from pathwaygrad.runs import check_writable, open_run
    from pathwaygrad.training import evaluate_accuracy, train_classifier, train_val_split

    _check(args)
    out = check_writable(args.out)
    if args.threads:
        torch.set_num_threads(args.threads)
    info = model_info(args.model)
    progress = not args.quiet
    train = load_cifar10(args.data, "train", mean=info.mean, std=info.std, progress=progress)
    test = load_cifar10(args.data, "test", mean=info.mean, std=info.std, progress=progress)
    if args.train_subset:
        train = train.subset(args.train_subset, seed=args.seed)
    if args.test_subset:
        test = test.subset(args.test_subset, seed=args.seed, per_class=True)
    settings = _settings(args, train, test)
    data_name = str(args.data) if args.data else "../shared/data/cifar10-jpeg.tar.gz"
    if args.overwrite:
        _remove_unmanaged_checkpoints(out)
    else:
        _check_epochs(out, settings, args.epochs)
    run_info = {"data": data_name, "epochs": args.epochs, "device": args.device}
    with open_run(out, "train", settings, overwrite=args.overwrite, info=run_info) as run_dir:
        train_set: ArrayImageDataset | Subset = train
        val = None
        if args.val_fraction > 0:
            train_set, val = train_val_split(train, args.val_fraction, seed=args.seed)

        torch.manual_seed(args.seed)
        model = load_model(args.model, num_classes=len(test.classes))
        print(
            f"training {args.model} on {len(train_set)} images"
            + (f" (validation {len(val)})" if val is not None else "")
            + f" for {args.epochs} epochs; checkpoints in {out}"
        )
        t0 = time.perf_counter()
        record = train_classifier(
            model,
            train_set,
            val,
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            weight_decay=args.weight_decay,
            lr_step=args.lr_step,
            lr_gamma=args.lr_gamma,
            augment=not args.no_augment,
            seed=args.seed,
            device=args.device,
            checkpoint_dir=out,
            progress=progress,
        )
        seconds = time.perf_counter() - t0
        test_acc = evaluate_accuracy(model, test, device=args.device)
        if record["resumed_from"]:
            print(f"resumed after epoch {record['resumed_from']}")
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        save_torch(
            {
                "model": args.model,
                "state_dict": state,
                "classes": list(test.classes),
                "mean": list(info.mean),
                "std": list(info.std),
                "test_accuracy": test_acc,
            },
            out / "weights.pt",
        )
        result = {
            "model": args.model,
            "data": data_name,
            "train_images": len(train_set),
            "val_images": len(val) if val is not None else 0,
            "test_images": len(test),
            "test_accuracy": test_acc,
            "best_val_accuracy": record["best_val_acc"],
            "best_epoch": record["best_epoch"],
            "epochs": record["epochs"],
            "resumed_from": record["resumed_from"],
            "seconds_this_run": round(seconds, 1),
            "settings": settings,
            "settings_key": run_dir.manifest["settings_key"],
            "arguments": {k: v for k, v in vars(args).items() if k != "func"},
            "history": record["history"],
        }
        write_json(out / "result.json", result)
    best = record["best_val_acc"]
    print(
        f"test accuracy {test_acc:.2%} on {len(test)} images"
        + (f" (best validation {best:.2%} at epoch {record['best_epoch']})" if best else "")
    )
    print(f"weights: {out / 'weights.pt'}  result: {out / 'result.json'}")
    return 0
