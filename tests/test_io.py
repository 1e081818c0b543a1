"""Atomic writes: an interrupted write leaves the old file and no temporary file behind; the folder
is fsynced; the umask is never changed; temporary files of killed runs are removed; loaders never
run code from a file."""

from __future__ import annotations

import json
import math
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import pathwaygrad._io as pio
from pathwaygrad._io import (
    TEMP_PREFIX,
    atomic_write,
    atomic_write_text,
    clean_json,
    load_json,
    load_npy,
    load_torch,
    save_figure,
    save_npy,
    save_torch,
    write_json,
    write_text,
)
from pathwaygrad.errors import UserError

PKG_DIR = Path(pio.__file__).resolve().parent


def test_atomic_write_replaces_and_keeps_old_file_on_failure(tmp_path):
    path = tmp_path / "sub" / "table.json"
    atomic_write_text(path, "old")
    assert path.read_text() == "old"
    mode = os.stat(path).st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask  # like a plain open(), not mkstemp's 0o600

    def interrupted(fh):
        fh.write(b"half of the new cont")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, interrupted)
    assert path.read_text() == "old"
    assert sorted(p.name for p in path.parent.iterdir()) == ["table.json"]
    atomic_write_text(path, "new")
    assert path.read_text() == "new"


def test_atomic_write_fsyncs_the_file_then_the_folder_after_the_rename(tmp_path, monkeypatch):
    path = tmp_path / "r.json"
    synced = []
    real_fsync = os.fsync

    def recording_fsync(fd):
        is_dir = stat.S_ISDIR(os.fstat(fd).st_mode)
        synced.append(("dir" if is_dir else "file", path.exists()))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    write_text(path, "x")
    # the file's data before the rename (target not there yet), the folder after it
    assert synced == [("file", False), ("dir", True)]


def test_atomic_write_never_changes_the_umask_and_gives_open_s_mode(tmp_path, monkeypatch):
    old = os.umask(0o027)
    try:

        def forbidden(*_):
            raise AssertionError("os.umask called: not thread-safe")

        monkeypatch.setattr(os, "umask", forbidden)
        path = write_text(tmp_path / "a.txt", "x")
        with open(tmp_path / "plain.txt", "w") as fh:
            fh.write("x")
        monkeypatch.undo()
    finally:
        os.umask(old)
    assert os.stat(path).st_mode & 0o777 == 0o640
    assert os.stat(path).st_mode & 0o777 == os.stat(tmp_path / "plain.txt").st_mode & 0o777


def test_an_existing_file_keeps_its_mode_like_open_would(tmp_path):
    path = write_text(tmp_path / "private.json", "old")
    os.chmod(path, 0o600)
    write_text(path, "new")
    assert path.read_text() == "new" and os.stat(path).st_mode & 0o777 == 0o600


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_temp_files_of_dead_processes_are_removed_on_the_next_write(tmp_path):
    stale = tmp_path / f"{TEMP_PREFIX}{_dead_pid()}.abcd1234.result.json"
    stale.write_text("half")
    alive = tmp_path / f"{TEMP_PREFIX}{os.getppid()}.abcd1234.other.json"  # a live writer
    alive.write_text("in progress")
    unrelated = tmp_path / ".pgtmp.notapid.x"
    unrelated.write_text("keep")
    write_text(tmp_path / "result.json", "new")
    assert not stale.exists()
    assert alive.exists() and unrelated.exists()
    assert (tmp_path / "result.json").read_text() == "new"


_CHILD = """
import sys, time, types
pkg = types.ModuleType("pathwaygrad"); pkg.__path__ = [sys.argv[1]]; sys.modules["pathwaygrad"] = pkg
from pathwaygrad._io import atomic_write
def slow(fh):
    fh.write(b"half of a new result")
    fh.flush()
    print("writing", flush=True)
    time.sleep(60)
atomic_write(sys.argv[2], slow)
"""


