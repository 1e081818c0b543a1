"""Ray executor: start-up time, memory, overhead against local worker processes, and what the
paper's ROAR / KAR sweep would take on a cluster.

Run it where the network is loopback-only (these machines' rule for Ray), e.g.::

    unshare -n sh -c 'ip link set lo up; exec .venv/bin/python benchmarks/bench_ray.py'

Measured, in this order:

1. **Start-up**: ``ray.init`` of a local instance (``local_cpus`` CPUs, no dashboard) until a
   first trivial task has returned; the resident memory (RSS) of every Ray process then.
2. **Per-task overhead**: ``--tasks`` trivial jobs through Ray and through
   :class:`LocalProcessExecutor` (start-up of both included / excluded).
3. **End to end**: the same small ROAR run (a narrow ResNet-8 on a slice of CIFAR-10 from
   ``../shared``, else random CIFAR-shaped data) with ``executor=LocalProcessExecutor(2)`` and
   ``RayExecutor(local_cpus=2)``, each into a fresh folder, results compared cell by cell.
4. **Cluster prediction**: one epoch of the paper's ResNet-8 (widths 64/128/256, batch 256) on
   ``--slice`` images, extrapolated to a cell of the paper preset (43,750 training images = 7/8 of
   50,000, 50 epochs, plus the validation and test passes) and to the paper preset's 540 cells on
   1, 8 and 64 one-CPU workers (cells are independent; the wall time is the number of waves
   ``ceil(540 / workers)`` times one cell).
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))


def _loopback_only() -> bool:
    with open("/proc/self/net/dev", encoding="ascii") as fh:
        names = [line.split(":", 1)[0].strip() for line in fh.read().splitlines()[2:]]
    return names == ["lo"]


def _rss_mb(pids) -> float:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status", encoding="ascii") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def _descendants(pid: int) -> list[int]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as fh:
                    ppid = int(fh.read().rsplit(b")", 1)[-1].split()[1])
            except OSError:
                continue
            kids.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for k in kids.get(todo.pop(), []):
            out.append(k)
            todo.append(k)
    return out


def _noop(i: int) -> dict:
    return {"i": i}


def startup_and_tasks(local_cpus: int, tasks: int) -> dict:
    import ray

    from pathwaygrad.evaluation._executor import Job, LocalProcessExecutor
    from pathwaygrad.evaluation.ray_executor import RayExecutor

    jobs = [Job(f"t{i}", _noop, {"i": i}) for i in range(tasks)]
    exe = RayExecutor(local_cpus=local_cpus, num_cpus=1)
    t0 = time.perf_counter()
    exe.run(jobs[:1], lambda j, r: None)
    startup = time.perf_counter() - t0
    rss = _rss_mb(_descendants(os.getpid()))
    n_procs = len(_descendants(os.getpid()))
    t0 = time.perf_counter()
    exe.run(jobs, lambda j, r: None)
    ray_tasks = time.perf_counter() - t0
    exe.close()
    assert not ray.is_initialized()
    t0 = time.perf_counter()
    LocalProcessExecutor(workers=local_cpus).run(jobs, lambda j, r: None)
    local_tasks = time.perf_counter() - t0
    return {
        "ray_startup_s": round(startup, 2),
        "ray_processes": n_procs,
        "ray_rss_mb": round(rss, 1),
        "tasks": tasks,
        "ray_s_per_task_warm": round(ray_tasks / tasks, 4),
        "local_pool_s_for_tasks_incl_startup": round(local_tasks, 2),
    }


def _data(n_train: int, n_test: int):
    from torch.utils.data import TensorDataset

    try:
        from pathwaygrad.data import load_cifar10

        train = load_cifar10(None, "train").subset(n_train, seed=0, per_class=True)
        test = load_cifar10(None, "test").subset(n_test, seed=0, per_class=True)
        return train, test, "CIFAR-10 (../shared)"
    except Exception:  # noqa: BLE001 (no shared data: random CIFAR-shaped images)
        g = torch.Generator().manual_seed(0)
        make = lambda n: TensorDataset(  # noqa: E731
            torch.randn(n, 3, 32, 32, generator=g), torch.randint(0, 10, (n,), generator=g)
        )
        return make(n_train), make(n_test), "random CIFAR-shaped images"


def end_to_end(args) -> dict:
    from pathwaygrad.evaluation._executor import LocalProcessExecutor
    from pathwaygrad.evaluation.ray_executor import RayExecutor
    from pathwaygrad.evaluation.roar import remove_and_retrain
    from pathwaygrad.models import ResNet8

    train, test, source = _data(args.train, args.test)
    factory = functools.partial(ResNet8, widths=(16, 32, 64))
    common = dict(
        modes=("roar",),
        fractions=(0.1, 0.5, 0.9),
        train_kwargs={"epochs": args.epochs, "batch_size": 64},
        progress=False,
        map_batch_size=64,
    )
    times, tables = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.order.split(","):
            if name == "local":
                exe = LocalProcessExecutor(workers=args.cpus)
            else:
                exe = RayExecutor(local_cpus=args.cpus, num_cpus=1)
            t0 = time.perf_counter()
            try:
                tables[name] = remove_and_retrain(
                    factory, train, test, "gradient", out_dir=Path(tmp) / name, executor=exe,
                    **common,
                )  # fmt: skip
            finally:
                exe.close()
            times[name] = time.perf_counter() - t0
    same = {r["key"]: r["accuracy"] for r in tables["local"]} == {
        r["key"]: r["accuracy"] for r in tables["ray"]
    }
    return {
        "data": source,
        "train_images": args.train,
        "test_images": args.test,
        "epochs": args.epochs,
        "cells": len(tables["local"]),
        "local_s": round(times["local"], 1),
        "ray_s": round(times["ray"], 1),
        "ray_overhead_percent": round(100 * (times["ray"] / times["local"] - 1), 1),
        "identical_results": same,
    }


def paper_cell(args) -> dict:
    from torch.utils.data import TensorDataset

    from pathwaygrad.models import ResNet8
    from pathwaygrad.training import evaluate_accuracy, train_classifier

    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(args.slice, 3, 32, 32, generator=g)
    y = torch.randint(0, 10, (args.slice,), generator=g)
    data = TensorDataset(x, y)
    torch.manual_seed(0)
    model = ResNet8()  # the paper's widths 64/128/256
    t0 = time.perf_counter()
    train_classifier(model, data, None, epochs=1, batch_size=256, progress=False)
    train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    evaluate_accuracy(model, data)
    eval_s = time.perf_counter() - t0
    per_train_image = train_s / args.slice
    per_eval_image = eval_s / args.slice
    cell = 50 * (43_750 * per_train_image + 6_250 * per_eval_image) + 10_000 * per_eval_image
    cells = 540
    table = {}
    for workers in (1, 8, 64):
        waves = math.ceil(cells / workers)
        table[str(workers)] = round(waves * cell / 3600, 1)
    return {
        "slice_images": args.slice,
        "train_s_per_image": round(per_train_image, 5),
        "eval_s_per_image": round(per_eval_image, 6),
        "cell_s_predicted": round(cell),
        "paper_cells": cells,
        "wall_hours_on_workers": table,
        "torch_threads": 1,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray instance / workers")
    p.add_argument("--tasks", type=int, default=50, help="trivial tasks for the overhead")
    p.add_argument("--train", type=int, default=1000, help="training images of the ROAR run")
    p.add_argument("--test", type=int, default=200, help="test images of the ROAR run")
    p.add_argument("--epochs", type=int, default=2, help="epochs per cell of the ROAR run")
    p.add_argument("--order", default="local,ray", help="executor order of the ROAR runs")
    p.add_argument("--slice", type=int, default=512, help="images of the ResNet-8 epoch")
    p.add_argument("--skip", default="", help="comma-separated parts to skip: startup,e2e,cell")
    p.add_argument("--json", default=None, help="also write the results to this file")
    args = p.parse_args(argv)
    if not _loopback_only():
        raise SystemExit(
            "run Ray only with loopback-only networking: "
            "unshare -n sh -c 'ip link set lo up; exec python benchmarks/bench_ray.py'"
        )
    torch.set_num_threads(1)
    skip = set(args.skip.split(","))
    out: dict = {"load_average": os.getloadavg()}
    if "startup" not in skip:
        out["startup"] = startup_and_tasks(args.cpus, args.tasks)
        print(json.dumps(out["startup"]), flush=True)
    if "e2e" not in skip:
        out["end_to_end"] = end_to_end(args)
        print(json.dumps(out["end_to_end"]), flush=True)
    if "cell" not in skip:
        out["paper_cell"] = paper_cell(args)
        print(json.dumps(out["paper_cell"]), flush=True)
    out["load_average_after"] = os.getloadavg()
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
