"""Shared helpers of the benchmark scripts: timing, tables, the machine, the closing JSON line.

Every ratio is measured against a baseline run in the same process, the cases interleaved
(baseline, candidate, baseline, candidate, ...), and reported as the median over the runs of the
per-run ratio. Both wall-clock time (what a user waits) and process CPU time (all threads; less
sensitive to other programs sharing the machine) are recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="CI-size run: small inputs, 3 runs")
    p.add_argument(
        "--runs", type=int, default=None, help="timed runs per case (default 5, quick 3)"
    )
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--json", default=None, help="also write the closing JSON object to this file")
    return p


def setup(args) -> None:
    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    if args.runs is None:
        args.runs = 3 if args.quick else 5
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device here")


def sync(device) -> None:
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def machine() -> dict:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    try:
        info["load_avg_1min"] = round(os.getloadavg()[0], 2)
    except OSError:
        pass
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


class Timer:
    """Runs named cases interleaved; keeps wall and CPU seconds of every run."""

    def __init__(self, device="cpu"):
        self.device = device
        self.wall: dict[str, list[float]] = {}
        self.cpu: dict[str, list[float]] = {}

    def once(self, name: str, fn: Callable[[], object]) -> object:
        sync(self.device)
        w0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        sync(self.device)
        self.wall.setdefault(name, []).append(time.perf_counter() - w0)
        self.cpu.setdefault(name, []).append(time.process_time() - c0)
        return out

    def run(self, cases: dict[str, Callable[[], object]], runs: int, warmup: int = 1) -> None:
        for _ in range(warmup):
            for fn in cases.values():
                fn()
                sync(self.device)
        for _ in range(runs):
            for name, fn in cases.items():
                self.once(name, fn)

    def median(self, name: str, cpu: bool = False) -> float:
        return statistics.median((self.cpu if cpu else self.wall)[name])

    def ratio(self, name: str, base: str, cpu: bool = False) -> float:
        """Median over runs of the per-run ratio name / base."""
        table = self.cpu if cpu else self.wall
        return statistics.median(a / b for a, b in zip(table[name], table[base]))


def table(rows: list[dict], columns: list[str]) -> str:
    """A GitHub-flavoured markdown table."""

    def cell(v):
        if isinstance(v, float):
            return f"{v:.3f}" if abs(v) < 100 else f"{v:.1f}"
        return str(v)

    out = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for r in rows:
        out.append("| " + " | ".join(cell(r.get(c, "")) for c in columns) + " |")
    return "\n".join(out)


def finish(args, name: str, ratios: dict, extra: dict | None = None) -> None:
    """Print the closing JSON line (last line of output) and optionally write it to a file."""
    obj = {"benchmark": name, "quick": bool(args.quick), "runs": args.runs, "ratios": ratios}
    if extra:
        obj.update(extra)
    obj["machine"] = machine()
    line = json.dumps(obj, sort_keys=False)
    if args.json:
        Path(args.json).write_text(line + "\n")
    print(line, flush=True)


def add_models_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--models",
        default=None,
        help="comma-separated subset of vgg16,resnet50,resnet20,tv_resnet50,tv_vit_b_16 (the "
        "last two: torchvision's own architectures)",
    )


def measure_configs(args, full, quick, measure) -> tuple[list[dict], dict]:
    """Run ``measure(name, batch, size, args) -> (key, row)`` for each (name, batch, size) of
    ``quick`` or ``full`` (only the ``--models`` ones); returns the rows and ``{key: ratio}``."""
    configs = quick if args.quick else full
    if args.models:
        keep = set(args.models.split(","))
        configs = [c for c in configs if c[0] in keep]
    rows, ratios = [], {}
    for name, batch, size in configs:
        key, row = measure(name, batch, size, args)
        ratios[key] = round(row["ratio (wall)"], 3)
        rows.append(row)
    return rows, ratios


def plain_gradient(model, x: torch.Tensor) -> torch.Tensor:
    """The plain input gradient the way users write it: the model's parameters keep their
    ``requires_grad`` (True, as built), the predicted class's logit is backpropagated to the
    input with ``torch.autograd.grad`` (no weight gradients are accumulated)."""
    x = x.detach().requires_grad_(True)
    logits = model(x)
    target = logits.argmax(dim=1)
    y = logits.gather(1, target[:, None]).sum()
    (grad,) = torch.autograd.grad(y, x)
    return grad
