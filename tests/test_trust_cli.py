"""The command line's exits: bad input is one line and status 2, Ctrl-C is 130, bugs keep their
traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

import pathwaygrad.cli.train as train_cli
from pathwaygrad.cli.main import main
from pathwaygrad.errors import UserError


@pytest.mark.slow  # a fresh interpreter importing torch: 5-40 s on a busy machine
def test_user_error_is_one_line_and_exit_2_in_a_real_process(tmp_path):
    afile = tmp_path / "taken.txt"
    afile.write_text("x")
    proc = subprocess.run(
        [sys.executable, "-m", "pathwaygrad.cli.main", "train", "--out", str(afile)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        f"pathwaygrad: error: --out {afile} is an existing file, not a folder: choose a folder"
    ]
    assert afile.read_text() == "x"


def _raising(exc: BaseException):
    def run(args):
        raise exc

    return run


def test_ctrl_c_exits_130_with_one_line(monkeypatch, capsys):
    monkeypatch.setattr(train_cli, "run", _raising(KeyboardInterrupt()))
    assert main(["train", "--out", "x"]) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("pathwaygrad: interrupted")


def test_a_multi_line_user_error_is_printed_on_one_line(monkeypatch, capsys):
    monkeypatch.setattr(train_cli, "run", _raising(UserError("bad thing\n  do this instead")))
    assert main(["train", "--out", "x"]) == 2
    assert capsys.readouterr().err == "pathwaygrad: error: bad thing do this instead\n"


def test_a_missing_file_named_by_the_user_is_one_line(monkeypatch, capsys):
    error = FileNotFoundError(2, "No such file or directory", "weights.pt")
    monkeypatch.setattr(train_cli, "run", _raising(error))
    assert main(["train", "--out", "x"]) == 2
    assert capsys.readouterr().err == "pathwaygrad: error: weights.pt: No such file or directory\n"


@pytest.mark.parametrize(
    "exc", [RuntimeError("a bug"), ValueError("a bug"), KeyError("k"), FileNotFoundError("no name")]
)
def test_other_exceptions_are_bugs_and_keep_their_traceback(monkeypatch, exc):
    monkeypatch.setattr(train_cli, "run", _raising(exc))
    with pytest.raises(type(exc)):
        main(["train", "--out", "x"])
