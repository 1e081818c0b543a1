"""A small executor interface: run independent jobs, report each result as soon as it is done.

A protocol (e.g. ROAR) turns its work into :class:`Job` objects, each a *top-level* function plus
keyword arguments that describe the job completely (paths, names, numbers: nothing that lives only
in the calling process). An :class:`Executor` runs them in any order and calls ``on_done(job,
result)`` in the calling process for every finished job; the protocol writes the result
there (atomically), so an interruption loses at most the jobs that were running.

Two executors ship: :class:`SequentialExecutor` (in this process, one after the other) and
:class:`LocalProcessExecutor` (a pool of local worker processes, the default). Another engine
(a cluster queue, Ray, Slurm array jobs) only needs to implement :meth:`Executor.run`.
"""

from __future__ import annotations

import abc
import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Executor",
    "Job",
    "JobError",
    "LocalProcessExecutor",
    "SequentialExecutor",
    "make_executor",
]


@dataclass(frozen=True)
class Job:
    """One independent unit of work: ``fn(**kwargs)`` returns a JSON-serialisable dict.

    ``key`` identifies the job (and names its result file). ``fn`` must be importable by name
    (a module-level function) so it can run in another process or on another machine.
    """

    key: str
    fn: Callable[..., Any]
    kwargs: dict = field(default_factory=dict)

    def __call__(self) -> Any:
        return self.fn(**self.kwargs)


class JobError(RuntimeError):
    """A job raised; ``key`` names it and ``__cause__`` holds the original error."""

    def __init__(self, key: str, exc: BaseException):
        super().__init__(f"job {key!r} failed: {type(exc).__name__}: {exc}")
        self.key = key


class Executor(abc.ABC):
    """Runs jobs; calls ``on_done(job, result)`` in the caller's process once per finished job."""

    @abc.abstractmethod
    def run(self, jobs: Sequence[Job], on_done: Callable[[Job, Any], None]) -> None:
        """Run every job in ``jobs``. On the first failure, stop starting new jobs, let running
        ones finish (their ``on_done`` is still called) and raise :class:`JobError`."""


class SequentialExecutor(Executor):
    """Runs the jobs one after the other in this process (simplest to debug)."""

    def run(self, jobs: Sequence[Job], on_done: Callable[[Job, Any], None]) -> None:
        for job in jobs:
            try:
                result = job()
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception as exc:
                raise JobError(job.key, exc) from exc
            on_done(job, result)


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(max(1, threads))


def _call(job: Job) -> Any:
    return job()


class LocalProcessExecutor(Executor):
    """A pool of ``workers`` local processes (``spawn`` start method), ``threads`` torch threads each.

    Defaults: as many workers as CPU cores (never more than the number of jobs), and the cores
    shared evenly between the configured workers. With one worker the jobs still run in a child process, which keeps the
    caller's process clean of training state.
    """

    def __init__(
        self, workers: int | None = None, threads: int | None = None, start_method="spawn"
    ):
        if workers is not None and workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.workers = workers
        self.threads = threads
        self.start_method = start_method

    def run(self, jobs: Sequence[Job], on_done: Callable[[Job, Any], None]) -> None:
        jobs = list(jobs)
        if not jobs:
            return
        cores = os.cpu_count() or 1
        configured = self.workers or cores
        workers = min(configured, len(jobs))
        # threads from the configured pool size, so every job runs alike (a lone job does not get
        # all cores: on a busy machine that is many times slower, and results stay comparable)
        threads = self.threads or max(1, cores // configured)
        ctx = multiprocessing.get_context(self.start_method)
        pending = list(reversed(jobs))
        running: dict[Future, Job] = {}
        failure: JobError | None = None
        with ProcessPoolExecutor(
            workers, mp_context=ctx, initializer=_init_worker, initargs=(threads,)
        ) as pool:
            try:
                while pending or running:
                    while pending and failure is None and len(running) < workers:
                        job = pending.pop()
                        running[pool.submit(_call, job)] = job
                    if not running:
                        break
                    done, _ = wait(running, return_when=FIRST_COMPLETED)
                    for fut in done:
                        job = running.pop(fut)
                        exc = fut.exception()
                        if exc is not None:
                            if failure is None:
                                failure = JobError(job.key, exc)
                                failure.__cause__ = exc
                            continue
                        on_done(job, fut.result())
            except BaseException:
                for fut in running:
                    fut.cancel()
                pool.shutdown(wait=False, cancel_futures=True)
                raise
        if failure is not None:
            raise failure


def make_executor(spec: str | Executor | None = None, workers: int | None = None) -> Executor:
    """``"local"`` / None: :class:`LocalProcessExecutor`; ``"sequential"``: in this process."""
    if isinstance(spec, Executor):
        return spec
    if spec in (None, "local", "process", "processes"):
        return LocalProcessExecutor(workers=workers)
    if spec in ("sequential", "serial", "inline"):
        return SequentialExecutor()
    raise ValueError(f"unknown executor {spec!r}; use 'local' or 'sequential' or an Executor")
