"""Noisy linear imputation (ROAD, Rong, Leemann et al., ICML 2022), batched: the imputation solvers.

Instead of retraining (ROAR), removed pixels are *imputed*: each removed pixel takes the weighted
mean of its 8 neighbours (weight 1/6 for the 4 direct neighbours, 1/12 for the diagonals; neighbours
outside the image are dropped), which for all removed pixels together is one sparse linear system;
then Gaussian noise (std ``noise``, in input units) is added to the imputed values so the removal
pattern itself carries no class information. This is the imputation of the ROAD paper and of
Quantus (``quantus.functions.perturb_func.noisy_linear_imputation``); the system is the same, but
we solve it for a whole batch (and all removal levels) at once:

- ``solver="banded"`` (default): with the unknowns in row-major order every neighbour is at most
  W + 1 unknowns away, so the batch's block-diagonal, symmetric positive definite matrix is banded;
  LAPACK's banded Cholesky (``pbtrf``/``pbtrs``, all channels as right-hand sides, in the inputs'
  precision) solves it, one run of whole images per thread, with the GIL released (see
  ``_banded``). The system is assembled with vectorised numpy (no per-pixel Python). Exact.
- ``solver="sparse"``: the same system, factorised by SuperLU (``scipy.sparse.linalg.splu``). Exact.
- ``solver="cg"``: Jacobi-preconditioned conjugate gradients in torch on the inputs' device, all
  images and channels as one batch, the operator a 3x3 convolution; converges to ``tol`` (relative
  residual). Meant for GPUs; slow on a CPU.

The ROAD protocol itself is :mod:`.road` (as Quantus keeps its imputation in ``functions/`` and
the metric in ``metrics/``).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch
import torch.nn.functional as F

from pathwaygrad._threads import run, threads
from pathwaygrad.errors import UserError
from pathwaygrad.evaluation._banded import solve_banded_spd

__all__ = ["NEIGHBOUR_WEIGHTS", "SOLVERS", "make_generator", "noisy_linear_impute"]

SOLVERS = ("auto", "banded", "sparse", "cg")

# (row offset, column offset, weight), as in the ROAD reference code and Quantus.
NEIGHBOUR_WEIGHTS = (
    (1, 1, 1 / 12),
    (0, 1, 1 / 6),
    (-1, 1, 1 / 12),
    (1, -1, 1 / 12),
    (0, -1, 1 / 6),
    (-1, -1, 1 / 12),
    (1, 0, 1 / 6),
    (-1, 0, 1 / 6),
)


def make_generator(seed_or_gen, device) -> torch.Generator:
    """``seed_or_gen`` as a torch generator on ``device`` (a generator is returned as it is)."""
    if isinstance(seed_or_gen, torch.Generator):
        return seed_or_gen
    g = torch.Generator(device=device)
    g.manual_seed(0 if seed_or_gen is None else int(seed_or_gen))
    return g


def _weight_sums(h: int, w: int) -> np.ndarray:
    """(H, W): the sum of the weights of each pixel's in-image neighbours (1 inside the image)."""
    inside = np.zeros((h + 2, w + 2))
    inside[1:-1, 1:-1] = 1.0
    total = np.zeros((h, w))
    for dr, dc, wt in NEIGHBOUR_WEIGHTS:
        total += wt * inside[1 + dr : 1 + dr + h, 1 + dc : 1 + dc + w]
    return total


