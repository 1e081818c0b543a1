"""LeRF pixel perturbation: batched (the levels of a batch of 64 images stacked into forwards of the
library's default size: 128 images on the CPU) vs one image and one level per forward (how per-sample loops such as Quantus's pixel-flipping metrics evaluate).

CIFAR-size inputs (the CIFAR-10 test set from ../shared when present, else random), the CIFAR
ResNet-20 (pretrained weights from ../shared when present), the gradient's ranking, the default
18 removal levels (1..10 %, 20..90 %). Both paths give the same probabilities (checked). Prints a
table and, last, one JSON line with the ratio (median of ``--runs``).

    .venv/bin/python benchmarks/bench_lerf.py [--n 32] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import numpy as np
import torch


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args(argv)

    from pathwaygrad.evaluation._ranking import pixel_ranks, pixel_scores, removal_mask
    from pathwaygrad.evaluation.perturbation import (
        DEFAULT_FRACTIONS,
        constant_fill,
        perturbation_curves,
    )
    from pathwaygrad.models import build_model

    model = build_model("resnet20")
    source = "random init"
    try:
        from pathwaygrad.data import load_cifar10, shared_dir

        files = sorted((shared_dir() / "models" / "cifar10-resnet").glob("resnet20-*.th"))
        model = build_model("resnet20", weights=files[0])
        x, _ = load_cifar10(split="test").get_batch(np.arange(args.n))
        source = "pretrained, CIFAR-10 test images"
    except Exception:  # noqa: BLE001 - no ../shared: random inputs
        x = torch.randn(args.n, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    model.eval()
    with torch.no_grad():
        t = model(x).argmax(1)
    xg = x.clone().requires_grad_(True)
    model(xg).gather(1, t.view(-1, 1)).sum().backward()
    ranks = pixel_ranks(pixel_scores(xg.grad), seed=0)
    fr = list(DEFAULT_FRACTIONS)
    mean = x.mean(dim=(0, 2, 3))
    fill = constant_fill(mean)

    def batched():
        return perturbation_curves(model, x, t, ranks, fr, "lerf", fill, batch_size=64)["prob"]

    @torch.no_grad()
    def loop():
        out = torch.empty(len(x), len(fr))
        for i in range(len(x)):
            for j, f in enumerate(fr):
                remove = removal_mask(ranks[i : i + 1], f, "lerf")
                xp = torch.where(remove.unsqueeze(1), mean.view(1, -1, 1, 1), x[i : i + 1])
                out[i, j] = torch.softmax(model(xp), 1)[0, t[i]]
        return out

    a, b = batched(), loop()
    if not torch.allclose(a, b, atol=1e-4):
        print(f"MISMATCH: max diff {float((a - b).abs().max())}", file=sys.stderr)
        return 1
    tb, tl = [], []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        batched()
        tb.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        loop()
        tl.append(time.perf_counter() - t0)
    mb, ml = statistics.median(tb), statistics.median(tl)
    print(
        f"LeRF, ResNet-20 ({source}), {len(x)} images x {len(fr)} levels, "
        f"torch {torch.get_num_threads()} threads, median of {args.runs}"
    )
    print(f"{'path':>28} {'seconds':>8}")
    print(f"{'one image, one level/forward':>28} {ml:>8.3f}")
    print(f"{'batched levels (ours)':>28} {mb:>8.3f}")
    print(
        json.dumps(
            {
                "benchmark": "lerf_batched_vs_loop",
                "images": len(x),
                "levels": len(fr),
                "loop_s": round(ml, 4),
                "batched_s": round(mb, 4),
                "ratio": round(ml / mb, 2),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
