"""Run folders that never destroy results: one ``manifest.json`` per run, resume or refuse.

Every command that writes results opens its output folder with :func:`open_run`::

    with open_run(out, "evaluate perturbation", settings) as run:   # checks before any work
        ...                                                          # write into run.path
        run.write_json("summary.json", summary)

- The folder is created (writability is checked first: an existing *file* or a read-only folder
  is a one-line :class:`~pathwaygrad.errors.UserError` before any work).
- ``manifest.json`` holds the command, its settings (and their hash), the pathwaygrad / torch /
  numpy / Python versions, the start and finish times, the status (``running``, ``finished``,
  ``failed``), each attempt (a resumed run adds one) and, once finished, the files the run wrote.
- A folder holding a run of the **same command and settings** resumes it (status back to
  ``running``; the caller skips its finished work). A folder holding another command's run, a run
  with other settings, or files of no pathwaygrad run is refused with one line naming the fix,
  unless ``overwrite=True``: then the old run's files are removed first (files that were in the
  folder before any run used it are kept).
- Two processes never write into one run folder at once (an advisory lock, released by the
  system when a process dies, so a killed run never blocks its resume).
- The context manager marks the run ``finished`` on success and ``failed`` (with the error) on an
  exception or Ctrl-C.

Convention for commands with several protocols: one run per protocol in ``<out>/<protocol>/``
(e.g. ``evaluate perturbation --out eval`` writes ``eval/perturbation/``, ``evaluate sanity --out
eval`` writes ``eval/sanity/``), so protocols never replace each other's files. A command with no
``--out`` writes into a fresh folder from :func:`default_run_dir` (``<root>/<command>-<date>-<time>``),
never into an earlier one.

``settings`` must hold exactly what changes the results (not threads, progress bars or the
device); put the rest in ``info``, which is recorded but never compared.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import secrets
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from pathwaygrad._io import (
    TEMP_PREFIX,
    clean_json,
    load_json,
    save_figure,
    save_npy,
    save_torch,
    write_json,
    write_text,
)
from pathwaygrad.errors import UserError

try:  # POSIX; elsewhere runs are not locked
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "MANIFEST",
    "RunFolder",
    "check_writable",
    "default_run_dir",
    "open_run",
    "read_manifest",
    "settings_key",
]

MANIFEST = "manifest.json"
LOCK = ".pathwaygrad.lock"
_FORMAT = 1  # manifest format; the key "pathwaygrad_run" marks a manifest as ours


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def settings_key(settings: Any) -> str:
    """A stable hash (sha256, 16 hex) of ``settings`` as canonical JSON (key order ignored)."""
    text = json.dumps(clean_json(settings), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _versions() -> dict[str, str]:
    from pathwaygrad import __version__

    versions = {"pathwaygrad": __version__, "python": platform.python_version()}
    for name in ("torch", "numpy"):
        module = sys.modules.get(name)
        if module is None:
            try:
                module = __import__(name)
            except ImportError:
                continue
        versions[name] = str(getattr(module, "__version__", "?"))
    return versions


# ---------------------------------------------------------------------------------- checking
def check_writable(out: str | os.PathLike, *, option: str = "--out") -> Path:
    """Check that ``out`` is, or can become, a folder we can write into; return it as a Path.

    Raises a one-line ``UserError`` when ``out`` (or a parent) is an existing file, or the folder
    (or its nearest existing parent) cannot be written; nothing is created.
    """
    out = Path(out).expanduser()
    if out.exists() and not out.is_dir():
        raise UserError(f"{option} {out} is an existing file, not a folder: choose a folder")
    probe_dir = out
    while not probe_dir.exists():
        parent = probe_dir.parent
        if parent == probe_dir:
            break
        probe_dir = parent
    if probe_dir.exists() and not probe_dir.is_dir():
        raise UserError(f"{option} {out}: {probe_dir} is a file, not a folder: choose another path")
    probe = probe_dir / f"{TEMP_PREFIX}{os.getpid()}.{secrets.token_hex(4)}.probe"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UserError(
            f"{option} {out}: cannot write into {probe_dir} ({reason}): choose a writable folder"
        ) from exc
    return out


def default_run_dir(root: str | os.PathLike, command: str) -> Path:
    """A fresh folder ``root/<command>-YYYYmmdd-HHMMSS[-n]``, created now so no other run takes it.

    Spaces in ``command`` become ``-`` (``"evaluate perturbation"`` -> ``evaluate-perturbation-...``).
    An existing folder is never reused.
    """
    root = check_writable(root, option="output root")
    root.mkdir(parents=True, exist_ok=True)
    stem = "-".join(command.split()) + "-" + time.strftime("%Y%m%d-%H%M%S")
    n = 1
    while True:
        path = root / (stem if n == 1 else f"{stem}-{n}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            n += 1


def read_manifest(folder: str | os.PathLike) -> dict | None:
    """The manifest of the run in ``folder``, or None when it holds no pathwaygrad run."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = load_json(path)
    except UserError:
        return None
    if not isinstance(manifest, dict) or "pathwaygrad_run" not in manifest:
        return None
    return manifest


