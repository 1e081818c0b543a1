"""ROAR and KAR: remove (or keep) the top t % pixels of every image, retrain, test (Hooker et al. 2019).

Steps (paper section 3.5):

1. A model trained on the unmodified data (``explain_model``, or one trained here with the factory)
   explains every training and test image once per method; the per-pixel scores (float32,
   (N, H, W), see :mod:`._ranking`) are cached on disk under ``out_dir/maps`` (:mod:`._mapcache`).
2. For each cell = method x fraction t x repeat, the top t % pixels by score are replaced with the
   per-channel mean of the training set (ROAR), or all pixels *except* the top t % (KAR); a fresh
   model from ``model_factory`` is trained on the modified training set (1/8 held out for
   validation, best-validation weights kept) and its accuracy on the modified test set recorded
   (:mod:`._cell`). ROAR: lower accuracy = better map; KAR: higher = better. ``"random_ranking"``
   is the baseline (uniform random scores); the ``base`` rows are models trained on unmodified data.

The module layout: :mod:`._staging` writes the data once as ``.npy``; :mod:`._mapcache` computes
and caches the maps (in shards); :mod:`._cell` is one cell, a plain function of a small settings
object; this module is the protocol. Every cell is an independent :class:`~._executor.Job` run by
an :class:`~._executor.Executor`: local worker processes (default), this process, or a Ray cluster
(``executor="ray"``, see :mod:`.ray_executor`). Each finished cell is written atomically to
``out_dir/cells/<key>.json`` and training checkpoints after every epoch, so an interrupted run
continues where it stopped: finished cells are never recomputed, a half-trained cell resumes from
its last epoch (where the executor's workers see ``out_dir``). ``results.csv`` and
``summary.json`` are rewritten (atomically) after every cell. A cell's key includes a hash of every
setting that affects it, so changing the settings never silently reuses stale cells.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pathwaygrad._io import load_torch, save_torch, write_json
from pathwaygrad.errors import UserError
from pathwaygrad.evaluation._cell import SPLIT_SEED, CellSettings, run_cell
from pathwaygrad.evaluation._executor import Executor, Job, make_executor
from pathwaygrad.evaluation._mapcache import (
    DEFAULT_SHARD_IMAGES,
    compute_maps,
    model_fingerprint,
    safe_name,
)
from pathwaygrad.evaluation._meta import HIGHER, LOWER, ProtocolInfo
from pathwaygrad.evaluation._methods import resolve_methods
from pathwaygrad.evaluation._results import CellStore, ResultTable, summarize, write_csv
from pathwaygrad.evaluation._staging import StagedData, stage_data
from pathwaygrad.specs import MethodSpec

__all__ = [
    "DEFAULT_FRACTIONS",
    "KAR_PROTOCOL",
    "PROTOCOL",
    "kar",
    "remove_and_retrain",
    "roar",
    "run_cell",
]

PROTOCOL = ProtocolInfo(
    name="roar",
    summary="Remove the top t % pixels (mean fill), retrain from scratch, test accuracy.",
    needs=("model_factory", "train_set", "test_set", "methods", "explain_model (or trained here)"),
    scores={"accuracy": LOWER},
    reference="Hooker, Erhan, Kindermans, Kim, NeurIPS 2019; Khakzar et al. CVPR 2021 sec. 4.2",
)
KAR_PROTOCOL = ProtocolInfo(
    name="kar",
    summary="Keep only the top t % pixels (rest mean-filled), retrain from scratch, test accuracy.",
    needs=PROTOCOL.needs,
    scores={"accuracy": HIGHER},
    reference=PROTOCOL.reference,
)
DEFAULT_FRACTIONS = (0.1, 0.3, 0.5, 0.7, 0.9)
_COLUMNS = (
    "protocol",
    "method",
    "fraction",
    "repeat",
    "seed",
    "accuracy",
    "best_val_acc",
    "best_epoch",
    "epochs",
    "resumed_from_epoch",
    "seconds",
    "key",
)


# --------------------------------------------------------------------------------- cell keys
def _cell_key(mode: str, label: str, fraction: float, repeat: int, settings: dict) -> str:
    text = json.dumps(settings, sort_keys=True, default=repr)
    digest = hashlib.sha1(text.encode()).hexdigest()[:10]
    return f"{mode}_{safe_name(label)}_t{round(fraction * 100):03d}_r{repeat}_{digest}"


def _factory_name(factory) -> str:
    inner = getattr(factory, "func", factory)
    name = f"{getattr(inner, '__module__', '?')}.{getattr(inner, '__qualname__', repr(inner))}"
    args = getattr(factory, "args", None)
    kw = getattr(factory, "keywords", None)
    return name + (f"{args}{kw}" if args or kw else "")


def _ordered(rows: list[dict]) -> list[dict]:
    def key(r):
        return (
            r.get("protocol") != "base",
            str(r.get("protocol")),
            str(r.get("method")),
            float(r.get("fraction") or 0),
            int(r.get("repeat") or 0),
        )

    return sorted(rows, key=key)


# -------------------------------------------------------------------------------- the sweep
class _Sweep:
    """The cells of one run: builds their jobs, runs them, stores each finished one, writes results.

    ``common``: the settings every cell key shares; ``root``: the output folder.
    """

    def __init__(
        self,
        root: Path,
        data: StagedData,
        executor: Executor,
        common: dict,
        cell: dict,
        meta: dict,
        progress: bool,
    ):
        self.root = root
        self.data = data
        self.executor = executor
        self.common = common
        self.cell = cell  # CellSettings fields shared by every cell
        self.meta = meta
        self.progress = progress
        self.store = CellStore(root / "cells")
        self.rows: dict[str, dict] = {}
        self.executed: list[str] = []
        self.weights_dir: dict[str, Path] = {}  # key -> folder of the explaining base model

    def job(
        self,
        mode: str,
        spec: MethodSpec | None,
        fraction: float,
        repeat: int,
        maps: dict[str, str] | None,
        map_settings: dict,
        explains: bool = False,
    ) -> Job:
        seed = self.cell["seed"] + repeat
        settings = {**self.common, "mode": mode, "fraction": fraction, "seed": seed, **map_settings}
        label = spec.label if spec is not None else "base"
        key = _cell_key(mode, label, fraction, repeat, settings)
        row = {
            "protocol": mode,
            "method": label,
            "fraction": fraction,
            "repeat": repeat,
            "seed": seed,
            "key": key,
        }
        # one folder per base-model key: a run with other data or settings never resumes (or
        # loads) the checkpoint of another
        folder = self.root / ("base_model" if explains else "checkpoints") / key
        if explains:
            self.weights_dir[key] = folder
        cell = CellSettings(
            mode=mode,
            fraction=fraction,
            fill=self.data.fill,
            model_factory=self.cell["model_factory"],
            train=self.cell["train"],
            seed=seed,
            tie_seed=self.cell["seed"],
            random_seed=seed if spec is not None and spec.is_random_ranking else None,
            val_fraction=self.cell["val_fraction"],
            checkpoint_dir=str(folder) if self.executor.shares_files else None,
            device=self.cell["device"],
            row=row,
            return_weights=explains,
            threads=self.cell["threads"],
        )
        inputs: dict[str, Any] = dict(self.data.paths)
        if maps:
            inputs.update(train_scores=maps["train"], test_scores=maps["test"])
        return Job(key, run_cell, {"settings": cell}, inputs)

    def run(self, jobs: list[Job], desc: str) -> None:
        todo = []
        for j in jobs:
            if self.store.done(j.key):
                self.rows[j.key] = self.store.get(j.key)
            else:
                todo.append(j)
        bar = None
        if self.progress and todo:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(todo), desc=desc, unit="cell")

        def done(j: Job, result: dict) -> None:
            weights = result.pop("weights", None)
            if weights is not None:
                save_torch(weights, self.weights_dir[j.key] / _best_weights())
            self.store.put(j.key, result)
            shutil.rmtree(self.root / "checkpoints" / j.key, ignore_errors=True)
            self.rows[j.key] = result
            self.executed.append(j.key)
            if bar is not None:
                bar.update(1)
            self.write()

        try:
            self.executor.run(todo, done)
        finally:
            if bar is not None:
                bar.close()

    def write(self) -> ResultTable:
        rows = _ordered(list(self.rows.values()))
        cells = summarize(rows, ("protocol", "method", "fraction"), ("accuracy",))
        table = ResultTable(rows, {"cells": cells}, self.meta)
        write_csv(self.root / "results.csv", rows, _COLUMNS)
        write_json(self.root / "summary.json", {**self.meta, "summary": table.summary})
        return table


def _best_weights() -> str:
    from pathwaygrad.training import BEST_WEIGHTS

    return BEST_WEIGHTS


# ---------------------------------------------------------------------------- validation
def _check(train_kwargs: dict, modes, fractions, repeats: int, target: str) -> list[float]:
    if "epochs" not in train_kwargs:
        raise UserError("train_kwargs needs 'epochs' (the paper: 50)")
    for m in modes:
        if m not in ("roar", "kar"):
            raise UserError(f"modes must be 'roar' and/or 'kar', got {m!r}")
    fr = [float(f) for f in fractions]
    if not fr or any(not 0.0 < f < 1.0 for f in fr):
        raise UserError(f"fractions must lie in (0, 1) (0.1 = 10 %), got {list(fractions)}")
    if repeats < 1:
        raise UserError(f"repeats must be >= 1, got {repeats}")
    if target not in ("predicted", "label"):
        raise UserError(f"target must be 'predicted' or 'label', got {target!r}")
    return fr


def _check_picklable(model_factory, exe: Executor) -> None:
    if type(exe).__name__ == "SequentialExecutor":
        return
    try:
        pickle.dumps(model_factory)
    except Exception as exc:  # noqa: BLE001
        raise UserError(
            f"model_factory cannot be sent to worker processes ({exc}); use a module-level "
            "function or functools.partial of one, or executor='sequential'"
        ) from None


def _meta(
    modes,
    fr: list[float],
    repeats: int,
    rank_by: str,
    target: str,
    data: StagedData,
    train_kwargs: dict,
    val_fraction: float,
    seed: int,
    factory: str,
    explain_given: bool,
    specs: list[MethodSpec],
    activations: tuple[str, ...] | None,
) -> dict:
    return {
        **(PROTOCOL if list(modes) == ["roar"] else KAR_PROTOCOL).to_dict(),
        "protocols": {m: (PROTOCOL if m == "roar" else KAR_PROTOCOL).to_dict() for m in modes},
        "settings": {
            "modes": list(modes),
            "fractions": fr,
            "repeats": repeats,
            "rank_by": rank_by,
            "target": target,
            "fill": f"per-channel training-set mean {[round(v, 4) for v in data.fill]}",
            "train": train_kwargs,
            "val_fraction": val_fraction,
            "seed": seed,
            "model_factory": factory,
            "n_train": data.n_train,
            "n_test": data.n_test,
            "explain_model": "given" if explain_given else "base model trained here (repeat 0)",
            "activations": list(activations) if activations is not None else "relu",
        },
        "methods": [s.describe() for s in specs],
    }


# ------------------------------------------------------------------------------ the protocol
def remove_and_retrain(
    model_factory: Callable[[], nn.Module],
    train_set,
    test_set,
    methods,
    *,
    out_dir: str | os.PathLike,
    modes: Sequence[str] = ("roar",),
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    repeats: int = 1,
    explain_model: nn.Module | None = None,
    include_random: bool = True,
    include_base: bool = True,
    rank_by: str = "max",
    target: str = "predicted",
    train_kwargs: dict | None = None,
    val_fraction: float = 0.125,
    executor: str | Executor | None = "local",
    workers: int | None = None,
    train_threads: int = 1,
    device: str | None = None,
    map_batch_size: int = 128,
    map_shard_images: int = DEFAULT_SHARD_IMAGES,
    seed: int = 0,
    progress: bool = True,
    activations: str | Sequence[str] | None = None,
) -> ResultTable:
    """ROAR and / or KAR over ``methods`` x ``fractions`` x ``repeats``; resumable in ``out_dir``.

    ``model_factory``: a picklable callable returning a fresh untrained model (e.g.
    ``functools.partial(pathwaygrad.models.build_model, "resnet8")``); ``train_set`` /
    ``test_set``: datasets of ``(image (C, H, W) float, label)``, normalised as the model expects;
    ``methods``: see :func:`~._methods.resolve_methods` (every name and option is checked before
    any work starts); ``modes``: ``"roar"`` and / or ``"kar"``; ``fractions``: in (0, 1);
    ``repeats``: retrains per cell with seeds ``seed + repeat`` (the same seeds for every method
    and fraction); ``explain_model``: the trained model the maps are computed with (None: the
    first ``base`` model trained here); ``target``: ``"predicted"`` (the explain model's class,
    default) or ``"label"``; ``train_kwargs``: for :func:`pathwaygrad.training.train_classifier`
    (``epochs`` is required); ``executor``: ``"local"`` (worker processes), ``"sequential"``,
    ``"ray"`` (a local Ray instance) or an :class:`~._executor.Executor` such as
    ``RayExecutor(address="auto", num_cpus=4, num_gpus=1)``; ``train_threads``: torch CPU threads
    of every retrain (part of each cell's key: on a CPU the trained weights depend on it; the
    local executor's default workers are the cores divided by it); ``map_shard_images``: images per map
    task on executors that shard maps (Ray); ``activations``: the activation kinds pathway methods
    select neurons in (None: ReLUs).

    Returns a :class:`ResultTable`, one row per mode x method x fraction x repeat (``accuracy`` in
    [0, 1]); ``summary["cells"]`` has mean / std over repeats. Writes ``results.csv`` and
    ``summary.json`` into ``out_dir``. The results do not depend on the executor.
    """
    train_kwargs = dict(train_kwargs or {})
    fr = _check(train_kwargs, modes, fractions, repeats, target)
    train_kwargs.setdefault("batch_size", 256)
    specs = [s for s in resolve_methods(methods) if not s.is_random_ranking]
    if include_random:
        specs.append(MethodSpec("random_ranking"))
    acts = (activations,) if isinstance(activations, str) else activations
    acts = tuple(acts) if acts is not None else None
    own_executor = not isinstance(executor, Executor)
    if train_threads < 1:
        raise UserError(f"train_threads must be >= 1, got {train_threads}")
    exe = make_executor(executor, workers, threads=train_threads)
    try:
        _check_picklable(model_factory, exe)
        root = Path(out_dir)
        root.mkdir(parents=True, exist_ok=True)
        return _protocol(
            root,
            exe,
            model_factory,
            train_set,
            test_set,
            specs,
            modes=modes,
            fr=fr,
            repeats=repeats,
            explain_model=explain_model,
            include_base=include_base,
            rank_by=rank_by,
            target=target,
            train_kwargs=train_kwargs,
            val_fraction=val_fraction,
            train_threads=train_threads,
            device=device,
            map_batch_size=map_batch_size,
            map_shard_images=map_shard_images,
            seed=seed,
            progress=progress,
            activations=acts,
        )
    finally:
        if own_executor:
            exe.close()


def _protocol(
    root: Path,
    exe: Executor,
    model_factory,
    train_set,
    test_set,
    specs: list[MethodSpec],
    *,
    modes,
    fr: list[float],
    repeats: int,
    explain_model: nn.Module | None,
    include_base: bool,
    rank_by: str,
    target: str,
    train_kwargs: dict,
    val_fraction: float,
    train_threads: int,
    device: str | None,
    map_batch_size: int,
    map_shard_images: int,
    seed: int,
    progress: bool,
    activations: tuple[str, ...] | None,
) -> ResultTable:
    data = stage_data(root, train_set, test_set)
    factory = _factory_name(model_factory)
    common = {
        "data": data.fingerprint,
        "factory": factory,
        "train": train_kwargs,
        "val_fraction": val_fraction,
        "split_seed": SPLIT_SEED,
        "train_threads": train_threads,
    }
    cell = {
        "model_factory": model_factory,
        "train": train_kwargs,
        "val_fraction": val_fraction,
        "device": device,
        "seed": seed,
        "threads": train_threads,
    }
    meta = _meta(
        modes,
        fr,
        repeats,
        rank_by,
        target,
        data,
        train_kwargs,
        val_fraction,
        seed,
        factory,
        explain_model is not None,
        specs,
        activations,
    )
    meta["settings"]["train_threads"] = train_threads
    sweep = _Sweep(root, data, exe, common, cell, meta, progress)

    # 1. base models (unmodified data); the first one explains when no model was given
    n_base = repeats if include_base else 0
    base_jobs = [
        sweep.job("base", None, 0.0, r, None, {}, explains=explain_model is None and r == 0)
        for r in range(n_base)
    ]
    if explain_model is None and not base_jobs:
        base_jobs = [sweep.job("base", None, 0.0, 0, None, {}, explains=True)]
    sweep.run(base_jobs, "base models")
    if explain_model is None:
        explain_model = _trained_base_model(model_factory, sweep, base_jobs[0].key, seed, device)
    if not include_base:
        for j in base_jobs:
            sweep.rows.pop(j.key, None)

    # 2. maps, once per method (cached, keyed by the explaining model's weights)
    explainer = model_fingerprint(explain_model)
    maps_of = compute_maps(
        explain_model,
        explainer,
        [s for s in specs if not s.is_random_ranking],
        data,
        root,
        rank_by=rank_by,
        target=target,
        batch_size=map_batch_size,
        executor=exe,
        shard_images=map_shard_images,
        device=device,
        progress=progress,
        activations=activations,
    )
    # 3. cells
    meta["settings"]["explain_model_fingerprint"] = explainer
    jobs = []
    for mode in modes:
        for spec in specs:
            map_settings = {"method": spec.describe(), "rank_by": rank_by, "target": target}
            if not spec.is_random_ranking:
                map_settings["explain_model"] = explainer
                if activations is not None and spec.is_pathway:
                    map_settings["activations"] = list(activations)
            for f in fr:
                for r in range(repeats):
                    jobs.append(sweep.job(mode, spec, f, r, maps_of.get(spec.label), map_settings))
    sweep.run(jobs, "/".join(modes) + " cells")
    table = sweep.write()
    table.meta["executed_cells"] = list(sweep.executed)
    return table


def _trained_base_model(model_factory, sweep: _Sweep, key: str, seed: int, device) -> nn.Module:
    """The base model of repeat 0 (trained by the first run() call), loaded from its weights."""
    torch.manual_seed(seed)
    model = model_factory()
    weights = sweep.root / "base_model" / key / _best_weights()
    if not weights.exists():
        raise UserError(
            f"the base model's weights {weights} are missing; delete {sweep.store.path(key)} "
            "and rerun"
        )
    model.load_state_dict(load_torch(weights, what="base-model weights"))
    model.eval()
    if device is not None:
        model.to(device)
    return model


def roar(model_factory, train_set, test_set, methods, **kwargs) -> ResultTable:
    """ROAR only (see :func:`remove_and_retrain`); lower accuracy = better map."""
    return remove_and_retrain(
        model_factory, train_set, test_set, methods, modes=("roar",), **kwargs
    )


def kar(model_factory, train_set, test_set, methods, **kwargs) -> ResultTable:
    """KAR only (see :func:`remove_and_retrain`); higher accuracy = better map."""
    return remove_and_retrain(model_factory, train_set, test_set, methods, modes=("kar",), **kwargs)
