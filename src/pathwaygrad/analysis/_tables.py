"""CSV tables of the analyses (one row per record), written atomically through pathwaygrad._io."""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from pathwaygrad._io import write_text


def write_csv(rows: list[dict], path: str | os.PathLike) -> Path:
    """Rows (dicts) to CSV; columns in first-seen order; floats with 6 significant digits,
    NaN / inf as empty cells."""
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
    return write_text(path, buf.getvalue())


def _fmt(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float):
        return "" if not math.isfinite(v) else f"{v:.6g}"
    return v
