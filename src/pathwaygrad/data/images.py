"""Load single image files (for ``explain``) and the sample photos bundled with scikit-image."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from pathwaygrad.errors import UserError

__all__ = [
    "IMAGE_EXTENSIONS",
    "SAMPLE_PHOTOS",
    "center_square",
    "load_image",
    "read_image_array",
    "resize_array",
    "sample_photo",
]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm")

# scikit-image's bundled photos used by the demo (name -> skimage.data function).
SAMPLE_PHOTOS = ("chelsea", "coffee", "rocket", "astronaut")


def read_image_array(path: str | os.PathLike, channels: int | None = 3) -> np.ndarray:
    """Decode ``path`` into uint8 (H, W, C).

    ``channels``: 3 converts grey/palette/RGBA files to RGB (an alpha channel is dropped), 1 to grey,
    None keeps the file's own channels. Raises :class:`UserError` for a missing or unreadable file.
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"image file not found: {path}")
    if path.is_dir():
        raise UserError(f"{path} is a folder, not an image file")
    try:
        with Image.open(path) as opened:
            opened.load()
            img: Image.Image = opened
            if channels == 3:
                img = opened.convert("RGB")
            elif channels == 1:
                img = opened.convert("L")
            elif opened.mode not in ("L", "RGB", "RGBA"):
                img = opened.convert("RGB")
            arr = np.asarray(img, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise UserError(f"{path} is not a readable image file ({type(exc).__name__})") from exc
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return arr


def resize_array(image: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Resize uint8 (H, W, C) to ``size`` (square side or (H, W)) with antialiased bicubic."""
    h, w = (size, size) if isinstance(size, int) else size
    if image.shape[:2] == (h, w):
        return image
    squeeze = image.shape[2] == 1
    img = Image.fromarray(image[:, :, 0] if squeeze else image)
    out = np.asarray(img.resize((w, h), Image.Resampling.BICUBIC, reducing_gap=None))
    return out[:, :, None] if squeeze else out


def center_square(image: np.ndarray) -> np.ndarray:
    """The largest centred square of (H, W, C) ``image``."""
    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return np.ascontiguousarray(image[top : top + side, left : left + side])


def load_image(
    path: str | os.PathLike,
    size: int | tuple[int, int] | None = None,
    *,
    channels: int = 3,
    convert: bool = True,
    crop: bool = False,
) -> torch.Tensor:
    """Load an image file as float32 (C, H, W) in [0, 1], optionally resized to ``size``.

    ``convert`` False refuses files whose channel count differs from ``channels`` (for example a
    grey-scale file for an RGB model; an alpha channel alone is dropped) instead of converting
    them. ``crop`` takes the centred square before resizing (keeps the aspect ratio).
    """
    if not convert:
        native = read_image_array(path, channels=None)
        have = native.shape[2]
        if have != channels and not (channels == 3 and have == 4):
            kind = {1: "grey-scale", 3: "RGB", 4: "RGBA"}.get(have, f"{have}-channel")
            raise UserError(
                f"{path} is a {kind} image ({have} channel(s)) but the model takes {channels} "
                "channel(s); convert it or pass --convert-channels"
            )
    arr = read_image_array(path, channels=channels)
    if crop:
        arr = center_square(arr)
    if size is not None:
        arr = resize_array(arr, size)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255.0)


def sample_photo(name: str, size: int | tuple[int, int] | None = None) -> torch.Tensor:
    """One of scikit-image's bundled photos (:data:`SAMPLE_PHOTOS`) as float32 (3, H, W) in [0, 1].

    With ``size``, the photo is centre-cropped to a square first, then resized.
    """
    import skimage.data

    if name not in SAMPLE_PHOTOS:
        raise UserError(f"unknown sample photo {name!r}: use one of {', '.join(SAMPLE_PHOTOS)}")
    arr = np.ascontiguousarray(np.asarray(getattr(skimage.data, name)(), dtype=np.uint8)[:, :, :3])
    if size is not None:
        arr = resize_array(center_square(arr), size)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255.0)