def test_sigkill_during_a_write_keeps_the_old_file_and_the_next_run_removes_the_temp(tmp_path):
    target = tmp_path / "result.json"
    write_text(target, "old result")
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(PKG_DIR), str(target)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "writing"
        temps = [p for p in tmp_path.iterdir() if p.name.startswith(TEMP_PREFIX)]
        assert len(temps) == 1 and f".{proc.pid}." in temps[0].name
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert target.read_text() == "old result"
    pio._cleaned.discard(os.path.abspath(tmp_path))  # as in a new process
    write_text(tmp_path / "other.json", "{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.json", "result.json"]


def test_clean_json_and_write_json(tmp_path):
    obj = {
        "nan": float("nan"),
        "inf": -math.inf,
        1: np.float32(0.5),
        "arr": np.arange(3),
        "t": torch.tensor([1.5, float("nan")]),
        "tup": (1, Path("a/b")),
        "set": {3, 1},
        "nested": [{"x": np.int64(4)}],
    }
    expected = {
        "nan": None,
        "inf": None,
        "1": 0.5,
        "arr": [0, 1, 2],
        "t": [1.5, None],
        "tup": [1, "a/b"],
        "set": [1, 3],
        "nested": [{"x": 4}],
    }
    assert clean_json(obj) == expected
    path = write_json(tmp_path / "x.json", obj)
    assert "NaN" not in path.read_text()
    assert json.loads(path.read_text()) == expected
    assert load_json(path) == expected


def test_load_json_of_a_broken_file_is_one_line_user_error(tmp_path):
    path = tmp_path / "m.json"
    path.write_text('{"a": 1')
    with pytest.raises(UserError, match="m.json is not valid JSON"):
        load_json(path)


def test_save_npy_round_trip_and_refuses_object_arrays(tmp_path):
    arr = np.arange(12, dtype=np.float32).reshape(3, 4)
    path = save_npy(tmp_path / "a.npy", arr)
    np.testing.assert_array_equal(load_npy(path), arr)
    with pytest.raises(ValueError):
        save_npy(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object))
    assert not (tmp_path / "o.npy").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["a.npy"]


def test_save_figure_writes_the_format_of_the_suffix(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    png = save_figure(fig, tmp_path / "f.png", dpi=50)
    pdf = save_figure(fig, tmp_path / "f.pdf")
    plt.close(fig)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert pdf.read_bytes()[:5] == b"%PDF-"


def test_save_torch_round_trip_and_truncated_file_is_one_line_error(tmp_path):
    obj = {"w": torch.randn(3, 3), "epoch": 4, "history": [{"lr": 0.1, "val": None}]}
    path = save_torch(obj, tmp_path / "c.pt")
    back = load_torch(path)
    assert back["epoch"] == 4 and back["history"] == obj["history"]
    assert torch.equal(back["w"], obj["w"])
    data = path.read_bytes()
    broken = tmp_path / "broken.pt"
    broken.write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match="cannot read checkpoint .*broken.pt: truncated") as info:
        load_torch(broken, what="checkpoint")
    assert "\n" not in str(info.value)
    (tmp_path / "text.pt").write_text("101")
    with pytest.raises(UserError, match="text.pt"):
        load_torch(tmp_path / "text.pt")


class _Payload:
    """Pickles as a call that creates ``marker``: what a crafted file would carry."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('code ran')",))


def test_crafted_torch_file_runs_no_code(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"model": {"w": torch.zeros(1)}, "x": _Payload(marker)}, path)
    with pytest.raises(UserError, match="evil.pt holds objects other than tensors"):
        load_torch(path)
    assert not marker.exists()
    # control: the payload is real (an unsafe load would have run it)
    torch.load(path, weights_only=False)
    assert marker.read_text() == "code ran"


def test_crafted_npy_file_runs_no_code(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.npy"
    np.save(path, np.array([_Payload(marker)], dtype=object), allow_pickle=True)
    with pytest.raises(UserError, match="evil.npy: not a plain numpy array file"):
        load_npy(path)
    assert not marker.exists()
    np.load(path, allow_pickle=True)  # control: the payload is real
    assert marker.exists()


def test_temp_names_are_bounded_for_long_target_names(tmp_path):
    name = "n" * 240 + ".json"
    path = write_text(tmp_path / name, "x")
    assert path.read_text() == "x"
    assert time.time() - path.stat().st_mtime < 60
