"""ROAR and KAR: remove (or keep) the top t % pixels of every image, retrain, test (Hooker et al. 2019).

Steps (paper section 3.5):

1. A model trained on the unmodified data (``explain_model``, or one trained here with the factory)
   explains every training and test image once per method; the per-pixel scores (float32,
   (N, H, W), see :mod:`._ranking`) are cached on disk under ``out_dir/maps``.
2. For each cell = method x fraction t x repeat, the top t % pixels by score are replaced with the
   per-channel mean of the training set (ROAR), or all pixels *except* the top t % (KAR); a fresh
   model from ``model_factory`` is trained on the modified training set (1/8 held out for
   validation, best-validation weights kept) and its accuracy on the modified test set recorded.
   ROAR: lower accuracy = better map; KAR: higher = better. ``"random_ranking"`` is the baseline
   (uniform random scores); the ``base`` rows are models trained on unmodified data.

Every cell is an independent :class:`~._executor.Job` described by file paths and numbers, run by
an :class:`~._executor.Executor` (local worker processes by default). Each finished cell is written
atomically to ``out_dir/cells/<key>.json`` and training checkpoints after every epoch, so an
interrupted run continues where it stopped: finished cells are never recomputed, a half-trained
cell resumes from its last epoch. ``results.csv`` and ``summary.json`` are rewritten (atomically)
after every cell. A cell's key includes a hash of every setting that affects it, so changing the
settings never silently reuses stale cells.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pathwaygrad.errors import UserError
from pathwaygrad.evaluation._executor import Job, make_executor
from pathwaygrad.evaluation._meta import HIGHER, LOWER, ProtocolInfo
from pathwaygrad.evaluation._methods import MethodSpec, explain_in_batches, resolve_methods
from pathwaygrad.evaluation._ranking import pixel_ranks, pixel_scores, random_scores, removal_mask
from pathwaygrad.evaluation._results import CellStore, ResultTable, summarize, write_csv, write_json

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
_SPLIT_SEED = 12345


# ------------------------------------------------------------------------------- data on disk
def _materialize(dataset, batch_size: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    from pathwaygrad.training import iterate_batches

    xs, ys = [], []
    for x, y in iterate_batches(dataset, batch_size):
        xs.append(x.float().numpy())
        ys.append(y.long().numpy())
    if not xs:
        raise UserError("a dataset is empty")
    x = np.concatenate(xs)
    if x.ndim != 4:
        raise UserError(f"ROAR needs image datasets with items (C, H, W); got batches {x.shape}")
    return np.ascontiguousarray(x, dtype=np.float32), np.concatenate(ys).astype(np.int64)


def _fingerprint(*arrays: np.ndarray) -> str:
    h = hashlib.sha1()
    for a in arrays:
        h.update(str(a.shape).encode())
        h.update(np.ascontiguousarray(a).view(np.uint8).reshape(-1).data)
    return h.hexdigest()[:12]


def _model_fingerprint(model: nn.Module) -> str:
    """A short hash of a model's parameters and buffers (which model made the maps)."""
    h = hashlib.sha1()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:12]


