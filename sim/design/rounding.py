"""From a relaxed design pi to n labels, and local improvement of any n-subset.

* :func:`efficient_rounding` -- Pukelsheim and Rieder (1992) apportionment of n runs to the
  support of pi (multiplicities; the classical "efficient rounding", whose D-efficiency loss is
  bounded in terms of the support size over n).
* :func:`round_design` -- n *distinct* rows (each pair is labelled at most once, paper sec. 1.2):
  the rows that efficient rounding gives at least one run, then, if fewer than n, greedy picks
  conditioned on them (INFERRED: the paper does not round; this is our choice), optionally
  polished by :func:`exchange`.
* :func:`sample_design` -- n i.i.d. draws from pi, with replacement as in Dope (Mukherjee et al.
  2024), or successive sampling without replacement.
* :func:`exchange` -- Fedorov's exchange: swap a chosen row for an unchosen one whenever that
  raises log det(gamma I + sum_S v v^T); stops at a local optimum (no improving swap).
"""

from __future__ import annotations

import math
import time

import numpy as np
from numpy.typing import ArrayLike

from ..data import check_indices
from ..linalg import inv_from_chol
from ..validation import Seed, as_rng, positive_int
from .common import (DesignResult, check_gamma, check_pi, chol, design_vectors, subset_logdet,
                     variances)


def efficient_rounding(pi: ArrayLike, n: int) -> np.ndarray:
    """Pukelsheim-Rieder efficient rounding: integer counts (N,) summing to n.

    With k = #support, start from ceil((n - k/2) pi_i) on the support, then repeatedly add a run
    where n_i / pi_i is smallest or remove one where (n_i - 1) / pi_i is largest until sum = n.
    Rows outside the support of pi get 0.
    """
    n = positive_int(n, "n")
    p = np.asarray(pi, dtype=np.float64)
    p = check_pi(p, p.shape[0] if p.ndim == 1 else -1)
    sup = np.flatnonzero(p > 0)
    k = sup.size
    counts = np.zeros(p.size, dtype=np.int64)
    counts[sup] = np.ceil(np.maximum(n - k / 2.0, 0.0) * p[sup]).astype(np.int64)
    ps = p[sup]
    with np.errstate(over="ignore", divide="ignore"):  # pi_i ~ 1e-300: ratio inf is right
        while counts.sum() < n:
            j = sup[int(np.argmin(counts[sup] / ps))]
            counts[j] += 1
        while counts.sum() > n:
            j = sup[int(np.argmax((counts[sup] - 1) / ps))]
            counts[j] -= 1
    return counts


def round_design(V: ArrayLike, pi: ArrayLike, n: int, *, gamma: float = 1.0,
                 weights: ArrayLike | None = None,
                 improve: bool = True) -> DesignResult:
    """n distinct rows from a relaxed design pi (module docstring), scored by
    log det(gamma I + sum_S v v^T). Returns indices ordered: rounded support by decreasing pi,
    then greedy fill-ins; ``improve`` runs :func:`exchange` afterwards."""
    t0 = time.perf_counter()
    Vd = design_vectors(V, weights)
    N = Vd.shape[0]
    n = positive_int(n, "n")
    if n > N:
        raise ValueError(f"n: cannot choose {n} distinct rows from N = {N}")
    p = check_pi(pi, N)
    gamma = check_gamma(gamma, allow_zero=False)
    counts = efficient_rounding(p, n)
    base = np.flatnonzero(counts > 0)
    base = base[np.argsort(-p[base], kind="stable")]
    idx = base
    if base.size < n:
        from .greedy import greedy_select
        fill = greedy_select(Vd, n - base.size, gamma=gamma, initial=base).indices
        idx = np.concatenate([base, fill])
    info = {"rounded_support": int(base.size), "filled": int(n - base.size)}
    if improve:
        res = exchange(Vd, idx, gamma=gamma)
        info["swaps"] = res.info["swaps"]
        idx = res.picks()
    return DesignResult(solver="round", indices=idx, logdet=subset_logdet(Vd, idx, gamma),
                        support=int(idx.size), seconds=time.perf_counter() - t0, info=info)


