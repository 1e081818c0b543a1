"""Writing analysis tables: CSV (one row per record) and JSON (NaN/inf written as null), atomically."""

from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path

import numpy as np

from pathwaygrad._io import atomic_write_text


def _plain(obj):
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _plain(obj.tolist())
    if isinstance(obj, np.generic):
        return _plain(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_json(obj, path: str | os.PathLike) -> Path:
    """``obj`` as JSON (NaN / inf as null), written atomically."""
    return atomic_write_text(path, json.dumps(_plain(obj), indent=1) + "\n")


def write_csv(rows: list[dict], path: str | os.PathLike) -> Path:
    """Rows (dicts) to CSV; columns in first-seen order; floats with 6 significant digits."""
    cols: list[str] = []
    for r in rows:
        for k in r:
            if k not in cols:
                cols.append(k)
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=cols)
    w.writeheader()
    for r in rows:
        w.writerow({k: _fmt(v) for k, v in r.items()})
    return atomic_write_text(path, buf.getvalue())


def _fmt(v):
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float):
        return "" if not math.isfinite(v) else f"{v:.6g}"
    return v
