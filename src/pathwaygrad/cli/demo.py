"""``pathwaygrad demo``: explain scikit-image's sample photos with the bundled CIFAR-10 model.

Needs no network and no ``../shared``: the photos ship with scikit-image and the model's weights
(a ``vgg_tiny`` trained by ``pathwaygrad train`` on CIFAR-10, stored as float16) ship with the package
in ``pathwaygrad/assets``. Writes per photo a figure, a JSON summary and the raw maps (as
``pathwaygrad explain`` does), plus ``demo.png`` (all photos, all methods) and ``sweep.png``
(the paper's sparsity sweep of NeuronMCT on the cat) into ``--out``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from pathwaygrad.cli.explain import HelpFormatter
from pathwaygrad.errors import UserError

HELP = "explain four bundled photos with the bundled CIFAR-10 model (no network, no data needed)"
DEMO_WEIGHTS = "demo_vgg_tiny.pt"
SWEEP = "0,70,80,90,95,99"


ASSETS = Path(__file__).resolve().parents[1] / "assets"


def demo_weights_path() -> Path:
    """Path of the bundled demo weights."""
    path = ASSETS / DEMO_WEIGHTS
    if not path.is_file():
        raise UserError(f"the demo weights {path} are missing: reinstall pathwaygrad")
    return path


def export_demo_weights(weights: str | Path, dest: str | Path | None = None, **meta) -> Path:
    """Store the ``weights.pt`` written by ``pathwaygrad train`` as float16 demo weights.

    Extra keyword arguments (e.g. ``command=``, ``data=``) are stored beside the weights.
    """
    src = torch.load(weights, map_location="cpu", weights_only=True)
    state = {
        k: (v.half() if v.is_floating_point() else v).contiguous()
        for k, v in src["state_dict"].items()
    }
    out = {k: v for k, v in src.items() if k != "state_dict"}
    out.update(meta)
    out["state_dict"] = state
    dest = Path(dest) if dest is not None else ASSETS / DEMO_WEIGHTS
    torch.save(out, dest)
    return dest


def register(subparsers) -> None:
    from pathwaygrad.cli.explain import add_model_arguments
    from pathwaygrad.data import SAMPLE_PHOTOS

    p = subparsers.add_parser(
        "demo",
        help=HELP,
        description=HELP + ". Writes figures and JSON into --out and names it at the end.",
        formatter_class=HelpFormatter,
    )
    p.add_argument("--out", default="demo-output", help="output folder")
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
    p.set_defaults(func=run, model=None, weights="demo", device="cpu", convert_channels=False)


def render_grid(rows: list[tuple[torch.Tensor, dict, str]], path: Path, title: str) -> None:
    """One row per photo: the input with its prediction, then one heat map per method."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    import pathwaygrad as pg
    from pathwaygrad.cli.explain import _LABELS

    labels = list(rows[0][1]["maps"])
    ncol = len(labels) + 1
    fig, axes = plt.subplots(
        len(rows), ncol, figsize=(1.55 * ncol, 1.7 * len(rows) + 0.5), squeeze=False
    )
    for r, (image, result, name) in enumerate(rows):
        pred = result["prediction"]
        axes[r, 0].imshow(image.permute(1, 2, 0).clamp(0, 1).numpy(), interpolation="nearest")
        axes[r, 0].set_ylabel(name, fontsize=8)
        axes[r, 0].set_title(f"{pred['name']} {pred['probability']:.2f}", fontsize=8)
        for c, label in enumerate(labels, start=1):
            heat = pg.reduce_channels(torch.from_numpy(result["maps"][label]).unsqueeze(0))[0]
            axes[r, c].imshow(heat.numpy(), cmap="bwr", vmin=-1, vmax=1, interpolation="nearest")
            if r == 0:
                rec = result["records"][label]
                head = _LABELS.get(rec["method"], rec["method"])
                if "@" in label:
                    head = f"s = {rec['sparsity_requested']:g}"
                axes[r, c].set_title(head, fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(args) -> int:
    import pathwaygrad as pg
    from pathwaygrad.cli.explain import (
        check_counts,
        check_sweep,
        explain_image,
        parse_methods,
        parse_sparsity,
        prepare_model,
        resolve_target,
        write_outputs,
    )
    from pathwaygrad.data import SAMPLE_PHOTOS, sample_photo

    t_start = time.perf_counter()
    methods = parse_methods(args.methods)
    sparsities = parse_sparsity(args.sparsity)
    check_sweep(methods, sparsities)
    check_counts(args)
    photos = [p.strip() for p in args.photos.split(",") if p.strip()]
    for p in photos:
        if p not in SAMPLE_PHOTOS:
            raise UserError(f"unknown photo {p!r}; choose from {', '.join(SAMPLE_PHOTOS)}")
    if not photos:
        raise UserError("--photos is empty")
    sweep_method = None if args.sweep_method == "none" else args.sweep_method
    sweep = parse_sparsity(args.sweep)
    if sweep_method is not None and sweep_method not in pg.PATHWAY_METHODS:
        raise UserError(
            f"--sweep-method must be a pathway method ({', '.join(pg.PATHWAY_METHODS)}) or 'none'"
        )
    if args.threads:
        torch.set_num_threads(args.threads)

    exp = prepare_model(None, "demo")
    target = resolve_target(args.target, exp.classes)
    out = Path(args.out)
    rows = []
    summaries = {}
    for name in photos:
        image = sample_photo(name, exp.input_size)
        result = explain_image(exp, image, methods, sparsities, target, args)
        summaries[name] = write_outputs(
            out, name, f"skimage.data.{name}()", image, result, exp, args
        )
        rows.append((image, result, name))
        pred = result["prediction"]
        print(f"{name}: {pred['name']} (p = {pred['probability']:.2f})")
    acc = exp.meta.get("test_accuracy")
    acc_text = f", CIFAR-10 test accuracy {acc:.1%}" if acc else ""
    title = f"{exp.name} (pathwaygrad demo model{acc_text}); photos resized to 32x32"
    render_grid(rows, out / "demo.png", title)
    files = ["demo.png"] + [f"{n}.png" for n in photos]
    if sweep_method is not None:
        sweep_rows = []
        for image, _, name in rows[:1]:
            result = explain_image(exp, image, [sweep_method], sweep, target, args)
            sweep_rows.append((image, result, name))
        render_grid(sweep_rows, out / "sweep.png", f"{sweep_method}: pathway gradient by sparsity")
        files.append("sweep.png")
    seconds = time.perf_counter() - t_start
    index = {
        "model": exp.name,
        "test_accuracy": acc,
        "photos": {n: f"{n}.json" for n in photos},
        "figures": files,
        "seconds": round(seconds, 1),
    }
    (out / "index.json").write_text(json.dumps(index, indent=2))
    print(f"demo finished in {seconds:.1f} s; figures and JSON in {out.resolve()}")
    return 0
