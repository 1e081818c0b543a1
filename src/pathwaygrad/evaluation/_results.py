"""Tidy result tables and crash-safe files.

A result table is a plain ``list[dict]`` (one dict per row, one row per method x setting x repeat);
no pandas needed. Every file is written through :mod:`pathwaygrad._io` (atomically: an
interruption leaves either the old file or the new one, never a truncated one; NaN becomes null).

:class:`CellStore` keeps the finished cells of a long protocol (e.g. ROAR retrains) as one small JSON
file per cell, so a rerun skips them and nothing finished is ever lost.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from pathwaygrad._io import clean_json, load_json, write_json, write_text

__all__ = [
    "CellStore",
    "ResultTable",
    "read_csv",
    "summarize",
    "write_csv",
]


def _columns(rows: Sequence[dict]) -> list[str]:
    cols: list[str] = []
    for row in rows:
        for key in row:
            if key not in cols:
                cols.append(key)
    return cols


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ""
    if isinstance(value, dict | list | tuple):
        return json.dumps(clean_json(value), sort_keys=True)
    return str(value)


def write_csv(path: str | os.PathLike, rows: Sequence[dict], columns: Sequence[str] | None = None):
    """Write ``rows`` (list of dicts) as CSV with a header, atomically.

    Columns: ``columns`` or the union of the rows' keys in first-seen order. Floats are written
    with full precision (``repr``); None / NaN as empty fields; dicts / lists as JSON.
    """
    cols = list(columns) if columns is not None else _columns(rows)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(cols)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in cols])
    return write_text(path, buf.getvalue())


def read_csv(path: str | os.PathLike) -> list[dict]:
    """Read a CSV written by :func:`write_csv`; numbers come back as int / float, empty as None."""

    def parse(text: str):
        if text == "":
            return None
        for kind in (int, float):
            try:
                return kind(text)
            except ValueError:
                pass
        return text

    with open(path, newline="", encoding="utf-8") as fh:
        return [{k: parse(v) for k, v in row.items()} for row in csv.DictReader(fh)]


def summarize(rows: Iterable[dict], by: Sequence[str], values: Sequence[str]) -> list[dict]:
    """Group ``rows`` by the columns ``by`` and give mean, std (ddof 1; 0 for one row) and count.

    Returns one dict per group, in first-seen order: the ``by`` columns, then ``<value>_mean``,
    ``<value>_std`` for each of ``values``, and ``n``. Missing / None values are skipped.
    """
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault(tuple(row.get(k) for k in by), []).append(row)
    out = []
    for key, members in groups.items():
        rec = dict(zip(by, key))
        for v in values:
            xs = np.array([float(m[v]) for m in members if m.get(v) is not None], dtype=np.float64)
            xs = xs[np.isfinite(xs)]
            rec[f"{v}_mean"] = float(xs.mean()) if xs.size else float("nan")
            rec[f"{v}_std"] = (
                float(xs.std(ddof=1)) if xs.size > 1 else 0.0 if xs.size else float("nan")
            )
        rec["n"] = len(members)
        out.append(rec)
    return out


class CellStore:
    """Finished cells of a protocol, one JSON file each under ``root`` (``<root>/<key>.json``).

    ``key`` must be a file-name-safe string (letters, digits, ``-_.=``). Writing is atomic, so a
    cell file exists if and only if its cell finished.
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        if not key or any(not (c.isalnum() or c in "-_.=") for c in key):
            raise ValueError(f"cell key {key!r} must use only letters, digits and -_.=")
        return self.root / f"{key}.json"

    def done(self, key: str) -> bool:
        return self.path(key).exists()

    def get(self, key: str) -> dict:
        return load_json(self.path(key))

    def put(self, key: str, row: dict) -> None:
        write_json(self.path(key), row)

    def keys(self) -> list[str]:
        return sorted(p.stem for p in self.root.glob("*.json"))


class ResultTable(list):
    """A tidy result table: a ``list`` of row dicts, plus ``summary`` (dict) and ``meta`` (dict).

    ``meta`` records the protocol (:class:`~._meta.ProtocolInfo` as a dict), its settings and the
    methods; ``summary`` the aggregate scores (areas, means per method). Being a plain list, it
    converts directly: ``pandas.DataFrame(table)``.
    """

    def __init__(
        self, rows: Iterable[dict] = (), summary: dict | None = None, meta: dict | None = None
    ):
        super().__init__(rows)
        self.summary = dict(summary or {})
        self.meta = dict(meta or {})

    def columns(self) -> list[str]:
        return _columns(self)

    def where(self, **equal) -> ResultTable:
        """The rows whose columns equal the given values (``table.where(method="gradient")``)."""
        rows = [r for r in self if all(r.get(k) == v for k, v in equal.items())]
        return ResultTable(rows, self.summary, self.meta)

    def column(self, name: str) -> list:
        return [r.get(name) for r in self]

    def save(self, out_dir: str | os.PathLike, name: str = "results") -> dict[str, Path]:
        """Write ``<name>.csv`` and ``summary.json`` (meta + summary) into ``out_dir``."""
        out = Path(out_dir)
        paths = {
            "csv": write_csv(out / f"{name}.csv", self),
            "summary": write_json(out / "summary.json", {**self.meta, "summary": self.summary}),
        }
        return paths
