"""One ROAR / KAR retrain cell: a plain function of a small picklable settings object.

:func:`run_cell` modifies the staged images (remove or keep the top t % pixels by the method's
scores, fill with the training-set mean), trains a fresh model and tests it. It receives a
:class:`CellSettings` and the arrays as ``inputs`` (``.npy`` paths or arrays already loaded, e.g.
from Ray's object store), so it runs the same in this process, a worker process or a cluster task.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from pathwaygrad.evaluation._executor import array_input
from pathwaygrad.evaluation._ranking import pixel_ranks, random_scores, removal_mask

__all__ = ["SPLIT_SEED", "CellSettings", "modified_images", "run_cell"]

SPLIT_SEED = 12345  # the train / validation split of every cell
_ORDER = {"roar": "morf", "kar": "keep", "base": None}


@dataclass(frozen=True)
class CellSettings:
    """Everything one cell needs besides the data.

    ``mode``: ``"base"`` (unmodified data), ``"roar"`` or ``"kar"``; ``fraction``: t in (0, 1);
    ``fill``: per-channel fill value; ``model_factory``: a picklable callable returning a fresh
    model; ``train``: keyword arguments of :func:`pathwaygrad.training.train_classifier`;
    ``seed``: the model's initialisation and batch order; ``tie_seed``: pixel-rank tie breaking;
    ``random_seed``: the random-ranking baseline's scores (None for a method with maps);
    ``checkpoint_dir``: resume / checkpoint there (None: no checkpoints); ``row``: the result
    row's identifying columns; ``return_weights``: also return the trained weights (the base model
    that explains, when the driver cannot read the task's checkpoint); ``threads``: torch's CPU
    threads while the cell trains and tests. On a CPU the trained weights depend on the thread
    count (reductions are split differently), so it is a setting of the cell, applied by the cell
    itself: every executor trains alike.
    """

    mode: str
    fraction: float
    fill: tuple[float, ...]
    model_factory: Callable[[], nn.Module]
    train: dict
    seed: int
    tie_seed: int
    random_seed: int | None
    val_fraction: float
    checkpoint_dir: str | None
    device: str | None
    row: dict = field(default_factory=dict)
    return_weights: bool = False
    threads: int = 1


def modified_images(
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
    order = _ORDER[mode]
    chunk = 4096
    for start in range(0, n, chunk):
        xb = torch.from_numpy(np.array(x[start : start + chunk], dtype=np.float32))
        if order is None:
            out[start : start + len(xb)] = xb
            continue
        if scores is None:  # random ranking: independent draws per image, fixed by the seed
            assert random_seed is not None
            sb = random_scores(len(xb), h, w, seed=random_seed * 1_000_003 + start)
        else:
            sb = torch.from_numpy(np.array(scores[start : start + chunk]))
        remove = removal_mask(pixel_ranks(sb, seed=seed + start), fraction, order)
        out[start : start + len(xb)] = torch.where(remove.unsqueeze(1), fill_t, xb)
    return out


def run_cell(*, settings: CellSettings, inputs: Mapping[str, Any]) -> dict:
    """Train and test one cell; returns ``settings.row`` completed with the accuracy and record.

    ``inputs``: ``train_x``, ``train_y``, ``test_x``, ``test_y`` and, for a method with maps,
    ``train_scores`` / ``test_scores`` (paths or arrays). With ``settings.return_weights`` the
    result also holds ``"weights"`` (the trained state dict on the CPU).
    """
    s = settings
    previous = torch.get_num_threads()
    torch.set_num_threads(s.threads)
    try:
        return _run_cell(s, inputs)
    finally:
        torch.set_num_threads(previous)


def _run_cell(s: CellSettings, inputs: Mapping[str, Any]) -> dict:
    from torch.utils.data import Dataset, TensorDataset

    from pathwaygrad.training import evaluate_accuracy, train_classifier, train_val_split

    t0 = time.perf_counter()
    xtr = array_input(inputs["train_x"])
    ytr = torch.from_numpy(np.array(array_input(inputs["train_y"]), dtype=np.int64))
    xte = array_input(inputs["test_x"])
    yte = torch.from_numpy(np.array(array_input(inputs["test_y"]), dtype=np.int64))
    s_tr = array_input(inputs["train_scores"]) if "train_scores" in inputs else None
    s_te = array_input(inputs["test_scores"]) if "test_scores" in inputs else None
    train_all = TensorDataset(
        modified_images(xtr, s_tr, s.fraction, s.mode, s.fill, s.tie_seed, s.random_seed), ytr
    )
    test = TensorDataset(
        modified_images(
            xte,
            s_te,
            s.fraction,
            s.mode,
            s.fill,
            s.tie_seed + 7919,
            None if s.random_seed is None else s.random_seed + 7919,
        ),
        yte,
    )
    train: Dataset
    val: Dataset | None
    if s.val_fraction > 0:
        train, val = train_val_split(train_all, s.val_fraction, seed=SPLIT_SEED)
    else:
        train, val = train_all, None
    torch.manual_seed(s.seed)
    model = s.model_factory()
    if s.device is not None:
        model = model.to(s.device)
    record = train_classifier(
        model,
        train,
        val,
        seed=s.seed,
        device=s.device,
        checkpoint_dir=s.checkpoint_dir,
        progress=False,
        **s.train,
    )
    acc = evaluate_accuracy(model, test, device=s.device)
    out = dict(s.row)
    out.update(
        accuracy=acc,
        best_val_acc=record.get("best_val_acc"),
        best_epoch=record.get("best_epoch"),
        epochs=record.get("epochs"),
        resumed_from_epoch=record.get("resumed_from"),
        seconds=round(time.perf_counter() - t0, 3),
    )
    if s.return_weights:
        out["weights"] = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    return out
