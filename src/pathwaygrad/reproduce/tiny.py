"""The ``tiny`` preset's inputs: a synthetic CIFAR-like dataset and a tiny model trained on it.

Each class is a bright square at its own place on a noisy background (10 classes, 32x32 RGB), so
a small network learns it in seconds. Used to run the whole reproduction in a test.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import IO

import numpy as np

from pathwaygrad._io import atomic_write, save_torch, write_text


def _images(n_per_class: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    images, labels = [], []
    for c in range(10):
        row, col = divmod(c, 4)
        for _ in range(n_per_class):
            img = rng.integers(0, 90, size=(32, 32, 3), dtype=np.uint8)
            img[2 + row * 10 : 2 + row * 10 + 7, 2 + col * 7 : 2 + col * 7 + 6] = 230
            images.append(img)
            labels.append(c)
    return np.stack(images), np.asarray(labels)


def _png_writer(image) -> Callable[[IO[bytes]], None]:
    def write(fh: IO[bytes]) -> None:
        image.save(fh, format="PNG")

    return write


def make_tiny(folder: Path) -> tuple[dict, str]:
    """Write the dataset (ImageFolder tree) and train the model once; reuse them after."""
    import torch
    from PIL import Image

    from pathwaygrad.data import load_cifar10
    from pathwaygrad.models import build_model
    from pathwaygrad.training import train_classifier

    folder = Path(folder)
    data = folder / "data"
    weights = folder / "vgg_tiny.pt"
    if not (data / ".complete").is_file():
        rng = np.random.default_rng(0)
        for split, n in (("train", 24), ("test", 8)):
            x, y = _images(n, rng)
            for i, (img, label) in enumerate(zip(x, y)):
                d = data / split / f"class{label}"
                atomic_write(d / f"{i:04d}.png", _png_writer(Image.fromarray(img)))
        write_text(data / ".complete", "ok\n")
    if not weights.is_file():
        torch.manual_seed(0)
        model = build_model("vgg_tiny", num_classes=10)
        train = load_cifar10(data, "train")
        train_classifier(model, train, epochs=6, batch_size=32, lr=3e-3, progress=False)
        save_torch(model.state_dict(), weights)
    return {"tiny": ("vgg_tiny", str(weights))}, str(data)