def sample_design(pi: ArrayLike, n: int, seed: Seed, *, replace: bool = True,
                  V: ArrayLike | None = None, gamma: float = 1.0,
                  weights: ArrayLike | None = None) -> DesignResult:
    """n draws from pi: i.i.d. with replacement (Dope) or successive sampling without replacement
    (needs n <= #support). If V is given, logdet = log det(gamma I + sum over draws, repeats
    counted)."""
    t0 = time.perf_counter()
    rng = as_rng(seed)
    p = np.asarray(pi, dtype=np.float64)
    p = check_pi(p, p.shape[0] if p.ndim == 1 else -1)
    n = positive_int(n, "n")
    if not replace and n > int((p > 0).sum()):
        raise ValueError(f"n: {n} distinct draws need at least {n} rows in the support of pi "
                         f"(has {int((p > 0).sum())}); use replace=True or round_design")
    idx = rng.choice(p.size, size=n, replace=replace, p=p)
    logdet = float("nan")
    if V is not None:
        Vd = design_vectors(V, weights)
        if Vd.shape[0] != p.size:
            raise ValueError(f"V: has {Vd.shape[0]} rows but pi has {p.size} entries")
        g = check_gamma(gamma, allow_zero=True)
        logdet = subset_logdet(Vd, idx, g)
    return DesignResult(solver="sample", indices=idx.astype(np.int64), logdet=logdet,
                        support=int(np.unique(idx).size), seconds=time.perf_counter() - t0,
                        info={"replace": bool(replace)})


def exchange(V: ArrayLike, indices: ArrayLike, *, gamma: float = 1.0,
             weights: ArrayLike | None = None, max_passes: int = 50,
             tol: float = 1e-10) -> DesignResult:
    """Fedorov exchange on an n-subset S: improve log det(gamma I + sum_S v v^T) by swaps.

    For each chosen row i (in order), with H^{-1} and the scores s_j = v_j^T H^{-1} v_j:
    removing i gives s_j' = s_j + (u_i^T v_j)^2 / (1 - s_i), u_i = H^{-1} v_i (Sherman-Morrison),
    and swapping i for j changes log det by log(1 - s_i) + log(1 + s_j'). The best j is taken if
    the change exceeds ``tol``. A pass costs O(n N d); passes repeat until none improves.
    gamma = 0 is allowed if the starting design is non-singular (swaps that would make it
    singular are never improving).
    """
    t0 = time.perf_counter()
    Vd = design_vectors(V, weights)
    N, d = Vd.shape
    S = check_indices(indices, N, "indices").copy()
    if S.size == 0:
        raise ValueError("indices: the design to improve is empty")
    gamma = check_gamma(gamma, allow_zero=True)
    max_passes = positive_int(max_passes, "max_passes")
    start = subset_logdet(Vd, S, gamma)
    if not math.isfinite(start):
        raise ValueError("indices: gamma I + sum of the chosen v v^T is singular; use gamma > 0 "
                         "or a design spanning R^d")
    inside = np.zeros(N, dtype=bool)
    inside[S] = True
    swaps, passes, converged = 0, 0, False
    for passes in range(1, max_passes + 1):
        improved = False
        # Fresh factorisation each pass: bounded rounding from the rank-one updates below.
        H = gamma * np.eye(d) + Vd[S].T @ Vd[S]
        L = chol(H, "gamma I + sum_S v v^T")
        s = variances(Vd, L)
        Hinv = inv_from_chol(L)
        for pos in range(S.size):
            i = int(S[pos])
            si = s[i]
            if not 1.0 - si > 1e-12:
                continue
            u = Hinv @ Vd[i]
            c = Vd @ u
            s_minus = s + c * c / (1.0 - si)
            cand = np.where(inside, -np.inf, s_minus)
            j = int(np.argmax(cand))
            if not np.isfinite(cand[j]):
                continue
            delta = math.log(1.0 - si) + math.log1p(cand[j])
            if delta <= tol:
                continue
            # Apply: H^{-1} <- (H - v_i v_i^T)^{-1}, then (. + v_j v_j^T)^{-1}, with the scores.
            Hinv = Hinv + np.outer(u, u) / (1.0 - si)
            s = s_minus
            u2 = Hinv @ Vd[j]
            c2 = Vd @ u2
            Hinv = Hinv - np.outer(u2, u2) / (1.0 + s[j])
            s = s - c2 * c2 / (1.0 + s[j])
            inside[i], inside[j] = False, True
            S[pos] = j
            swaps += 1
            improved = True
        if not improved:
            converged = True
            break
    return DesignResult(solver="exchange", indices=S, logdet=subset_logdet(Vd, S, gamma),
                        support=int(S.size), iterations=passes,
                        seconds=time.perf_counter() - t0, converged=converged,
                        info={"swaps": swaps, "start_logdet": start})