def _system(x: np.ndarray, remove: np.ndarray):
    """The imputation system of a batch: ``x`` (B, C, H, W) float, ``remove`` (B, H, W) bool.

    Unknowns are the removed pixels in ``np.nonzero(remove)`` order (image, then row-major), one
    system for the whole batch (block diagonal). For unknown i with in-image neighbours N(i):
    ``d_i v_i - sum_{j in N(i) removed} w_ij v_j = sum_{j in N(i) kept} w_ij x_j`` with
    ``d_i = sum_{j in N(i)} w_ij``: symmetric positive definite as long as no image is removed
    entirely. Vectorised over the unknowns with a one-pixel zero border (no bounds checks, no
    per-pixel Python). Returns ``diag`` (n,), ``upper``: a list of ``(i, j, value)`` (index arrays
    with j > i and the shared weight), one per neighbour direction, and ``rhs`` (n, C).
    """
    b, c, h, w = x.shape
    hp, wp = h + 2, w + 2
    bi, ri, ci = np.nonzero(remove)
    n = bi.size
    pp = (ri + 1) * wp + (ci + 1)  # flat index in the padded grid
    var = np.full((b, hp * wp), -1, dtype=np.int64)
    var[bi, pp] = np.arange(n)
    known = np.zeros((b, hp, wp, c), dtype=x.dtype)  # channel-last, removed pixels and border = 0
    known[:, 1:-1, 1:-1] = np.moveaxis(x, 1, -1)
    known[:, 1:-1, 1:-1][remove] = 0
    known = known.reshape(b * hp * wp, c)
    var = var.reshape(-1)
    flat = bi * (hp * wp) + pp
    diag = _weight_sums(h, w).reshape(-1)[ri * w + ci]
    rhs = np.zeros((n, c), dtype=x.dtype)
    upper = []
    for dr, dc, wt in NEIGHBOUR_WEIGHTS:
        step = dr * wp + dc
        rhs += wt * known.take(flat + step, axis=0)
        if (dr, dc) > (0, 0):  # neighbours later in row-major order: the upper triangle
            nb = var.take(flat + step)
            coupled = np.nonzero(nb >= 0)[0]
            upper.append((coupled, nb[coupled], -wt))
    return diag, upper, rhs


def _impute_banded(x: np.ndarray, remove: np.ndarray, out: np.ndarray, eps) -> None:
    """Write the imputed values (+ ``eps`` (n_removed, C), the noise, if given) into ``out``.

    Exact, by banded Cholesky solves (LAPACK ``pbtrf``/``pbtrs``). The batch is cut into one run
    of whole images per thread (about equal numbers of removed pixels); each run is assembled,
    solved and written back on its own thread: LAPACK is called without the GIL (see
    ``_banded``) and numpy releases it too, so the runs use all cores. Precision: that of ``x``
    (float32 or float64).
    """
    dtype = np.float64 if x.dtype == np.float64 else np.float32
    counts = remove.reshape(remove.shape[0], -1).sum(1)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    runs = _image_runs(counts, threads() if offsets[-1] >= _THREADED_UNKNOWNS else 1)

    def work(r: slice) -> None:
        values = _solve_run(x[r], remove[r], dtype)
        if eps is not None:
            values += eps[offsets[r.start] : offsets[r.stop]]
        out[r].transpose(0, 2, 3, 1)[remove[r]] = values

    with _one_blas_thread():
        run([functools.partial(work, r) for r in runs])


_THREADED_UNKNOWNS = 1 << 14  # fewer unknowns than this in all: one thread


def _image_runs(counts: np.ndarray, parts: int) -> list[slice]:
    """Up to ``parts`` contiguous runs of images with about equal ``counts`` in each."""
    cum = np.cumsum(counts)
    cuts = np.searchsorted(cum, cum[-1] * np.arange(1, parts) / parts, side="right")
    bounds = np.unique(np.concatenate([[0], cuts, [counts.size]]))
    return [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]


