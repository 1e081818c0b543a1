"""Target 5 (LeRF part): evaluation throughput, LeRF with 10 levels over 1,000 CIFAR images.

``pathwaygrad.evaluation.pixel_perturbation`` (the evaluation team's module) with the LeRF order
only, 10 removal levels (1, 2, ..., 10 % of the pixels, filled with the per-channel mean), for
the NeuronMCT pathway gradient (sparsity 90) and the plain gradient, on the first 1,000 CIFAR-10
test images with the pretrained CIFAR ResNet-20 (both from ``../shared`` when present; random
images and weights otherwise, said in the output). Reported: seconds and images per second for
the whole evaluation (maps + 10 perturbed forward passes per image), per method. No ratio target:
the issue asks for the throughput; the batched-vs-per-image comparison is ``bench_lerf.py`` and
ROAD vs Quantus is ``bench_road_vs_quantus.py`` (the evaluation team's scripts).
One run (a throughput over many images). ``--quick``: 100 images.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import torch
from _common import finish, parser, setup, table

FRACTIONS = tuple(round(0.01 * i, 2) for i in range(1, 11))
METHODS = ("neuron_mct:sparsity=90", "gradient")


def data_and_model(n: int):
    from pathwaygrad.models import load_cifar_resnet

    note = []
    try:
        import numpy as np

        from pathwaygrad.data import load_cifar10

        ds = load_cifar10(split="test")
        x, _ = ds.get_batch(np.arange(n))
        note.append(f"CIFAR-10 test images 0..{n - 1}")
    except Exception as exc:  # noqa: BLE001 - no shared data: say so and use random images
        x = torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(0))
        note.append(f"random images (CIFAR-10 not available: {type(exc).__name__})")
    weights = Path(__file__).resolve().parents[1].parent / "shared/models/cifar10-resnet"
    files = sorted(weights.glob("resnet20-*.th")) if weights.is_dir() else []
    if files:
        model = load_cifar_resnet(20, files[0])
        note.append(f"pretrained ResNet-20 ({files[0].name})")
    else:
        torch.manual_seed(0)
        model = load_cifar_resnet(20)
        note.append("random-weight ResNet-20 (pretrained weights not available)")
    return x, model.eval(), "; ".join(note)


def main(argv=None) -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=None, help="images (default 1000, quick 100)")
    args = p.parse_args(argv)
    setup(args)
    from pathwaygrad.evaluation.perturbation import pixel_perturbation

    n = args.n or (100 if args.quick else 1000)
    runs = args.runs = 1  # a throughput figure over 1,000 images, not a ratio: one run
    x, model, note = data_and_model(n)
    print(note, flush=True)
    rows, ratios = [], {}
    for method in METHODS:
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            res = pixel_perturbation(
                model, x, [method], orders=("lerf",), fractions=FRACTIONS, progress=False
            )
            times.append(time.perf_counter() - t)
        sec = statistics.median(times)
        label = method.split(":")[0]
        summary = next(iter(res.summary.values()))["lerf"]
        rows.append(
            {
                "method": label,
                "images": n,
                "levels": len(FRACTIONS),
                "seconds": sec,
                "images/s": n / sec,
                "drop at 10 %": summary.get("drop_at_10", float("nan")),
            }
        )
        ratios[f"lerf_{label}_images_per_s"] = round(n / sec, 2)
        print(f"{label}: {sec:.1f} s, {n / sec:.1f} images/s", flush=True)
    print()
    print("LeRF (1..10 % removed, mean fill), whole evaluation per method")
    print(table(rows, ["method", "images", "levels", "seconds", "images/s", "drop at 10 %"]))
    finish(args, "lerf_throughput", ratios, {"data": note, "fractions": list(FRACTIONS)})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
