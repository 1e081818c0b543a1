"""Executors: worker processes die with the run (SIGKILL, SIGTERM), Ray stays an optional import."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import pytest

from pathwaygrad.errors import UserError
from pathwaygrad.evaluation._executor import (
    Job,
    JobError,
    LocalProcessExecutor,
    SequentialExecutor,
    make_executor,
)

from . import processes
from .synthetic import mlp

ROOT = Path(__file__).resolve().parents[2]

DRIVER = """
import sys
sys.path[:0] = {paths!r}
import torch
from {synthetic} import make_data, mlp, region_map, train
from pathwaygrad.evaluation.roar import remove_and_retrain

if __name__ == "__main__":
    torch.set_num_threads(1)
    data, test = make_data(640, seed=1), make_data(200, seed=2)
    torch.manual_seed(0)
    explainer = train(mlp(), data, epochs=2)
    # 4 cells of very many epochs on 2 workers: both are training when the run is killed
    remove_and_retrain(mlp, data, test, [("region", region_map)], out_dir={out!r},
                       fractions=(0.1, 0.5), explain_model=explainer, include_base=False,
                       train_kwargs={{"epochs": 100000, "batch_size": 64, "augment": False}},
                       executor="local", workers=2, progress=False)
"""


def _start_training_run(tmp_path: Path) -> tuple[subprocess.Popen, list[int]]:
    """A ROAR run in a subprocess, returned once both workers train (checkpoints exist)."""
    out = tmp_path / "run"
    script = tmp_path / "driver.py"
    paths = [p for p in sys.path if p and os.path.isdir(p)]
    script.write_text(DRIVER.format(paths=paths, synthetic=mlp.__module__, out=str(out)))
    log = tmp_path / "driver.log"
    with open(log, "wb") as fh:
        driver = subprocess.Popen(
            [sys.executable, str(script)], cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and driver.poll() is None:
        if len(list((out / "checkpoints").glob("*/last.pt"))) >= 2:
            break
        time.sleep(0.3)
    if driver.poll() is not None:
        pytest.fail(f"the run ended early: {log.read_text()[-2000:]}")
    assert len(list((out / "checkpoints").glob("*/last.pt"))) >= 2, "workers never trained"
    family = processes.descendants(driver.pid)
    assert len(family) >= 2  # the two workers (and the resource tracker)
    return driver, family


@pytest.mark.slow
def test_sigkill_of_the_run_leaves_no_worker_or_resource_tracker(tmp_path):
    driver, family = _start_training_run(tmp_path)
    try:
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait()
        left = processes.wait_gone(lambda: family, timeout=20)
        assert not left, [processes.cmdline(p) for p in left]
    finally:
        for pid in family:
            if processes.alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.slow
def test_sigterm_of_the_run_stops_its_workers_and_ends_it(tmp_path):
    driver, family = _start_training_run(tmp_path)
    try:
        os.kill(driver.pid, signal.SIGTERM)
        driver.wait(timeout=60)
        left = processes.wait_gone(lambda: family, timeout=20)
        assert not left, [processes.cmdline(p) for p in left]
    finally:
        if driver.poll() is None:
            driver.kill()
        for pid in family:
            if processes.alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_make_executor_names_and_errors():
    assert isinstance(make_executor("sequential"), SequentialExecutor)
    assert isinstance(make_executor(None, workers=3), LocalProcessExecutor)
    with pytest.raises(UserError, match="unknown executor"):
        make_executor("slurm")
    with pytest.raises(UserError, match="only apply to executor='ray'"):
        make_executor("local", address="auto")
    # the threads each job trains with size the local pool and Ray's CPU request
    local = make_executor("local", threads=2)
    assert isinstance(local, LocalProcessExecutor) and local.describe()["threads"] == 2
    assert make_executor("ray", threads=3).num_cpus == 3
    assert make_executor("ray", threads=3, num_cpus=1).num_cpus == 1


def test_ray_is_imported_only_by_the_ray_executor():
    code = (
        "import sys, pathwaygrad, pathwaygrad.evaluation.roar, pathwaygrad.evaluation.runner\n"
        "import pathwaygrad.cli.main\n"
        "from pathwaygrad.evaluation import make_executor\n"
        "exe = make_executor('ray', num_cpus=2)\n"  # built, not started: Ray not imported yet
        "assert exe.shares_files and exe.shards_maps\n"
        "assert 'ray' not in sys.modules, 'ray imported'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_ray_executor_options_are_checked():
    from pathwaygrad.evaluation.ray_executor import RayExecutor

    with pytest.raises(UserError, match="num_cpus"):
        RayExecutor(num_cpus=0)
    with pytest.raises(UserError, match="num_gpus"):
        RayExecutor(num_gpus=-1)
    assert not RayExecutor(address="auto").shares_files  # a cluster: data via the object store
    assert RayExecutor(address="auto", shared_files=True).shares_files


def test_a_worker_that_dies_names_the_likely_causes_and_the_fix():
    """A worker killed mid-job (here it exits; in practice OOM or a script without a main
    guard) is a JobError that says why that happens and that rerunning keeps finished cells."""
    done: list[str] = []
    with pytest.raises(JobError) as err:
        LocalProcessExecutor(workers=1, threads=1).run(
            [Job("dies", partial(os._exit, 3))], lambda job, result: done.append(job.key)
        )
    text = str(err.value)
    assert "job 'dies' failed: BrokenProcessPool" in text
    assert 'if __name__ == "__main__":' in text and "finished cells are kept" in text
    assert done == []
