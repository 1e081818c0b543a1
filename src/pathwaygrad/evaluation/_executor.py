"""A small executor interface: run independent jobs, report each result as soon as it is done.

A protocol (e.g. ROAR) turns its work into :class:`Job` objects: a *module-level* function, keyword
arguments that describe the job completely (a small settings object, names, numbers: nothing that
lives only in the calling process) and named ``inputs`` (paths of ``.npy`` files, or objects such
as a model) that the function receives as ``inputs=``. An :class:`Executor` runs the jobs in any
order and calls ``on_done(job, result)`` in the calling process for every finished job; the
protocol writes the result there (atomically), so an interruption loses at most the running jobs.

Three executors ship: :class:`SequentialExecutor` (in this process, one after the other),
:class:`LocalProcessExecutor` (a pool of local worker processes, the default) and
:class:`~pathwaygrad.evaluation.ray_executor.RayExecutor` (tasks on a Ray cluster; optional extra
``pathwaygrad[ray]``, imported only when asked for). Another engine (Slurm array jobs, ...) only
needs to implement :meth:`Executor.run`.

Worker processes of :class:`LocalProcessExecutor` die with their parent: each one asks the kernel
for ``SIGKILL`` when its parent dies (``prctl(PR_SET_PDEATHSIG)`` on Linux) and also watches its
parent's pid, so a ``kill -9`` of the run leaves no worker (and so no resource tracker) behind; a
``SIGTERM`` or Ctrl-C of the run kills the running workers before the error propagates.
"""

from __future__ import annotations

import abc
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "EXECUTORS",
    "Executor",
    "Job",
    "JobError",
    "LocalProcessExecutor",
    "SequentialExecutor",
    "make_executor",
]

EXECUTORS = ("local", "sequential", "ray")


@dataclass(frozen=True)
class Job:
    """One independent unit of work: ``fn(**kwargs)`` (plus ``inputs=`` when given) returns a result.

    ``key`` identifies the job (and names its result file). ``fn`` must be importable by name
    (a module-level function) so it can run in another process or on another machine. ``inputs``
    maps names to ``.npy`` paths (str) or to objects the job reads; an executor may hand the job
    the loaded arrays instead of the paths (e.g. from Ray's object store), so ``fn`` must accept
    both (:func:`array_input`).
    """

    key: str
    fn: Callable[..., Any]
    kwargs: dict = field(default_factory=dict)
    inputs: Mapping[str, Any] = field(default_factory=dict)

    def __call__(self, inputs: Mapping[str, Any] | None = None) -> Any:
        if not self.inputs:
            return self.fn(**self.kwargs)
        return self.fn(**self.kwargs, inputs=dict(self.inputs if inputs is None else inputs))


def array_input(value: Any) -> Any:
    """An input of a :class:`Job` as an array: a path is memory-mapped read-only, an array kept."""
    if isinstance(value, str | os.PathLike):
        from pathwaygrad._io import load_npy

        return load_npy(value, mmap_mode="r")
    return value


class JobError(RuntimeError):
    """A job raised; ``key`` names it and ``__cause__`` holds the original error."""

    def __init__(self, key: str, exc: BaseException, hint: str | None = None):
        text = f"job {key!r} failed: {type(exc).__name__}: {exc}"
        super().__init__(f"{text}; {hint}" if hint else text)
        self.key = key


#: Why a local worker process dies without an exception, and what to do.
WORKER_DIED = (
    "a worker process died (out of memory, killed, or, when the run is started from a script, "
    'the script lacks `if __name__ == "__main__":` around the call: workers are spawned and '
    "re-import it); fix that and run the same call again: finished cells are kept"
)


class Executor(abc.ABC):
    """Runs jobs; calls ``on_done(job, result)`` in the caller's process once per finished job.

    ``shares_files``: the jobs run where the caller's files are (same machine or a shared folder),
    so they may read and write the caller's paths (checkpoints). ``shards_maps``: the protocol
    should split map computation into jobs for this executor (worth it on a cluster; locally the
    caller computes maps itself with all its threads).
    """

    shares_files: bool = True
    shards_maps: bool = False

    @abc.abstractmethod
    def run(self, jobs: Sequence[Job], on_done: Callable[[Job, Any], None]) -> None:
        """Run every job in ``jobs``. On the first failure, stop starting new jobs and raise
        :class:`JobError` (running jobs finish and are reported where the engine allows)."""

    def close(self) -> None:  # noqa: B027 (optional hook, nothing to release by default)
        """Release what the executor holds (worker pools, a cluster connection)."""

    def describe(self) -> dict:
        """JSON-friendly description for run records (not part of any cache key)."""
        return {"executor": type(self).__name__}


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


