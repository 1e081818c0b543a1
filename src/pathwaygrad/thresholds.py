"""Thresholding: turn neuron scores into boolean masks (part of step 3, select a pathway).

Thresholding (paper section 2): one *global* threshold over all calls of one example, the s-th
percentile of all its scores with linear interpolation (numpy's default); neurons scoring
<= threshold are pruned. ``s`` is the sparsity in percent pruned. Ties (many zeros) can make the
real sparsity exceed s; :attr:`pathwaygrad.Pathway.sparsity` reports the real one. At s = 0 every
neuron is kept: the pathway is the full network, whatever the activation kind.
``per_layer`` thresholds each call separately at the same percentile.

The percentile needs two order statistics of millions of scores per example. A full sort,
``torch.quantile`` or even ``torch.kthvalue`` costs more than a forward pass of the network, so
for float32 scores that are >= 0 (every scoring method's) the order statistics are found by an
exact two-level radix select on the IEEE-754 bit patterns, whose integer order is the value
order for non-negative floats: one histogram of the upper 16 bits finds the bucket holding the
wanted rank, one histogram of the lower 16 bits inside that bucket gives the exact value. Both
passes read the scores call by call, in cache-sized chunks, without concatenating them, and run
the (serial) histogram of different examples on different threads. Rows of 64 k to 2 M scores
(CIFAR-size networks, where the histograms' per-block overhead dominates) are first bracketed by a
sample (:func:`_bracket_select`): one counting pass gathers the few percent of scores between two
sample values and a sort of those gives the exact ranks. Other dtypes, negative or NaN scores use
:func:`torch.kthvalue`. Whatever the path, the result is exactly numpy's.
"""

from __future__ import annotations

import functools
import math

import torch

from pathwaygrad._threads import run, threads

THRESHOLDS = ("global", "per_layer")

_HI_BINS = 1 << 15  # upper 16 bits of a non-negative float32: 0 .. 0x7F80 (inf)
_LO_BINS = 257 * 256  # lower 16 bits (+1), one bin below and one above the bucket, padding
_BLOCK = 1 << 18  # elements per block
_SMALL = 1 << 20  # below this many elements in all, no threads
_SAMPLE = 4096  # scores sampled per row to bracket the wanted ranks
# Rows of this many scores are bracketed by a sample first. Longer rows (ImageNet-size networks)
# keep the radix select: its threaded histograms beat sorting the few percent gathered.
_BRACKET_MIN, _BRACKET_MAX = 1 << 16, 1 << 21


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
        if _BRACKET_MIN <= sum(p.shape[1] for p in parts) <= _BRACKET_MAX:
            out = _bracket_select(parts, ranks)
            if out is not None:
                return out
        return _radix_select(parts, ranks)
    flat = parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
    return torch.stack([flat.kthvalue(r + 1, dim=1).values for r in ranks], dim=1)


def _radix_ok(parts: list[torch.Tensor]) -> bool:
    if any(p.dtype != torch.float32 or p.shape[1] == 0 for p in parts):
        return False
    # amin propagates NaN, so "not >= 0" also catches NaN.
    return all(bool(p.amin() >= 0) for p in parts)


