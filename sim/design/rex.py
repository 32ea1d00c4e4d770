"""REX: randomized exchange for the relaxed D-optimal design (Harman, Filova and Richtarik,
"A randomized exchange algorithm for computing optimal approximate designs of experiments",
JASA 115, 2020; the reference implementation is ``od_REX`` / ``od_D_REX`` of R's OptimalDesign).

Problem (as in :mod:`sim.design.relaxed`): pi on the simplex maximizing log det M(pi),
M(pi) = sum_i pi_i v_i v_i^T, with variances g_i = v_i^T M(pi)^{-1} v_i and the
Kiefer-Wolfowitz certificate d / max_i g_i as the stopping rule.

Every iteration of REX

1. computes all N variances g from a fresh Cholesky factor of M(pi) (O(N d^2)) and stops once
   d / max g >= ``efficiency``;
2. forms the *leading batch* B: the ``L = min(N, ceil(batch * d))`` rows with the largest g
   (the paper's gamma = 4), and takes the support S = {i : pi_i > 0};
3. makes the *leading boundary exchange* (LBE): moves the optimal mass from k = argmin_{S} g to
   l = argmax g (Boehning's vertex exchange);
4. visits all pairs (k, l) in S x B, both in a random order, and makes the optimal exchange of
   mass between them. For an exchange of mass alpha from k to l the determinant changes by

       det M' / det M = (1 + alpha g_l)(1 - alpha g_k) + alpha^2 g_kl^2,
       alpha* = (g_l - g_k) / (2 (g_k g_l - g_kl^2)),  clipped to [-pi_l, pi_k],

   with g_kl = v_k^T M^{-1} v_l at the current M. If the LBE emptied a support point (the
   paper's version 1, R's default), only the exchanges that empty a point are made in this pass;
   otherwise all of them.

M^{-1} is maintained through the exchanges by the rank-2 Woodbury formula (O(d^2) each, never
an explicit inverse of M beyond the one Cholesky solve per iteration) and refactorized from pi at
the next iteration, so rounding cannot accumulate across iterations.
"""

from __future__ import annotations

import math
import time

import numpy as np
import scipy.linalg
from threadpoolctl import threadpool_limits

from ..validation import as_rng, positive_scalar
from .common import DesignResult, chol, information_matrix, variances
from .relaxed import _check_relaxed, _finish, _start

NULL = 1e-14   # mass below this counts as removed (R's `del`)
_EPS = 1e-24   # keeps alpha's denominator away from 0 for parallel v_k, v_l (R's `eps`)


def exchange_step(gk: float, gl: float, gkl: float) -> float:
    """Unclipped optimal mass alpha* moved from k to l (module docstring), given the variances
    g_k, g_l and the cross term g_kl at the current M."""
    return 0.5 * (gl - gk) / (gk * gl - gkl * gkl + _EPS)