# ----------------------------------------------------------------------- local worker processes
_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> None:
    """Make this (worker) process end when ``parent`` does.

    Linux: ``prctl(PR_SET_PDEATHSIG, SIGKILL)``. Everywhere: a daemon thread that polls the parent
    pid once a second and exits hard when the process was re-parented (also covers the race where
    the parent died before the ``prctl`` call).
    """
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):
            pass

    def watch() -> None:
        import time

        while True:
            if os.getppid() != parent:
                os._exit(1)
            time.sleep(1.0)

    if os.getppid() != parent:
        os._exit(1)
    threading.Thread(target=watch, name="pathwaygrad-parent-watch", daemon=True).start()


def _init_worker(threads: int, parent: int) -> None:
    _die_with_parent(parent)
    import torch

    torch.set_num_threads(max(1, threads))


def _call(job: Job) -> Any:
    return job()


def _kill_workers(pool: ProcessPoolExecutor) -> None:
    """End the pool's running workers now (``shutdown`` alone lets each finish its job)."""
    kill = getattr(pool, "kill_workers", None)  # Python >= 3.14
    if kill is not None:
        kill()
        return
    for proc in list(getattr(pool, "_processes", {}).values()):
        try:
            proc.kill()
        except (OSError, ValueError, AttributeError):
            pass


@contextmanager
def _sigterm_raises() -> Iterator[None]:
    """In the main thread: turn SIGTERM into KeyboardInterrupt for the duration (so the executor's
    clean-up runs), then restore the previous handler."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):  # noqa: ARG001
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class LocalProcessExecutor(Executor):
    """A pool of ``workers`` local processes (``spawn`` start method), ``threads`` torch threads each.

    Defaults: as many workers as CPU cores divided by ``threads`` (never more than the number of
    jobs), and the cores shared evenly between the configured workers. With one worker the jobs
    still run in a child process, which keeps the caller's process clean of training state.
    Workers die with the calling process (see the module docstring).
    """

    def __init__(
        self, workers: int | None = None, threads: int | None = None, start_method="spawn"
    ):
        if workers is not None and workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.workers = workers
        self.threads = threads
        self.start_method = start_method

    def describe(self) -> dict:
        return {"executor": "local", "workers": self.workers, "threads": self.threads}

    def run(self, jobs: Sequence[Job], on_done: Callable[[Job, Any], None]) -> None:
        jobs = list(jobs)
        if not jobs:
            return
        cores = os.cpu_count() or 1
        configured = self.workers or max(1, cores // (self.threads or 1))
        workers = min(configured, len(jobs))
        # threads from the configured pool size, so every job runs alike (a lone job does not get
        # all cores: on a busy machine that is many times slower, and results stay comparable)
        threads = self.threads or max(1, cores // configured)
        ctx = multiprocessing.get_context(self.start_method)
        pending = list(reversed(jobs))
        running: dict[Future, Job] = {}
        failure: JobError | None = None
        with (
            _sigterm_raises(),
            ProcessPoolExecutor(
                workers,
                mp_context=ctx,
                initializer=_init_worker,
                initargs=(threads, os.getpid()),
            ) as pool,
        ):
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
                                died = isinstance(exc, BrokenProcessPool)
                                failure = JobError(job.key, exc, WORKER_DIED if died else None)
                                failure.__cause__ = exc
                            continue
                        on_done(job, fut.result())
            except BaseException:
                for fut in running:
                    fut.cancel()
                _kill_workers(pool)
                pool.shutdown(wait=False, cancel_futures=True)
                raise
        if failure is not None:
            raise failure


def make_executor(
    spec: str | Executor | None = None,
    workers: int | None = None,
    *,
    threads: int | None = None,
    **options: Any,
) -> Executor:
    """``"local"`` / None: :class:`LocalProcessExecutor`; ``"sequential"``: in this process;
    ``"ray"``: :class:`~pathwaygrad.evaluation.ray_executor.RayExecutor` (``options``:
    ``address``, ``num_cpus``, ``num_gpus``, ``shared_files``, ``max_retries``); an
    :class:`Executor` is returned as it is. ``threads``: the torch threads each job uses (the
    local pool's default workers are the cores divided by it; Ray's default ``num_cpus``)."""
    from pathwaygrad.errors import UserError

    if isinstance(spec, Executor):
        return spec
    if spec == "ray":
        from pathwaygrad.evaluation.ray_executor import RayExecutor

        if threads is not None:
            options.setdefault("num_cpus", threads)
        return RayExecutor(**options)
    if options:
        raise UserError(
            f"executor options {sorted(options)} only apply to executor='ray', not {spec!r}"
        )
    if spec in (None, "local", "process", "processes"):
        return LocalProcessExecutor(workers=workers, threads=threads)
    if spec in ("sequential", "serial", "inline"):
        return SequentialExecutor()
    raise UserError(
        f"unknown executor {spec!r}; use 'local', 'sequential', 'ray' or an Executor instance"
    )
