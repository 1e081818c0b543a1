"""Thresholding: turn neuron scores into boolean masks (part of step 3, select a pathway).

Thresholding (paper section 2): one *global* threshold over all calls of one example, the s-th
percentile of all its scores with linear interpolation (numpy's default); neurons scoring
<= threshold are pruned. ``s`` is the sparsity in percent pruned. Ties (many zeros) can make the
real sparsity exceed s; :attr:`pathwaygrad.Pathway.sparsity` reports the real one.
``per_layer`` thresholds each call separately at the same percentile.

The percentile needs two order statistics of millions of scores per example. A full sort,
``torch.quantile`` or even ``torch.kthvalue`` costs more than a forward pass of the network, so
for float32 scores that are >= 0 (every scoring method's) the order statistics are found by an
exact two-level radix select on the IEEE-754 bit patterns, whose integer order is the value
order for non-negative floats: one histogram of the upper 16 bits finds the bucket holding the
wanted rank, one histogram of the lower 16 bits inside that bucket gives the exact value. Both
passes read the scores call by call, in cache-sized chunks, without concatenating them, and run
the (serial) histogram of different examples on different threads. Other dtypes, negative or NaN
scores use :func:`torch.kthvalue`. Either way the result is exactly numpy's.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor

import torch

THRESHOLDS = ("global", "per_layer")

_HI_BINS = 1 << 15  # upper 16 bits of a non-negative float32: 0 .. 0x7F80 (inf)
_LO_BINS = (1 << 16) + 2  # lower 16 bits, plus one bin below and one above the bucket
_CHUNK = 1 << 20  # elements per histogram call: 4 MB of keys, stays in cache
_SMALL = 1 << 20  # below this many elements in all, no threads
_pool: ThreadPoolExecutor | None = None


def flatten_scores(scores: list[torch.Tensor]) -> torch.Tensor:
    """All calls' scores of each example side by side: (B, N) with N the number of neurons."""
    return torch.cat([s.reshape(s.shape[0], -1) for s in scores], dim=1)


def _lerp(v_lo: torch.Tensor, v_hi: torch.Tensor, frac: float) -> torch.Tensor:
    # numpy's _lerp: exact at both ends, symmetric rounding.
    diff = v_hi - v_lo
    if frac >= 0.5:
        return v_hi - diff * (1.0 - frac)
    return v_lo + diff * frac


def _ranks(n: int, q: float) -> tuple[int, float]:
    pos = (q / 100.0) * (n - 1)
    lo = int(math.floor(pos))
    return lo, pos - lo


def percentile(flat: torch.Tensor, q: float) -> torch.Tensor:
    """Per-row q-th percentile (0..100) with linear interpolation, as ``numpy.percentile``.

    Args:
        flat: (B, N) scores. Returns: (B,) float64 thresholds.
    """
    return _percentile_parts([flat], q)


def _percentile_parts(parts: list[torch.Tensor], q: float) -> torch.Tensor:
    """``percentile`` of the rows of ``parts`` (each (B, n_i)) side by side, without concatenating."""
    n = sum(p.shape[1] for p in parts)
    lo, frac = _ranks(n, q)
    need_hi = not (frac == 0.0 or lo + 1 >= n)
    ranks = [lo, lo + 1] if need_hi else [lo]
    values = _order_stats(parts, ranks)
    v_lo = values[:, 0].double()
    if not need_hi:
        return v_lo
    return _lerp(v_lo, values[:, 1].double(), frac)


def _order_stats(parts: list[torch.Tensor], ranks: list[int]) -> torch.Tensor:
    """(B, len(ranks)): the rank-r smallest (0-based) value of each row of ``parts`` side by side."""
    if _radix_ok(parts):
        return _radix_select(parts, ranks)
    flat = parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
    return torch.stack([flat.kthvalue(r + 1, dim=1).values for r in ranks], dim=1)


def _radix_ok(parts: list[torch.Tensor]) -> bool:
    if any(p.dtype != torch.float32 or p.shape[1] == 0 for p in parts):
        return False
    # amin propagates NaN, so "not >= 0" also catches NaN.
    return all(bool(p.amin() >= 0) for p in parts)


def _threads() -> int:
    return max(1, min(torch.get_num_threads(), os.cpu_count() or 1))


def _run(tasks) -> list:
    """Run zero-argument callables, on a small thread pool (torch ops release the GIL)."""
    global _pool
    if len(tasks) <= 1:
        return [t() for t in tasks]
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=_threads(), thread_name_prefix="pathwaygrad")
    return [f.result() for f in [_pool.submit(t) for t in tasks]]


def _pieces(parts: list[torch.Tensor]) -> list[tuple[int, torch.Tensor]]:
    """(row, 1-D contiguous chunk of that row) covering every element of every part."""
    out = []
    for p in parts:
        for b in range(p.shape[0]):
            row = p[b]
            for start in range(0, row.shape[0], _CHUNK):
                out.append((b, row[start : start + _CHUNK]))
    return out


