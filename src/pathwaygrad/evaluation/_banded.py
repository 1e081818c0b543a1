"""Symmetric positive definite banded solves (LAPACK ``?pbtrf`` + ``?pbtrs``) that release the GIL.

``scipy.linalg.solveh_banded`` holds the GIL while LAPACK runs, so two threads solving two
systems take as long as one thread solving both. This module calls the same LAPACK routines
through the function pointers that ``scipy.linalg.cython_lapack`` publishes (its documented
Cython API), with ``ctypes``, which releases the GIL for the duration of a foreign call: systems
solved on different threads then run on different cores. Where the pointers cannot be had (another
Python, another SciPy) it falls back to ``solveh_banded``, with the same results.
"""

from __future__ import annotations

import ctypes

import numpy as np
import scipy.linalg

_ROUTINES: dict[str, object] = {}


def _routine(name: str, argtypes: list) -> object | None:
    """A ctypes function for the LAPACK routine ``name`` of scipy.linalg.cython_lapack, or None."""
    if name not in _ROUTINES:
        fn = None
        try:
            import scipy.linalg.cython_lapack as cython_lapack

            capsule = cython_lapack.__pyx_capi__[name]
            get_name = ctypes.pythonapi.PyCapsule_GetName
            get_name.restype, get_name.argtypes = ctypes.c_char_p, [ctypes.py_object]
            get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
            get_pointer.restype = ctypes.c_void_p
            get_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
            address = get_pointer(capsule, get_name(capsule))
            if address:
                fn = ctypes.CFUNCTYPE(None, *argtypes)(address)
        except (ImportError, AttributeError, KeyError, TypeError, ValueError):
            fn = None
        _ROUTINES[name] = fn
    return _ROUTINES[name]


def _lapack(dtype: np.dtype):
    """(pbtrf, pbtrs) for float32 or float64 arrays, or None when unavailable."""
    prefix = {np.dtype(np.float32): "s", np.dtype(np.float64): "d"}.get(np.dtype(dtype))
    if prefix is None:
        return None
    real = ctypes.POINTER(ctypes.c_float if prefix == "s" else ctypes.c_double)
    i = ctypes.POINTER(ctypes.c_int)
    # void ?pbtrf(char *uplo, int *n, int *kd, real *ab, int *ldab, int *info)
    trf = _routine(f"{prefix}pbtrf", [ctypes.c_char_p, i, i, real, i, i])
    # void ?pbtrs(char *uplo, int *n, int *kd, int *nrhs, real *ab, int *ldab, real *b,
    #             int *ldb, int *info)
    trs = _routine(f"{prefix}pbtrs", [ctypes.c_char_p, i, i, i, real, i, real, i, i])
    if trf is None or trs is None:
        return None
    return trf, trs, real


def solve_banded_spd(band: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solve ``A X = B`` for a symmetric positive definite banded ``A``; both arrays are overwritten.

    Args:
        band: (n, u + 1) C-contiguous float32 or float64, ``A``'s upper band by columns:
            ``band[j, u + i - j] = A[i, j]`` for ``max(0, j - u) <= i <= j`` (the diagonal in
            column u). This is LAPACK's column-major upper band storage, and ``band.T`` is
            ``scipy.linalg.solveh_banded``'s ``ab``. Overwritten by the Cholesky factor.
        rhs: (k, n) C-contiguous, the same dtype: the k right-hand sides as rows.

    Returns:
        ``rhs``, holding the solutions (k, n).

    Raises:
        numpy.linalg.LinAlgError: ``A`` is not positive definite.
    """
    n, ld = band.shape
    if rhs.shape[1] != n or rhs.dtype != band.dtype:
        raise ValueError(f"rhs {rhs.shape} {rhs.dtype} does not fit band {band.shape} {band.dtype}")
    if not (band.flags.c_contiguous and rhs.flags.c_contiguous):
        raise ValueError("band and rhs must be C-contiguous")
    routines = _lapack(band.dtype) if n else None
    if routines is None:
        if n:
            rhs[:] = scipy.linalg.solveh_banded(band.T, rhs.T, check_finite=False).T
        return rhs
    trf, trs, real = routines
    n_, kd, ldab, nrhs, info = (ctypes.c_int(v) for v in (n, ld - 1, ld, rhs.shape[0], 0))
    ab, b = band.ctypes.data_as(real), rhs.ctypes.data_as(real)
    trf(b"U", ctypes.byref(n_), ctypes.byref(kd), ab, ctypes.byref(ldab), ctypes.byref(info))
    if info.value > 0:
        raise np.linalg.LinAlgError(f"{info.value}-th leading minor not positive definite")
    if info.value < 0:  # pragma: no cover - arguments are checked above
        raise ValueError(f"LAPACK pbtrf: illegal value in argument {-info.value}")
    args = (ctypes.byref(n_), ctypes.byref(kd), ctypes.byref(nrhs), ab, ctypes.byref(ldab))
    trs(b"U", *args, b, ctypes.byref(n_), ctypes.byref(info))
    if info.value < 0:  # pragma: no cover
        raise ValueError(f"LAPACK pbtrs: illegal value in argument {-info.value}")
    return rhs