def _solve_run(x: np.ndarray, remove: np.ndarray, dtype) -> np.ndarray:
    """Imputed values (n_removed, C) of a run of images.

    In row-major order a neighbour is at most W + 1 unknowns away, so the run's block-diagonal
    matrix is banded: cost O(n u^2) for n unknowns and u super-diagonals. Images of very
    different bandwidth are solved in a few groups of similar bandwidth (one LAPACK call each), so
    a single wide image does not widen the band of all.
    """
    diag, upper, rhs = _system(x, remove)
    b = x.shape[0]
    counts = remove.reshape(b, -1).sum(1)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    width = np.zeros(b, dtype=np.int64)  # per image: largest index distance of a coupled pair
    for i, j, _ in upper:  # i is sorted: split it into the images' segments
        if i.size:
            starts = np.searchsorted(i, offsets[:-1])
            has = starts < np.searchsorted(i, offsets[1:])
            seg = np.maximum.reduceat(j - i, starts[has])
            width[has] = np.maximum(width[has], seg)
    entries = [(i, j, v) for i, j, v in upper if i.size]
    order = np.argsort(width, kind="stable")
    groups = [np.sort(g) for g in np.array_split(order, min(4, b)) if g.size]
    one_cost = diag.size * (int(width.max(initial=0)) + 1) ** 2
    split_cost = sum(int(counts[g].sum()) * (int(width[g].max()) + 1) ** 2 for g in groups)
    if split_cost >= 0.75 * one_cost:
        band = _band(diag, entries, int(width.max(initial=0)), dtype)
        return solve_banded_spd(band, np.ascontiguousarray(rhs.T, dtype=dtype)).T
    out = np.empty_like(rhs, dtype=dtype)
    for g in groups:
        sel = np.concatenate([np.arange(offsets[k], offsets[k + 1]) for k in g])
        if sel.size == 0:
            continue
        local = np.full(diag.size, -1, dtype=np.int64)
        local[sel] = np.arange(sel.size)
        mine = []
        for i, j, v in entries:
            li, lj = local[i], local[j]
            keep = li >= 0
            mine.append((li[keep], lj[keep], v))
        band = _band(diag[sel], mine, int(width[g].max()), dtype)
        out[sel] = solve_banded_spd(band, np.ascontiguousarray(rhs[sel].T, dtype=dtype)).T
    return out


def _band(diag: np.ndarray, entries, u: int, dtype) -> np.ndarray:
    """LAPACK's upper band storage by columns, (n, u + 1): ``band[j, u + i - j] = A[i, j]``."""
    band = np.zeros((diag.size, u + 1), dtype=dtype)
    band[:, u] = diag
    for i, j, v in entries:
        band[j, u - (j - i)] = v
    return band


_CONTROLLER: list[Any] = []


def _one_blas_thread():
    """Limit BLAS to one thread (threadpoolctl, when installed): threaded OpenBLAS is many times
    slower on these thin banded factorisations, badly so on a busy machine."""
    if not _CONTROLLER:
        try:
            from threadpoolctl import ThreadpoolController

            _CONTROLLER.append(ThreadpoolController())
        except ImportError:  # pragma: no cover
            _CONTROLLER.append(None)
    if _CONTROLLER[0] is None:  # pragma: no cover
        import contextlib

        return contextlib.nullcontext()
    return _CONTROLLER[0].limit(limits=1, user_api="blas")


def _solve_sparse(x: np.ndarray, remove: np.ndarray) -> np.ndarray:
    """Exact imputed values (n_removed, C) by a sparse LU (SuperLU) of the batch's system."""
    diag, upper, rhs = _system(x, remove)
    n = diag.size
    rows = np.concatenate([np.arange(n)] + [i for i, _, _ in upper] + [j for _, j, _ in upper])
    cols = np.concatenate([np.arange(n)] + [j for _, j, _ in upper] + [i for i, _, _ in upper])
    vals = np.concatenate([diag] + [np.full(i.size, v) for i, _, v in upper] * 2)
    a = sp.csc_matrix((vals, (rows, cols)), shape=(n, n))
    return spla.splu(a).solve(rhs)


