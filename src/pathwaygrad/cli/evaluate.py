"""``pathwaygrad evaluate roar|kar|perturbation|road|sanity``: the evaluation protocols in one command.

Each protocol writes into its own run folder ``<--out>/<protocol>/``: ``manifest.json`` (command,
settings, versions, status), ``results.csv`` (one row per method x setting x repeat),
``summary.json`` (settings, methods, score directions, aggregate scores), ``command.json`` and PNG
plots. Another protocol into the same ``--out`` never touches these; a rerun with other settings
is refused unless ``--overwrite``. ROAR / KAR runs are resumable: run the same command again after
an interruption and finished cells are kept; ``--executor ray`` runs the cells (and the maps) as
Ray tasks, locally or on a cluster, with the same results.

Presets (explicit options override them; see ``pathwaygrad.presets.EVALUATION``):

- ``quick`` (default; minutes on 2 CPU cores): the pretrained CIFAR-10 ResNet-20 of ``../shared``
  and a class-balanced subset of the CIFAR-10 test set (perturbation, ROAD, sanity); for ROAR / KAR
  a narrow ResNet-8 (widths 16/32/64) trained here for 4 epochs (batch 64) on 2,000 images.
- ``paper``: the paper's settings (section 3.4-3.6): ResNet-8 (64/128/256), 50 epochs, all of
  CIFAR-10, t = 10..90 %, 5 retrains per cell; 1,000 images for the sanity check and pixel
  perturbation. Days on one CPU: run the ROAR cells on a Ray cluster (see docs/evaluation.md).
"""

from __future__ import annotations

import argparse
import sys

from pathwaygrad.errors import UserError

HELP = "evaluate saliency methods: ROAR / KAR, LeRF / MoRF, ROAD, sanity checks"


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    pass


def register(subparsers) -> None:
    from pathwaygrad.evaluation.runner import PROTOCOLS
    from pathwaygrad.presets import EVALUATION

    p = subparsers.add_parser(
        "evaluate", help=HELP, description=__doc__, formatter_class=_Formatter
    )
    p.add_argument("protocol", choices=PROTOCOLS, help="which protocol to run")
    p.add_argument("--out", required=True, help="output folder (one subfolder per protocol)")
    p.add_argument(
        "--overwrite", action="store_true", help="replace an earlier run with other settings"
    )
    p.add_argument("--preset", choices=tuple(EVALUATION), default="quick", help="settings bundle")
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
    p.add_argument(
        "--activations",
        default=None,
        help="comma-separated activation kinds pathway methods select in, e.g. gelu or relu,silu "
        "(default: relu)",
    )
    p.add_argument("--n-images", type=int, default=None, help="images (perturbation, road, sanity)")
    p.add_argument("--fractions", default=None, help="comma-separated percent, e.g. 10,30,50")
    p.add_argument(
        "--rank-by",
        choices=("max", "abs"),
        default=None,
        help="pixel ranking: max over channels of the map or of |map| (default: abs for "
        "perturbation, as the README's LeRF claims; max for roar, kar, road, as the paper)",
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
        "--train-threads",
        type=int,
        default=1,
        help="torch CPU threads of each retrain (default 1). A result setting: on a CPU the "
        "trained weights depend on it, so every executor uses it; --workers defaults to the "
        "cores divided by it, Ray's --num-cpus to it",
    )
    g.add_argument(
        "--executor",
        choices=("local", "sequential", "ray"),
        default="local",
        help="run cells in local worker processes, one after the other, or as Ray tasks",
    )
    g.add_argument(
        "--workers",
        type=int,
        default=None,
        help="worker processes (default: CPU cores / --train-threads); with --executor ray and no --ray-address: "
        "CPUs of the local Ray instance",
    )
    g.add_argument(
        "--ray-address",
        default=None,
        help="join a running Ray cluster: auto, host:port or ray://host:10001 "
        "(default: start a local Ray instance)",
    )
    g.add_argument(
        "--num-cpus", type=float, default=None, help="CPUs per Ray task (default: --train-threads)"
    )
    g.add_argument("--num-gpus", type=float, default=None, help="GPUs per Ray task (default 0)")
    g.add_argument(
        "--ray-shared-files",
        action="store_true",
        default=None,
        help="--out is on a file system every Ray node mounts at the same path: tasks read the "
        "data there and keep checkpoints (default: data through Ray's object store)",
    )
    g = p.add_argument_group("sanity")
    g.add_argument("--mode", choices=("cascading", "independent"), default="cascading")
    g.add_argument(
        "--init",
        choices=("paper", "default"),
        default=None,
        help="paper (the default: N(0, 0.1) for every parameter, the paper's; also the "
        "reproduction report's headline) or default: reset_parameters() (Quantus)",
    )
    g.add_argument(
        "--seeds",
        default=None,
        help="comma-separated randomisation seeds, e.g. 0,1,2,3,4 (several draws; the plot "
        "shows their mean and spread)",
    )
    g.add_argument("--granularity", choices=("blocks", "layers"), default=None)
    g = p.add_argument_group("perturbation / road")
    g.add_argument("--no-curves", action="store_true", help="perturbation: skip deletion/insertion")
    g.add_argument("--noise", type=float, default=0.01, help="ROAD imputation noise (std)")
    p.set_defaults(func=run)


def _fractions(text: str | None) -> tuple[float, ...] | None:
    if not text:
        return None
    try:
        values = [float(v) / 100.0 for v in text.split(",") if v.strip()]
    except ValueError:
        raise UserError(f"--fractions takes comma-separated percentages, got {text!r}") from None
    if not values or any(not 0 < v < 1 for v in values):
        raise UserError(f"--fractions must be percentages strictly between 0 and 100, got {text!r}")
    return tuple(values)


def _activations(text: str | None) -> tuple[str, ...] | None:
    if not text:
        return None
    return tuple(v.strip() for v in text.split(",") if v.strip()) or None


def _seeds(text: str | None) -> tuple[int, ...] | None:
    if not text:
        return None
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise UserError(f"--seeds takes comma-separated integers, got {text!r}") from None


def run(args) -> int:
    from pathwaygrad.evaluation.runner import EvaluationSettings, run_protocol

    settings = EvaluationSettings(
        preset=args.preset,
        model=args.model,
        weights=args.weights,
        data=args.data,
        methods=args.methods,
        activations=_activations(args.activations),
        n_images=args.n_images,
        fractions=_fractions(args.fractions),
        rank_by=args.rank_by,
        seed=args.seed,
        batch_size=args.batch_size,
        epochs=args.epochs,
        repeats=args.repeats,
        train_subset=args.train_subset,
        test_subset=args.test_subset,
        target=args.target,
        include_random=not args.no_random,
        train_threads=args.train_threads,
        mode=args.mode,
        init=args.init,
        granularity=args.granularity,
        seeds=_seeds(args.seeds),
        curves=not args.no_curves,
        noise=args.noise,
        executor=args.executor,
        workers=args.workers,
        ray_address=args.ray_address,
        num_cpus=args.num_cpus,
        num_gpus=args.num_gpus,
        ray_shared_files=args.ray_shared_files,
        device=args.device,
        threads=args.threads,
    )
    run_protocol(
        args.protocol,
        args.out,
        settings,
        overwrite=args.overwrite,
        command=["pathwaygrad", *sys.argv[1:]],
    )
    return 0
