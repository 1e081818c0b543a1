"""Where pathwaygrad keeps unpacked data and decoded arrays (always outside the repository).

The cache folder is ``$PATHWAYGRAD_CACHE`` when set, else ``~/.cache/pathwaygrad``. The shared data
folder (``../shared`` beside the repository, with ``data/`` and ``models/``) is found through
``$PATHWAYGRAD_SHARED`` or relative to the source tree.
"""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import numpy as np

from pathwaygrad._io import atomic_write
from pathwaygrad.errors import UserError

__all__ = ["cache_dir", "shared_dir", "unpack_archive", "save_npy_atomic"]

_REPO_ROOT = Path(__file__).resolve().parents[3]


def cache_dir() -> Path:
    """The cache folder (created on demand): ``$PATHWAYGRAD_CACHE`` or ``~/.cache/pathwaygrad``."""
    env = os.environ.get("PATHWAYGRAD_CACHE")
    path = Path(env).expanduser() if env else Path.home() / ".cache" / "pathwaygrad"
    path.mkdir(parents=True, exist_ok=True)
    return path


def shared_dir() -> Path | None:
    """The shared data/model folder (``$PATHWAYGRAD_SHARED`` or ``<repo>/../shared``), or None."""
    env = os.environ.get("PATHWAYGRAD_SHARED")
    candidates = [Path(env).expanduser()] if env else []
    candidates.append(_REPO_ROOT.parent / "shared")
    for path in candidates:
        if path.is_dir():
            return path.resolve()
    return None


def unpack_archive(archive: str | os.PathLike, dest: str | os.PathLike | None = None) -> Path:
    """Unpack a .tar / .tar.gz / .tgz archive into ``dest`` (default: the cache folder); reuse it.

    The archive is unpacked once into ``dest/<archive stem>`` (a ``.complete`` marker records a
    finished unpack). Returns that folder. Members that would land outside it are refused.
    """
    archive = Path(archive)
    if not archive.is_file():
        raise UserError(f"archive not found: {archive}")
    stem = archive.name
    for suffix in (".tar.gz", ".tgz", ".tar"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    target = Path(dest) if dest is not None else cache_dir()
    target = target / stem
    marker = target / ".complete"
    if marker.exists():
        return target
    target.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(target, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise UserError(f"cannot unpack {archive}: {exc}") from exc
    marker.write_text(str(archive.resolve()))
    return target


def save_npy_atomic(array: np.ndarray, path: str | os.PathLike) -> None:
    """``np.save`` to a temporary file beside ``path``, then ``os.replace`` it into place."""
    atomic_write(path, lambda fh: np.save(fh, array))
