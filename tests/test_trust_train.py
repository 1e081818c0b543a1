"""A `pathwaygrad train` killed with SIGKILL in a real process resumes without losing finished epochs,
and its run folder says what happened."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch


def _mini_cifar(folder: Path) -> Path:
    rng = np.random.default_rng(0)
    folder.mkdir()
    for name, n in [(f"data_batch_{i}", 16) for i in range(1, 6)] + [("test_batch", 20)]:
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        with open(folder / name, "wb") as fh:
            pickle.dump({b"data": data, b"labels": rng.integers(0, 10, n).tolist()}, fh)
    return folder


@pytest.mark.slow  # two fresh interpreters importing torch, plus training
def test_sigkill_during_train_then_the_same_command_resumes(tmp_path):
    data = _mini_cifar(tmp_path / "cifar-10-batches-py")
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "pathwaygrad.cli.main", "train", "--model", "vgg_tiny"]
    cmd += ["--data", str(data), "--out", str(out), "--batch-size", "8", "--epochs", "40"]
    cmd += ["--quiet", "--threads", "1"]
    env = {**os.environ, "PATHWAYGRAD_CACHE": str(tmp_path / "cache")}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    last = out / "last.pt"
    try:
        deadline = time.monotonic() + 240
        while not last.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert last.exists(), proc.stderr.read().decode() if proc.poll() is not None else "slow"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "running"  # killed: nothing could mark it
    finished = int(torch.load(last, weights_only=True)["epoch"])
    assert finished >= 1
    cmd[cmd.index("40")] = str(finished + 1)  # the same settings; one more epoch to finish
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert f"resumed after epoch {finished}" in done.stdout
    result = json.loads((out / "result.json").read_text())
    assert result["epochs"] == finished + 1 and result["resumed_from"] == finished
    assert [h["epoch"] for h in result["history"]] == list(range(1, finished + 2))
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "finished" and len(manifest["attempts"]) == 2
    assert manifest["attempts"][0]["status"] == "running"  # the killed attempt
    assert not [p for p in out.iterdir() if p.name.startswith(".pgtmp.")]