def _save_npy(path: Path, array: np.ndarray) -> None:
    """``np.save`` to a temporary file beside ``path``, then ``os.replace`` (atomic)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        np.save(fh, array)
    os.replace(tmp, path)


def _stage_data(root: Path, train_set, test_set) -> dict:
    """Write the (normalised) train / test tensors once as .npy; return paths and fingerprint."""
    xtr, ytr = _materialize(train_set)
    xte, yte = _materialize(test_set)
    fp = _fingerprint(xtr, ytr, xte, yte)
    info_path = root / "data" / "data.json"
    paths = {k: str(root / "data" / f"{k}.npy") for k in ("train_x", "train_y", "test_x", "test_y")}
    info = None
    if info_path.exists():
        info = json.loads(info_path.read_text())
    if (
        info is None
        or info.get("fingerprint") != fp
        or not all(Path(p).exists() for p in paths.values())
    ):
        for key, arr in zip(paths, (xtr, ytr, xte, yte)):
            _save_npy(Path(paths[key]), arr)
        write_json(
            info_path, {"fingerprint": fp, "train": list(xtr.shape), "test": list(xte.shape)}
        )
    fill = xtr.mean(axis=(0, 2, 3)).astype(np.float64).tolist()
    return {
        "paths": paths,
        "fingerprint": fp,
        "fill": fill,
        "shape": list(xtr.shape[1:]),
        "n_train": len(xtr),
        "n_test": len(xte),
    }


# ----------------------------------------------------------------------------------- the maps
def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "-", text).strip("-")[:60] or "method"


def _compute_maps(
    model,
    model_key: str,
    spec: MethodSpec,
    data: dict,
    root: Path,
    *,
    rank_by: str,
    target: str,
    batch_size: int,
    progress: bool,
) -> dict[str, str]:
    """Pixel scores (N, H, W) float32 of ``spec`` for train and test, cached under ``model_key``
    (the explaining model's weight fingerprint) and the data; returns paths."""
    folder = root / "maps" / f"{_safe(spec.label)}-{spec.fingerprint()}"
    key = {
        "method": spec.describe(),
        "rank_by": rank_by,
        "target": target,
        "data": data["fingerprint"],
        "model": model_key,  # maps of another model are not reused
    }
    out = {}
    for split in ("train", "test"):
        path = folder / f"{split}_{rank_by}.npy"
        meta_path = folder / f"{split}_{rank_by}.json"
        out[split] = str(path)
        if (
            path.exists()
            and meta_path.exists()
            and json.loads(meta_path.read_text()).get("key") == key
        ):
            continue
        x = torch.from_numpy(np.load(data["paths"][f"{split}_x"]))
        y = torch.from_numpy(np.load(data["paths"][f"{split}_y"]))
        n, _, h, w = x.shape
        if target == "label":
            t = y
        else:
            from pathwaygrad.evaluation._methods import predict

            t = predict(model, x, batch_size=max(256, batch_size)).argmax(1)
        scores = np.empty((n, h, w), dtype=np.float32)
        for start, maps in explain_in_batches(
            model,
            x,
            t,
            spec,
            batch_size=batch_size,
            progress=progress,
            desc=f"maps {spec.label} ({split})",
        ):
            scores[start : start + maps.shape[0]] = pixel_scores(maps, rank_by, size=(h, w)).numpy()
        _save_npy(path, scores)
        write_json(meta_path, {"key": key, "shape": list(scores.shape), "dtype": "float32"})
    return out


# ------------------------------------------------------------------------------------ a cell
def _modified(
    x: np.ndarray,
    scores: np.ndarray | None,
    fraction: float,
    mode: str,
    fill,
    seed: int,
    random_seed: int | None,
) -> torch.Tensor:
    """x (N, C, H, W) with the removed pixels set to ``fill`` (per channel), chunked."""
    n, _, h, w = x.shape
    out = torch.empty(x.shape, dtype=torch.float32)
    fill_t = torch.tensor(fill, dtype=torch.float32).view(1, -1, 1, 1)
    order = {"roar": "morf", "kar": "keep", "base": None}[mode]
    chunk = 4096
    for start in range(0, n, chunk):
        xb = torch.from_numpy(np.array(x[start : start + chunk], dtype=np.float32))
        if order is None:
            out[start : start + len(xb)] = xb
            continue
        if scores is None:  # random ranking: independent draws per image, fixed by the seed
            sb = random_scores(len(xb), h, w, seed=random_seed * 1_000_003 + start)
        else:
            sb = torch.from_numpy(np.array(scores[start : start + chunk]))
        remove = removal_mask(pixel_ranks(sb, seed=seed + start), fraction, order)
        out[start : start + len(xb)] = torch.where(remove.unsqueeze(1), fill_t, xb)
    return out


def run_cell(
    *,
    paths: dict,
    maps: dict | None,
    mode: str,
    fraction: float,
    fill: Sequence[float],
    model_factory: Callable[[], nn.Module],
    train_kwargs: dict,
    seed: int,
    tie_seed: int,
    random_seed: int | None,
    val_fraction: float,
    checkpoint_dir: str | None,
    device: str | None,
    row: dict,
) -> dict:
    """Train and test one cell; returns ``row`` completed with the accuracy and training record.

    Everything arrives as plain values and file paths, so the cell runs in any process or on any
    machine that sees the files.
    """
    from torch.utils.data import TensorDataset

    from pathwaygrad.training import evaluate_accuracy, train_classifier, train_val_split

    t0 = time.perf_counter()
    xtr = np.load(paths["train_x"], mmap_mode="r")
    ytr = torch.from_numpy(np.load(paths["train_y"]))
    xte = np.load(paths["test_x"], mmap_mode="r")
    yte = torch.from_numpy(np.load(paths["test_y"]))
    s_tr = np.load(maps["train"], mmap_mode="r") if maps else None
    s_te = np.load(maps["test"], mmap_mode="r") if maps else None
    train_all = TensorDataset(
        _modified(xtr, s_tr, fraction, mode, fill, tie_seed, random_seed), ytr
    )
    test = TensorDataset(
        _modified(
            xte,
            s_te,
            fraction,
            mode,
            fill,
            tie_seed + 7919,
            None if random_seed is None else random_seed + 7919,
        ),
        yte,
    )
    if val_fraction > 0:
        train, val = train_val_split(train_all, val_fraction, seed=_SPLIT_SEED)
    else:
        train, val = train_all, None
    torch.manual_seed(seed)
    model = model_factory()
    if device is not None:
        model = model.to(device)
    record = train_classifier(
        model,
        train,
        val,
        seed=seed,
        device=device,
        checkpoint_dir=checkpoint_dir,
        progress=False,
        **train_kwargs,
    )
    acc = evaluate_accuracy(model, test, device=device)
    out = dict(row)
    out.update(
        accuracy=acc,
        best_val_acc=record.get("best_val_acc"),
        best_epoch=record.get("best_epoch"),
        epochs=record.get("epochs"),
        resumed_from_epoch=record.get("resumed_from"),
        seconds=round(time.perf_counter() - t0, 3),
    )
    return out


# ----------------------------------------------------------------------------- the protocol
def _cell_key(mode: str, label: str, fraction: float, repeat: int, settings: dict) -> str:
    digest = hashlib.sha1(json.dumps(settings, sort_keys=True, default=repr).encode()).hexdigest()[
        :10
    ]
    return f"{mode}_{_safe(label)}_t{round(fraction * 100):03d}_r{repeat}_{digest}"


def _factory_name(factory) -> str:
    inner = getattr(factory, "func", factory)
    name = f"{getattr(inner, '__module__', '?')}.{getattr(inner, '__qualname__', repr(inner))}"
    args = getattr(factory, "args", None)
    kw = getattr(factory, "keywords", None)
    return name + (f"{args}{kw}" if args or kw else "")


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
    executor="local",
    workers: int | None = None,
    device: str | None = None,
    map_batch_size: int = 128,
    seed: int = 0,
    progress: bool = True,
) -> ResultTable:
    """ROAR and / or KAR over ``methods`` x ``fractions`` x ``repeats``; resumable in ``out_dir``.

    ``model_factory``: a picklable callable returning a fresh untrained model (e.g.
    ``functools.partial(pathwaygrad.models.build_model, "resnet8")``); ``train_set`` /
    ``test_set``: datasets of ``(image (C, H, W) float, label)``, normalised as the model expects;
    ``methods``: see :func:`~._methods.resolve_methods`; ``modes``: ``"roar"`` and / or ``"kar"``;
    ``fractions``: in (0, 1); ``repeats``: retrains per cell with seeds ``seed + repeat`` (the same
    seeds for every method and fraction); ``explain_model``: the trained model the maps are
    computed with (None: the first ``base`` model trained here); ``target``: ``"predicted"``
    (the explain model's class, default) or ``"label"``; ``train_kwargs``: for
    :func:`pathwaygrad.training.train_classifier` (``epochs`` is required); ``executor``:
    ``"local"`` (worker processes), ``"sequential"`` or an :class:`~._executor.Executor`.

    Returns a :class:`ResultTable`, one row per mode x method x fraction x repeat (``accuracy`` in
    [0, 1]); ``summary["cells"]`` has mean / std over repeats. Writes ``results.csv`` and
    ``summary.json`` into ``out_dir``.
    """
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    train_kwargs = dict(train_kwargs or {})
    if "epochs" not in train_kwargs:
        raise UserError("train_kwargs needs 'epochs' (the paper: 50)")
    train_kwargs.setdefault("batch_size", 256)
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
    specs = [s for s in resolve_methods(methods) if not s.is_random_ranking]
    if include_random:
        specs.append(MethodSpec(label="random_ranking", name="random_ranking"))
    exe = make_executor(executor, workers)
    if type(exe).__name__ != "SequentialExecutor":
        try:
            pickle.dumps(model_factory)
        except Exception as exc:  # noqa: BLE001
            raise UserError(
                f"model_factory cannot be sent to worker processes ({exc}); use a module-level "
                "function or functools.partial of one, or executor='sequential'"
            ) from None
    store = CellStore(root / "cells")
    data = _stage_data(root, train_set, test_set)
    common = {
        "data": data["fingerprint"],
        "factory": _factory_name(model_factory),
        "train": train_kwargs,
        "val_fraction": val_fraction,
        "split_seed": _SPLIT_SEED,
    }

    def job(mode, spec, fraction, repeat, maps, map_settings) -> Job:
        settings = {
            **common,
            "mode": mode,
            "fraction": fraction,
            "seed": seed + repeat,
            **map_settings,
        }
        label = spec.label if spec is not None else "base"
        key = _cell_key(mode, label, fraction, repeat, settings)
        row = {
            "protocol": mode,
            "method": label,
            "fraction": fraction,
            "repeat": repeat,
            "seed": seed + repeat,
            "key": key,
        }
        kwargs = dict(
            paths=data["paths"],
            maps=maps,
            mode=mode,
            fraction=fraction,
            fill=data["fill"],
            model_factory=model_factory,
            train_kwargs=train_kwargs,
            seed=seed + repeat,
            tie_seed=seed,
            random_seed=(seed + repeat) if spec is not None and spec.is_random_ranking else None,
            val_fraction=val_fraction,
            checkpoint_dir=str(root / "checkpoints" / key),
            device=device,
            row=row,
        )
        return Job(key, run_cell, kwargs)

    rows_by_key: dict[str, dict] = {}
    executed: list[str] = []

    def finish(j: Job, result: dict) -> None:
        store.put(j.key, result)
        shutil.rmtree(root / "checkpoints" / j.key, ignore_errors=True)
        rows_by_key[j.key] = result
        executed.append(j.key)
        if bar is not None:
            bar.update(1)
        _write(root, rows_by_key, meta)

    def run(jobs: list[Job], desc: str) -> None:
        nonlocal bar
        todo = []
        for j in jobs:
            if store.done(j.key):
                rows_by_key[j.key] = store.get(j.key)
            else:
                todo.append(j)
        bar = None
        if progress and todo:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(todo), desc=desc, unit="cell")
        try:
            exe.run(todo, finish)
        finally:
            if bar is not None:
                bar.close()

    bar = None
    meta = {
        **(PROTOCOL if modes == ("roar",) or list(modes) == ["roar"] else KAR_PROTOCOL).to_dict(),
        "protocols": {m: (PROTOCOL if m == "roar" else KAR_PROTOCOL).to_dict() for m in modes},
        "settings": {
            "modes": list(modes),
            "fractions": fr,
            "repeats": repeats,
            "rank_by": rank_by,
            "target": target,
            "fill": f"per-channel training-set mean {[round(v, 4) for v in data['fill']]}",
            "train": train_kwargs,
            "val_fraction": val_fraction,
            "seed": seed,
            "model_factory": common["factory"],
            "n_train": data["n_train"],
            "n_test": data["n_test"],
            "explain_model": "given"
            if explain_model is not None
            else "base model trained here (repeat 0)",
        },
        "methods": [s.describe() for s in specs],
    }

    # 1. base models (unmodified data); the first one explains when no model was given
    base_jobs = [job("base", None, 0.0, r, None, {}) for r in range(repeats if include_base else 0)]
    if explain_model is None:
        if not base_jobs:
            base_jobs = [job("base", None, 0.0, 0, None, {})]
        base_jobs[0] = Job(
            base_jobs[0].key,
            base_jobs[0].fn,
            # one folder per base-model key: a run with other data or settings never resumes
            # (or loads) the checkpoint of another
            {**base_jobs[0].kwargs, "checkpoint_dir": str(root / "base_model" / base_jobs[0].key)},
        )
    run(base_jobs, "base models")
    if explain_model is None:
        from pathwaygrad.training import BEST_WEIGHTS

        torch.manual_seed(seed)
        explain_model = model_factory()
        weights = root / "base_model" / base_jobs[0].key / BEST_WEIGHTS
        if not weights.exists():
            raise UserError(
                f"the base model's weights {weights} are missing; delete {store.path(base_jobs[0].key)} and rerun"
            )
        explain_model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        explain_model.eval()
        if device is not None:
            explain_model.to(device)
    if not include_base:
        for j in base_jobs:
            rows_by_key.pop(j.key, None)

    # 2. maps, once per method (cached, keyed by the explaining model's weights)
    explainer = _model_fingerprint(explain_model)
    maps_of: dict[str, dict | None] = {}
    for spec in specs:
        if spec.is_random_ranking:
            maps_of[spec.label] = None
            continue
        maps_of[spec.label] = _compute_maps(
            explain_model,
            explainer,
            spec,
            data,
            root,
            rank_by=rank_by,
            target=target,
            batch_size=map_batch_size,
            progress=progress,
        )
    # 3. cells
    jobs = []
    meta["settings"]["explain_model_fingerprint"] = explainer
    for mode in modes:
        for spec in specs:
            map_settings = {"method": spec.describe(), "rank_by": rank_by, "target": target}
            if not spec.is_random_ranking:
                map_settings["explain_model"] = explainer
            for f in fr:
                for r in range(repeats):
                    jobs.append(job(mode, spec, f, r, maps_of[spec.label], map_settings))
    run(jobs, "/".join(modes) + " cells")
    table = _write(root, rows_by_key, meta)
    table.meta["executed_cells"] = list(executed)
    return table


