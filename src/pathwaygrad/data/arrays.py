"""An in-memory image classification dataset over a uint8 array, normalised on access."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "ArrayImageDataset"]

# The normalisation every built-in model expects (ImageNet statistics), per RGB channel.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ArrayImageDataset(Dataset):
    """Images held as uint8 (N, H, W, C) with int labels (N,); items are normalised float tensors.

    ``dataset[i]`` gives ``(image (C, H, W) float32, label int)`` with
    ``image = (pixels / 255 - mean) / std`` per channel (no normalisation when ``mean`` is None).
    :meth:`get_batch` gives whole batches at once (used by :mod:`pathwaygrad.training`).
    ``classes`` names the labels 0..K-1.
    """

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray | Sequence[int],
        classes: Sequence[str],
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ):
        images = np.asarray(images)
        labels = np.asarray(labels, dtype=np.int64)
        if images.dtype != np.uint8 or images.ndim != 4:
            raise ValueError(
                f"images must be uint8 (N, H, W, C), got {images.dtype} {images.shape}"
            )
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images = images
        self.labels = labels
        self.classes = list(classes)
        channels = images.shape[3]
        if mean is None:
            self.mean = self.std = None
        else:
            std = std if std is not None else (1.0,) * channels
            self.mean = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
            self.std = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)

    def __len__(self) -> int:
        return len(self.labels)

    def get_batch(self, indices) -> tuple[torch.Tensor, torch.Tensor]:
        """Images (B, C, H, W) float32 normalised, labels (B,) int64 for ``indices`` (B,)."""
        idx = np.asarray(indices, dtype=np.int64)
        x = torch.from_numpy(self.images[idx]).permute(0, 3, 1, 2).float().div_(255.0)
        if self.mean is not None and self.std is not None:
            x = (x - self.mean) / self.std
        return x.contiguous(), torch.from_numpy(self.labels[idx])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        x, y = self.get_batch([index])
        return x[0], int(y[0])

    def subset(self, n: int | None = None, *, seed: int | None = None, per_class: bool = False):
        """A new dataset of ``n`` examples: the first ``n``, a random ``n`` (``seed``), or, with
        ``per_class``, ``n // K`` of each class (random when ``seed`` is given)."""
        total = len(self)
        if n is None or n >= total:
            return self
        rng = np.random.default_rng(seed) if seed is not None else None
        if per_class:
            k = len(self.classes)
            picks = []
            for c in range(k):
                where = np.flatnonzero(self.labels == c)
                if rng is not None:
                    where = rng.permutation(where)
                picks.append(where[: n // k])
            idx = np.sort(np.concatenate(picks))
        elif rng is not None:
            idx = np.sort(rng.choice(total, n, replace=False))
        else:
            idx = np.arange(n)
        out = ArrayImageDataset.__new__(ArrayImageDataset)
        out.images, out.labels, out.classes = self.images[idx], self.labels[idx], self.classes
        out.mean, out.std = self.mean, self.std
        return out

    def fingerprint(self) -> str:
        """A hash (sha256, 16 hex) of the content: pixels, labels, class names, normalisation.

        Two datasets with the same fingerprint give the same items; used to key training runs
        and caches by the data rather than by its path.
        """
        h = hashlib.sha256()
        h.update(f"{self.images.shape}|{self.classes}|".encode())
        for t in (self.mean, self.std):
            h.update(repr(None if t is None else t.flatten().tolist()).encode())
        h.update(np.ascontiguousarray(self.images).data)
        h.update(np.ascontiguousarray(self.labels, dtype=np.int64).data)
        return h.hexdigest()[:16]

    def __repr__(self) -> str:
        n, h, w, c = self.images.shape
        return f"ArrayImageDataset({n} images {h}x{w}x{c}, {len(self.classes)} classes)"