def _is_ours(name: str) -> bool:
    return name in (MANIFEST, LOCK) or name.startswith(TEMP_PREFIX)


def _contents(folder: Path) -> list[str]:
    """Relative paths of the files under ``folder`` (sorted), without manifest, lock, temps."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for name in filenames:
            if dirpath == str(folder) and _is_ours(name):
                continue
            if name.startswith(TEMP_PREFIX):
                continue
            found.append(Path(dirpath, name).relative_to(folder).as_posix())
    return sorted(found)


def _differences(old: Any, new: Any) -> list[str]:
    old, new = clean_json(old), clean_json(new)
    if not isinstance(old, dict) or not isinstance(new, dict):
        return []
    keys = sorted(set(old) | set(new))
    return [k for k in keys if old.get(k, "<unset>") != new.get(k, "<unset>")]


def _describe(manifest: dict) -> str:
    status = manifest.get("status", "unknown")
    status = {"running": "an unfinished", "failed": "a failed", "finished": "a finished"}.get(
        status, f"a {status}"
    )
    return f"{status} `{manifest.get('command', '?')}` run"


# ------------------------------------------------------------------------------------ the run
class RunFolder:
    """An output folder holding one run; see the module docstring. Make it with :func:`open_run`."""

    def __init__(self, path: Path, manifest: dict, resumed: bool, lock_fd: int | None):
        self.path = path
        self.manifest = manifest
        self.resumed = resumed
        self._lock_fd = lock_fd

    # -- information
    @property
    def command(self) -> str:
        return str(self.manifest["command"])

    @property
    def settings(self) -> dict:
        return dict(self.manifest["settings"])

    @property
    def status(self) -> str:
        return str(self.manifest["status"])

    def __truediv__(self, name: str | os.PathLike) -> Path:
        return self.path / name

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r}, command={self.command!r}, status={self.status!r})"

    # -- writing results (atomically, through pathwaygrad._io)
    def file(self, name: str | os.PathLike) -> Path:
        """``self.path / name`` with its parent folders created."""
        path = self.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def write_json(self, name: str | os.PathLike, obj: Any) -> Path:
        return write_json(self.file(name), obj)

    def write_text(self, name: str | os.PathLike, text: str) -> Path:
        return write_text(self.file(name), text)

    def save_npy(self, name: str | os.PathLike, array: Any) -> Path:
        return save_npy(self.file(name), array)

    def save_figure(self, fig: Any, name: str | os.PathLike, **savefig_kwargs: Any) -> Path:
        return save_figure(fig, self.file(name), **savefig_kwargs)

    def save_torch(self, obj: Any, name: str | os.PathLike) -> Path:
        return save_torch(obj, self.file(name))

    def update(self, **info: Any) -> None:
        """Record more information (not compared on resume) in the manifest's ``info``."""
        self.manifest.setdefault("info", {}).update(clean_json(info))
        self._save()

    # -- status
    def _save(self) -> None:
        self.manifest["updated"] = _now()
        write_json(self.path / MANIFEST, self.manifest)

    def _end(self, status: str, error: str | None = None) -> None:
        now = _now()
        self.manifest["status"] = status
        self.manifest["finished"] = now if status == "finished" else None
        attempt = self.manifest["attempts"][-1]
        attempt.update(status=status, ended=now)
        if error is not None:
            attempt["error"] = error
        foreign = set(self.manifest.get("foreign_files", []))
        self.manifest["files"] = [f for f in _contents(self.path) if f not in foreign]
        self._save()
        self.close()

    def finish(self) -> None:
        """Mark the run finished and list the files it wrote."""
        self._end("finished")

    def fail(self, error: str) -> None:
        """Mark the run failed with ``error`` (one line)."""
        self._end("failed", error)

    def close(self) -> None:
        """Release the run's lock (done by :meth:`finish` / :meth:`fail` too)."""
        if self._lock_fd is not None:
            try:
                os.close(self._lock_fd)
            finally:
                self._lock_fd = None

    def __enter__(self) -> RunFolder:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.finish()
        elif issubclass(exc_type, KeyboardInterrupt):
            self.fail("interrupted")
        else:
            first = str(exc).strip().splitlines()
            self.fail(f"{exc_type.__name__}: {first[0] if first else ''}".rstrip(": "))