def _histograms(parts, batch, bins, keys_of) -> torch.Tensor:
    """(batch, bins) int64 histogram of ``keys_of(row, chunk)`` over all chunks of each row."""
    device = parts[0].device
    total = sum(p.numel() for p in parts)
    if device.type != "cpu" or total <= _SMALL:
        # One bincount per part over all rows at once, rows told apart by an offset.
        hist = torch.zeros(batch * bins, dtype=torch.long, device=device)
        offsets = (torch.arange(batch, device=device, dtype=torch.int32) * bins)[:, None]
        for p in parts:
            keys = keys_of(slice(None), p) + offsets
            hist += torch.bincount(keys.reshape(-1), minlength=batch * bins)
        return hist.view(batch, bins)
    pieces = _pieces(parts)
    workers = _threads()
    # Contiguous groups of pieces with about equal element counts, one per thread.
    groups, acc, limit = [[]], 0, total / workers
    for b, chunk in pieces:
        if acc >= limit * len(groups) and len(groups) < workers:
            groups.append([])
        groups[-1].append((b, chunk))
        acc += chunk.numel()

    def work(group):
        local = torch.zeros(batch, bins, dtype=torch.long)
        for b, chunk in group:
            local[b] += torch.bincount(keys_of(b, chunk), minlength=bins)
        return local

    return sum(_run([lambda g=g: work(g) for g in groups if g]))


def _radix_select(parts: list[torch.Tensor], ranks: list[int]) -> torch.Tensor:
    """Exact order statistics of non-negative float32 rows by a two-level radix select."""
    batch = parts[0].shape[0]
    device = parts[0].device
    parts = [p.contiguous() for p in parts]

    def upper(b, x):  # upper 16 bits
        return torch.bitwise_right_shift(x.view(torch.int32), 16)

    cum = _histograms(parts, batch, _HI_BINS, upper).cumsum_(1)
    want = torch.tensor(ranks, dtype=torch.long, device=device).expand(batch, -1).contiguous()
    bucket = torch.searchsorted(cum, want, right=True)  # (B, R): bucket holding each rank
    below = torch.where(bucket > 0, cum.gather(1, (bucket - 1).clamp_(min=0)), 0)
    out = torch.empty(batch, len(ranks), dtype=torch.float32, device=device)
    # Rank r of a row usually falls in the same bucket for every r; one fine pass per distinct
    # bucket index position (at most len(ranks) passes).
    done = torch.zeros(batch, len(ranks), dtype=torch.bool, device=device)
    for j in range(len(ranks)):
        if bool(done[:, j].all()):
            continue
        base = (bucket[:, j].to(torch.int32) << 16) - 1  # bucket's first bit pattern - 1
        base_cpu = base.tolist()

        def lower(b, x, base=base, base_cpu=base_cpu):
            # bits - base: 1..65536 inside the bucket, <= 0 below, > 65536 above.
            off = base_cpu[b] if isinstance(b, int) else base[:, None]
            return torch.sub(x.view(torch.int32), off).clamp_(0, _LO_BINS - 1)

        fine = _histograms(parts, batch, _LO_BINS, lower)[:, 1:-1].contiguous().cumsum_(1)
        same = bucket == bucket[:, j : j + 1]  # ranks resolved by this bucket's histogram
        same &= ~done
        idx = torch.searchsorted(fine, (want - below).clamp_(min=0), right=True)
        bits = (base[:, None] + 1 + idx.to(torch.int32)).view(torch.float32)
        out = torch.where(same, bits, out)
        done |= same
    return out


def _same_dtype(thr: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    """A threshold in the scores' dtype that keeps ``scores > thr`` exactly as in float64.

    For a float64 threshold t and floats s of a narrower type, ``s > t`` holds exactly when
    ``s > f`` with f the largest value of that type <= t: no value of the type lies in (f, t].
    Comparing in the scores' own dtype avoids a float64 pass over millions of scores.
    """
    if scores.dtype != torch.float32 or thr.dtype != torch.float64:
        return thr
    f = thr.to(scores.dtype)
    down = f.double() > thr
    if bool(down.any()):
        f = torch.where(down, torch.nextafter(f, torch.full_like(f, -math.inf)), f)
    return f


def _view(thr: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return thr.view(-1, *([1] * (like.ndim - 1)))


def threshold_masks(
    scores: list[torch.Tensor], sparsity: float, threshold: str = "global"
) -> list[torch.Tensor]:
    """Keep neurons scoring above the s-th percentile; returns bool masks shaped like ``scores``."""
    if threshold == "global":
        parts = [s.reshape(s.shape[0], -1) for s in scores]
        thr = _percentile_parts(parts, sparsity)
        return [s > _view(_same_dtype(thr, s), s) for s in scores]
    if threshold == "per_layer":
        return [
            s > _view(_same_dtype(percentile(s.reshape(s.shape[0], -1), sparsity), s), s)
            for s in scores
        ]
    raise ValueError(f"threshold must be one of {THRESHOLDS}, got {threshold!r}")


def real_sparsity(masks: list[torch.Tensor]) -> torch.Tensor:
    """Percent of neurons pruned per example, float (B,)."""
    kept = sum(m.reshape(m.shape[0], -1).sum(dim=1, dtype=torch.float64) for m in masks)
    total = sum(m[0].numel() for m in masks)
    return (100.0 * (1.0 - kept / total)).float()
