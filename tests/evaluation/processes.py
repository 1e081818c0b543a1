"""Process helpers for the kill / leftover tests (Linux /proc), and the Ray network rule.

Ray may only run where the network is loopback-only (see docs/evaluation.md, "Tests"): either the
test process already is in such a network namespace, or a Ray test re-runs itself inside one with
``unshare -n`` (needs root, ``unshare`` and ``ip``).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

MARKER = "PATHWAYGRAD_TEST_SESSION"  # environment variable every test-started process inherits


def interfaces() -> list[str]:
    """The network interfaces of this process's network namespace (``/proc/self/net/dev``; not
    ``/sys/class/net``, which shows the namespace sysfs was mounted in)."""
    try:
        with open("/proc/self/net/dev", encoding="ascii") as fh:
            lines = fh.read().splitlines()[2:]
    except OSError:
        return []
    return sorted(line.split(":", 1)[0].strip() for line in lines if ":" in line)


def loopback_only() -> bool:
    """True when the only network interface is ``lo``."""
    return interfaces() == ["lo"]


def can_unshare() -> bool:
    """True when this process may create a network namespace (root, ``unshare`` and ``ip``)."""
    return os.geteuid() == 0 and bool(shutil.which("unshare")) and bool(shutil.which("ip"))


def netns_command(argv: list[str]) -> list[str]:
    """``argv`` run in a new network namespace with only loopback up."""
    return ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *argv]


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError:
        return b""


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    stat = _read(f"/proc/{pid}/stat")
    if not stat:
        return False
    state = stat.rsplit(b")", 1)[-1].split()[0]
    return state not in (b"Z", b"X")


def children(pid: int) -> list[int]:
    """Direct children of ``pid``."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        stat = _read(f"/proc/{entry.name}/stat")
        if stat and int(stat.rsplit(b")", 1)[-1].split()[1]) == pid:
            out.append(int(entry.name))
    return out


def descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        for child in children(todo.pop()):
            out.append(child)
            todo.append(child)
    return out


def with_env(name: str, value: str) -> list[int]:
    """Live processes (other than this one) whose environment holds ``name=value``."""
    needle = f"{name}={value}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        if needle in _read(f"/proc/{entry.name}/environ").split(b"\0") and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def wait_gone(find, timeout: float) -> list[int]:
    """Poll ``find()`` (a list of pids) until it is empty or ``timeout`` s passed; return the rest."""
    deadline = time.monotonic() + timeout
    left = [p for p in find() if alive(p)]
    while left and time.monotonic() < deadline:
        time.sleep(0.5)
        left = [p for p in find() if alive(p)]
    return left


def cmdline(pid: int) -> str:
    return _read(f"/proc/{pid}/cmdline").replace(b"\0", b" ").decode(errors="replace")[:200]
