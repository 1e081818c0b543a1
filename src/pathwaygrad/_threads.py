"""One small shared thread pool, for work whose inner loops release the GIL (torch ops, LAPACK
called through ctypes): the histograms of the threshold and the banded solves of ROAD."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import torch

_pool: ThreadPoolExecutor | None = None
_PREFIX = "pathwaygrad-pool"
_lock = threading.Lock()


def threads() -> int:
    """How many threads to share work out to: torch's intra-op thread count, at most the cores."""
    return max(1, min(torch.get_num_threads(), os.cpu_count() or 1))


def run(tasks: list[Callable[[], object]]) -> list:
    """Results of the zero-argument callables ``tasks``, in order; run on the shared pool when
    there is more than one (inline when called from one of the pool's own threads, which would
    otherwise wait on tasks queued behind it)."""
    global _pool
    if len(tasks) <= 1 or threading.current_thread().name.startswith(_PREFIX):
        return [t() for t in tasks]
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=threads(), thread_name_prefix=_PREFIX)
    return [f.result() for f in [_pool.submit(t) for t in tasks]]
