"""Run folders: a manifest per run; resume with the same settings; refuse another run's folder
unless overwrite; fresh default folders; writability checked before any work."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import pathwaygrad
from pathwaygrad.errors import UserError
from pathwaygrad.runs import (
    MANIFEST,
    check_writable,
    default_run_dir,
    open_run,
    read_manifest,
    settings_key,
)

SETTINGS = {"methods": ["gradient", "neuron_mct"], "n_images": 64, "fractions": [0.1, 0.5]}


def _manifest(folder: Path) -> dict:
    return json.loads((folder / MANIFEST).read_text())


def test_a_run_writes_a_manifest_and_lists_its_files_when_finished(tmp_path):
    out = tmp_path / "eval" / "perturbation"
    with open_run(out, "evaluate perturbation", SETTINGS, info={"threads": 2}) as run:
        assert not run.resumed
        m = _manifest(out)
        assert m["status"] == "running" and m["finished"] is None
        run.write_json("summary.json", {"auc": float("nan")})
        run.write_text("tables/results.csv", "a,b\n1,2\n")
    m = _manifest(out)
    assert m["command"] == "evaluate perturbation"
    assert m["settings"] == SETTINGS
    assert m["settings_key"] == settings_key(SETTINGS)
    assert m["status"] == "finished" and m["finished"] is not None and m["started"]
    assert m["versions"]["pathwaygrad"] == pathwaygrad.__version__
    assert {"torch", "python", "numpy"} <= set(m["versions"])
    assert m["info"] == {"threads": 2}
    assert m["files"] == ["summary.json", "tables/results.csv"]
    assert json.loads((out / "summary.json").read_text()) == {"auc": None}


def test_same_command_and_settings_resume_the_run(tmp_path):
    with open_run(tmp_path / "r", "train", SETTINGS) as run:
        run.write_text("a.txt", "first")
    reordered = dict(reversed(list(SETTINGS.items())))  # key order does not matter
    with open_run(tmp_path / "r", "train", reordered) as run:
        assert run.resumed
        assert _manifest(run.path)["status"] == "running"
        assert (run.path / "a.txt").read_text() == "first"  # nothing removed
    m = _manifest(tmp_path / "r")
    assert m["status"] == "finished" and len(m["attempts"]) == 2


def test_other_settings_or_command_are_refused_with_one_line_and_nothing_changes(tmp_path):
    out = tmp_path / "eval"
    with open_run(out, "evaluate perturbation", SETTINGS) as run:
        run.write_text("results.csv", "old")
    before = (out / MANIFEST).read_text()
    with pytest.raises(UserError) as info:
        open_run(out, "evaluate perturbation", {**SETTINGS, "n_images": 128})
    msg = str(info.value)
    assert msg == (
        f"{out} holds a finished `evaluate perturbation` run with other settings (n_images "
        "differ); pass --overwrite to replace it or choose another --out"
    )
    with pytest.raises(UserError, match="holds a finished `evaluate perturbation` run; pass"):
        open_run(out, "evaluate sanity", SETTINGS)
    with pytest.raises(UserError, match="holds a finished"):
        open_run(out, "evaluate perturbation", SETTINGS, resume=False)
    assert (out / MANIFEST).read_text() == before
    assert (out / "results.csv").read_text() == "old"


def test_overwrite_replaces_the_old_run_and_removes_its_files(tmp_path):
    out = tmp_path / "eval"
    with open_run(out, "evaluate perturbation", SETTINGS) as run:
        run.write_text("results.csv", "old")
        run.save_npy("maps/gradient.npy", [1.0, 2.0])
    with open_run(out, "evaluate sanity", {"x": 1}, overwrite=True) as run:
        assert not run.resumed
        assert not (out / "results.csv").exists() and not (out / "maps").exists()
        run.write_text("sanity.csv", "new")
    m = _manifest(out)
    assert m["command"] == "evaluate sanity" and m["files"] == ["sanity.csv"]
    assert len(m["attempts"]) == 1
    # overwrite also starts afresh with the same settings
    with open_run(out, "evaluate sanity", {"x": 1}, overwrite=True) as run:
        assert not run.resumed and not (out / "sanity.csv").exists()


def test_a_folder_of_no_run_is_refused_and_overwrite_keeps_its_files(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("my notes")
    with pytest.raises(UserError, match=r"already holds files of no pathwaygrad run \(notes.txt\)"):
        open_run(out, "train", SETTINGS)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]  # not even a lock file
    with open_run(out, "train", SETTINGS, overwrite=True) as run:
        run.write_text("result.json", "{}")
    assert _manifest(out)["files"] == ["result.json"]
    with open_run(out, "explain", {}, overwrite=True):
        pass
    assert (out / "notes.txt").read_text() == "my notes"  # never the user's files
    assert not (out / "result.json").exists()


def test_failure_and_interrupt_mark_the_run_failed(tmp_path):
    with pytest.raises(RuntimeError):
        with open_run(tmp_path / "a", "train", SETTINGS):
            raise RuntimeError("boom\nsecond line")
    m = _manifest(tmp_path / "a")
    assert m["status"] == "failed" and m["attempts"][-1]["error"] == "RuntimeError: boom"
    with pytest.raises(KeyboardInterrupt):
        with open_run(tmp_path / "b", "train", SETTINGS):
            raise KeyboardInterrupt
    assert _manifest(tmp_path / "b")["attempts"][-1]["error"] == "interrupted"
    # a failed run with the same settings resumes
    with open_run(tmp_path / "a", "train", SETTINGS) as run:
        assert run.resumed


def test_an_unfinished_run_of_other_settings_is_named_unfinished(tmp_path):
    run = open_run(tmp_path / "a", "analyze overlap", SETTINGS)
    run.close()  # as a killed process: status stays running
    with pytest.raises(UserError, match="holds an unfinished `analyze overlap` run with other"):
        open_run(tmp_path / "a", "analyze overlap", {})


def test_two_processes_never_share_a_run_folder(tmp_path):
    first = open_run(tmp_path / "a", "train", SETTINGS)
    try:
        with pytest.raises(UserError, match="in use by another pathwaygrad process"):
            open_run(tmp_path / "a", "train", SETTINGS)
    finally:
        first.close()
    with open_run(tmp_path / "a", "train", SETTINGS) as run:  # the lock is released
        assert run.resumed


_CHILD = """
import sys, time
from pathwaygrad.runs import open_run
run = open_run(sys.argv[1], "train", {"lr": 0.1})
print("open", flush=True)
time.sleep(60)
"""


@pytest.mark.slow
def test_a_killed_run_keeps_no_lock_and_resumes(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(tmp_path / "r")], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "open"
        with pytest.raises(UserError, match="in use"):
            open_run(tmp_path / "r", "train", {"lr": 0.1})
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    with open_run(tmp_path / "r", "train", {"lr": 0.1}) as run:
        assert run.resumed
    assert read_manifest(tmp_path / "r")["status"] == "finished"


def test_out_that_is_a_file_or_read_only_is_refused_before_anything_is_created(tmp_path):
    afile = tmp_path / "f.txt"
    afile.write_text("x")
    with pytest.raises(UserError, match="f.txt is an existing file, not a folder"):
        open_run(afile, "train", SETTINGS)
    with pytest.raises(UserError, match="f.txt is a file, not a folder"):
        check_writable(afile / "sub")
    ro = tmp_path / "ro"
    ro.mkdir()
    os.chmod(ro, 0o555)
    try:
        probe = ro / "probe"
        try:
            probe.write_text("x")
            probe.unlink()
            pytest.skip("running with permissions that ignore read-only folders")  # root
        except PermissionError:
            pass
        with pytest.raises(UserError, match="cannot write into"):
            open_run(ro / "out", "train", SETTINGS)
        assert not (ro / "out").exists()
    finally:
        os.chmod(ro, 0o755)


def test_unwritable_folder_is_refused_when_the_probe_fails(tmp_path, monkeypatch):
    # The same check as above, for machines where tests run as root (read-only folders writable).
    real_open = os.open

    def refusing_open(path, flags, *args):
        if ".pgtmp." in str(path) and str(path).endswith(".probe"):
            raise PermissionError(13, "Permission denied")
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", refusing_open)
    with pytest.raises(UserError) as info:
        open_run(tmp_path / "new" / "out", "train", SETTINGS)
    assert str(info.value) == (
        f"--out {tmp_path / 'new' / 'out'}: cannot write into {tmp_path} (Permission denied): "
        "choose a writable folder"
    )
    assert not (tmp_path / "new").exists()


def test_default_run_dir_is_fresh_every_time(tmp_path):
    a = default_run_dir(tmp_path, "evaluate perturbation")
    b = default_run_dir(tmp_path, "evaluate perturbation")
    assert a != b and a.is_dir() and b.is_dir()
    assert a.name.startswith("evaluate-perturbation-" + time.strftime("%Y%m%d"))
    with open_run(a, "evaluate perturbation", SETTINGS):
        pass
    assert default_run_dir(tmp_path, "evaluate perturbation") not in (a, b)


def test_settings_key_ignores_key_order_and_sees_values():
    assert settings_key({"a": 1, "b": [1, 2]}) == settings_key({"b": [1, 2], "a": 1})
    assert settings_key({"a": 1}) != settings_key({"a": 2})
    assert settings_key({"a": 1.0, "p": Path("x")}) == settings_key({"a": 1.0, "p": "x"})
