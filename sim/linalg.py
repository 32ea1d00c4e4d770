"""The linear algebra every design and selector shares: Cholesky factors and what follows.

One place for the operations the greedy engines (:mod:`sim.design.greedy`,
:mod:`sim.design.incremental`), the relaxed and exchange designs and the selectors' UCB widths
(eq. 13) need. Never an explicit ``inv``: everything goes through a lower Cholesky factor L of a
symmetric positive definite H (d, d), H = L L^T.

* :func:`cholesky`          L, or a one-line ``ValueError`` when H is not positive definite
* :func:`logdet_chol`       log det H = 2 sum log diag L
* :func:`chol_quad_forms`   x_i^T H^{-1} x_i = ||L^{-1} x_i||^2 for the rows of X (blocked)
* :func:`inv_from_chol`     H^{-1} = L^{-T} L^{-1} (for the O(d^2) rank-one updates that keep it)
* :func:`rank_one_update`   (H + s v v^T)^{-1} from H^{-1} by Sherman-Morrison (s = +1 or -1)
* :func:`subset_logdet`     log det(gamma I + sum_{i in S} v_i v_i^T)
* :func:`weighted_gram`     sum_i w_i phi_i phi_i^T by a blocked symmetric rank-k BLAS update

This module is at the bottom of the layers: it imports numpy and scipy only.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.linalg
from numpy.typing import ArrayLike, DTypeLike

BLOCK_ROWS = 8192  # rows per chunk of a pass over N rows: bounds the temporary to (8192, d)


def cholesky(H: np.ndarray, what: str = "H") -> np.ndarray:
    """Lower Cholesky factor L (d, d) of a symmetric positive definite H (d, d).

    Raises ``ValueError`` naming ``what`` when H is singular or indefinite.
    """
    try:
        return scipy.linalg.cholesky(H, lower=True, check_finite=False)
    except np.linalg.LinAlgError:
        raise ValueError(f"V: the information matrix {what} is singular (rank-deficient "
                         f"candidates or design); use gamma > 0 or full-rank candidates") from None


def logdet_chol(L: np.ndarray) -> float:
    """log det(L L^T) from the lower Cholesky factor L (d, d)."""
    return 2.0 * float(np.log(np.diag(L)).sum())


def chol_quad_forms(X: np.ndarray, L: np.ndarray, rows: Any = None) -> np.ndarray:
    """x_i^T (L L^T)^{-1} x_i = ||L^{-1} x_i||^2 for each row of X (of ``rows`` if given).

    X: (m, d) (or (d,), read as one row); returns (m,). Blocked triangular solves: never an
    explicit inverse, never more than a (BLOCK_ROWS, d) temporary.
    """
    X = np.atleast_2d(X)
    if rows is not None:
        X = X[rows]
    out = np.empty(X.shape[0])
    for lo in range(0, X.shape[0], BLOCK_ROWS):
        Z = scipy.linalg.solve_triangular(L, X[lo:lo + BLOCK_ROWS].T, lower=True,
                                          check_finite=False)
        out[lo:lo + BLOCK_ROWS] = np.einsum("ij,ij->j", Z, Z)
    return out


def inv_from_chol(L: np.ndarray) -> np.ndarray:
    """H^{-1} (d, d) for H = L L^T, by one triangular inversion, exactly symmetric.

    For the algorithms that keep H^{-1} through O(d^2) rank-one updates (greedy, exchange,
    Frank-Wolfe); a refresh from a Cholesky factor resets their rounding drift.
    """
    Linv = scipy.linalg.solve_triangular(L, np.eye(L.shape[0]), lower=True, check_finite=False)
    Hinv = Linv.T @ Linv
    return (Hinv + Hinv.T) / 2


def rank_one_update(H_inv: np.ndarray, v: np.ndarray, sign: float = 1.0
                    ) -> tuple[np.ndarray, np.ndarray, float]:
    """Sherman-Morrison: (H + sign v v^T)^{-1} = H^{-1} - sign u u^T / (1 + sign v^T u).

    H_inv: (d, d); v: (d,); sign: +1 (add v) or -1 (remove v, needs v^T H^{-1} v < 1).
    Returns (the new inverse (d, d), u = H^{-1} v (d,), 1 + sign v^T H^{-1} v), the last being
    det(H + sign v v^T) / det H (matrix determinant lemma).
    """
    u = H_inv @ v
    r = 1.0 + sign * float(v @ u)
    return H_inv - sign * np.outer(u, u) / r, u, r


def subset_logdet(V: np.ndarray, idx: ArrayLike, gamma: float) -> float:
    """log det(gamma I + sum_{i in idx} v_i v_i^T) (-inf if singular); V (N, d), idx (n,).

    The Gram matrix is formed by a symmetric rank-k BLAS update, then one Cholesky factor.
    """
    idx = np.asarray(idx, dtype=np.int64)
    d = V.shape[1]
    H = gamma * np.eye(d)
    if idx.size:
        H += weighted_gram(V[idx], np.ones(idx.size))
    sign, ld = np.linalg.slogdet(H)
    return float(ld) if sign > 0 else float("-inf")


def weighted_gram(phi: np.ndarray, w: np.ndarray, dtype: DTypeLike | None = None,
                  block: int = 4096) -> np.ndarray:
    """sum_i w_i phi_i phi_i^T for phi (n, d), w (n,) >= 0, as a symmetric rank-k BLAS update.

    Rows are processed in blocks through one reused buffer (in ``dtype``, default phi's): an
    N x d temporary would cost more in page faults than the arithmetic on these machines.
    Returns a float64 (d, d) array.
    """
    n, d = phi.shape
    dtype = np.dtype(phi.dtype if dtype is None else dtype)
    syrk = scipy.linalg.blas.ssyrk if dtype == np.float32 else scipy.linalg.blas.dsyrk
    sw = np.sqrt(w)
    buf = np.empty((min(block, n), d), dtype=dtype)
    c = np.zeros((d, d), dtype=dtype, order="F")
    for lo in range(0, n, block):
        k = min(block, n - lo)
        np.multiply(phi[lo:lo + k], sw[lo:lo + k, None], out=buf[:k], casting="same_kind")
        # buf[:k].T is Fortran-ordered, so BLAS reads it in place (trans=1 would copy).
        c = syrk(1.0, buf[:k].T, beta=1.0, c=c, trans=0, lower=1, overwrite_c=1)
    c = np.asarray(c, dtype=np.float64)
    return np.tril(c) + np.tril(c, -1).T
