"""CIFAR-10 from any of the forms users have it in.

:func:`load_cifar10` accepts
- torchvision's ``cifar-10-batches-py`` folder (or its parent, or the ``.tar.gz`` it comes in):
  pickled batches ``data_batch_1..5`` / ``test_batch``, read here without torchvision;
- an ImageFolder tree with ``train/`` and ``test/`` sub-folders (or its parent holding
  ``cifar10/``), like ``../shared/data/cifar10-jpeg.tar.gz`` once unpacked;
- a ``.tar.gz`` of either, unpacked once into the cache folder (outside the repository).

Labels follow the usual CIFAR-10 order (:data:`CIFAR10_CLASSES`).
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pathwaygrad.data.arrays import IMAGENET_MEAN, IMAGENET_STD, ArrayImageDataset
from pathwaygrad.data.cache import shared_dir, unpack_archive
from pathwaygrad.data.folder import load_image_folder
from pathwaygrad.errors import UserError

__all__ = [
    "CIFAR10_CLASSES",
    "find_cifar10",
    "load_cifar10",
    "read_cifar10_batches",
    "shared_cifar10_archive",
]

CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
_SPLITS = ("train", "test")
_BATCH_FILES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}


class _DataUnpickler(pickle.Unpickler):
    """Unpickles plain data only: containers, numbers, strings, bytes and numpy arrays.

    A pickle names the functions it calls; this refuses every one but numpy's array and dtype
    reconstruction, so a crafted batch file cannot run code (a plain ``pickle.load`` would).
    """

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),  # arrays pickled with protocol 5
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),  # bytes written by Python 2 pickles
    }

    def find_class(self, module: str, name: str):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refused to load {module}.{name} (only plain data is read)")


def _load_data_pickle(path: Path):
    with open(path, "rb") as fh:
        return _DataUnpickler(fh, encoding="bytes").load()


def read_cifar10_batches(folder: str | os.PathLike, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Read the pickled ``cifar-10-batches-py`` files of ``split``: uint8 (N, 32, 32, 3), labels (N,).

    The files are unpickled as plain data only (containers, numbers, bytes, numpy arrays): a
    crafted file that would call any other function is refused, so reading one runs no code.
    """
    folder = Path(folder)
    images, labels = [], []
    for name in _BATCH_FILES[split]:
        path = folder / name
        if not path.is_file():
            raise UserError(f"CIFAR-10 batch file missing: {path}")
        try:
            entry = _load_data_pickle(path)
            data = np.asarray(entry[b"data"] if b"data" in entry else entry["data"], np.uint8)
            lab = entry.get(b"labels", entry.get("labels"))
        except (
            pickle.UnpicklingError,
            EOFError,
            KeyError,
            AttributeError,
            TypeError,
            ValueError,
        ) as exc:
            raise UserError(f"{path} is not a CIFAR-10 batch file ({exc})") from exc
        if lab is None or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
            raise UserError(f"{path} is not a CIFAR-10 batch file (data {data.shape})")
        images.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        labels.append(np.asarray(lab, dtype=np.int64))
    return np.ascontiguousarray(np.concatenate(images)), np.concatenate(labels)


def _class_names(batches: Path) -> list[str]:
    meta = batches / "batches.meta"
    if meta.is_file():
        try:
            names = _load_data_pickle(meta)
            names = names.get(b"label_names", names.get("label_names"))
            return [n.decode() if isinstance(n, bytes) else str(n) for n in names]
        except Exception:  # noqa: BLE001 - fall back to the standard names
            pass
    return list(CIFAR10_CLASSES)


def shared_cifar10_archive() -> Path | None:
    """``../shared/data/cifar10-jpeg.tar.gz`` when present."""
    shared = shared_dir()
    if shared is None:
        return None
    path = shared / "data" / "cifar10-jpeg.tar.gz"
    return path if path.is_file() else None


def find_cifar10(root: str | os.PathLike | None) -> tuple[str, Path]:
    """Locate CIFAR-10 under ``root``: ``("pickle", batches folder)`` or ``("folder", tree root)``.

    ``root`` None means the shared JPEG copy (unpacked into the cache folder on first use). An
    archive is unpacked into the cache folder first.
    """
    if root is None:
        archive = shared_cifar10_archive()
        if archive is None:
            raise UserError(
                "no CIFAR-10 path given and ../shared/data/cifar10-jpeg.tar.gz not found: "
                "pass --data PATH (ImageFolder tree or cifar-10-batches-py folder)"
            )
        root = archive
    root = Path(root).expanduser()
    if not root.exists():
        raise UserError(f"data path not found: {root}")
    if root.is_file():
        root = unpack_archive(root)
    candidates = [root, root / "cifar-10-batches-py", root / "cifar10", root / "cifar-10"]
    for c in candidates:
        if (c / "test_batch").is_file() or (c / "data_batch_1").is_file():
            return "pickle", c
        if all((c / s).is_dir() for s in _SPLITS) or (c / "test").is_dir():
            return "folder", c
    raise UserError(
        f"no CIFAR-10 found in {root}: expected a cifar-10-batches-py folder (data_batch_1.., "
        "test_batch) or an ImageFolder tree with train/ and test/ sub-folders"
    )


def load_cifar10(
    root: str | os.PathLike | None = None,
    split: str = "test",
    *,
    mean: Sequence[float] | None = IMAGENET_MEAN,
    std: Sequence[float] | None = IMAGENET_STD,
    cache: bool = True,
    progress: bool = False,
) -> ArrayImageDataset:
    """CIFAR-10 ``split`` ("train" or "test") as an :class:`ArrayImageDataset` of 32x32 RGB.

    ``root``: see :func:`find_cifar10`. Items are normalised with ``mean``/``std`` (default the
    ImageNet statistics every built-in model expects; ``mean=None`` gives [0, 1] pixels).
    """
    if split not in _SPLITS:
        raise UserError(f"split must be 'train' or 'test', got {split!r}")
    kind, folder = find_cifar10(root)
    if kind == "pickle":
        images, labels = read_cifar10_batches(folder, split)
        return ArrayImageDataset(images, labels, _class_names(folder), mean, std)
    split_dir = folder / split
    if not split_dir.is_dir():
        raise UserError(f"{folder} has no {split}/ folder")
    ds = load_image_folder(split_dir, size=None, mean=mean, std=std, cache=cache, progress=progress)
    if ds.images.shape[1:3] != (32, 32):
        raise UserError(f"{split_dir} holds {ds.images.shape[1:3]} images, CIFAR-10 has 32x32")
    return ds
