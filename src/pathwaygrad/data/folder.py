"""Image classification folders in the ImageFolder layout: ``root/<class>/<image file>``.

Classes are the sub-folder names in sorted order (label 0, 1, ...). All images are decoded once into
a uint8 array; the array is cached as ``.npy`` files in the cache folder (see
:func:`pathwaygrad.data.cache.cache_dir`), keyed by the folder's path and every image file's name,
size and modification time, so later loads take well under a second.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pathwaygrad._io import load_npy
from pathwaygrad.data.arrays import ArrayImageDataset
from pathwaygrad.data.cache import cache_dir, save_npy_atomic
from pathwaygrad.data.images import IMAGE_EXTENSIONS, read_image_array, resize_array
from pathwaygrad.errors import UserError

__all__ = ["list_image_folder", "load_image_folder"]


def list_image_folder(root: str | os.PathLike) -> tuple[list[str], list[Path], np.ndarray]:
    """``(classes, files, labels)`` of an ImageFolder tree; files sorted within each class."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"image folder not found: {root}")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise UserError(f"{root} has no class sub-folders (expected root/<class>/<image>)")
    files: list[Path] = []
    labels: list[int] = []
    for label, name in enumerate(classes):
        found = sorted(
            p
            for p in (root / name).iterdir()
            if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
        )
        files += found
        labels += [label] * len(found)
    if not files:
        raise UserError(f"{root} holds no image files ({', '.join(IMAGE_EXTENSIONS)})")
    return classes, files, np.asarray(labels, dtype=np.int64)


def _cache_key(root: Path, classes: list[str], files: list[Path], size) -> str:
    """Key of the decoded-array cache: the folder, the size asked for, and every image file's
    relative name, byte size and modification time (an image replaced in place changes it)."""
    h = hashlib.sha256()
    h.update(f"{root.resolve()}|{len(files)}|{size}|{classes}|".encode())
    for f in files:
        st = f.stat()
        h.update(f"{f.relative_to(root).as_posix()}:{st.st_size}:{st.st_mtime_ns};".encode())
    return h.hexdigest()[:16]


def load_image_folder(
    root: str | os.PathLike,
    *,
    size: int | tuple[int, int] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    cache: bool = True,
    progress: bool = False,
) -> ArrayImageDataset:
    """Decode every image under ``root`` (ImageFolder layout) into an :class:`ArrayImageDataset`.

    Images are converted to RGB. ``size`` resizes them (square side or (H, W)); without it all
    images must share one size. ``mean``/``std`` set the normalisation applied on access.
    """
    root = Path(root)
    classes, files, labels = list_image_folder(root)
    path = None
    if cache:
        key = _cache_key(root, classes, files, size)
        path = cache_dir() / "arrays" / f"{root.name}-{key}.npy"
        if path.exists():
            try:
                images = load_npy(path)  # no pickles: a cache file cannot run code
            except UserError:
                images = None  # broken cache file: decode again
            if images is not None and images.dtype == np.uint8 and len(images) == len(files):
                return ArrayImageDataset(images, labels, classes, mean, std)
    iterator = files
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(files, desc=f"decoding {root.name}", unit="img")
    arrays: list[np.ndarray] = []
    for f in iterator:
        arr = read_image_array(f, channels=3)
        if size is not None:
            arr = resize_array(arr, size)
        elif arrays and arr.shape != arrays[0].shape:
            raise UserError(
                f"images under {root} differ in size ({f.name}: {arr.shape[:2]} vs "
                f"{arrays[0].shape[:2]}): pass a size to resize them"
            )
        arrays.append(arr)
    images = np.stack(arrays)
    if path is not None:
        save_npy_atomic(images, path)
    return ArrayImageDataset(images, labels, classes, mean, std)
