"""ROAD noisy linear imputation: pathwaygrad's batched solve vs Quantus's per-image solve.

Same 256 CIFAR-size images (the CIFAR-10 test set from ../shared when present, else smooth random
images), same removal masks (top t % of each image's Sobel edge map, the "edge" control method),
removal levels t = 10, 20, ..., 90 % (ROAD's usual grid), noise 0.01. Quantus:
``quantus.functions.perturb_func.noisy_linear_imputation`` called per image, as its ROAD metric
does. Ours: :func:`pathwaygrad.evaluation.imputation.noisy_linear_impute` on the whole batch per level.
Before timing, the noise-free results are checked to agree.

Prints a table (median seconds over ``--runs`` repeats, runs interleaved) and, last, one JSON
line with the overall ratio (Quantus time / our time, summed over levels).

    .venv/bin/python benchmarks/bench_road_vs_quantus.py [--runs 5] [--n 256] [--solver banded]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import numpy as np
import torch


def load_images(n: int) -> tuple[torch.Tensor, str]:
    try:
        from pathwaygrad.data import load_cifar10

        ds = load_cifar10(split="test")
        x, _ = ds.get_batch(np.arange(n))
        return x, f"CIFAR-10 test images (first {n}), ImageNet-normalised"
    except Exception as exc:  # noqa: BLE001 - no shared data: synthetic but image-like
        g = torch.Generator().manual_seed(0)
        x = torch.randn(n, 3, 32, 32, generator=g)
        from pathwaygrad.evaluation.perturbation import gaussian_blur

        return gaussian_blur(x, 2.0) * 4, f"smooth random images ({type(exc).__name__}: no CIFAR)"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--solver", default="banded", choices=["banded", "sparse", "cg"])
    ap.add_argument("--levels", default="10,20,30,40,50,60,70,80,90")
    args = ap.parse_args(argv)

    from quantus.functions.perturb_func import noisy_linear_imputation

    from pathwaygrad.evaluation._ranking import pixel_ranks, pixel_scores, removal_mask
    from pathwaygrad.evaluation.imputation import noisy_linear_impute
    from pathwaygrad.specs import edge_map

    x, source = load_images(args.n)
    levels = [int(v) / 100 for v in args.levels.split(",")]
    ranks = pixel_ranks(pixel_scores(edge_map(None, x)), seed=0)
    masks = {f: removal_mask(ranks, f, "morf") for f in levels}
    # Quantus takes the removed pixels as flat indices, most important first.
    order = ranks.flatten(1).argsort(1)
    indices = {f: order[:, : int(masks[f][0].sum())].numpy() for f in levels}
    xn = x.numpy()

    def quantus(f, noise=0.01):
        return np.stack(
            [noisy_linear_imputation(xn[i], indices[f][i], noise=noise) for i in range(len(xn))]
        )

    def ours(f, noise=0.01):
        return noisy_linear_impute(x, masks[f], noise, generator=0, solver=args.solver)

    # correctness first (noise off): same imputed values
    for f in levels:
        diff = float(np.abs(ours(f, 0.0).numpy() - quantus(f, 0.0)).max())
        if diff > 1e-3:
            print(f"MISMATCH at {f:.0%}: max |ours - quantus| = {diff}", file=sys.stderr)
            return 1
    times = {f: {"quantus": [], "ours": []} for f in levels}
    for _ in range(args.runs):
        for f in levels:
            t0 = time.perf_counter()
            quantus(f)
            times[f]["quantus"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            ours(f)
            times[f]["ours"].append(time.perf_counter() - t0)

    print(f"ROAD noisy linear imputation, {len(x)} images {tuple(x.shape[1:])}: {source}")
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch "
        f"{torch.get_num_threads()} threads, solver={args.solver}, median of {args.runs} runs"
    )
    print(f"{'removed':>8} {'quantus s':>10} {'ours s':>8} {'ratio':>7}")
    tq = to = 0.0
    for f in levels:
        q, o = statistics.median(times[f]["quantus"]), statistics.median(times[f]["ours"])
        tq, to = tq + q, to + o
        print(f"{f:>8.0%} {q:>10.3f} {o:>8.3f} {q / o:>7.1f}")
    print(f"{'all':>8} {tq:>10.3f} {to:>8.3f} {tq / to:>7.1f}")
    run_totals_q = [sum(times[f]["quantus"][r] for f in levels) for r in range(args.runs)]
    run_totals_o = [sum(times[f]["ours"][r] for f in levels) for r in range(args.runs)]
    print(
        json.dumps(
            {
                "benchmark": "road_imputation_vs_quantus",
                "images": len(x),
                "levels": levels,
                "runs": args.runs,
                "solver": args.solver,
                "quantus_s": round(tq, 4),
                "ours_s": round(to, 4),
                "ratio": round(tq / to, 2),
                "ratio_of_run_totals_median": round(
                    statistics.median(a / b for a, b in zip(run_totals_q, run_totals_o)), 2
                ),
                "load_avg_1min": round(os.getloadavg()[0], 2),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
