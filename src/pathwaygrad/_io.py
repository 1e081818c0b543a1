"""Crash-safe result files: every file pathwaygrad writes goes through :func:`atomic_write`.

:func:`atomic_write` writes a temporary file beside the target, fsyncs it, ``os.replace``-s it into
place and fsyncs the folder, so an interruption (Ctrl-C, a killed job, a power cut, a full disk)
leaves either the old file or the new one, never a truncated one. Long runs (training, ROAR / KAR,
reproduction steps, analysis tables) rely on this to resume without losing finished work.

- The file gets the mode a plain ``open(path, "w")`` would give (an existing file's own mode, else
  ``0o666 & ~umask``); the process umask is read, never changed (changing it is not thread-safe).
- Temporary files are named ``.pgtmp.<pid>.<random>.<name>``. One left by a killed process (its pid
  no longer alive) is removed by the next write into that folder (checked once per folder and
  process).
- Loaders never execute code from a file: :func:`load_torch` uses ``weights_only=True``,
  :func:`load_npy` ``allow_pickle=False``; a truncated or corrupt file gives a one-line
  :class:`~pathwaygrad.errors.UserError` naming the file.

Helpers: :func:`write_text`, :func:`write_bytes`, :func:`write_json` (through :func:`clean_json`:
NaN / inf become null), :func:`save_npy`, :func:`save_figure`, :func:`save_torch`;
:func:`load_json`, :func:`load_npy`, :func:`load_torch`.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import os
import secrets
import shutil
import stat
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any, Literal

from pathwaygrad.errors import UserError

__all__ = [
    "TEMP_PREFIX",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_text",
    "clean_json",
    "load_json",
    "load_npy",
    "load_torch",
    "remove_stale_temps",
    "save_figure",
    "save_npy",
    "save_torch",
    "write_bytes",
    "write_json",
    "write_text",
]

TEMP_PREFIX = ".pgtmp."
_NAME_KEEP = 120  # characters of the target's name kept in the temp name (file names max 255)


# ------------------------------------------------------------------------------------- umask
def _read_umask_at_import() -> int:
    # Import happens before any worker thread of ours exists; this is the only place that touches
    # the umask, and only when /proc cannot tell it.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _proc_umask() -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return None


_PROC_UMASK = _proc_umask()
_IMPORT_UMASK: int = _PROC_UMASK if _PROC_UMASK is not None else _read_umask_at_import()


def current_umask() -> int:
    """The process umask, read without changing it (``/proc/self/status``; else the import-time one)."""
    mask = _proc_umask()
    return _IMPORT_UMASK if mask is None else mask


# ------------------------------------------------------------------------------- stale temps
_cleaned: set[str] = set()
_cleaned_lock = threading.Lock()


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return True
    return True


def remove_stale_temps(folder: str | os.PathLike[str]) -> list[Path]:
    """Remove temporary files in ``folder`` left by processes that are no longer alive.

    Only files and folders named ``.pgtmp.<pid>.<random>.<name>`` whose pid is not a live process
    are removed; returns the removed paths.
    """
    removed: list[Path] = []
    try:
        entries = list(os.scandir(os.fspath(folder)))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(TEMP_PREFIX):
            continue
        pid_text = entry.name[len(TEMP_PREFIX) :].split(".", 1)[0]
        if not pid_text.isdigit():
            continue
        pid = int(pid_text)
        if pid == os.getpid() or _pid_alive(pid):
            continue
        try:
            if entry.is_dir(follow_symlinks=False):  # e.g. a half-unpacked archive
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
            removed.append(Path(entry.path))
        except OSError:
            pass
    return removed


def _clean_once(folder: Path) -> None:
    key = os.path.abspath(folder)
    with _cleaned_lock:
        if key in _cleaned:
            return
        _cleaned.add(key)
    remove_stale_temps(folder)


# ------------------------------------------------------------------------------------ writing
def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (no-op where folders cannot be opened, e.g. Windows)."""
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
    try:
        fd = os.open(folder, flags)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], object]) -> Path:
    """Call ``write(fh)`` on a temporary binary file beside ``path``, then move it into place.

    Sequence: create ``.pgtmp.<pid>.<random>.<name>`` in the target's folder with the mode a plain
    ``open`` would give, ``write(fh)``, flush + fsync, ``os.replace`` onto ``path``, fsync the folder.
    Any exception (also ``KeyboardInterrupt``) removes the temporary file and leaves the old ``path``
    untouched. Returns ``path`` as a :class:`~pathlib.Path`.
    """
    path = Path(path)
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    _clean_once(folder)
    try:  # like open(path, "w"): an existing file keeps its mode, a new one gets 0o666 & ~umask
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        mode = 0o666 & ~current_umask()
    tmp = folder / f"{TEMP_PREFIX}{os.getpid()}.{secrets.token_hex(4)}.{path.name[:_NAME_KEEP]}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(folder)
    return path


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; return the path."""
    return atomic_write(path, lambda fh: fh.write(data))


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; return the path."""
    return write_bytes(path, text.encode("utf-8"))