def _ordered(rows_by_key: dict[str, dict]) -> list[dict]:
    def key(r):
        return (
            r.get("protocol") != "base",
            str(r.get("protocol")),
            str(r.get("method")),
            float(r.get("fraction") or 0),
            int(r.get("repeat") or 0),
        )

    return sorted(rows_by_key.values(), key=key)


def _write(root: Path, rows_by_key: dict, meta: dict) -> ResultTable:
    rows = _ordered(rows_by_key)
    cells = summarize(rows, ("protocol", "method", "fraction"), ("accuracy",))
    table = ResultTable(rows, {"cells": cells}, meta)
    cols = [
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
    ]
    write_csv(root / "results.csv", rows, cols)
    write_json(root / "summary.json", {**meta, "summary": table.summary})
    return table


def roar(model_factory, train_set, test_set, methods, **kwargs) -> ResultTable:
    """ROAR only (see :func:`remove_and_retrain`); lower accuracy = better map."""
    return remove_and_retrain(
        model_factory, train_set, test_set, methods, modes=("roar",), **kwargs
    )


def kar(model_factory, train_set, test_set, methods, **kwargs) -> ResultTable:
    """KAR only (see :func:`remove_and_retrain`); higher accuracy = better map."""
    return remove_and_retrain(model_factory, train_set, test_set, methods, modes=("kar",), **kwargs)
