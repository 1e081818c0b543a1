"""Atomic writes: an interrupted write leaves the old file and no temporary file behind."""

from __future__ import annotations

import os

import pytest

from pathwaygrad._io import atomic_write, atomic_write_text


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