# Older names, kept for the modules that use them.
atomic_write_bytes = write_bytes
atomic_write_text = write_text


def clean_json(obj: Any) -> Any:
    """``obj`` as plain JSON values: the one cleaning every JSON file of pathwaygrad goes through.

    NaN / inf become None; numpy and torch scalars and arrays become numbers and lists; tuples and
    sets lists (sets sorted when possible); mapping keys strings; paths strings; dataclasses dicts;
    enums their value; anything else ``str(obj)``.
    """
    if obj is None or isinstance(obj, bool | int | str):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {str(k): clean_json(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [clean_json(v) for v in obj]
    if isinstance(obj, set | frozenset):
        items = [clean_json(v) for v in obj]
        try:
            return sorted(items)
        except TypeError:
            return items
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, enum.Enum):
        return clean_json(obj.value)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return clean_json(dataclasses.asdict(obj))
    if hasattr(obj, "tolist"):  # numpy / torch scalars and arrays
        return clean_json(obj.tolist())
    if hasattr(obj, "item"):
        return clean_json(obj.item())
    return str(obj)


def write_json(path: str | os.PathLike, obj: Any, *, indent: int | None = 2) -> Path:
    """Write ``clean_json(obj)`` as JSON (NaN / inf as null) to ``path`` atomically."""
    text = json.dumps(clean_json(obj), indent=indent, allow_nan=False, ensure_ascii=False)
    return write_text(path, text + "\n")


def save_npy(path: str | os.PathLike, array: Any) -> Path:
    """``np.save`` ``array`` (no pickled objects) to ``path`` atomically (no ``.npy`` is appended)."""
    import numpy as np

    arr = np.asarray(array)
    return atomic_write(path, lambda fh: np.save(fh, arr, allow_pickle=False))


def save_figure(fig: Any, path: str | os.PathLike, **savefig_kwargs: Any) -> Path:
    """``fig.savefig`` into ``path`` atomically; the format follows the suffix unless given."""
    path = Path(path)
    fmt = savefig_kwargs.pop("format", None) or (path.suffix.lstrip(".").lower() or "png")
    return atomic_write(path, lambda fh: fig.savefig(fh, format=fmt, **savefig_kwargs))


def save_torch(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` ``obj`` to ``path`` atomically.

    Keep ``obj`` loadable with ``weights_only=True`` (tensors, dicts, lists, tuples, numbers,
    strings, None): :func:`load_torch` refuses anything else.
    """
    import torch

    return atomic_write(path, lambda fh: torch.save(obj, fh))


# ------------------------------------------------------------------------------------ reading
def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def load_json(path: str | os.PathLike) -> Any:
    """Read a JSON file; a missing file raises ``FileNotFoundError``, a broken one a ``UserError``."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(
            f"{path} is not valid JSON ({exc.msg} at line {exc.lineno}): "
            "delete it or choose another folder"
        ) from exc


def load_npy(
    path: str | os.PathLike, *, mmap_mode: Literal["r+", "r", "w+", "c"] | None = None
) -> Any:
    """``np.load`` without pickles (a pickled ``.npy`` cannot run code); corrupt -> ``UserError``."""
    import numpy as np

    path = Path(path)
    try:
        return np.load(path, mmap_mode=mmap_mode, allow_pickle=False)
    except FileNotFoundError:
        raise
    except (ValueError, OSError, EOFError) as exc:
        raise UserError(
            f"cannot read {path}: not a plain numpy array file ({_first_line(exc)}); "
            "delete it so it is recomputed"
        ) from exc


def load_torch(path: str | os.PathLike, *, map_location: Any = "cpu", what: str = "file") -> Any:
    """``torch.load(path, weights_only=True)``: tensors, dicts, lists and numbers only, no code.

    A truncated, corrupt or code-carrying file raises a one-line ``UserError`` naming ``path``
    (``what`` says what the file is, e.g. "checkpoint").
    """
    import pickle

    import torch

    path = Path(path)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise
    except pickle.UnpicklingError as exc:
        raise UserError(
            f"{what} {path} holds objects other than tensors, numbers and containers; pathwaygrad "
            "only loads such files (nothing in a file may run code): delete it or recreate it"
        ) from exc
    except (RuntimeError, EOFError, OSError, ValueError, KeyError) as exc:
        raise UserError(
            f"cannot read {what} {path}: truncated or not a torch file ({_first_line(exc)}); "
            "delete it (a resumable run then starts that step again)"
        ) from exc
