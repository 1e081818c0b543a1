"""Run every benchmark (``make bench``; ``--quick`` for CI-size runs: ``make bench-quick``).

Each script runs in its own process and prints a table and, last, one JSON line with its ratios;
this collects those lines, prints a summary and writes them to ``benchmarks/results/`` (one JSON
file per run: ``latest.json`` / ``latest-quick.json``). The evaluation team's scripts
(``bench_lerf.py``, ``bench_road_vs_quantus.py``) run too when present.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# (script, extra arguments for a full run, extra arguments for a quick run)
SCRIPTS = [
    ("bench_mct.py", [], ["--quick"]),
    ("bench_intgrad.py", [], ["--quick"]),
    ("bench_reference.py", [], ["--quick"]),
    ("bench_memory.py", [], ["--quick"]),
    ("bench_eval_throughput.py", [], ["--quick"]),
    ("bench_lerf.py", ["--n", "256", "--runs", "3"], ["--n", "32", "--runs", "1"]),
    ("bench_road_vs_quantus.py", [], ["--n", "64", "--runs", "1"]),
]


def last_json(text: str):
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{") and line.endswith("}"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue
    return None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="CI-size runs")
    ap.add_argument("--only", default=None, help="comma-separated script names to run")
    ap.add_argument("--threads", type=int, default=None, help="torch threads for our scripts")
    args = ap.parse_args(argv)
    results, failed = {}, []
    for script, full, quick in SCRIPTS:
        path = HERE / script
        if not path.exists() or (args.only and script not in args.only.split(",")):
            continue
        cmd = [sys.executable, str(path), *(quick if args.quick else full)]
        if args.threads and script in {s for s, _, q in SCRIPTS if q == ["--quick"]}:
            cmd += ["--threads", str(args.threads)]
        print(f"=== {script} {' '.join(cmd[2:])}", flush=True)
        t = time.perf_counter()
        proc = subprocess.run(cmd, cwd=HERE.parent, text=True, capture_output=True, check=False)
        print(proc.stdout, end="", flush=True)
        if proc.returncode != 0:
            print(proc.stderr[-3000:], file=sys.stderr)
            failed.append(script)
            continue
        obj = last_json(proc.stdout)
        if obj is None:
            failed.append(script)
            continue
        obj["seconds"] = round(time.perf_counter() - t, 1)
        results[script] = obj
    print("\n=== summary")
    for script, obj in results.items():
        print(f"{script:28s} {json.dumps(obj.get('ratios', obj))}")
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    name = "latest-quick.json" if args.quick else "latest.json"
    (out / name).write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {out / name}")
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
