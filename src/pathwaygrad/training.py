"""Train and evaluate image classifiers, as in the paper's ROAR setup (section 3.5 of docs).

The defaults follow the paper's CIFAR-10 ROAR recipe: Adam (lr 1e-3, weight decay 1e-4), learning rate
halved every 10 epochs, batch 256, random horizontal flip + random crop (4-pixel zero padding)
augmentation, and the weights of the epoch with the best validation accuracy restored at the end.

Datasets are ``torch.utils.data.Dataset`` objects whose items are ``(image, label)`` with ``image`` a
float tensor (C, H, W), already normalised the way the model expects, and ``label`` an int. Three kinds
are read without a ``DataLoader`` (fast on a CPU): ``TensorDataset`` (images, labels), any dataset with a
``get_batch(indices) -> (images (B, C, H, W), labels (B,))`` method (the datasets of
:mod:`pathwaygrad.data`), and ``Subset`` of either. Anything else goes through a ``DataLoader``.

Checkpoints (``checkpoint_dir``): ``last.pt`` after every epoch (model, optimiser, scheduler, random
state, history, best weights, and the settings of the run), ``best.pt`` (the best weights only, a plain
``state_dict``). Both are written atomically (:mod:`pathwaygrad._io`), so an interruption never leaves a
broken file, and both hold only tensors, numbers, strings and containers: they are read with
``torch.load(..., weights_only=True)``, so a crafted checkpoint cannot run code. Calling
:func:`train_classifier` again with the same ``checkpoint_dir`` resumes after the last finished epoch,
if the checkpoint's settings (everything but ``epochs``) are the ones asked for; otherwise it refuses.
"""

from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Iterator, Sized
from pathlib import Path
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset

from pathwaygrad._io import load_torch, save_torch
from pathwaygrad.errors import UserError

__all__ = [
    "augment_batch",
    "evaluate_accuracy",
    "iterate_batches",
    "load_checkpoint",
    "save_atomic",
    "train_classifier",
    "train_val_split",
]

LAST_CHECKPOINT = "last.pt"
BEST_WEIGHTS = "best.pt"


# ----------------------------------------------------------------------------------------- batches
def _fast_source(dataset: Dataset):
    """Return ``fetch(indices) -> (x, y)`` for datasets readable without a DataLoader, else None."""
    if isinstance(dataset, TensorDataset):
        images, labels = dataset.tensors[0], dataset.tensors[1]
        return lambda idx: (images[idx], labels[idx])
    get_batch = getattr(dataset, "get_batch", None)
    if callable(get_batch):
        return get_batch
    if isinstance(dataset, Subset):
        inner = _fast_source(dataset.dataset)
        if inner is None:
            return None
        mapping = torch.as_tensor(list(dataset.indices), dtype=torch.long)
        return lambda idx: inner(mapping[idx])
    return None


def _len(dataset: Dataset) -> int:
    """``len(dataset)``: every dataset used here has one (``Dataset`` does not declare it)."""
    return len(cast(Sized, dataset))


