"""ROAR / KAR on synthetic data whose truth is known, and resuming after an interruption."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pathwaygrad.errors import UserError
from pathwaygrad.evaluation import read_csv
from pathwaygrad.evaluation._executor import Executor, SequentialExecutor
from pathwaygrad.evaluation.roar import remove_and_retrain, roar

from .synthetic import make_data, mlp, region_map

TRAIN = {"epochs": 12, "batch_size": 64, "lr": 1e-2, "augment": False}


@pytest.fixture(scope="module")
def data():
    return make_data(640, seed=1), make_data(400, seed=2)


def _acc(table, protocol, method, fraction):
    rows = [
        r
        for r in table
        if r["protocol"] == protocol and r["method"] == method and r["fraction"] == fraction
    ]
    assert rows, (protocol, method, fraction)
    return sum(r["accuracy"] for r in rows) / len(rows)


def test_roar_and_kar_find_the_true_region_in_worker_processes(data, tmp_path):
    train, test = data
    table = remove_and_retrain(
        mlp,
        train,
        test,
        [("region", region_map)],
        out_dir=tmp_path,
        modes=("roar", "kar"),
        fractions=(0.1, 0.5),
        train_kwargs=TRAIN,
        executor="local",
        workers=2,
        progress=False,
    )
    base = _acc(table, "base", "base", 0.0)
    assert base > 0.95  # the task is learnable
    # ROAR: removing the 4 region pixels (within the top 10 %) leaves nothing to learn: chance
    assert abs(_acc(table, "roar", "region", 0.1) - 0.5) < 0.1
    # ... while removing a random 10 % leaves most of the region: still far above chance
    assert _acc(table, "roar", "random_ranking", 0.1) > 0.85
    # KAR: keeping the top 10 % keeps the region: high; keeping a random 10 % mostly loses it
    assert _acc(table, "kar", "region", 0.1) > 0.9
    assert _acc(table, "kar", "random_ranking", 0.1) < _acc(table, "kar", "region", 0.1) - 0.15
    # files: one CSV row per cell, summary with mean / std, maps cached as float32 arrays
    rows = read_csv(tmp_path / "results.csv")
    assert len(rows) == 1 + 2 * 2 * 2
    assert (tmp_path / "summary.json").exists()
    maps = list((tmp_path / "maps").rglob("train_max.npy"))
    assert len(maps) == 1
    import numpy as np

    arr = np.load(maps[0])
    assert arr.dtype == np.float32 and arr.shape == (640, 8, 8)


class _Interrupted(Exception):
    pass


class InterruptingExecutor(Executor):
    """Runs ``finish`` jobs completely; the next one trains to the end but is 'killed' before its
    result is stored (its checkpoint stays); then the run stops like a Ctrl-C."""

    def __init__(self, finish: int):
        self.finish = finish

    def run(self, jobs, on_done):
        for i, job in enumerate(jobs):
            result = job()
            if i == self.finish:
                raise KeyboardInterrupt
            on_done(job, result)


class CountingExecutor(SequentialExecutor):
    def __init__(self):
        self.keys = []

    def run(self, jobs, on_done):
        self.keys.extend(j.key for j in jobs)
        super().run(jobs, on_done)


def test_interrupted_roar_resumes_without_recomputing(data, tmp_path):
    train, test = data
    kwargs = dict(
        fractions=(0.1, 0.5),
        repeats=1,
        train_kwargs={**TRAIN, "epochs": 4},
        progress=False,
    )
    methods = [("region", region_map)]
    # reference: one uninterrupted run
    full = roar(
        mlp, train, test, methods, out_dir=tmp_path / "full", executor="sequential", **kwargs
    )
    n_cells = len(full)
    assert n_cells == 1 + 2 * 2  # base + (region, random) x 2 fractions

    out = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        roar(mlp, train, test, methods, out_dir=out, executor=InterruptingExecutor(2), **kwargs)
    # the base model (first run() call) finished; of the 4 cells, 2 were stored
    assert len(list((out / "cells").glob("*.json"))) == 1 + 2
    partial = read_csv(out / "results.csv")
    assert len(partial) == 3

    counter = CountingExecutor()
    resumed = roar(mlp, train, test, methods, out_dir=out, executor=counter, **kwargs)
    # only the 2 unfinished cells ran again; the base model and 2 finished cells were reused
    assert len(counter.keys) == 2
    assert len(set(counter.keys) & {r["key"] for r in partial}) == 0
    # identical results to the uninterrupted run, cell by cell
    a = {r["key"]: r["accuracy"] for r in full}
    b = {r["key"]: r["accuracy"] for r in resumed}
    assert a == b
    # the cell killed after training resumed from its checkpoint instead of training again
    killed = [r for r in resumed if r["key"] == counter.keys[0]][0]
    assert killed["resumed_from_epoch"] == 4
    # a third run does nothing at all
    again = CountingExecutor()
    roar(mlp, train, test, methods, out_dir=out, executor=again, **kwargs)
    assert again.keys == []
    # changing a setting gives new cells instead of reusing stale ones
    other = CountingExecutor()
    roar(
        mlp,
        train,
        test,
        methods,
        out_dir=out,
        executor=other,
        **{**kwargs, "fractions": (0.1,)},
        rank_by="abs",
    )
    assert len(other.keys) == 2


def test_new_data_in_the_same_folder_trains_a_new_base_model_and_new_maps(data, tmp_path):
    import json

    train, test = data
    kwargs = dict(
        fractions=(0.5,),
        repeats=1,
        train_kwargs={**TRAIN, "epochs": 2},
        progress=False,
        executor="sequential",
    )
    methods = [("region", region_map)]
    first = roar(mlp, train, test, methods, out_dir=tmp_path, **kwargs)
    metas = sorted((tmp_path / "maps").rglob("*.json"))
    keys_before = [json.loads(p.read_text())["key"] for p in metas]
    other_train = make_data(640, seed=5)
    second = roar(mlp, other_train, test, methods, out_dir=tmp_path, **kwargs)
    (base,) = [r for r in second if r["protocol"] == "base"]
    # trained from scratch, not resumed from the first run's finished checkpoint
    assert base["resumed_from_epoch"] == 0
    assert base["key"] not in {r["key"] for r in first}
    keys_after = [json.loads(p.read_text())["key"] for p in metas]
    assert all(a["model"] != b["model"] for a, b in zip(keys_before, keys_after))


class _ThreadRecorder(nn.Module):
    """The synthetic MLP, recording torch's thread count at every training forward."""

    seen: list[int] = []

    def __init__(self):
        super().__init__()
        self.net = mlp()

    def forward(self, x):
        if self.training:
            _ThreadRecorder.seen.append(torch.get_num_threads())
        return self.net(x)


