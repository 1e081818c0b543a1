"""``pathwaygrad reproduce``: every experiment of the paper on CIFAR-10, with a report."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "reproduce",
        help="run the paper's experiments end to end and write report.md beside its numbers",
        description=(
            "Runs the paper's experiments (section 3: pathway analysis, decoding, sparsity sweep, "
            "sanity checks, ROAR / KAR, LeRF / MoRF; section 4: local linearity) on CIFAR-10 with "
            "the pretrained CIFAR ResNets, and writes OUT/report.md (figures in OUT/figures) and "
            "OUT/results.json with, claim by claim, the paper's figure, ours and a verdict. "
            "Presets: 'quick' (about 30 minutes on 2 CPU cores), 'paper' (the paper's settings; "
            "days on a CPU), 'tiny' (synthetic data and a tiny model, for tests). Resumable: "
            "rerun the same command after an interruption and finished steps are kept."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--preset", choices=("quick", "paper", "tiny"), default="quick", help="settings")
    p.add_argument(
        "--data",
        default=None,
        help="CIFAR-10 (cifar-10-batches-py folder, ImageFolder tree or .tar.gz); default the "
        "JPEG copy in ../shared/data",
    )
    p.add_argument(
        "--models",
        default=None,
        help="folder with the pretrained CIFAR ResNets (resnet20-*.th, resnet56-*.th); default "
        "../shared/models/cifar10-resnet",
    )
    p.add_argument("--out", default="reproduction", help="output folder")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (analysis steps)")
    p.set_defaults(func=run)


def run(args) -> int:
    from pathwaygrad.reproduce import reproduce

    reproduce(args.preset, data=args.data, models=args.models, out=args.out, threads=args.threads)
    return 0