def iterate_batches(
    dataset: Dataset,
    batch_size: int,
    *,
    shuffle: bool = False,
    generator: torch.Generator | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(images (B, C, H, W) float, labels (B,) long)`` batches covering ``dataset`` once.

    ``shuffle`` draws the order from ``generator`` (reproducible when it is seeded).
    """
    n = _len(dataset)
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    fetch = _fast_source(dataset)
    if fetch is not None:
        for start in range(0, n, batch_size):
            x, y = fetch(order[start : start + batch_size])
            yield x.float(), torch.as_tensor(y, dtype=torch.long)
        return
    loader = DataLoader(Subset(dataset, order.tolist()), batch_size=batch_size, shuffle=False)
    for x, y in loader:
        yield x.float(), torch.as_tensor(y, dtype=torch.long)


def augment_batch(
    x: torch.Tensor, *, padding: int = 4, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Random horizontal flip (p = 0.5) and random crop after zero padding, per image.

    ``x``: (B, C, H, W); returns a new tensor of the same shape. Zero padding in normalised space
    fills with the dataset mean.
    """
    b, _, h, w = x.shape
    flip = torch.rand(b, generator=generator) < 0.5
    x = torch.where(flip.view(b, 1, 1, 1), x.flip(3), x)
    if padding <= 0:
        return x
    padded = F.pad(x, (padding, padding, padding, padding))
    dy = torch.randint(0, 2 * padding + 1, (b,), generator=generator)
    dx = torch.randint(0, 2 * padding + 1, (b,), generator=generator)
    rows = (dy.view(b, 1) + torch.arange(h).view(1, h)).view(b, 1, h, 1)
    cols = (dx.view(b, 1) + torch.arange(w).view(1, w)).view(b, 1, 1, w)
    bidx = torch.arange(b).view(b, 1, 1, 1)
    cidx = torch.arange(x.shape[1]).view(1, -1, 1, 1)
    return padded[bidx, cidx, rows, cols]


def train_val_split(
    dataset: Dataset, val_fraction: float = 0.125, seed: int = 0
) -> tuple[Subset, Subset]:
    """Split ``dataset`` at random into (train, validation) subsets; the paper keeps 1/8 for validation."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must lie in (0, 1), got {val_fraction}")
    n = _len(dataset)
    n_val = max(1, int(round(n * val_fraction)))
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    return Subset(dataset, order[n_val:]), Subset(dataset, order[:n_val])


# ------------------------------------------------------------------------------------- evaluation
def _model_device(model: nn.Module, device) -> torch.device:
    if device is not None:
        return torch.device(device)
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


@torch.no_grad()
def evaluate_accuracy(
    model: nn.Module, dataset: Dataset, batch_size: int = 512, device=None
) -> float:
    """Top-1 accuracy of ``model`` on ``dataset`` as a fraction in [0, 1] (model in eval mode).

    The model's train/eval mode is restored afterwards.
    """
    device = _model_device(model, device)
    was_training = model.training
    model.eval()
    correct, total = 0, 0
    try:
        for x, y in iterate_batches(dataset, batch_size):
            pred = model(x.to(device)).argmax(1).cpu()
            correct += int((pred == y).sum())
            total += len(y)
    finally:
        model.train(was_training)
    if total == 0:
        raise ValueError("cannot evaluate accuracy on an empty dataset")
    return correct / total


# ------------------------------------------------------------------------------------ checkpoints
def save_atomic(obj, path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file beside ``path``, then ``os.replace`` it into place."""
    save_torch(obj, path)


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a ``last.pt`` written by :func:`train_classifier` without running code from it.

    A truncated, corrupt or crafted file raises a one-line ``UserError`` naming the file.
    """
    ckpt = load_torch(path, what="checkpoint")
    needed = {"epoch", "model", "optimizer", "scheduler", "generator", "history"}
    if not isinstance(ckpt, dict) or not needed <= set(ckpt):
        raise UserError(
            f"checkpoint {path} is not a training checkpoint of pathwaygrad: delete it or use "
            "another checkpoint folder"
        )
    return ckpt


def _state_copy(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


# --------------------------------------------------------------------------------------- training
def train_classifier(
    model: nn.Module,
    train_set: Dataset,
    val_set: Dataset | None = None,
    *,
    epochs: int,
    batch_size: int = 256,
    lr: float = 1e-3,
    weight_decay: float = 1e-4,
    lr_step: int = 10,
    lr_gamma: float = 0.5,
    schedule: str = "step",
    augment: bool = True,
    seed: int = 0,
    device=None,
    checkpoint_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> dict:
    """Train ``model`` in place with cross-entropy and Adam; return the training record.

    ``schedule="step"``: every ``lr_step`` epochs the learning rate is multiplied by ``lr_gamma``;
    ``schedule="onecycle"``: torch's one-cycle policy over the whole run, stepped every batch (up
    from ``lr / 25`` to ``lr`` in the first 30 % of the batches, then down to about zero: a fast
    recipe for small budgets; ``lr_step`` / ``lr_gamma`` are then unused). With ``val_set``, the
    weights of the epoch with the best validation accuracy are loaded into ``model`` at the end
    (the paper's ROAR setup); without it, the last epoch's weights stay. ``seed`` fixes the batch
    order and the augmentation (not the model's initialisation: build the model under
    ``torch.manual_seed`` for that). With ``checkpoint_dir`` the run checkpoints after every epoch
    and resumes from ``checkpoint_dir/last.pt`` when it exists.

    Returns a dict: ``history`` (one dict per epoch: ``epoch`` (1-based), ``train_loss``,
    ``train_acc``, ``val_acc`` (None without ``val_set``), ``lr``, ``seconds``), ``best_val_acc``
    (fraction or None), ``best_epoch``, ``epochs`` (number of finished epochs) and ``resumed_from``
    (epochs found in the checkpoint, 0 for a fresh run).
    """
    if epochs < 0:
        raise ValueError(f"epochs must be >= 0, got {epochs}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if _len(train_set) == 0:
        raise ValueError("the training set is empty")
    if schedule not in ("step", "onecycle"):
        raise ValueError(f"schedule must be 'step' or 'onecycle', got {schedule!r}")
    device = _model_device(model, device)
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    per_batch = schedule == "onecycle"
    scheduler: torch.optim.lr_scheduler.LRScheduler
    if per_batch:
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=lr,
            total_steps=max(1, epochs * math.ceil(_len(train_set) / batch_size)),
        )
    else:
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=lr_step, gamma=lr_gamma)
    generator = torch.Generator().manual_seed(seed)
    history: list[dict] = []
    best_acc: float | None = None
    best_epoch = 0
    best_state: dict | None = None
    start_epoch = 0

    settings: dict[str, object] = {
        "batch_size": int(batch_size),
        "lr": float(lr),
        "weight_decay": float(weight_decay),
        "lr_step": int(lr_step),
        "lr_gamma": float(lr_gamma),
        "augment": bool(augment),
        "seed": int(seed),
        "train_size": _len(train_set),
        "val_size": _len(val_set) if val_set is not None else None,
    }
    if per_batch:  # one-cycle spans the whole run: its epochs are part of the schedule
        settings["schedule"] = f"onecycle over {epochs} epochs"  # (absent: step, as before)
    ckpt_path = Path(checkpoint_dir) / LAST_CHECKPOINT if checkpoint_dir is not None else None
    if ckpt_path is not None and ckpt_path.exists():
        ckpt = load_checkpoint(ckpt_path)
        old = ckpt.get("settings")
        if old is not None and old != settings:
            diff = [k for k in settings if old.get(k) != settings[k]]
            shown = ", ".join(f"{k} {old.get(k)} -> {settings[k]}" for k in diff)
            raise UserError(
                f"checkpoint {ckpt_path} belongs to a run with other settings ({shown}): use "
                "another checkpoint folder, or delete it to start afresh"
            )
        if int(ckpt["epoch"]) > epochs:
            raise UserError(
                f"checkpoint {ckpt_path} has already trained {int(ckpt['epoch'])} epochs, more than "
                f"the {epochs} asked for: ask for at least {int(ckpt['epoch'])}, or use another "
                "checkpoint folder"
            )
        try:
            model.load_state_dict(ckpt["model"])
        except RuntimeError as exc:
            raise UserError(
                f"checkpoint {ckpt_path} does not fit this model (a different architecture?); "
                f"use another checkpoint folder or delete it: {str(exc).splitlines()[0]}"
            ) from exc
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        generator.set_state(ckpt["generator"])
        history = list(ckpt["history"])
        best_acc, best_epoch = ckpt.get("best_acc"), int(ckpt.get("best_epoch", 0))
        best_state = ckpt.get("best_state")
        start_epoch = int(ckpt["epoch"])
    resumed_from = start_epoch

    pbar = None
    if progress:
        from tqdm.auto import tqdm

        n_batches = math.ceil(_len(train_set) / batch_size)
        pbar = tqdm(total=max(0, epochs - start_epoch) * n_batches, unit="batch", desc="train")
    try:
        for epoch in range(start_epoch, epochs):
            t0 = time.perf_counter()
            model.train()
            loss_sum, correct, seen = 0.0, 0, 0
            for x, y in iterate_batches(train_set, batch_size, shuffle=True, generator=generator):
                if augment:
                    x = augment_batch(x, generator=generator)
                x, y = x.to(device), y.to(device)
                out = model(x)
                loss = F.cross_entropy(out, y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if per_batch:
                    scheduler.step()
                loss_sum += loss.item() * len(y)
                correct += int((out.argmax(1) == y).sum())
                seen += len(y)
                if pbar is not None:
                    pbar.update(1)
                    pbar.set_postfix(epoch=epoch + 1, loss=f"{loss_sum / seen:.3f}")
            current_lr = optimizer.param_groups[0]["lr"]
            if not per_batch:
                scheduler.step()
            val_acc = (
                evaluate_accuracy(model, val_set, device=device) if val_set is not None else None
            )
            record = {
                "epoch": epoch + 1,
                "train_loss": loss_sum / seen,
                "train_acc": correct / seen,
                "val_acc": val_acc,
                "lr": current_lr,
                "seconds": time.perf_counter() - t0,
            }
            history.append(record)
            if val_acc is not None and (best_acc is None or val_acc > best_acc):
                best_acc, best_epoch, best_state = val_acc, epoch + 1, _state_copy(model)
            if pbar is not None:
                msg = f"epoch {epoch + 1}/{epochs}: loss {record['train_loss']:.4f}"
                msg += f", train acc {record['train_acc']:.2%}"
                if val_acc is not None:
                    msg += f", val acc {val_acc:.2%}"
                pbar.write(msg)
            if ckpt_path is not None:
                save_atomic(
                    {
                        "epoch": epoch + 1,
                        "model": _state_copy(model),
                        "optimizer": copy.deepcopy(optimizer.state_dict()),
                        "scheduler": scheduler.state_dict(),
                        "generator": generator.get_state(),
                        "history": history,
                        "best_acc": best_acc,
                        "best_epoch": best_epoch,
                        "best_state": best_state,
                        "settings": settings,
                    },
                    ckpt_path,
                )
                save_atomic(best_state or _state_copy(model), ckpt_path.parent / BEST_WEIGHTS)
    finally:
        if pbar is not None:
            pbar.close()

    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return {
        "history": history,
        "best_val_acc": best_acc,
        "best_epoch": best_epoch if best_state is not None else len(history),
        "epochs": len(history),
        "resumed_from": resumed_from,
    }
