"""One small shared thread pool, for work whose inner loops release the GIL (torch ops, LAPACK
called through ctypes): the histograms of the threshold and the banded solves of ROAD."""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import torch

_pool: ThreadPoolExecutor | None = None


def threads() -> int:
    """How many threads to share work out to: torch's intra-op thread count, at most the cores."""
    return max(1, min(torch.get_num_threads(), os.cpu_count() or 1))


def run(tasks: list[Callable[[], object]]) -> list:
    """Results of the zero-argument callables ``tasks``, in order; run on the shared pool when
    there is more than one."""
    global _pool
    if len(tasks) <= 1:
        return [t() for t in tasks]
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=threads(), thread_name_prefix="pathwaygrad")
    return [f.result() for f in [_pool.submit(t) for t in tasks]]
