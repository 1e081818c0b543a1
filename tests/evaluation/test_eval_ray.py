"""ROAR / KAR on Ray: the same results as the sequential executor, also when a node is lost
mid-run or the driver is killed (``kill -9``) and rerun.

Every test here starts Ray, so it runs only with loopback-only networking (the conftest re-runs it
inside ``unshare -n`` otherwise); each one shuts its Ray down, and the session check of the
conftest fails if any Ray process is left.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from pathwaygrad.evaluation import read_csv
from pathwaygrad.evaluation.roar import remove_and_retrain

from . import processes
from .synthetic import make_data, mlp, region_map

pytestmark = [pytest.mark.ray, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
TRAIN = {"epochs": 4, "batch_size": 64, "lr": 1e-2, "augment": False}
SETTINGS = dict(
    modes=("roar",),
    fractions=(0.1, 0.5),
    train_kwargs=TRAIN,
    map_batch_size=64,
    map_shard_images=256,  # 640 training images -> 3 map tasks, 400 test images -> 2
    progress=False,
)


def _paths() -> list[str]:
    return [p for p in sys.path if p and os.path.isdir(p)]


def _data():
    return make_data(640, seed=1), make_data(400, seed=2)


def _accuracies(table) -> dict[str, float]:
    return {r["key"]: r["accuracy"] for r in table}


def _sequential(out: Path, methods=(("region", region_map),)):
    train, test = _data()
    return remove_and_retrain(
        mlp, train, test, list(methods), out_dir=out, executor="sequential", **SETTINGS
    )


def _same_maps(a: Path, b: Path) -> None:
    files = sorted(p.relative_to(a) for p in (a / "maps").rglob("*.npy"))
    assert files
    for f in files:
        assert np.array_equal(np.load(a / f), np.load(b / f)), f


def test_ray_gives_the_sequential_results_with_data_in_the_object_store(tmp_path):
    from pathwaygrad.evaluation.ray_executor import RayExecutor

    reference = _sequential(tmp_path / "seq", [("region", region_map), "gradient"])
    train, test = _data()
    exe = RayExecutor(num_cpus=1, local_cpus=2, shared_files=False)
    try:
        table = remove_and_retrain(
            mlp,
            train,
            test,
            [("region", region_map), "gradient"],
            out_dir=tmp_path / "ray",
            executor=exe,
            **SETTINGS,
        )
    finally:
        exe.close()
    assert _accuracies(table) == _accuracies(reference)
    assert len(table) == 1 + 3 * 2
    _same_maps(tmp_path / "seq", tmp_path / "ray")
    # the synthetic truth holds on Ray too: removing the region leaves chance
    region = [r for r in table if r["method"] == "region" and r["fraction"] == 0.1]
    assert abs(region[0]["accuracy"] - 0.5) < 0.1
    # object-store mode: no checkpoint folder was written by a task
    assert not (tmp_path / "ray" / "checkpoints").exists()
    # a rerun with the same settings recomputes nothing: same cell keys, same map cache keys
    again = RayExecutor(num_cpus=1, local_cpus=2, shared_files=False)
    try:
        rerun = remove_and_retrain(
            mlp,
            train,
            test,
            [("region", region_map), "gradient"],
            out_dir=tmp_path / "ray",
            executor=again,
            **SETTINGS,
        )
    finally:
        again.close()
    assert rerun.meta["executed_cells"] == []


def test_a_lost_node_is_retried_and_the_results_stay_the_same(tmp_path):
    from ray.cluster_utils import Cluster

    from pathwaygrad.evaluation.ray_executor import RayExecutor

    reference = _sequential(tmp_path / "seq")
    # three nodes: the head (no CPUs: only the driver's objects) and two 1-CPU workers, so
    # both workers run cells until the end and the one removed is busy when it goes
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 0, "include_dashboard": False},
    )
    try:
        cluster.add_node(num_cpus=1)
        victim = cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        out = tmp_path / "ray"
        removed = threading.Event()

        def remove_when_cells_run():
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                if len(list((out / "cells").glob("roar_*.json"))) >= 1:
                    cluster.remove_node(victim)
                    removed.set()
                    return
                time.sleep(0.2)

        killer = threading.Thread(target=remove_when_cells_run, daemon=True)
        killer.start()
        train, test = _data()
        from ray.job_config import JobConfig

        exe = RayExecutor(
            address=cluster.address,
            num_cpus=1,
            max_retries=3,
            # the cluster's workers import this test package by name, as the driver does
            init_kwargs={"job_config": JobConfig(code_search_path=_paths())},
        )
        try:
            table = remove_and_retrain(
                mlp, train, test, [("region", region_map)], out_dir=out, executor=exe, **SETTINGS
            )
        finally:
            exe.close()
        killer.join(timeout=5)
        assert removed.is_set(), "the node was never removed"
        assert not victim.any_processes_alive()
        assert _accuracies(table) == _accuracies(reference)
        assert len(table) == 1 + 2 * 2
    finally:
        cluster.shutdown()


# the driver imports the test helpers under the names this process uses (they are part of the
# cell keys: the factory's and the method's qualified names)
DRIVER = """
import sys
sys.path[:0] = {paths!r}
import torch
torch.set_num_threads(1)
from pathwaygrad.evaluation.roar import remove_and_retrain
from pathwaygrad.evaluation.ray_executor import RayExecutor
from {here} import SETTINGS, _data
from {synthetic} import mlp, region_map
train, test = _data()
exe = RayExecutor(num_cpus=1, local_cpus=2)
try:
    remove_and_retrain(mlp, train, test, [("region", region_map)], out_dir={out!r},
                       executor=exe, **SETTINGS)
