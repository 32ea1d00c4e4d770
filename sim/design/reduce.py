"""Dimension reduction before greedy selection, with its cost measured in the original space.

For d >= 1000 (LLM features) the greedy's O(N d) per pick can be cut by selecting on projected
rows V R (N, k), k << d:

* ``gaussian``: R (d, k) with i.i.d. N(0, 1/k) entries (Johnson-Lindenstrauss; seeded), so
  E ||R^T v||^2 = ||v||^2;
* ``srht``: the subsampled randomized Hadamard transform (Ailon and Chazelle 2006; Tropp 2011):
  R = sqrt(p / k) D H_p P, with p = d rounded up to a power of 2 (rows of V padded with zeros),
  D a random +-1 diagonal (p x p), H_p the orthonormal Walsh-Hadamard matrix (H_p H_p^T = I) and
  P (p x k) k distinct coordinates drawn uniformly; again E ||R^T v||^2 = ||v||^2. D H_p is
  orthogonal; applied by the fast transform :func:`fwht` (O(p log p) per row);
* ``pca``: R = the top-k right singular vectors of V (randomized SVD of scikit-learn, seeded);
  exact when k >= rank V.

:func:`reduced_greedy` selects on V R and reports what matters: the log det of the chosen set in
the ORIGINAL space, log det(gamma I_d + sum_S v v^T), its ratio to the exact greedy's, and the
pick overlap |S_reduced & S_exact| / n.
"""

from __future__ import annotations

import time

import numpy as np
from numpy.typing import ArrayLike

from ..validation import Seed, as_rng, positive_int
from .common import DesignResult, design_vectors, subset_logdet

METHODS = ("gaussian", "srht", "pca")


def fwht(X: np.ndarray) -> np.ndarray:
    """Orthonormal fast Walsh-Hadamard transform of the rows of X (m, p), p a power of 2:
    returns X H_p with H_p = H_2^{(x) log2 p} / sqrt(p) (Sylvester order, symmetric, orthogonal),
    in O(m p log p)."""
    Y = np.array(X, dtype=np.float64, copy=True)
    m, p = Y.shape
    if p & (p - 1):
        raise ValueError(f"X: the number of columns must be a power of 2, got {p}")
    h = 1
    while h < p:
        Z = Y.reshape(m, p // (2 * h), 2, h)
        a, b = Z[:, :, 0, :].copy(), Z[:, :, 1, :]
        Z[:, :, 0, :] += b
        Z[:, :, 1, :] = a - b
        h *= 2
    return Y / np.sqrt(p)


def srht_transform(d: int, seed: Seed = 0) -> tuple[np.ndarray, int]:
    """(D H_p restricted to its first d rows (d, p), p): the orthogonal part of the SRHT."""
    p = 1 << max(0, int(d - 1).bit_length())
    signs = as_rng(seed).choice([-1.0, 1.0], size=p)
    return fwht(np.diag(signs))[:d], p


def projection(V: np.ndarray, k: int, method: str = "gaussian", seed: Seed = 0) -> np.ndarray:
    """The (d, k) projection matrix R of ``method`` for rows V (N, d) (module docstring)."""
    N, d = V.shape
    k = positive_int(k, "k")
    if k > d:
        raise ValueError(f"k: the reduced dimension must be <= d = {d}, got {k}")
    rng = as_rng(seed)
    if method == "gaussian":
        return rng.standard_normal((d, k)) / np.sqrt(k)
    if method == "srht":
        T, p = srht_transform(d, rng)
        cols = np.sort(rng.choice(p, size=k, replace=False))
        return T[:, cols] * np.sqrt(p / k)
    if method == "pca":
        from sklearn.utils.extmath import randomized_svd
        _, _, Vt = randomized_svd(V, k, random_state=int(rng.integers(2**31)))
        return Vt.T
    raise ValueError(f"method: one of {', '.join(METHODS)}, got {method!r}")


def reduced_greedy(V: ArrayLike, n: int, k: int, *, method: str = "gaussian",
                   gamma: float = 1.0, weights: ArrayLike | None = None, seed: Seed = 0,
                   exact: DesignResult | None = None) -> DesignResult:
    """Greedy on the projected rows V R, scored in the original space.

    Args:
        V: (N, d). n: picks. k: reduced dimension. method: "gaussian", "srht" or "pca". gamma: ridge
        (the same in both spaces). weights: None or (N,). seed: the projection.
        exact: the exact greedy's result on V, if already computed (else computed here).

    Returns:
        DesignResult(solver="greedy-reduced") with the picks, ``logdet`` in the original space,
        and ``info``: k, method, reduced_logdet, exact_logdet, logdet_ratio, overlap, seconds of
        the reduced selection and of the exact one.
    """
    from .greedy import greedy_select
    if exact is not None:
        exact.picks("exact")
    t0 = time.perf_counter()
    Vd = design_vectors(V, weights)
    R = projection(Vd, k, method, seed)
    red = greedy_select(Vd @ R, n, gamma=gamma)
    t_red = time.perf_counter() - t0
    if exact is None:
        exact = greedy_select(Vd, n, gamma=gamma)
    picks = red.picks()
    ld = subset_logdet(Vd, picks, gamma)
    overlap = len(set(picks.tolist()) & set(exact.picks("exact").tolist())) / n
    return DesignResult(solver="greedy-reduced", indices=picks, logdet=ld, support=n,
                        iterations=n, seconds=t_red,
                        info={"k": int(R.shape[1]), "method": method,
                              "reduced_logdet": red.logdet, "exact_logdet": exact.logdet,
                              "logdet_ratio": ld / exact.logdet, "overlap": overlap,
                              "exact_seconds": exact.seconds})
