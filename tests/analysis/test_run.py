"""run_analysis: the Python equivalent of ``pathwaygrad analyze``; resumable per batch."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import pathwaygrad as pg
from pathwaygrad.analysis import analysis_config, run_analysis

from .blocking_model import make
from .models import TinyCNN

HERE = Path(__file__).resolve().parent


def _tables(out: Path) -> dict:
    """Every result of a run folder but the timings and resume counts (they differ by design)."""
    got = {}
    for name in sorted(out.glob("*.json")):
        if name.name == "manifest.json":
            continue
        d = json.loads(name.read_text())
        for key in ("timings_s", "batches_resumed"):
            d["config"].pop(key)
        got[name.name] = d
    for name in sorted(out.glob("*.csv")):
        got[name.name] = name.read_text()
    return got


@pytest.fixture(scope="module")
def data():
    x = torch.randn(6, 3, 8, 8, generator=torch.Generator().manual_seed(5))
    return TinyCNN().eval(), x


def test_run_analysis_resumes_saved_batches_and_equals_a_fresh_run(tmp_path, data):
    model, x = data
    opts = dict(methods="neuron_mct;random", sparsities=(50, 90), batch_size=2, n_images=6)
    full = run_analysis("overlap", model, x, tmp_path / "a", progress=False, **opts)
    saved = sorted((tmp_path / "a" / "partial").glob("batch_*.pt"))
    assert [p.name for p in saved] == ["batch_00000.pt", "batch_00001.pt", "batch_00002.pt"]
    # Lose the last batch (as a kill would), keep the others: the rerun recomputes only it.
    saved[2].unlink()
    kept = saved[0].stat().st_mtime_ns
    again = run_analysis("overlap", model, x, tmp_path / "a", progress=False, **opts)
    assert saved[0].stat().st_mtime_ns == kept
    assert again["overlap"]["config"]["batches_resumed"] == 2
    assert full["overlap"]["config"]["batches_resumed"] == 0
    for key in ("90.0", "50.0"):
        assert again["overlap"][key] == full["overlap"][key]
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert manifest["status"] == "finished" and len(manifest["attempts"]) == 2


def test_saved_batches_of_other_inputs_or_settings_are_not_used(tmp_path, data):
    model, x = data
    opts = dict(methods="neuron_mct", sparsities=(50,), batch_size=3, n_images=6)
    run_analysis("fidelity", model, x, tmp_path / "a", progress=False, **opts)
    # Other inputs in the same run folder (same settings): every batch is recomputed.
    y = x.flip(0)
    res = run_analysis("fidelity", model, y, tmp_path / "a", progress=False, **opts)
    assert res["fidelity"]["config"]["batches_resumed"] == 0
    want = pg.analysis.fidelity_analysis(model, y, "neuron_mct", (50,), batch_size=3)
    assert res["fidelity"]["50.0"]["logit_mean"] == want.summary()["50.0"]["logit_mean"]
    # Other settings (or other weights) in the same folder: refused before any work.
    with pytest.raises(pg.errors.UserError, match="--overwrite"):
        run_analysis("fidelity", model, x, tmp_path / "a", progress=False, **dict(opts, n_images=5))
    with pytest.raises(pg.errors.UserError, match="--overwrite"):
        run_analysis("fidelity", TinyCNN(seed=1).eval(), x, tmp_path / "a", progress=False, **opts)
    # A truncated batch file is recomputed, not trusted.
    part = tmp_path / "a" / "partial" / "batch_00000.pt"
    part.write_bytes(part.read_bytes()[:50])
    res = run_analysis("fidelity", model, y, tmp_path / "a", progress=False, **opts)
    assert res["fidelity"]["config"]["batches_resumed"] == 1


def test_analysis_config_checks_everything_before_work():
    with pytest.raises(pg.errors.UserError, match="unknown method 'bogus'"):
        analysis_config("overlap", methods="neuron_mct;bogus")
    with pytest.raises(pg.errors.UserError, match="sparsities"):
        analysis_config("overlap", sparsities=(50, 100))
    with pytest.raises(pg.errors.UserError, match="n_images"):
        analysis_config("overlap", n_images=0)
    with pytest.raises(pg.errors.UserError, match="unknown analysis"):
        analysis_config("overlaps")
    with pytest.raises(pg.errors.UserError, match="not allowed here"):
        analysis_config("overlap", methods="gradient")
    cfg = analysis_config("overlap", preset="quick", methods="dgr_random;greedy;neuron_mct")
    dgr, greedy, mct = cfg.specs
    # the preset's schedules, quietly: labels and display names stay the paper's
    assert (dgr.label, dgr.display) == ("dgr(init=random)", "DGR(init=r)")
    assert (dgr.kwargs["iterations"], dgr.kwargs["lr"]) == (100, 0.1)
    assert greedy.kwargs["step"] == 3.0 and mct.kwargs == {"sparsity": 90.0, "threshold": "global"}
    own = analysis_config("overlap", preset="quick", methods="dgr:iterations=7").specs[0]
    assert own.kwargs["iterations"] == 7  # an option written in the spec wins over the preset


@pytest.mark.slow
def test_killed_analyze_resumes_and_equals_an_uninterrupted_run(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in ("ant", "bee"):
        (tmp_path / "data" / c).mkdir(parents=True)
        for i in range(3):
            img = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
            Image.fromarray(img).save(tmp_path / "data" / c / f"{i}.png")
    env = dict(os.environ, PYTHONPATH=f"{HERE}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    env["PATHWAYGRAD_CACHE"] = str(tmp_path / "cache")

    def argv(out: Path) -> list[str]:
        return [
            sys.executable, "-m", "pathwaygrad.cli.main", "analyze", "fidelity",
            "--model", "blocking_model:make", "--data", str(tmp_path / "data"),
            "--methods", "neuron_mct;random", "--sparsity", "50,90", "--n-images", "6",
            "--batch-size", "2", "--out", str(out), "--no-progress",
        ]  # fmt: skip

    out = tmp_path / "killed"
    first = out / "partial" / "batch_00000.pt"
    proc = subprocess.Popen(
        argv(out), env=dict(env, PG_TEST_BLOCK_WHEN=str(first)), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while not first.exists():
            assert proc.poll() is None, proc.stdout.read().decode()
            assert time.monotonic() < deadline, "the first batch never finished"
            time.sleep(0.2)
        time.sleep(1.0)  # the second batch is now blocked inside the model
        assert proc.poll() is None
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    saved = first.read_bytes()
    assert not (out / "fidelity.json").exists()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "running"  # killed: never marked finished

    done = subprocess.run(argv(out), env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert first.read_bytes() == saved  # finished work kept, not recomputed
    result = json.loads((out / "fidelity.json").read_text())
    assert result["config"]["batches_resumed"] == 1

    ref = subprocess.run(
        argv(tmp_path / "ref"), env=env, capture_output=True, text=True, timeout=600
    )
    assert ref.returncode == 0, ref.stderr
    assert _tables(out) == _tables(tmp_path / "ref")
    assert json.loads((out / "manifest.json").read_text())["status"] == "finished"


def test_blocking_model_is_deterministic():
    a, b = make(), make()
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