finally:
    exe.close()
print("finished")
"""


def test_a_killed_driver_resumes_and_finishes_with_the_same_results(tmp_path):
    from pathwaygrad.evaluation.ray_executor import RayExecutor

    reference = _sequential(tmp_path / "seq")
    out = tmp_path / "ray"
    script = tmp_path / "driver.py"
    script.write_text(
        DRIVER.format(paths=_paths(), here=__name__, synthetic=mlp.__module__, out=str(out))
    )
    marker = uuid.uuid4().hex  # this driver's processes (and its Ray's) carry it
    env = {**os.environ, "PATHWAYGRAD_TEST_DRIVER": marker}
    driver = subprocess.Popen(
        [sys.executable, str(script)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and driver.poll() is None:
            if len(list((out / "cells").glob("roar_*.json"))) >= 1:
                break
            time.sleep(0.2)
        assert driver.poll() is None, "the driver ended before it could be killed"
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait()
    finally:
        if driver.poll() is None:
            driver.kill()
    stored = {p.stem for p in (out / "cells").glob("*.json")}
    assert 2 <= len(stored) < 1 + 2 * 2  # the base model and at least one cell, not all
    # the rerun keeps every stored cell and finishes the rest
    train, test = _data()
    exe = RayExecutor(num_cpus=1, local_cpus=2)
    try:
        table = remove_and_retrain(
            mlp, train, test, [("region", region_map)], out_dir=out, executor=exe, **SETTINGS
        )
    finally:
        exe.close()
    assert not set(table.meta["executed_cells"]) & stored
    assert len(table.meta["executed_cells"]) == len(table) - len(stored)
    assert _accuracies(table) == _accuracies(reference)
    assert len(read_csv(out / "results.csv")) == 1 + 2 * 2
    # the killed driver's Ray ended with it: head, raylet and workers at once; its two agents
    # give up on the dead head within about a minute (Ray's own timeout)
    left = processes.wait_gone(lambda: processes.with_env("PATHWAYGRAD_TEST_DRIVER", marker), 90)
    assert not left, [processes.cmdline(p) for p in left]
