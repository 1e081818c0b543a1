"""Where pathwaygrad keeps unpacked data and decoded arrays (always outside the repository).

The cache folder is ``$PATHWAYGRAD_CACHE`` when set, else ``~/.cache/pathwaygrad``. The shared data
folder (``../shared`` beside the repository, with ``data/`` and ``models/``) is found through
``$PATHWAYGRAD_SHARED`` or relative to the source tree.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import tarfile
from pathlib import Path

import numpy as np

from pathwaygrad._io import TEMP_PREFIX, load_json, remove_stale_temps, save_npy, write_json
from pathwaygrad.errors import UserError

__all__ = ["cache_dir", "file_sha256", "shared_dir", "unpack_archive", "save_npy_atomic"]

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


def _index_path(archive: Path) -> Path:
    name = hashlib.sha256(str(archive.resolve()).encode()).hexdigest()[:24]
    return cache_dir() / "archive-hashes" / f"{name}.json"


def file_sha256(path: str | os.PathLike) -> str:
    """The sha256 (hex) of a file's content, remembered per (path, size, mtime, inode).

    A file is hashed once; later calls read the remembered hash while the file's size,
    modification time and inode are unchanged.
    """
    path = Path(path)
    st = path.stat()
    stamp = {
        "path": str(path.resolve()),
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "inode": st.st_ino,
    }
    index = _index_path(path)
    if index.is_file():
        try:
            known = load_json(index)
            if isinstance(known, dict) and all(known.get(k) == v for k, v in stamp.items()):
                return str(known["sha256"])
        except (UserError, KeyError):
            pass
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    sha = digest.hexdigest()
    try:
        write_json(index, {**stamp, "sha256": sha})
    except OSError:  # a read-only cache still works, it just hashes again next time
        pass
    return sha


def _marker_ok(marker: Path, sha: str) -> bool:
    try:
        info = load_json(marker)
    except (OSError, UserError):
        return False
    return isinstance(info, dict) and info.get("sha256") == sha


def unpack_archive(archive: str | os.PathLike, dest: str | os.PathLike | None = None) -> Path:
    """Unpack a .tar / .tar.gz / .tgz archive into ``dest`` (default: the cache folder); reuse it.

    The unpacked folder is keyed by the archive's **content**: ``dest/<archive stem>-<sha256[:16]>``,
    so two different archives of the same name never share it, and the same archive (anywhere) is
    unpacked once. The archive is hashed once per (size, mtime, inode) (see :func:`file_sha256`).
    A ``.complete`` marker (JSON: source, sha256) records a finished unpack and is checked before
    reuse. Unpacking goes into a temporary folder moved into place at the end, so a killed unpack
    leaves nothing that looks finished (its temporary folder is removed by the next unpack).
    Members that would land outside the folder are refused.
    """
    archive = Path(archive)
    if not archive.is_file():
        raise UserError(f"archive not found: {archive}")
    stem = archive.name
    for suffix in (".tar.gz", ".tgz", ".tar"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    sha = file_sha256(archive)
    root = Path(dest) if dest is not None else cache_dir()
    target = root / f"{stem}-{sha[:16]}"
    marker = target / ".complete"
    if _marker_ok(marker, sha):
        return target
    root.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(root)
    tmp = root / f"{TEMP_PREFIX}{os.getpid()}.{secrets.token_hex(4)}.{stem}"
    try:
        tmp.mkdir()
        try:
            with tarfile.open(archive) as tar:
                tar.extractall(tmp, filter="data")
        except (tarfile.TarError, OSError) as exc:
            raise UserError(f"cannot unpack {archive}: {exc}") from exc
        write_json(tmp / ".complete", {"source": str(archive.resolve()), "sha256": sha})
        if target.exists() and not _marker_ok(marker, sha):
            shutil.rmtree(target)  # an unfinished unpack of an older version of this code
        try:
            os.replace(tmp, target)
        except OSError:
            if not _marker_ok(marker, sha):  # not another process finishing first
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def save_npy_atomic(array: np.ndarray, path: str | os.PathLike) -> None:
    """``np.save`` to a temporary file beside ``path``, then ``os.replace`` it into place."""
    save_npy(path, array)
