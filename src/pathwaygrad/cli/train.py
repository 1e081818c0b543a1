"""``pathwaygrad train``: train a CIFAR-10 (or any ImageFolder) classifier, resumably.

Writes to ``--out``: ``last.pt`` (full checkpoint, every epoch), ``best.pt`` (best-validation
weights), ``weights.pt`` (final weights + model name, classes, normalisation, test accuracy; what
``explain --weights`` takes), and ``result.json`` (history and test accuracy).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from pathwaygrad.cli.explain import HelpFormatter
from pathwaygrad.errors import UserError

HELP = "train a classifier (ResNet-8, small VGG, CIFAR ResNets, or your own) on CIFAR-10"


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help=HELP,
        description=HELP
        + ". Checkpoints after every epoch into --out and resumes from it when run again.",
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
    p.add_argument("--epochs", type=int, default=50, help="number of epochs")
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


def run(args) -> int:
    from pathwaygrad.data import load_cifar10
    from pathwaygrad.models import load_model, model_info
    from pathwaygrad.training import evaluate_accuracy, train_classifier, train_val_split

    _check(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a folder")
    info = model_info(args.model)
    progress = not args.quiet
    train = load_cifar10(args.data, "train", mean=info.mean, std=info.std, progress=progress)
    test = load_cifar10(args.data, "test", mean=info.mean, std=info.std, progress=progress)
    if args.train_subset:
        train = train.subset(args.train_subset, seed=args.seed)
    if args.test_subset:
        test = test.subset(args.test_subset, seed=args.seed, per_class=True)
    val = None
    if args.val_fraction > 0:
        train, val = train_val_split(train, args.val_fraction, seed=args.seed)

    torch.manual_seed(args.seed)
    model = load_model(args.model, num_classes=len(test.classes))
    out.mkdir(parents=True, exist_ok=True)
    print(
        f"training {args.model} on {len(train)} images"
        + (f" (validation {len(val)})" if val is not None else "")
        + f" for {args.epochs} epochs; checkpoints in {out}"
    )
    t0 = time.perf_counter()
    record = train_classifier(
        model,
        train,
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
    torch.save(
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
        "data": str(args.data) if args.data else "../shared/data/cifar10-jpeg.tar.gz",
        "train_images": len(train),
        "val_images": len(val) if val is not None else 0,
        "test_images": len(test),
        "test_accuracy": test_acc,
        "best_val_accuracy": record["best_val_acc"],
        "best_epoch": record["best_epoch"],
        "epochs": record["epochs"],
        "seconds_this_run": round(seconds, 1),
        "arguments": {k: v for k, v in vars(args).items() if k != "func"},
        "history": record["history"],
    }
    (out / "result.json").write_text(json.dumps(result, indent=2))
    best = record["best_val_acc"]
    print(
        f"test accuracy {test_acc:.2%} on {len(test)} images"
        + (f" (best validation {best:.2%} at epoch {record['best_epoch']})" if best else "")
    )
    print(f"weights: {out / 'weights.pt'}  result: {out / 'result.json'}")
    return 0