def rex_design(V, *, weights=None, efficiency: float = 1 - 1e-6, max_iter: int = 10_000,
               batch: float = 4.0, nullify: bool = True, seed=0, start: str = "greedy",
               pi0=None, max_seconds: float | None = None) -> DesignResult:
    """Relaxed D-optimal design by randomized exchange (REX; module docstring).

    Args:
        V: (N, d) candidate vectors spanning R^d. weights: None or (N,) >= 0 (the design uses
            sqrt(w_i) v_i).
        efficiency: stop once the Kiefer-Wolfowitz bound d / max_i g_i over all N rows reaches
            it, in (0, 1).
        max_iter: cap on REX iterations (converged=False if hit).
        batch: leading-batch factor: L = min(N, ceil(batch * d)) rows (the paper's gamma = 4).
        nullify: the paper's version 1 (after a nullifying LBE, only nullifying exchanges).
        seed: int or numpy Generator for the random visiting orders.
        start: "greedy" (uniform on the greedy design of d rows) or "uniform"; pi0: (N,)
            explicit start (overrides ``start``).
        max_seconds: stop (converged=False) once past this wall time, as R's ``t.max`` (checked
            between iterations and between the leading-batch rows of a pass; the certificate is
            that of the design reached); None: no limit.

    Returns:
        DesignResult(solver="rex") with ``pi`` (N,), ``logdet`` = log det M(pi),
        ``efficiency`` (certificate over all N rows), ``support``, ``iterations``; ``info``
        counts the exchanges made and the leading-batch size.
    """
    t0 = time.perf_counter()
    V, target, max_iter = _check_relaxed(V, weights, efficiency, max_iter)
    N, d = V.shape
    batch = positive_scalar(batch, "batch")
    if max_seconds is not None:
        positive_scalar(max_seconds, "max_seconds")
    rng = as_rng(seed)
    pi = _start(V, start, pi0)
    L = min(N, int(math.ceil(batch * d)))
    info = {"batch": L, "exchanges": 0, "refused": 0, "nullify": bool(nullify)}
    it, ok = 0, False
    while True:
        Lc = chol(information_matrix(V, pi), "M(pi)")
        g = variances(V, Lc)
        if d / float(g.max()) >= target:
            ok = True
            break
        if it >= max_iter or (max_seconds is not None
                               and time.perf_counter() - t0 > max_seconds):
            break
        it += 1
        Minv = scipy.linalg.cho_solve((Lc, True), np.eye(d), check_finite=False)
        supp = np.flatnonzero(pi > 0)
        lead = np.argpartition(-g, L - 1)[:L] if L < N else np.arange(N)
        k0 = int(supp[np.argmin(g[supp])])
        l0 = int(np.argmax(g))
        Minv, nulled = _exchange(V, pi, Minv, k0, l0, only_nullifying=False, info=info)
        only_null = nullify and nulled
        # Each exchange is a few O(d^2) products: BLAS threads cost more to wake than they save.
        with threadpool_limits(limits=1, user_api="blas"):
            for lx in rng.permutation(lead).tolist():
                if max_seconds is not None and time.perf_counter() - t0 > max_seconds:
                    break  # out of time within a pass (one pass at d = 256 can take minutes)
                for kx in rng.permutation(supp).tolist():
                    if kx == lx or (pi[kx] <= 0 and pi[lx] <= 0):
                        continue
                    Minv, _ = _exchange(V, pi, Minv, kx, lx, only_nullifying=only_null,
                                        info=info)
        pi[pi < NULL] = 0.0
        pi /= pi.sum()
    return _finish("rex", V, pi, it, t0, ok, info)


def _exchange(V, pi, Minv, k, l, *, only_nullifying, info):
    """Optimal exchange of mass from row k to row l, in place on ``pi`` and ``Minv``; returns
    (M'^{-1}, whether k or l was emptied). The optimal clipped step never lowers det M (the
    ratio is a concave quadratic in alpha equal to 1 at alpha = 0), so an exchange whose ratio
    is <= 1e-10 (possible only through rounding) is refused and counted in ``info['refused']``.

    Each exchange is O(d^2) in six numpy calls (per-call overhead, not flops, is what costs at
    d <= 256): U = B M^{-1} for B = [v_k; v_l] (2, d), the 2 x 2 products C = U B^T, and one
    (d, 2) x (2, d) product for the rank-2 Woodbury update.
    """
    B = V[[k, l]]                                # (2, d): v_k, v_l
    U = B @ Minv                                 # (2, d): u_k = M^{-1} v_k, u_l (M symmetric)
    (gk, gkl), (_, gl) = (U @ B.T).tolist()
    a = exchange_step(gk, gl, gkl)
    a = min(pi[k], max(-pi[l], a))
    if a == 0.0:
        return Minv, False
    pk, pl = pi[k] - a, pi[l] + a
    emptied = pk < NULL or pl < NULL
    if only_nullifying and not emptied:
        return Minv, False
    # M' = M + a (v_l v_l^T - v_k v_k^T) = M + B^T D B, D = diag(-a, a).
    # Woodbury: M'^{-1} = M^{-1} - U^T (I + D C)^{-1} D U with C = B M^{-1} B^T.
    t11, t12 = 1.0 - a * gk, -a * gkl
    t21, t22 = a * gkl, 1.0 + a * gl
    det = t11 * t22 - t12 * t21                  # = det M' / det M
    if not det > 1e-10:
        info["refused"] += 1
        return Minv, False
    pi[k], pi[l] = pk, pl
    info["exchanges"] += 1
    c = a / det                                  # (I + D C)^{-1} D = c [[-t22, -t12], [t21, t11]]
    Minv -= U.T @ (np.array([[-c * t22, -c * t12], [c * t21, c * t11]]) @ U)
    return Minv, emptied
