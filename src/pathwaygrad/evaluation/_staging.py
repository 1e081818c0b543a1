"""ROAR / KAR data staging: the (normalised) train / test tensors written once as ``.npy`` files.

A retrain cell, a map shard or a Ray task reads the staged arrays (memory-mapped, or from Ray's
object store), never the user's dataset object, so any process or machine can run it. The staged
data's fingerprint (a hash of every array) is part of every cache key downstream.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pathwaygrad._io import load_json, save_npy, write_json
from pathwaygrad.errors import UserError

__all__ = ["ARRAYS", "StagedData", "fingerprint", "stage_data"]

ARRAYS = ("train_x", "train_y", "test_x", "test_y")


@dataclass(frozen=True)
class StagedData:
    """Where the staged arrays are and what they hold.

    ``paths``: ``train_x`` / ``train_y`` / ``test_x`` / ``test_y`` -> ``.npy`` path;
    ``fingerprint``: a hash of the four arrays; ``fill``: the per-channel training-set mean
    (ROAR's fill value); ``shape``: one image's (C, H, W).
    """

    paths: dict[str, str]
    fingerprint: str
    fill: tuple[float, ...]
    shape: tuple[int, ...]
    n_train: int
    n_test: int

    def split(self, split: str) -> dict[str, str]:
        """``{"x": path, "y": path}`` of ``"train"`` or ``"test"``."""
        return {"x": self.paths[f"{split}_x"], "y": self.paths[f"{split}_y"]}

    def size(self, split: str) -> int:
        return self.n_train if split == "train" else self.n_test


def _materialize(dataset, batch_size: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    from pathwaygrad.training import iterate_batches

    xs, ys = [], []
    for x, y in iterate_batches(dataset, batch_size):
        xs.append(x.float().numpy())
        ys.append(y.long().numpy())
    if not xs:
        raise UserError("a dataset is empty")
    images = np.concatenate(xs)
    if images.ndim != 4:
        raise UserError(
            f"ROAR needs image datasets with items (C, H, W); got batches {images.shape}"
        )
    return np.ascontiguousarray(images, dtype=np.float32), np.concatenate(ys).astype(np.int64)


def fingerprint(*arrays: np.ndarray) -> str:
    """A short hash of the arrays' shapes and bytes."""
    h = hashlib.sha1()
    for a in arrays:
        h.update(str(a.shape).encode())
        h.update(np.ascontiguousarray(a).view(np.uint8).reshape(-1).data)
    return h.hexdigest()[:12]


def stage_data(root: Path, train_set, test_set) -> StagedData:
    """Write the train / test tensors once under ``root/data`` (kept when the fingerprint matches)."""
    xtr, ytr = _materialize(train_set)
    xte, yte = _materialize(test_set)
    fp = fingerprint(xtr, ytr, xte, yte)
    info_path = root / "data" / "data.json"
    paths = {k: str(root / "data" / f"{k}.npy") for k in ARRAYS}
    info = load_json(info_path) if info_path.exists() else None
    if (
        info is None
        or info.get("fingerprint") != fp
        or not all(Path(p).exists() for p in paths.values())
    ):
        for key, arr in zip(ARRAYS, (xtr, ytr, xte, yte)):
            save_npy(paths[key], arr)
        write_json(
            info_path, {"fingerprint": fp, "train": list(xtr.shape), "test": list(xte.shape)}
        )
    fill = tuple(float(v) for v in xtr.mean(axis=(0, 2, 3)).astype(np.float64))
    return StagedData(
        paths=paths,
        fingerprint=fp,
        fill=fill,
        shape=tuple(int(s) for s in xtr.shape[1:]),
        n_train=len(xtr),
        n_test=len(xte),
    )
