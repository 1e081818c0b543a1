"""Batches from whatever data the user has: a tensor, a dataset, or an iterable of batches."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from tqdm.auto import tqdm

from pathwaygrad.errors import UserError


def _as_batch(item) -> tuple[torch.Tensor, torch.Tensor | None]:
    if isinstance(item, torch.Tensor):
        return item, None
    if isinstance(item, tuple | list) and item and isinstance(item[0], torch.Tensor):
        labels = item[1] if len(item) > 1 else None
        if labels is not None and not isinstance(labels, torch.Tensor):
            labels = torch.as_tensor(labels)
        return item[0], labels
    raise UserError(
        "data batches must be tensors (B, ...) or (inputs, labels) tuples, got "
        f"{type(item).__name__}"
    )


def iter_batches(
    data,
    batch_size: int = 50,
    n_examples: int | None = None,
    *,
    progress: bool = False,
    desc: str = "",
    device=None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor | None, np.ndarray]]:
    """Yield ``(inputs (b, ...), labels (b,) or None, indices (b,))`` over the first ``n_examples``.

    ``data``: a tensor (N, ...); a ``(inputs, labels)`` pair of tensors; an object with
    ``get_batch(indices)`` (:class:`pathwaygrad.data.ArrayImageDataset`); a map-style dataset of
    ``(input, label)`` items; or an iterable of batches.
    """
    if batch_size < 1:
        raise UserError(f"batch size must be >= 1, got {batch_size}")
    if isinstance(data, torch.Tensor):
        data = (data, None)
    if (
        isinstance(data, tuple)
        and len(data) == 2
        and isinstance(data[0], torch.Tensor)
        and (data[1] is None or isinstance(data[1], torch.Tensor))
    ):
        x_all, y_all = data
        total = len(x_all) if n_examples is None else min(n_examples, len(x_all))

        def get(idx):
            sel = torch.as_tensor(idx)
            return x_all[sel], None if y_all is None else y_all[sel]

        yield from _indexed(get, total, batch_size, progress, desc, device)
        return
    if hasattr(data, "get_batch") and hasattr(data, "__len__"):
        total = len(data) if n_examples is None else min(n_examples, len(data))
        yield from _indexed(data.get_batch, total, batch_size, progress, desc, device)
        return
    if hasattr(data, "__getitem__") and hasattr(data, "__len__"):
        total = len(data) if n_examples is None else min(n_examples, len(data))

        def get(idx):
            items = [data[int(i)] for i in idx]
            xs = torch.stack([it[0] if isinstance(it, tuple | list) else it for it in items])
            ys = [it[1] for it in items if isinstance(it, tuple | list) and len(it) > 1]
            return xs, torch.as_tensor(ys) if len(ys) == len(items) else None

        yield from _indexed(get, total, batch_size, progress, desc, device)
        return
    # An iterable of batches (e.g. a DataLoader): re-chunk to the requested size limit.
    seen = 0
    bar = tqdm(total=n_examples, desc=desc, unit="ex", disable=not progress)
    for item in data:
        x, y = _as_batch(item)
        if n_examples is not None:
            x, y = x[: n_examples - seen], None if y is None else y[: n_examples - seen]
        if len(x) == 0:
            break
        idx = np.arange(seen, seen + len(x))
        seen += len(x)
        bar.update(len(x))
        yield _to(x, device), y, idx
        if n_examples is not None and seen >= n_examples:
            break
    bar.close()


def _to(x, device):
    return x if device is None else x.to(device)


def _indexed(get, total, batch_size, progress, desc, device):
    bar = tqdm(total=total, desc=desc, unit="ex", disable=not progress)
    for start in range(0, total, batch_size):
        idx = np.arange(start, min(start + batch_size, total))
        x, y = get(idx)
        yield _to(x, device), y, idx
        bar.update(len(idx))
    bar.close()
