"""``pathwaygrad demo``: explain scikit-image's sample photos with the bundled CIFAR-10 model.

Needs no network and no ``../shared``: the photos ship with scikit-image and the model's weights
(a ``vgg_tiny`` trained by ``pathwaygrad train`` on CIFAR-10, stored as float16) ship with the package
in ``pathwaygrad/assets``. Only parses the arguments; the work is
:func:`pathwaygrad.explainee.explain_demo`. Writes per photo a figure, a JSON summary and the raw maps
(as ``pathwaygrad explain`` does), plus ``demo.png`` (all photos, all methods) and ``sweep.png``
(the paper's sparsity sweep of NeuronMCT on the cat) into ``--out``.
"""

from __future__ import annotations

import time

from pathwaygrad.cli.explain import HelpFormatter, add_model_arguments, method_defaults

HELP = "explain four bundled photos with the bundled CIFAR-10 model (no network, no data needed)"
SWEEP = "0,70,80,90,95,99"


def register(subparsers) -> None:
    from pathwaygrad.data import SAMPLE_PHOTOS

    p = subparsers.add_parser(
        "demo",
        help=HELP,
        description=HELP + ". Writes figures and JSON into --out and names it at the end.",
        formatter_class=HelpFormatter,
    )
    p.add_argument("--out", default="demo-output", help="output folder")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the results of an earlier run with other settings in --out",
    )
    p.add_argument(
        "--photos",
        default=",".join(SAMPLE_PHOTOS),
        help="comma-separated scikit-image sample photos to explain",
    )
    p.add_argument(
        "--sweep-method",
        default="neuron_mct",
        help="pathway method of the sparsity sweep figure ('none' to skip it)",
    )
    p.add_argument("--sweep", default=SWEEP, help="sparsities of the sweep figure")
    # one thread: the model is tiny, and a busy machine's spinning OpenMP threads only slow it down
    add_model_arguments(p, threads=1)
    p.set_defaults(func=run)


def run(args) -> int:
    import torch

    from pathwaygrad.cli.explain import check_counts, parse_methods
    from pathwaygrad.explainee import check_demo, explain_demo, parse_sparsities
    from pathwaygrad.runs import open_run

    t_start = time.perf_counter()
    methods = parse_methods(args.methods)
    sparsities = parse_sparsities(args.sparsity)
    sweep = parse_sparsities(args.sweep)
    check_counts(args)
    photos = [p.strip() for p in args.photos.split(",") if p.strip()]
    sweep_method = None if args.sweep_method == "none" else args.sweep_method
    check_demo(photos, methods, sparsities, sweep_method, sweep)
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = {
        "photos": photos,
        "methods": [s.text for s in methods],
        "sparsity": sparsities,
        "target": args.target,
        "sweep_method": sweep_method,
        "sweep": sweep,
        **method_defaults(args),
    }

    def report(name, result):
        pred = result.prediction
        print(f"{name}: {pred['name']} (p = {pred['probability']:.2f})")

    with open_run(args.out, "demo", settings, overwrite=args.overwrite) as run_folder:
        explain_demo(
            run_folder.path,
            photos,
            methods,
            sparsities,
            args.target,
            sweep_method=sweep_method,
            sweep=sweep,
            defaults=method_defaults(args),
            on_result=report,
        )
    seconds = time.perf_counter() - t_start
    print(f"demo finished in {seconds:.1f} s; figures and JSON in {run_folder.path.resolve()}")
    return 0
