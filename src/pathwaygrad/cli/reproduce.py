"""``pathwaygrad reproduce``: every experiment of the paper on CIFAR-10, with a report.

Only parses arguments: the work is :func:`pathwaygrad.reproduce.reproduce` and
:func:`pathwaygrad.reproduce.claim.write_claim_report`.
"""

from __future__ import annotations

import argparse

from pathwaygrad.presets import REPRODUCTION

_EXPERIMENTS = ("analysis", "draws", "sweep", "sanity", "perturbation", "roar")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "reproduce",
        help="run the paper's experiments end to end and write report.md beside its numbers",
        description=(
            "Runs the paper's experiments (section 3: pathway analysis, decoding, sparsity sweep, "
            "sanity checks, ROAR / KAR, LeRF / MoRF; section 4: local linearity) on CIFAR-10 with "
            "the pretrained CIFAR ResNets, and writes OUT/report.md (figures in OUT/figures) and "
            "OUT/results.json with, claim by claim, the paper's figure, ours and a verdict. "
            "Numbers that depend on a random draw (sanity-check randomisation, Random and DGR "
            "pathways, random ranking) are run with 5 seeds and given as mean ± sd [min, max]; "
            "the sanity check shows the paper's signed 2-D Spearman beside Quantus's default "
            "(absolute values, full maps) and uses the paper's re-initialisation (N(0, 0.1)) as "
            "its headline. "
            "Presets: 'quick' (about 40 minutes on 2 idle CPU cores), 'paper' (the paper's "
            "settings; days on a CPU), 'claim' (the ROAR claim of section 3.5 on a ResNet-8 that "
            "reaches >= 75 %%: about 6 hours on 2 CPU cores; writes the claim report), 'tiny' "
            "(synthetic data and a tiny model, for tests). Resumable: rerun the same command "
            "after an interruption and finished steps (and ROAR cells) are kept."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--preset", choices=tuple(REPRODUCTION), default="quick", help="settings")
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
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument(
        "--executor",
        default=None,
        help="where ROAR / KAR cells run: local, sequential or ray (default: the preset's)",
    )
    p.add_argument(
        "--experiments",
        default=None,
        help=f"comma-separated subset of {','.join(_EXPERIMENTS)} (default: the preset's)",
    )
    p.add_argument(
        "--claim",
        default=None,
        help="results.json of a claim run (--preset claim) that decides the ROAR verdict "
        "(default: OUT/claim/results.json when it exists)",
    )
    p.add_argument(
        "--report-from",
        default=None,
        metavar="RUN_FOLDER",
        help="with --preset claim: only write the claim report into --out from the ROAR run "
        "folder RUN_FOLDER (its results.csv); nothing is trained",
    )
    p.add_argument(
        "--seconds",
        type=float,
        default=None,
        help="with --report-from: the run's wall time, shown in the report",
    )
    p.set_defaults(func=run)


def run(args) -> int:
    from pathwaygrad.errors import UserError
    from pathwaygrad.reproduce import reproduce
    from pathwaygrad.reproduce.claim import write_claim_report

    if args.report_from is not None:
        if args.preset != "claim":
            raise UserError("--report-from writes the claim report: use it with --preset claim")
        res = write_claim_report(args.report_from, args.out, seconds=args.seconds)
        print(f"{res['verdict']['verdict']}: {res['verdict']['reason']}")
        print(f"wrote {args.out}/report.md and {args.out}/results.json")
        return 0
    experiments = None
    if args.experiments:
        experiments = tuple(e.strip() for e in args.experiments.split(",") if e.strip())
    reproduce(
        args.preset,
        data=args.data,
        models=args.models,
        out=args.out,
        threads=args.threads,
        executor=args.executor,
        experiments=experiments,
        claim=args.claim,
    )
    return 0
