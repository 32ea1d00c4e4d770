"""Exact integer D-optimal designs by exhaustive search, for tiny instances (tests, teaching).

Maximizes log det(gamma I + sum_{i in S} v_i v_i^T) over all C(N, n) subsets S of n distinct
rows. Subsets are enumerated in lexicographic order in chunks; each chunk's (chunk, d, d)
matrices are built and passed to a batched slogdet, so memory is chunk * d^2 (the instances are
tiny by contract: at most ``max_subsets`` subsets).
"""

from __future__ import annotations

from numpy.typing import ArrayLike

import itertools
import math
import time

import numpy as np

from ..validation import positive_int
from .common import DesignResult, check_gamma, design_vectors, require_full_rank

_CHUNK = 4096


def brute_force_design(V: ArrayLike, n: int, *, gamma: float = 1.0,
                       weights: ArrayLike | None = None,
                       max_subsets: int = 200_000) -> DesignResult:
    """The best n-subset by exhaustive search (ties: the lexicographically first subset).

    Args:
        V: (N, d). n: subset size. gamma: ridge (>= 0; with gamma = 0 a subset must span R^d).
        max_subsets: refuse (ValueError) when C(N, n) is larger.

    Returns:
        DesignResult with sorted ``indices`` (n,), ``logdet``, and ``info['subsets']`` and
        ``info['second_best']`` (the gap tells how unique the optimum is).
    """
    t0 = time.perf_counter()
    Vd = design_vectors(V, weights)
    N, d = Vd.shape
    n = positive_int(n, "n")
    gamma = check_gamma(gamma, allow_zero=True)
    if n > N:
        raise ValueError(f"n: cannot choose {n} distinct rows from N = {N}")
    if gamma == 0:
        # Without a ridge a subset must span R^d; rounding would hide exact singularity
        # (slogdet returns ~ -70 instead of -inf), so decide it by rank up front.
        if n < d:
            raise ValueError(f"n: {n} rows cannot span d = {d} dimensions, so every subset is "
                             f"singular with gamma = 0; use gamma > 0 or n >= d")
        require_full_rank(Vd, "every subset's information matrix")
    total = math.comb(N, n)
    if total > positive_int(max_subsets, "max_subsets"):
        raise ValueError(f"n: C({N}, {n}) = {total} subsets exceed max_subsets = {max_subsets}; "
                         f"exhaustive search is for tiny instances (use greedy or exchange)")
    best, second, best_S = -np.inf, -np.inf, None
    combos = itertools.combinations(range(N), n)
    eye = gamma * np.eye(d)
    while True:
        chunk = np.array(list(itertools.islice(combos, _CHUNK)), dtype=np.int64)
        if chunk.size == 0:
            break
        X = Vd[chunk]                                   # (c, n, d)
        H = eye + np.einsum("cni,cnj->cij", X, X)
        sign, ld = np.linalg.slogdet(H)
        ld = np.where(sign > 0, ld, -np.inf)
        order = np.argsort(-ld, kind="stable")[:2]
        for j in order:
            if ld[j] > best:
                best, second, best_S = float(ld[j]), best, chunk[j]
            elif ld[j] > second:
                second = float(ld[j])
    if not np.isfinite(best):
        raise ValueError(f"V: every {n}-subset gives a singular gamma I + sum v v^T (gamma = 0 "
                         f"and the rows, or n < d = {d}, cannot span R^d); use gamma > 0")
    return DesignResult(solver="brute", indices=np.asarray(best_S, dtype=np.int64),
                        logdet=best, support=n, iterations=total,
                        seconds=time.perf_counter() - t0,
                        info={"subsets": total, "second_best": second})