def _solve_cg(
    x: torch.Tensor, remove: torch.Tensor, tol: float, max_iter: int | None
) -> torch.Tensor:
    """Jacobi-preconditioned CG on the same system; returns the full (B, C, H, W) image with the
    removed pixels replaced by their imputed values (no noise)."""
    b, c, h, w = x.shape
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    k = torch.zeros(3, 3, dtype=dtype, device=x.device)
    for dr, dc, wt in NEIGHBOUR_WEIGHTS:
        k[1 + dr, 1 + dc] = wt
    k = k.view(1, 1, 3, 3)
    u = remove.to(x.device, dtype).unsqueeze(1).expand(b, c, h, w).reshape(b * c, 1, h, w)
    xk = x.to(dtype).reshape(b * c, 1, h, w)
    known = xk * (1 - u)
    diag = F.conv2d(F.pad(torch.ones_like(u), (1, 1, 1, 1)), k)  # sum of in-image neighbour weights

    def conv(v):
        return F.conv2d(F.pad(v, (1, 1, 1, 1)), k)

    def op(v):  # v lives on the removed pixels only
        return u * (diag * v - conv(u * v))

    rhs = u * conv(known)
    inv_d = u / diag
    v = rhs * inv_d  # Jacobi start
    r = rhs - op(v)
    z = r * inv_d
    p = z.clone()
    rz = (r * z).sum(dim=(1, 2, 3), keepdim=True)
    rhs_norm = rhs.flatten(1).norm(dim=1).clamp_min(1e-30).view(-1, 1, 1, 1)
    n_iter = max_iter or 10 * (h + w) + 100
    for _ in range(n_iter):
        if bool((r.flatten(1).norm(dim=1).view(-1, 1, 1, 1) <= tol * rhs_norm).all()):
            break
        ap = op(p)
        alpha = rz / (p * ap).sum(dim=(1, 2, 3), keepdim=True).clamp_min(1e-30)
        v = v + alpha * p
        r = r - alpha * ap
        z = r * inv_d
        rz_new = (r * z).sum(dim=(1, 2, 3), keepdim=True)
        p = z + (rz_new / rz.clamp_min(1e-30)) * p
        rz = rz_new
    out = known + u * v
    return out.reshape(b, c, h, w).to(x.dtype)


def noisy_linear_impute(
    x: torch.Tensor,
    remove: torch.Tensor,
    noise: float = 0.01,
    *,
    generator: torch.Generator | int | None = None,
    solver: str = "auto",
    tol: float = 1e-6,
    max_iter: int | None = None,
) -> torch.Tensor:
    """Impute the removed pixels of a batch, all at once.

    ``x``: (B, C, H, W) float; ``remove``: (B, H, W) bool (all channels of a pixel go together);
    ``noise``: standard deviation of the Gaussian noise added to imputed values (input units);
    ``generator``: a torch generator or a seed for that noise; ``solver``: ``"banded"``
    (``"auto"``), ``"sparse"`` or ``"cg"`` (see the module docstring). Returns a new tensor like ``x``; pixels
    not removed are unchanged. Every connected region of removed pixels must touch a kept pixel
    (otherwise the system is singular): with all pixels removed there is nothing to impute from.
    """
    if x.ndim != 4 or remove.shape != (x.shape[0], *x.shape[2:]):
        raise UserError(
            f"impute needs x (B, C, H, W) and remove (B, H, W), got {tuple(x.shape)} and "
            f"{tuple(remove.shape)}"
        )
    remove = remove.to(torch.bool)
    rn = remove.cpu().numpy()
    if (rn.reshape(rn.shape[0], -1).sum(1) == rn[0].size).any():
        raise UserError(
            "an image has all pixels removed: nothing to impute from; use fractions < 1"
        )
    if solver == "auto":
        solver = "banded"
    if solver in ("banded", "sparse"):
        xn = x.detach().cpu().numpy()
        out_np = xn.copy()
        n = int(rn.sum())
        if n:
            eps = None  # the noise, drawn in np.nonzero(rn) order
            if noise:
                g = make_generator(generator, "cpu")
                shape = (n, xn.shape[1])
                eps = noise * torch.randn(shape, generator=g, dtype=torch.float32).numpy()
            if solver == "banded":
                _impute_banded(xn, rn, out_np, eps)
            else:
                values = _solve_sparse(xn.astype(np.float64), rn)
                if eps is not None:
                    values += eps
                out_np.transpose(0, 2, 3, 1)[rn] = values
        return torch.from_numpy(out_np).to(x.device)
    if solver != "cg":
        raise UserError(f"solver must be 'banded', 'sparse', 'cg' or 'auto', got {solver!r}")
    out = _solve_cg(x.detach(), remove, tol, max_iter)
    if noise:
        g = make_generator(generator, x.device)
        noise_t = torch.randn(out.shape, generator=g, device=x.device, dtype=out.dtype) * noise
        out = torch.where(remove.to(x.device).unsqueeze(1), out + noise_t, out)
    return out