def _lock(folder: Path) -> int | None:
    if fcntl is None:  # pragma: no cover
        return None
    fd = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        raise UserError(
            f"{folder} is in use by another pathwaygrad process: wait for it or choose another --out"
        ) from exc
    return fd


def _remove_run_files(folder: Path, keep: set[str]) -> None:
    """Delete the files of the run in ``folder`` (all but ``keep``), then its empty sub-folders."""
    for rel in _contents(folder):
        if rel not in keep:
            (folder / rel).unlink(missing_ok=True)
    (folder / MANIFEST).unlink(missing_ok=True)
    for dirpath, _dirnames, _files in sorted(os.walk(folder), key=lambda t: -len(t[0])):
        if dirpath != str(folder):
            try:
                os.rmdir(dirpath)
            except OSError:
                pass  # not empty: holds kept files


def _plan(
    folder: Path, command: str, settings: dict, key: str, overwrite: bool, resume: bool
) -> tuple[dict | None, bool, list[str] | None]:
    """``(old manifest, resume it?, files to keep when replacing (None: replace nothing))``.

    Raises the one-line refusal; touches nothing.
    """
    old = read_manifest(folder) if folder.is_dir() else None
    existing = _contents(folder) if folder.is_dir() else []
    if old is not None:
        if overwrite:
            return old, False, list(old.get("foreign_files", []))
        if old.get("command") == command and old.get("settings_key") == key and resume:
            return old, True, None
        why = ""
        if old.get("command") == command:
            diff = _differences(old.get("settings"), settings)
            why = " with other settings" + (f" ({', '.join(diff[:6])} differ)" if diff else "")
        raise UserError(
            f"{folder} holds {_describe(old)}{why}; pass --overwrite to replace it "
            "or choose another --out"
        )
    if existing and not overwrite:
        shown = ", ".join(existing[:3]) + (", ..." if len(existing) > 3 else "")
        raise UserError(
            f"{folder} already holds files of no pathwaygrad run ({shown}); pass "
            "--overwrite to write into it anyway or choose another --out"
        )
    return None, False, None


def open_run(
    out_dir: str | os.PathLike,
    command: str,
    settings: dict,
    *,
    overwrite: bool = False,
    resume: bool = True,
    info: dict | None = None,
) -> RunFolder:
    """Open ``out_dir`` for a run of ``command`` with ``settings``; see the module docstring.

    - empty or missing folder: a new run;
    - with ``overwrite``: the old run's files are removed and a new run starts (files of no run
      are kept, and the new run is started beside them);
    - a run of the same ``command`` and ``settings``: resumed when ``resume`` (``run.resumed`` is
      True), else refused like another run;
    - another run, or files of no run: ``UserError`` naming the fix.

    ``info`` is recorded in the manifest but never compared. A refusal or an unwritable
    ``out_dir`` raises ``UserError`` before anything is created or changed.
    """
    folder = check_writable(out_dir)
    settings = clean_json(settings)
    key = settings_key(settings)
    _plan(folder, command, settings, key, overwrite, resume)  # refuse before touching anything
    folder.mkdir(parents=True, exist_ok=True)
    lock_fd = _lock(folder)
    try:
        # again under the lock: another process may have changed the folder meanwhile
        old, resumed, keep = _plan(folder, command, settings, key, overwrite, resume)
        foreign: list[str] = []
        if keep is not None:
            foreign = keep
            _remove_run_files(folder, set(keep))
        elif old is None:
            foreign = _contents(folder)  # only with overwrite: files of no run, kept
        attempt = {
            "started": _now(),
            "status": "running",
            "pid": os.getpid(),
            "versions": _versions(),
        }
        if resumed and old is not None:
            manifest = old
            manifest["status"] = "running"
            manifest["finished"] = None
            manifest["attempts"] = list(manifest.get("attempts", [])) + [attempt]
            manifest["versions"] = attempt["versions"]
            if info:
                manifest.setdefault("info", {}).update(clean_json(info))
        else:
            manifest = {
                "pathwaygrad_run": _FORMAT,
                "command": command,
                "settings": settings,
                "settings_key": key,
                "status": "running",
                "started": attempt["started"],
                "finished": None,
                "versions": attempt["versions"],
                "info": clean_json(info or {}),
                "attempts": [attempt],
                "files": [],
            }
            if foreign:
                manifest["foreign_files"] = foreign
        run = RunFolder(folder, manifest, resumed, lock_fd)
        run._save()
        return run
    except BaseException:
        if lock_fd is not None:
            os.close(lock_fd)
        raise
