"""``pathwaygrad evaluate`` as a library function: :func:`run_protocol`.

It resolves a preset (:data:`pathwaygrad.presets.EVALUATION`) and explicit settings, validates
every method name and option, opens the run folder ``<out>/<protocol>/`` (a
:class:`pathwaygrad.runs.RunFolder` with its ``manifest.json``; protocols never replace each
other's results, and a run with other settings is refused unless ``overwrite``) before any model
or data is loaded, runs the protocol, writes ``results.csv``, ``summary.json``, the plots and
``command.json`` (all atomically) and returns the result table. The command line only parses
arguments and calls this; ``reproduce`` and Python users call it (or the protocol functions)
directly.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from pathwaygrad.errors import UserError

__all__ = ["PROTOCOLS", "RANK_BY_DEFAULT", "EvaluationSettings", "run_protocol"]

PROTOCOLS = ("roar", "kar", "perturbation", "road", "sanity")
# The README's LeRF / MoRF claims rank pixels by |map|; ROAR / KAR / ROAD follow the paper (max).
RANK_BY_DEFAULT = {"perturbation": "abs", "roar": "max", "kar": "max", "road": "max"}
RANK_BY_TEXT = {
    "abs": "|map| (max over channels of the absolute value)",
    "max": "the signed maximum over channels",
}


@dataclass(frozen=True)
class EvaluationSettings:
    """Everything an evaluation run can set; None means "the preset's value".

    Result-relevant settings form the run folder's settings (a rerun with the same ones resumes);
    ``executor``, ``workers``, the Ray options, ``device`` and ``threads`` only say where it runs.
    """

    preset: str = "quick"
    model: str | None = None
    weights: str | None = None
    data: str | None = None
    methods: str | Sequence[Any] | None = None
    activations: tuple[str, ...] | None = None
    n_images: int | None = None
    fractions: tuple[float, ...] | None = None
    rank_by: str | None = None
    seed: int = 0
    batch_size: int = 64
    # ROAR / KAR
    epochs: int | None = None
    repeats: int | None = None
    train_subset: int | None = None
    test_subset: int | None = None
    target: str = "predicted"
    include_random: bool = True
    train_threads: int = 1  # torch threads of each retrain: the weights depend on it on a CPU
    # sanity
    mode: str = "cascading"
    init: str | None = None  # None: sanity.DEFAULT_INIT (the paper's N(0, 0.1))
    granularity: str | None = None
    seeds: tuple[int, ...] | None = None  # sanity: several randomisation draws
    # perturbation / road
    curves: bool = True
    noise: float = 0.01
    # where it runs (not part of the run's settings)
    executor: str = "local"
    workers: int | None = None
    ray_address: str | None = None
    num_cpus: float | None = None
    num_gpus: float | None = None
    ray_shared_files: bool | None = None
    device: str | None = None
    threads: int | None = None

    WHERE = (
        "executor",
        "workers",
        "ray_address",
        "num_cpus",
        "num_gpus",
        "ray_shared_files",
        "device",
        "threads",
    )


def _check(protocol: str, s: EvaluationSettings) -> None:
    if protocol not in PROTOCOLS:
        raise UserError(f"unknown protocol {protocol!r}; choose from {', '.join(PROTOCOLS)}")
    if s.n_images is not None and s.n_images < 1:
        raise UserError("--n-images must be >= 1")
    if s.fractions is not None and (not s.fractions or any(not 0 < f < 1 for f in s.fractions)):
        raise UserError(f"fractions must lie strictly between 0 and 1, got {list(s.fractions)}")
    if s.rank_by not in (None, "max", "abs"):
        raise UserError(f"rank_by must be 'max' or 'abs', got {s.rank_by!r}")
    if s.threads is not None and s.threads < 1:
        raise UserError("--threads must be >= 1")
    if s.train_threads < 1:
        raise UserError("--train-threads must be >= 1")
    if s.executor not in ("local", "sequential", "ray"):
        raise UserError(f"executor must be local, sequential or ray, got {s.executor!r}")
    ray_opts = (s.ray_address, s.num_cpus, s.num_gpus, s.ray_shared_files)
    if s.executor != "ray" and any(v is not None for v in ray_opts):
        raise UserError(
            "--ray-address, --num-cpus, --num-gpus and --ray-shared-files need --executor ray"
        )
    if s.executor == "ray" and protocol not in ("roar", "kar"):
        raise UserError("--executor ray runs ROAR / KAR cells; other protocols run in this process")


def _preset(name: str):
    from pathwaygrad.presets import EVALUATION

    if name not in EVALUATION:
        raise UserError(f"unknown preset {name!r}; choose from {', '.join(EVALUATION)}")
    return EVALUATION[name]


def _resolved(protocol: str, s: EvaluationSettings, preset) -> dict:
    """The settings that change results, preset values filled in (the run folder's settings)."""
    out = {k: v for k, v in asdict(s).items() if k not in EvaluationSettings.WHERE}
    out["methods"] = [spec.text for spec in _specs(protocol, s, preset)]
    out["rank_by"] = s.rank_by or RANK_BY_DEFAULT.get(protocol)
    if protocol in ("perturbation", "road", "sanity"):
        out["n_images"] = s.n_images or preset.n_images(protocol)
    if protocol in ("roar", "kar", "road"):
        out["fractions"] = list(s.fractions or preset.fractions(protocol))
    if protocol in ("roar", "kar"):
        out["epochs"] = s.epochs or preset.epochs
        out["repeats"] = s.repeats or preset.repeats
        out["train_subset"] = preset.train_subset if s.train_subset is None else s.train_subset
        out["test_subset"] = preset.test_subset if s.test_subset is None else s.test_subset
    else:
        out.pop("train_threads")
    if protocol == "sanity":
        from pathwaygrad.evaluation.sanity import DEFAULT_INIT

        out["granularity"] = s.granularity or preset.granularity
        out["init"] = s.init or DEFAULT_INIT
    return out


def _specs(protocol: str, s: EvaluationSettings, preset):
    from pathwaygrad.evaluation._methods import resolve_methods

    methods = s.methods or preset.methods
    specs = resolve_methods(methods, {"sparsity": 70.0} if protocol == "sanity" else None)
    return specs


# ------------------------------------------------------------------------------ models, data
def _trained_model(s: EvaluationSettings):
    from pathwaygrad.models import load_model
    from pathwaygrad.models.named import shared_weights_path

    if s.model is None:
        if s.weights is not None:
            raise UserError("--weights needs --model (which architecture the weights are for)")
        path = shared_weights_path("resnet20")
        return load_model("resnet20", path), "resnet20 (pretrained, ../shared)"
    if s.weights is None:
        print(f"warning: --model {s.model} without --weights: evaluating an untrained model")
    return load_model(s.model, s.weights), f"{s.model} ({s.weights or 'untrained'})"


def _dataset(s: EvaluationSettings, split: str, spec: str | None):
    from pathwaygrad.data import load_cifar10
    from pathwaygrad.models import model_info

    info = model_info(spec or "resnet20")
    return load_cifar10(s.data, split, mean=info.mean, std=info.std)


def _subset(ds, n: int | None, seed: int):
    if not n:
        return ds
    balanced = n >= len(getattr(ds, "classes", ())) and n % max(1, len(ds.classes)) == 0
    return ds.subset(n, seed=seed, per_class=balanced)


def _images(s: EvaluationSettings, n: int):
    import numpy as np

    ds = _subset(_dataset(s, "test", s.model), n, s.seed)
    return ds.get_batch(np.arange(len(ds)))


def print_rows(rows: Sequence[dict], columns: Sequence[str], echo: Callable = print) -> None:
    """A plain-text table; every column as wide as its longest value (names are never cut)."""

    def text(v) -> str:
        return f"{v:.4f}" if isinstance(v, float) else str(v)

    widths = [max([len(c), *(len(text(r.get(c))) for r in rows)]) for c in columns]
    echo("  ".join(f"{c:>{w}}" for c, w in zip(columns, widths)))
    for r in rows:
        echo("  ".join(f"{text(r.get(c)):>{w}}" for c, w in zip(columns, widths)))


# --------------------------------------------------------------------------------- protocols
def _executor(s: EvaluationSettings):
    from pathwaygrad.evaluation._executor import make_executor

    if s.executor != "ray":
        return make_executor(s.executor, s.workers, threads=s.train_threads)
    opts: dict[str, Any] = {"address": s.ray_address, "shared_files": s.ray_shared_files}
    if s.num_cpus is not None:
        opts["num_cpus"] = s.num_cpus
    if s.num_gpus is not None:
        opts["num_gpus"] = s.num_gpus
    if s.workers is not None and s.ray_address is None:
        opts["local_cpus"] = s.workers
    return make_executor("ray", threads=s.train_threads, **opts)


def _roar(protocol, s, r: dict, run, specs, echo):
    from pathwaygrad.evaluation import plots
    from pathwaygrad.evaluation.roar import remove_and_retrain
    from pathwaygrad.models import ResNet8, load_model

    preset = _preset(s.preset)
    spec = s.model or "resnet8"
    factory: Callable[[], Any]
    if s.model is None and preset.roar_widths is not None:
        factory = functools.partial(ResNet8, widths=tuple(preset.roar_widths))
        arch = f"ResNet-8 widths {tuple(preset.roar_widths)}"
    else:
        factory = functools.partial(load_model, spec)
        arch = spec
    explain_model = load_model(spec, s.weights) if s.weights else None
    train = _subset(_dataset(s, "train", spec), r["train_subset"], s.seed)
    test = _subset(_dataset(s, "test", spec), r["test_subset"], s.seed)
    exe = _executor(s)
    echo(
        f"{protocol.upper()}: {arch}, {len(train)} train / {len(test)} test images, "
        f"{r['epochs']} epochs per retrain, executor {exe.describe()} -> {run.path}"
    )
    try:
        table = remove_and_retrain(
            factory,
            train,
            test,
            specs,
            out_dir=run.path,
            modes=(protocol,),
            fractions=r["fractions"],
            repeats=r["repeats"],
            explain_model=explain_model,
            include_random=s.include_random,
            rank_by=r["rank_by"],
            target=s.target,
            train_kwargs={"epochs": r["epochs"], "batch_size": preset.train_batch_size},
            executor=exe,
            train_threads=s.train_threads,
            device=s.device,
            map_batch_size=s.batch_size,
            seed=s.seed,
            activations=s.activations,
        )
    finally:
        exe.close()
    plots.plot_roar(table, run / f"{protocol}.png")
    print_rows(
        table.summary["cells"],
        ["protocol", "method", "fraction", "accuracy_mean", "accuracy_std", "n"],
        echo,
    )
    return table


def _perturbation(protocol, s, r: dict, run, specs, echo):
    from pathwaygrad.evaluation import plots
    from pathwaygrad.evaluation._results import write_csv
    from pathwaygrad.evaluation.perturbation import (
        DEFAULT_FRACTIONS,
        deletion_insertion,
        pixel_perturbation,
    )

    model, desc = _trained_model(s)
    model.to(s.device or "cpu")
    x, _ = _images(s, r["n_images"])
    fr = tuple(s.fractions) if s.fractions else DEFAULT_FRACTIONS
    table = pixel_perturbation(
        model,
        x,
        specs,
        fractions=fr,
        rank_by=r["rank_by"],
        batch_size=s.batch_size,
        seed=s.seed,
        activations=s.activations,
    )
    table.meta["model"] = desc
    table.save(run.path)
    plots.plot_perturbation(table, run / "perturbation.png")
    summary = {**table.meta, "summary": table.summary}
    if s.curves:
        curves = deletion_insertion(
            model,
            x,
            specs,
            rank_by=r["rank_by"],
            batch_size=s.batch_size,
            seed=s.seed,
            activations=s.activations,
        )
        write_csv(run / "deletion_insertion.csv", curves)
        plots.plot_deletion_insertion(curves, run / "deletion_insertion.png")
        summary["deletion_insertion"] = {**curves.meta, "summary": curves.summary}
    run.write_json("summary.json", summary)
    rows = [{"method": m, "order": o, **v} for m, d in table.summary.items() for o, v in d.items()]
    print_rows(rows, ["method", "order", "drop_at_10", "area_0_10", "area"], echo)
    return table


def _road(protocol, s, r: dict, run, specs, echo):
    from pathwaygrad.evaluation import plots
    from pathwaygrad.evaluation.road import road

    model, desc = _trained_model(s)
    model.to(s.device or "cpu")
    x, y = _images(s, r["n_images"])
    table = road(
        model,
        x,
        specs,
        labels=y,
        fractions=r["fractions"],
        noise=s.noise,
        rank_by=r["rank_by"],
        batch_size=s.batch_size,
        seed=s.seed,
        activations=s.activations,
    )
    table.meta["model"] = desc
    table.save(run.path)
    plots.plot_road(table, run / "road.png")
    rows = [{"method": m, "order": o, **v} for m, d in table.summary.items() for o, v in d.items()]
    print_rows(rows, ["method", "order", "area", "mean_accuracy"], echo)
    return table


def _sanity(protocol, s, r: dict, run, specs, echo):
    from pathwaygrad.evaluation import plots
    from pathwaygrad.evaluation.sanity import sanity_check, summarize_seeds

    model, desc = _trained_model(s)
    model.to(s.device or "cpu")
    x, _ = _images(s, r["n_images"])
    table = sanity_check(
        model,
        x,
        specs,
        mode=s.mode,
        init=r["init"],
        granularity=r["granularity"],
        batch_size=s.batch_size,
        seed=s.seed,
        seeds=list(s.seeds) if s.seeds else None,
    )
    table.meta["model"] = desc
    table.save(run.path)
    several = s.seeds is not None and len(s.seeds) > 1
    plots.plot_sanity(summarize_seeds(list(table)) if several else table, run / "sanity.png")
    print_rows(list(table), ["method", "layer", "spearman", "spearman_abs", "ssim", "hog"], echo)
    return table


_RUNNERS = {
    "roar": _roar,
    "kar": _roar,
    "perturbation": _perturbation,
    "road": _road,
    "sanity": _sanity,
}


def run_protocol(
    protocol: str,
    out: str | os.PathLike,
    settings: EvaluationSettings | None = None,
    *,
    overwrite: bool = False,
    command: Sequence[str] | None = None,
    echo: Callable[[str], Any] = print,
    **overrides: Any,
):
    """Run one evaluation protocol into ``<out>/<protocol>/``; returns its result table.

    ``settings`` (or keyword ``overrides`` of :class:`EvaluationSettings` fields): see there.
    ``overwrite``: replace an earlier run with other settings in that folder (default: refuse);
    ``command``: the command line to record in ``command.json``; ``echo``: where progress lines
    and the result table go. Every method name and option, the preset, the output folder's
    writability and the executor options are checked before any model or data is loaded.
    """
    from pathwaygrad.runs import open_run

    s = replace(settings or EvaluationSettings(), **overrides)
    _check(protocol, s)
    preset = _preset(s.preset)
    specs = _specs(protocol, s, preset)  # validates every name and option
    resolved = _resolved(protocol, s, preset)
    where = {k: getattr(s, k) for k in EvaluationSettings.WHERE}
    with open_run(
        Path(out) / protocol, f"evaluate {protocol}", resolved, overwrite=overwrite, info=where
    ) as run:
        if s.threads is not None:
            import torch

            torch.set_num_threads(s.threads)
        if protocol in RANK_BY_DEFAULT:
            how = "--rank-by" if s.rank_by else "default"
            echo(f"ranking pixels by {RANK_BY_TEXT[resolved['rank_by']]} ({how})")
        t0 = time.perf_counter()
        table = _RUNNERS[protocol](protocol, s, resolved, run, specs, echo)
        took = time.perf_counter() - t0
        run.write_json(
            "command.json",
            {
                "command": list(command) if command is not None else None,
                "settings": resolved,
                "where": where,
                "seconds": round(took, 1),
            },
        )
        run.update(seconds=round(took, 1))
        echo(f"wrote {run.path}/results.csv, summary.json and plots in {took:.0f} s")
    return table
