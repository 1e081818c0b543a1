"""Target 4: peak memory of the NeuronMCT pathway gradient vs a plain input gradient.

Each case runs in a fresh subprocess: the model and inputs are built, the code paths warmed up on
a one-image 32x32 input, the process's resident-set high-water mark is reset
(``/proc/self/clear_refs``), the case runs once, and the peak resident memory above the memory in
use just before the case is reported. The children run with glibc's mmap threshold fixed at
128 kB (``MALLOC_MMAP_THRESHOLD_``) so that freed tensors leave the resident set at once and the
peak measures memory in use rather than the allocator's caching. VGG-16, 224x224, batch 16, random weights. Plain gradient:
parameters requiring grad as users have them, ``torch.autograd.grad`` to the input. Pathway
gradient: ``pg.PathwayGradient(model, "neuron_mct", sparsity=90).attribute(x)``; masks are
booleans. Target: ratio <= 1.5. ``--quick``: batch 4 at 112x112.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from _common import finish, parser, setup, table

TARGET = 1.5
CASES = ("plain", "pathway")


def _rss_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def child(case: str, batch: int, size: int, threads: int) -> None:
    import gc

    import torch
    from _common import plain_gradient
    from _models import build

    import pathwaygrad as pg

    torch.set_num_threads(threads)
    model, x = build("vgg16", batch, size=size)
    small = torch.randn(1, 3, 32, 32)
    explainer = pg.PathwayGradient(model, method="neuron_mct", sparsity=90.0)

    def run(inputs):
        if case == "plain":
            return plain_gradient(model, inputs)
        return explainer.attribute(inputs)

    run(small)
    gc.collect()
    before = _rss_kb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset the high-water mark
    out = run(x)
    peak = _rss_kb("VmHWM")
    print(
        json.dumps({"case": case, "peak_extra_mb": (peak - before) / 1024, "out": list(out.shape)})
    )


def measure(case: str, batch: int, size: int, threads: int) -> float:
    cmd = [sys.executable, __file__, "--child", case, str(batch), str(size), str(threads)]
    # A fixed mmap threshold: every block >= 128 kB is mapped and unmapped, so the resident
    # set follows the memory in use, not glibc's caching of freed blocks (same for both cases).
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072"}
    res = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    if res.returncode != 0:
        raise RuntimeError(f"memory case {case} failed:\n{res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])["peak_extra_mb"]


def main(argv=None) -> int:
    p = parser(__doc__.splitlines()[0])
    args = p.parse_args(argv)
    setup(args)
    batch, size = (4, 112) if args.quick else (16, 224)
    runs = max(1, min(args.runs, 3))  # memory varies little; each run is a fresh process
    peaks = {c: [] for c in CASES}
    for _ in range(runs):
        for c in CASES:
            peaks[c].append(measure(c, batch, size, args.threads or 0))
    plain = statistics.median(peaks["plain"])
    path = statistics.median(peaks["pathway"])
    ratio = path / plain
    rows = [
        {"case": "plain input gradient", "peak extra MB": plain},
        {"case": "NeuronMCT pathway gradient", "peak extra MB": path},
    ]
    print(f"VGG-16, {batch}x3x{size}x{size}, peak resident memory above the pre-call level")
    print(table(rows, ["case", "peak extra MB"]))
    print(f"ratio {ratio:.3f} (target <= {TARGET}: {'met' if ratio <= TARGET else 'missed'})")
    finish(
        args,
        "peak_memory_pathway_vs_plain",
        {f"vgg16_b{batch}_{size}px": round(ratio, 3)},
        {"target": TARGET, "peaks_mb": {k: [round(v, 1) for v in vs] for k, vs in peaks.items()}},
    )
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        case, batch, size, threads = sys.argv[2:6]
        child(case, int(batch), int(size), int(threads) or os.cpu_count() or 1)
    else:
        raise SystemExit(main())
