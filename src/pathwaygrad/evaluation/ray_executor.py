"""Run a protocol's jobs as Ray tasks: ROAR / KAR retrain cells and map shards on a cluster.

Install the extra: ``pip install 'pathwaygrad[ray]'``. This is the only module of pathwaygrad
that imports :mod:`ray`, and only when a :class:`RayExecutor` first runs jobs.

- **Where.** ``address=None`` starts a local Ray instance on this machine (stopped again by
  :meth:`RayExecutor.close`); ``address="auto"`` joins the cluster this machine belongs to
  (``ray start --head`` / ``ray start --address=...``), ``"ray://host:10001"`` a remote one
  through Ray Client. A Ray already initialised in this process is used as it is and left running.
- **What is shipped.** A job is a module-level function, its small settings object and its named
  inputs. Each distinct input is put into Ray's object store once (``.npy`` arrays, the explaining
  model) and every task gets references to it, so no worker reads a path of the driver. With
  ``shared_files=True`` (the output folder is on a file system every node mounts at the same path,
  or ``address=None``) tasks read the ``.npy`` files directly (memory-mapped) and keep their
  training checkpoints there; otherwise a half-trained cell restarts from scratch when retried.
- **Resources.** Every task asks for ``num_cpus`` CPUs (its torch threads) and ``num_gpus``
  GPUs; Ray runs as many at once as the cluster has room for.
- **Faults.** A task whose worker or node dies is retried up to ``max_retries`` times (the cell is
  deterministic, so a retry gives the same numbers); a task that raises is not retried: the run
  stops with :class:`~._executor.JobError`, cancelling what is still queued. The driver stores each
  finished cell itself (atomically), so a killed driver resumes on rerun.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from pathwaygrad.errors import UserError
from pathwaygrad.evaluation._executor import Executor, Job, JobError

__all__ = ["RayExecutor"]


def _ray_call(fn: Callable[..., Any], kwargs: dict, names: list[str], threads: int, *values: Any):
    """The task body: set torch's threads, call ``fn`` with its inputs (refs already resolved)."""
    import torch

    torch.set_num_threads(max(1, threads))
    if not names:
        return fn(**kwargs)
    return fn(**kwargs, inputs=dict(zip(names, values)))


class RayExecutor(Executor):
    """Jobs as Ray tasks (see the module docstring).

    ``address``: None (a local instance), ``"auto"``, ``"host:port"`` or ``"ray://host:port"``;
    ``num_cpus`` / ``num_gpus``: resources each task requests (fractions allowed);
    ``max_retries``: retries of a task lost with its worker or node; ``shared_files``: the
    driver's output folder is readable (and writable) at the same path on every node (default:
    only for a local instance); ``local_cpus``: CPUs of a local instance (default: all);
    ``init_kwargs``: more keyword arguments for ``ray.init``.
    """

    shards_maps = True

    def __init__(
        self,
        address: str | None = None,
        *,
        num_cpus: float = 1,
        num_gpus: float = 0,
        max_retries: int = 3,
        shared_files: bool | None = None,
        local_cpus: int | None = None,
        init_kwargs: dict | None = None,
    ):
        if num_cpus <= 0:
            raise UserError(f"num_cpus per task must be > 0, got {num_cpus}")
        if num_gpus < 0:
            raise UserError(f"num_gpus per task must be >= 0, got {num_gpus}")
        if max_retries < 0:
            raise UserError(f"max_retries must be >= 0, got {max_retries}")
        self.address = address
        self.num_cpus = num_cpus
        self.num_gpus = num_gpus
        self.max_retries = max_retries
        self.shares_files = address is None if shared_files is None else bool(shared_files)
        self.local_cpus = local_cpus
        self.init_kwargs = dict(init_kwargs or {})
        self._started = False  # this executor called ray.init (so it calls ray.shutdown)
        self._refs: dict[Any, tuple[Any, Any]] = {}  # input identity -> (value kept alive, ref)

    def describe(self) -> dict:
        return {
            "executor": "ray",
            "address": self.address or "local instance",
            "num_cpus": self.num_cpus,
            "num_gpus": self.num_gpus,
            "max_retries": self.max_retries,
            "shared_files": self.shares_files,
        }

    # ------------------------------------------------------------------------------ connection
    def _ray(self):
        try:
            import ray
        except ImportError:
            raise UserError(
                "executor 'ray' needs Ray: pip install 'pathwaygrad[ray]' (or pip install ray)"
            ) from None
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"log_to_driver": False, **self.init_kwargs}
            if self.address is None:
                kwargs.setdefault("address", "local")
                kwargs.setdefault("include_dashboard", False)
                if self.local_cpus is not None:
                    kwargs.setdefault("num_cpus", self.local_cpus)
                if "job_config" not in kwargs:
                    # workers of a local instance import what this process imports
                    paths = [p for p in sys.path if p and os.path.isdir(p)]
                    kwargs["job_config"] = ray.job_config.JobConfig(code_search_path=paths)
            else:
                kwargs.setdefault("address", self.address)
            self._init(ray, kwargs)
            self._started = True
        return ray

    def _init(self, ray, kwargs: dict) -> None:
        """``ray.init``; a local instance that timed out during start-up (Ray waits 30 s for its
        raylet, too short on an overloaded machine) is started once more."""
        attempts = 2 if self.address is None else 1
        for attempt in range(attempts):
            try:
                ray.init(**kwargs)
                return
            except Exception as exc:
                if attempt + 1 == attempts or "timed out during startup" not in str(exc):
                    raise
                ray.shutdown()

    def close(self) -> None:
        """Drop the object-store references; stop Ray if this executor started it."""
        self._refs.clear()
        if self._started:
            import ray

            ray.shutdown()
            self._started = False

    # ---------------------------------------------------------------------------------- inputs
    def _ref(self, ray, value: Any) -> Any:
        if isinstance(value, str | os.PathLike):
            if self.shares_files:
                return os.fspath(value)
            ident: Any = ("path", os.path.abspath(value))
        else:
            ident = ("object", id(value))
        if ident not in self._refs:
            if ident[0] == "path":
                from pathwaygrad._io import load_npy

                self._refs[ident] = (value, ray.put(load_npy(value)))
            else:
                self._refs[ident] = (value, ray.put(value))
        return self._refs[ident][1]

    # ------------------------------------------------------------------------------------- run
    def run(self, jobs: Sequence[Job], on_done: Callable[[Job, Any], None]) -> None:
        jobs = list(jobs)
        if not jobs:
            return
        ray = self._ray()
        task = ray.remote(_ray_call).options(
            num_cpus=self.num_cpus,
            num_gpus=self.num_gpus,
            max_retries=self.max_retries,
            retry_exceptions=False,
        )
        threads = max(1, int(self.num_cpus))
        running: dict[Any, Job] = {}
        try:
            for job in jobs:
                names = list(job.inputs)
                values = [self._ref(ray, job.inputs[n]) for n in names]
                running[task.remote(job.fn, job.kwargs, names, threads, *values)] = job
            while running:
                ready, _ = ray.wait(list(running), num_returns=1)
                for ref in ready:
                    job = running.pop(ref)
                    try:
                        result = ray.get(ref)
                    except ray.exceptions.RayTaskError as exc:
                        cause = exc.cause if isinstance(exc.cause, BaseException) else exc
                        error = JobError(job.key, cause)
                        raise error from cause
                    on_done(job, result)
        except BaseException:
            for ref in running:
                try:
                    ray.cancel(ref, force=True)
                except Exception:  # noqa: BLE001 (already finished or gone)
                    pass
            raise
