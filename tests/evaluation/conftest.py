from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import torch

from . import processes
from .synthetic import cnn, make_data, mlp, train

ROOT = Path(__file__).resolve().parents[2]


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "ray: starts Ray; runs only with loopback-only networking (see processes.py)"
    )


@pytest.fixture(scope="session", autouse=True)
def no_process_outlives_the_tests():
    """Every process the evaluation tests start (worker pools, Ray's head, raylets and workers, the
    driver subprocesses of the kill tests) inherits a session marker in its environment; at the
    end of the session none of them may still run."""
    value = os.environ.setdefault(processes.MARKER, uuid.uuid4().hex)
    yield

    def started_by_tests() -> list[int]:
        # this process's own multiprocessing resource tracker lives as long as this process
        own = set(processes.children(os.getpid()))
        return [
            p
            for p in processes.with_env(processes.MARKER, value)
            if not (p in own and "resource_tracker" in processes.cmdline(p))
        ]

    left = processes.wait_gone(started_by_tests, timeout=60)
    assert not left, "processes left running: " + "; ".join(
        f"{p}: {processes.cmdline(p)}" for p in left
    )


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    """A ``ray`` test outside a loopback-only network namespace runs itself again inside a new
    one (``unshare -n``, loopback up) and passes or fails with that run; only where that is
    impossible (no root / unshare / ip) is it skipped, with the reason."""
    if pyfuncitem.get_closest_marker("ray") is None or processes.loopback_only():
        return None
    if os.environ.get("PATHWAYGRAD_TEST_IN_NETNS"):  # never recurse
        pytest.fail(f"still not loopback-only inside the namespace: {processes.interfaces()}")
    if not processes.can_unshare():
        pytest.skip("Ray tests need loopback-only networking: run as root with unshare and ip")
    argv = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", pyfuncitem.nodeid]
    marker = uuid.uuid4().hex  # the re-run's own session marker: its processes checked here too
    env = {**os.environ, processes.MARKER: marker, "PATHWAYGRAD_TEST_IN_NETNS": "1"}
    proc = subprocess.run(
        processes.netns_command(argv), cwd=ROOT, env=env, capture_output=True, text=True
    )
    if proc.returncode != 0:
        pytest.fail(
            f"{pyfuncitem.nodeid} inside a loopback-only namespace failed:\n"
            + (proc.stdout + proc.stderr)[-6000:],
            pytrace=False,
        )
    left = processes.wait_gone(lambda: processes.with_env(processes.MARKER, marker), timeout=60)
    assert not left, f"processes of the namespace run left running: {left}"
    return True


@pytest.fixture(scope="package", autouse=True)
def one_torch_thread():
    """These tests run tiny models: one intra-op thread is much faster than two, and on a busy
    machine two threads can be 20x slower. Restored after the package's tests."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="package")
def region_data():
    return make_data(640, seed=1), make_data(200, seed=2)


@pytest.fixture(scope="package")
def trained_mlp(region_data):
    torch.manual_seed(0)
    return train(mlp(), region_data[0])


@pytest.fixture(scope="package")
def trained_cnn(region_data):
    torch.manual_seed(0)
    return train(cnn(), region_data[0], epochs=15)