def test_train_threads_is_a_cell_setting_that_the_cell_applies(data, tmp_path):
    """Every retrain uses ``train_threads`` whatever the caller's thread count (the trained
    weights depend on it on a CPU, so each executor must train alike); the caller's count is
    restored, and the setting is part of every cell's key."""
    train, test = data
    kwargs = dict(
        fractions=(0.5,), train_kwargs={**TRAIN, "epochs": 1}, executor="sequential", progress=False
    )
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        _ThreadRecorder.seen = []
        one = roar(
            _ThreadRecorder, train, test, [("region", region_map)], out_dir=tmp_path, **kwargs
        )
        assert _ThreadRecorder.seen and set(_ThreadRecorder.seen) == {1}
        assert torch.get_num_threads() == 2
        _ThreadRecorder.seen = []
        counter = CountingExecutor()
        two = roar(
            _ThreadRecorder,
            train,
            test,
            [("region", region_map)],
            out_dir=tmp_path,
            **{**kwargs, "executor": counter},
            train_threads=2,
        )
        assert set(_ThreadRecorder.seen) == {2}
        # no cell of the one-thread run is reused: every key differs
        assert len(counter.keys) == len(two) == len(one)
        assert not {r["key"] for r in one} & {r["key"] for r in two}
        assert read_csv(tmp_path / "results.csv")  # the table holds the cells of the last run
    finally:
        torch.set_num_threads(before)
    with pytest.raises(UserError, match="train_threads must be >= 1"):
        roar(
            mlp, train, test, [("region", region_map)], out_dir=tmp_path, **kwargs, train_threads=0
        )