def _blocks(parts: list[torch.Tensor]) -> list[tuple[int, torch.Tensor]]:
    """(first row, block (b, c)) covering all elements of every part, each of at most ``_BLOCK``
    elements (at least one column): small enough that PyTorch runs each elementwise op on a
    block in the calling thread (below its parallel grain size), big enough to amortise the
    per-op overhead."""
    out = []
    for p in parts:
        # At most 8 rows per block: each row counts into its own part of the histogram, and a
        # few rows' parts stay in cache together.
        rows = min(p.shape[0], 8)
        cols = max(1, _BLOCK // rows)
        for r0 in range(0, p.shape[0], rows):
            for start in range(0, p.shape[1], cols):
                out.append((r0, p[r0 : r0 + rows, start : start + cols]))
    return out


def _histograms(parts, bins: int, keys_of) -> torch.Tensor:
    """(B, bins) int histogram per row of ``keys_of(block, offsets)`` over all blocks of ``parts``.

    ``keys_of(block, offsets, r0)`` maps a block (b, c) of rows r0.. to int32 keys (b, c) in
    [offsets[i], offsets[i] + bins) for its row i (``offsets`` is (b, 1): row * bins), so that one
    ``index_add_`` counts a whole block into the flat (B * bins) histogram. ``index_add_`` with a
    broadcast source of ones is one serial pass (``bincount`` adds a min and a max pass and
    allocates its output). On the CPU, with more than one core and enough data, the blocks are
    shared out to Python threads (torch ops release the GIL), each counting into its own
    histogram.
    """
    batch, device = parts[0].shape[0], parts[0].device
    row_len = sum(p.shape[1] for p in parts)
    dtype = torch.int32 if row_len < 2**31 - 1 else torch.long
    offsets = torch.arange(batch, device=device, dtype=torch.int32).mul_(bins)[:, None]
    one = torch.ones(1, dtype=dtype, device=device)

    def work(blocks):
        hist = torch.zeros(batch * bins, dtype=dtype, device=device)
        for r0, block in blocks:
            keys = keys_of(block, offsets[r0 : r0 + block.shape[0]], r0).view(-1)
            hist.index_add_(0, keys, one.expand(keys.shape[0]))
        return hist

    total = batch * row_len
    if device.type != "cpu":
        return work([(0, p) for p in parts]).view(batch, bins)
    blocks = _blocks(parts)
    workers = 1
    if total > _SMALL:
        workers = max(1, min(threads(), total // (8 * batch * bins)))
    # Contiguous groups of blocks with about equal element counts, one per thread.
    groups: list[list[tuple[int, torch.Tensor]]] = [[]]
    acc = 0
    for r0, block in blocks:
        if acc >= total / workers * len(groups) and len(groups) < workers:
            groups.append([])
        groups[-1].append((r0, block))
        acc += block.numel()
    hists = run([functools.partial(work, g) for g in groups if g])
    hist = hists[0]
    for h in hists[1:]:
        hist += h
    return hist.view(batch, bins)


def _find_bins(hist: torch.Tensor, want: torch.Tensor) -> torch.Tensor:
    """Per row b and column j, the first bin whose running count exceeds ``want[b, j]``.

    ``hist`` is (B, G * 256). Two levels of 256 (sums of groups, then within the group), so no
    cumulative sum runs over whole rows of tens of thousands of bins.
    """
    batch, bins = hist.shape
    groups = hist.view(batch, bins // 256, 256)
    cum_g = groups.sum(-1, dtype=hist.dtype).cumsum(1, dtype=torch.long)  # (B, G)
    g = torch.searchsorted(cum_g, want, right=True).clamp_(max=bins // 256 - 1)  # (B, R)
    before = torch.where(g > 0, cum_g.gather(1, (g - 1).clamp(min=0)), 0)  # (B, R)
    rows = torch.arange(batch, device=hist.device)[:, None].expand_as(g)
    inside = groups[rows, g].to(torch.long).cumsum(-1) + before[..., None]  # (B, R, 256)
    j = torch.searchsorted(inside, want[..., None], right=True).squeeze(-1)
    return g * 256 + j


def _radix_select(parts: list[torch.Tensor], ranks: list[int]) -> torch.Tensor:
    """Exact order statistics of non-negative float32 rows by a two-level radix select.

    Level 1 counts the upper 16 bits of every score (the bucket: sign, exponent and 7 mantissa
    bits); level 2 counts the lower 16 bits of the scores inside the bucket holding the wanted
    rank. For non-negative floats the bit patterns sort like the values, so the rank's bit
    pattern, hence its value, is exact. Every row's histogram counts all of its elements (level
    2 counts those below and above the bucket in its first and last bins), so a rank is found
    directly in the running counts of its row.
    """
    batch = parts[0].shape[0]
    device = parts[0].device

    def upper(block, offsets, r0):  # upper 16 bits, + row offset
        return torch.bitwise_right_shift(block.view(torch.int32), 16).add_(offsets)

    want = torch.tensor(ranks, dtype=torch.long, device=device).expand(batch, -1).contiguous()
    bucket = _find_bins(_histograms(parts, _HI_BINS, upper), want)  # (B, R)
    out = torch.empty(batch, len(ranks), dtype=torch.float32, device=device)
    # The ranks of a row (k and k + 1) almost always share a bucket: one level-2 pass resolves
    # both; a second pass only when some row's rank k + 1 starts the next bucket.
    done = torch.zeros(batch, len(ranks), dtype=torch.bool, device=device)
    for j in range(len(ranks)):
        if bool(done[:, j].all()):
            continue
        first = bucket[:, j].to(torch.int32) << 16  # the bucket's first bit pattern
        col = first[:, None]

        def lower(block, offsets, r0, col=col):
            # Bin 0: below the bucket; 1..65536: inside (lower 16 bits + 1); 65537: above.
            # (Bit patterns and bucket starts are both in [0, 2**31), so the difference fits.)
            keys = torch.sub(block.view(torch.int32), col[r0 : r0 + block.shape[0]] - 1)
            return keys.clamp_(0, 65537).add_(offsets)

        fine = _find_bins(_histograms(parts, _LO_BINS, lower), want)  # 1..65536 in the bucket
        same = (bucket == bucket[:, j : j + 1]) & ~done  # ranks this pass resolves
        bits = (col + (fine.to(torch.int32) - 1)).view(torch.float32)
        out = torch.where(same, bits, out)
        done |= same
    return out


def _bracket_select(parts: list[torch.Tensor], ranks: list[int]) -> torch.Tensor | None:
    """Exact order statistics of non-negative float32 rows, bracketed by a sample; None if the
    bracket misses (the caller then runs the radix select).

    A seeded sample of ``_SAMPLE`` scores per row (the same columns in every row) gives, per row,
    two sample values ``lo`` < ``hi`` that hold the wanted ranks between them with a margin of
    six standard deviations of the sample quantile. One pass over the scores counts the scores
    ``<= lo`` and gathers those in the open interval (lo, hi), typically a few percent; one sort
    of the gathered scores (keyed by row, then bit pattern) gives the ranks inside. A rank that
    falls at ``lo`` or ``hi`` themselves (ties) is checked with one more counting pass, so the
    result is exact whatever the sample: it only decides how much is gathered.
    """
    batch = parts[0].shape[0]
    device = parts[0].device
    n = sum(p.shape[1] for p in parts)
    if n < 2:
        return None
    r_lo, r_hi = min(ranks), max(ranks)
    m = _SAMPLE
    p_lo, p_hi = r_lo / (n - 1), r_hi / (n - 1)
    i_lo = math.floor(p_lo * (m - 1) - 6.0 * math.sqrt(m * p_lo * (1 - p_lo)) - 2)
    i_hi = math.ceil(p_hi * (m - 1) + 6.0 * math.sqrt(m * p_hi * (1 - p_hi)) + 2)
    if i_lo < 0 or i_hi >= m:  # extreme percentiles: no room for a bracket
        return None
    gen = torch.Generator().manual_seed(0)
    cols = torch.randint(0, n, (m,), generator=gen).sort().values
    bounds = torch.tensor([0] + [p.shape[1] for p in parts]).cumsum(0)
    pieces = []
    for k, p in enumerate(parts):
        sel = cols[(cols >= bounds[k]) & (cols < bounds[k + 1])] - bounds[k]
        pieces.append(p[:, sel.to(device)])
    sample = torch.cat(pieces, dim=1).sort(dim=1).values  # (B, m)
    lo, hi = sample[:, i_lo : i_lo + 1], sample[:, i_hi : i_hi + 1]  # (B, 1)

    # one pass: count the scores <= lo, gather those in (lo, hi) keyed by row, then bit pattern
    at_most_lo = torch.zeros(batch, dtype=torch.long, device=device)
    inside = torch.zeros(batch, dtype=torch.long, device=device)
    pieces_of_keys: list[torch.Tensor] = []
    row_key = torch.arange(batch, device=device, dtype=torch.long) << 32
    for p in parts:
        le = p <= lo
        at_most_lo += le.sum(1)
        w = (p < hi).logical_and_(le.logical_not_())
        c = w.sum(1)
        inside += c
        bits_in = p[w].view(torch.int32).to(torch.long)
        pieces_of_keys.append(bits_in.add_(torch.repeat_interleave(row_key, c)))
    keys = torch.cat(pieces_of_keys).sort().values
    start = inside.cumsum(0) - inside  # each row's first key
    want = torch.tensor(ranks, dtype=torch.long, device=device).expand(batch, -1)
    pos = want - at_most_lo[:, None]  # rank within the open interval (lo, hi)
    at_lo, at_hi = pos < 0, pos >= inside[:, None]
    if bool(at_lo.any() | at_hi.any()):
        # ranks at lo or hi themselves: lo is right if fewer than rank + 1 scores are < lo,
        # hi if more than rank scores are <= hi.
        below_lo = torch.zeros(batch, dtype=torch.long, device=device)
        upto_hi = torch.zeros(batch, dtype=torch.long, device=device)
        for p in parts:
            below_lo += (p < lo).sum(1)
            upto_hi += (p <= hi).sum(1)
        ok = torch.where(at_lo, below_lo[:, None] <= want, upto_hi[:, None] > want)
        if not bool(ok[at_lo | at_hi].all()):
            return None
    idx = (start[:, None] + pos.clamp(min=0)).clamp(max=max(keys.numel() - 1, 0))
    got = keys[idx] if keys.numel() else torch.zeros_like(idx)
    bits = (got & 0xFFFFFFFF).to(torch.int32).view(torch.float32)
    out = torch.where(at_lo, lo, torch.where(at_hi, hi, bits))
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
    """Keep neurons scoring above the s-th percentile; returns bool masks shaped like ``scores``.

    At sparsity 0 every neuron is kept, so the pathway is the full network and its pathway
    gradient the plain gradient. (Numpy's 0-th percentile is the smallest score, and pruning the
    neurons at it is not harmless: with GELU or SiLU every score may be positive and the smallest
    one would go; with ReLU an *active* neuron scores 0 when every ReLU after it is off, and
    zeroing its value can turn those on.)
    """
    if threshold == "global":
        parts = [s.reshape(s.shape[0], -1) for s in scores]
        thr = _at_zero(_percentile_parts(parts, sparsity), sparsity)
        return [s > _view(_same_dtype(thr, s), s) for s in scores]
    if threshold == "per_layer":
        out = []
        for s in scores:
            thr = _at_zero(percentile(s.reshape(s.shape[0], -1), sparsity), sparsity)
            out.append(s > _view(_same_dtype(thr, s), s))
        return out
    raise ValueError(f"threshold must be one of {THRESHOLDS}, got {threshold!r}")


def _at_zero(thr: torch.Tensor, sparsity: float) -> torch.Tensor:
    """The threshold; -inf (keep every neuron) when nothing is to be pruned (sparsity 0)."""
    return torch.full_like(thr, -math.inf) if sparsity == 0 else thr


def real_sparsity(masks: list[torch.Tensor]) -> torch.Tensor:
    """Percent of neurons pruned per example, float (B,)."""
    kept = torch.stack([m.reshape(m.shape[0], -1).sum(dim=1, dtype=torch.float64) for m in masks])
    total = sum(m[0].numel() for m in masks)
    return (100.0 * (1.0 - kept.sum(0) / total)).float()
