"""The ROAR map cache: a killed map computation resumes from its finished shards, and the maps
equal those of an uninterrupted run."""

from __future__ import annotations

import numpy as np
import pytest

from pathwaygrad.evaluation._mapcache import compute_maps
from pathwaygrad.evaluation._methods import resolve_methods
from pathwaygrad.evaluation._staging import stage_data

from .synthetic import gradient_map, make_data, mlp


class _Killed(Exception):
    pass


class _Counting:
    """gradient_map, counting its batches; raises _Killed at batch ``kill_at`` (1-based)."""

    def __init__(self, kill_at: int | None = None):
        self.calls = 0
        self.kill_at = kill_at

    def __call__(self, model, inputs, targets):
        self.calls += 1
        if self.kill_at is not None and self.calls == self.kill_at:
            raise _Killed
        return gradient_map(model, inputs, targets)


def _maps(root, method, model):
    data = stage_data(root, make_data(640, seed=1), make_data(400, seed=2))
    specs = resolve_methods([("grad", method)])
    kw = dict(rank_by="abs", target="predicted", batch_size=64, shard_images=256)
    return compute_maps(model, "model-0", specs, data, root, **kw)


def test_a_killed_map_computation_resumes_from_its_finished_shards(tmp_path):
    model = mlp().eval()
    # 640 training images in shards of 256 (4 batches of 64 each): 256 / 256 / 128; 400 test: 256 / 144
    straight = _maps(tmp_path / "straight", _Counting(), model)

    killed = _Counting(kill_at=6)  # in the second training shard
    with pytest.raises(_Killed):
        _maps(tmp_path / "run", killed, model)
    kept = sorted(p.name for p in (tmp_path / "run").rglob("shards/*.npy"))
    assert kept == ["train_abs_00000000_00000256.npy"]

    resumed = _Counting()
    paths = _maps(tmp_path / "run", resumed, model)
    assert resumed.calls == (640 - 256) // 64 + 7  # the first shard is not recomputed
    for split in ("train", "test"):
        a, b = np.load(straight["grad"][split]), np.load(paths["grad"][split])
        assert a.shape == b.shape and np.array_equal(a, b), split
    assert not list((tmp_path / "run").rglob("shards/*"))  # assembled: the shards are gone

    again = _Counting()
    _maps(tmp_path / "run", again, model)
    assert again.calls == 0  # the whole maps are cached
