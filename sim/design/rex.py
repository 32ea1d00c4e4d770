"""REX: randomized exchange for the relaxed D-optimal design (Harman, Filova and Richtarik,
"A randomized exchange algorithm for computing optimal approximate designs of experiments",
JASA 115, 2020; the reference implementation is ``od_REX`` / ``od_D_REX`` of R's OptimalDesign,
whose loop this module follows step by step; the differences are listed below).

Problem (as in :mod:`sim.design.relaxed`): pi on the simplex maximizing log det M(pi),
M(pi) = sum_i pi_i v_i v_i^T, with variances g_i = v_i^T M(pi)^{-1} v_i and the
Kiefer-Wolfowitz certificate d / max_i g_i as the stopping rule.

Every iteration of REX

1. computes all N variances g from a fresh Cholesky factor of M(pi) (O(N d^2)) and stops once
   d / max g >= ``efficiency``;
2. forms the *leading batch* B: the L rows with the largest g (R: ``L = min(N, gamma d)``,
   gamma = 4; here ``batch=4``; the default ``batch="auto"`` chooses L per iteration, below),
   the support S = {i : pi_i > 0}, and one random order of each (R's ``lx.vec`` and
   ``kx.vec``, drawn once per iteration);
3. makes the *leading boundary exchange* (LBE): moves the optimal mass from k = argmin_S g to
   l = argmax g (Boehning's vertex exchange);
4. for each l of B in its order, for each k of S in its order, makes the optimal exchange of
   mass between k and l. For an exchange of mass alpha from k to l the determinant changes by

       det M' / det M = (1 + alpha g_l)(1 - alpha g_k) + alpha^2 g_kl^2,
       alpha* = (g_l - g_k) / (2 (g_k g_l - g_kl^2)),  clipped to [-pi_l, pi_k],

   with g_kl = v_k^T M^{-1} v_l at the current M. If the LBE emptied k (the paper's version 1,
   R's default), only the exchanges that empty a point are made in this pass; otherwise all.

How the exchanges are computed (the same arithmetic as R's, which solves with M afresh for every
pair, O(d^3) each): the pairs (k, l) of one l are taken in blocks of ``BLOCK`` support rows.
At the start of a block, one Cholesky factor C of the current M gives Y = C^{-1} [v_k..., v_l]
(d x m, m = block + 1) and the Gram matrix G = Y^T Y of the block's rows (G_ij = v_i^T M^{-1}
v_j, lower triangle); each accepted exchange updates G by the rank-2 Woodbury formula (O(m^2),
no d), and at the end of the block M gains sum_i D_i v_i v_i^T for the mass D_i each row gained
(two rank-k updates of M's lower triangle). So a pair costs O(d^2) flops inside level-3 calls
(per block: a Cholesky, d^3 / 3; a triangular solve, m d^2; the update of M, d^2 per row moved;
G, m^2 d / 2) and each accepted exchange one rank-2 update of the rest of the block's G. While M
does not change (most of a pass that makes only nullifying exchanges), a block's Y and Gram are
kept and only l's column is new. No inverse of M is formed, and M is rebuilt from pi at every
iteration, so rounding cannot accumulate across iterations. The leading batch is sorted before
it is permuted, so that its order does not depend on how rounding orders near-equal variances.

The loop over one block's pairs (:func:`_block_kernel`) is written in the subset of Python that
numba compiles: with the extra ``fast`` (numba) installed it runs as machine code, otherwise the
same source runs in Python with the same results (the tests run both against a literal port of
R's loop), much more slowly (N = 2000, d = 32 to 1 - 1e-6: 60-66 s CPU against 0.8-1.1 s,
loaded). Profile at N = 1e4, d = 128, a late pass (512 leading rows x 1,100-1,600 support rows,
0.55-0.8M exchanges): with the loop in Python (numpy per exchange), 14 of the pass's 17.5 s were
the loop, 25 us per exchange; compiled, 1.7 us CPU per exchange, and the pass is bound by the
blocks' level-3 products (about 8.5 of 10 s CPU, loaded).

Differences from R's ``od_D_REX`` (kept on purpose):

* the leading batch's size, by default (``batch="auto"``, :func:`leading_batch`):
  L = min(4 d, max(ceil(d / 2), ceil(N / K))) rows for the K support rows of the iteration.
  R's L = 4 d (``batch=4``: R's iteration, which the tests match step by step) makes a pass
  cost L K exchanges of O(d^2) flops each, against the O(N d^2) variance scan that starts the
  iteration; where the D-optimal support is large (V ~ N(0, I) at bench_relaxed's sizes:
  K = 6 d to 17 d) the exchanges dominate, and a smaller batch with more, cheaper passes
  reaches the certificate sooner. "auto" keeps R's 4 d while the pass's L K exchanges number
  at most N, and goes down to d / 2 rows as K grows. Measured on bench_relaxed's instances
  (one BLAS thread, load 1.0-2.9, to 1 - 1e-6, time / passes): N = 1e4, d = 128: gamma 4:
  45.8 s / 13, 2: 35.2 s / 17, 1: 24.7 s / 24, 0.5: 19.9 s / 37, 0.25: 17.3 s / 64;
  N = 1e4, d = 256: gamma 4: not converged after 420 s (10 passes, 1 - 1.1e-4), 2: 400 s /
  20, 1: 314 s / 28, 0.5: 251 s / 44; N = 1e5, d = 128: gamma 4: 91.9 s / 17, 0.5: 43.5 s /
  51; but N = 1e6, d = 32 (K = 308, where the N-row scan dominates): gamma 4: 7.6 s / 18,
  0.5: 13.6 s / 39, hence the N / K term;
* the start: the greedy design of d rows (as :func:`sim.design.relaxed.fw_design`), or
  ``pi0``; R starts from ``od_PIN``;
* the stopping rule is checked before each iteration (a start that already meets the target
  makes no exchange; R always makes one pass), and ``max_seconds`` is also checked between the
  leading-batch rows of a pass (R's ``t.max`` only between passes: one pass at d = 256 takes
  seconds to minutes);
* after a pass, weights below ``NULL`` are set to 0 and pi renormalized, and M is rebuilt from
  pi (R keeps such weights in w and M, outside the support, and updates M additively forever);
* the leading batch is exactly L rows (R's takes every row tied with the L-th variance);
* an exchange whose determinant ratio is <= 1e-10 (possible only through rounding: the optimal
  clipped step never lowers det M) is refused and counted in ``info['refused']``.
"""

from __future__ import annotations

import importlib.util
import math
import time
from typing import Any

import numpy as np
from scipy.linalg import blas, lapack
from numpy.typing import ArrayLike
from threadpoolctl import threadpool_limits

from ..validation import as_rng, positive_scalar
from .common import DesignResult, chol, information_matrix, variances
from .relaxed import _check_relaxed, _finish, _start

NULL = 1e-14   # mass below this counts as removed (R's `del`)
_EPS = 1e-24   # keeps alpha's denominator away from 0 for parallel v_k, v_l (R's `eps`)
BLOCK = 64     # support rows per block of exchanges with one l (module docstring)


# Whether REX's exchange kernel runs compiled: numba (the extra ``fast``) is imported and the
# kernel compiled at the first exchange (importing numba takes ~0.5 s: not at ``import sim``).
COMPILED = importlib.util.find_spec("numba") is not None
_KERNEL: Any = None             # the kernel in use (_kernel); tests may set the Python one


def exchange_step(gk: float, gl: float, gkl: float) -> float:
    """Unclipped optimal mass alpha* moved from k to l (module docstring), given the variances
    g_k, g_l and the cross term g_kl at the current M."""
    return 0.5 * (gl - gk) / (gk * gl - gkl * gkl + _EPS)


def _kernel() -> Any:
    """:func:`_block_kernel` compiled by numba (nopython), with :func:`exchange_step`, at the
    first call when numba is importable, else the function itself: one source either way (the
    compiled one's ``.py_func``). The machine code is cached in ``__pycache__`` beside this
    module, or in numba's user-wide cache when the tree is read-only; with neither writable it
    is compiled afresh in each process."""
    global _KERNEL, exchange_step
    if _KERNEL is None:
        if not COMPILED:
            _KERNEL = _block_kernel
        else:
            from numba import njit

            def jit(fn: Any) -> Any:
                try:
                    return njit(cache=True)(fn)
                except RuntimeError:    # numba: "cannot cache function ...: no locator"
                    return njit(fn)
            exchange_step = jit(exchange_step)      # the kernel calls it: compiled first
            _KERNEL = jit(_block_kernel)
    return _KERNEL


def rex_design(V: ArrayLike, *, weights: ArrayLike | None = None,
               efficiency: float = 1 - 1e-6, max_iter: int = 10_000, batch: float | str = "auto",
               nullify: bool = True, seed: Any = 0, start: str = "greedy",
               pi0: ArrayLike | None = None, max_seconds: float | None = None) -> DesignResult:
    """Relaxed D-optimal design by randomized exchange (REX; module docstring).

    Args:
        V: (N, d) candidate vectors spanning R^d. weights: None or (N,) >= 0 (the design uses
            sqrt(w_i) v_i).
        efficiency: stop once the Kiefer-Wolfowitz bound d / max_i g_i over all N rows reaches
            it, in (0, 1).
        max_iter: cap on REX iterations (converged=False if hit).
        batch: the leading batch's size L (module docstring): a number gamma > 0 gives R's
            L = min(N, ceil(gamma * d)) (R's default gamma = 4: ``batch=4`` is R's od_D_REX);
            "auto" (the default) gives :func:`leading_batch`'s rule, which shrinks L towards
            d / 2 when the support is large.
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
        counts the exchanges made and refused and names the leading-batch size.
    """
    t0 = time.perf_counter()
    V, target, max_iter = _check_relaxed(V, weights, efficiency, max_iter)
    N, d = V.shape
    if not (isinstance(batch, str) and batch == "auto"):
        if isinstance(batch, str):
            raise ValueError(f"batch: 'auto' or a number gamma > 0 (R's gamma, e.g. 4), "
                             f"got {batch!r}")
        batch = positive_scalar(batch, "batch")
    if max_seconds is not None:
        positive_scalar(max_seconds, "max_seconds")
    deadline = math.inf if max_seconds is None else t0 + max_seconds
    rng = as_rng(seed)
    pi = _start(V, start, pi0)
    info: dict[str, Any] = {"batch": batch, "leading": [], "exchanges": 0, "refused": 0,
                            "nullify": bool(nullify)}
    it, ok = 0, False
    # The exchanges' products are (65 x d x d) at most: BLAS threads cost more to wake than
    # they save there (and the one O(N d^2) scan per iteration is not where REX spends time).
    with threadpool_limits(limits=1, user_api="blas"):
        while True:
            M = information_matrix(V, pi)
            g = variances(V, chol(M, "M(pi)"))
            if d / float(g.max()) >= target:
                ok = True
                break
            if it >= max_iter or time.perf_counter() > deadline:
                break
            it += 1
            supp = np.flatnonzero(pi > 0)
            L = leading_batch(batch, N, d, supp.size)
            info["leading"].append(L)
            # sorted: the set, not argpartition's rounding-dependent order, is what is permuted
            lead = np.sort(np.argpartition(-g, L - 1)[:L]) if L < N else np.arange(N)
            lx, kx = rng.permutation(lead), rng.permutation(supp)
            k0 = int(supp[np.argmin(g[supp])])
            l0 = int(np.argmax(g))
            M = np.asfortranarray(M)     # the exchanges keep its lower triangle (dsyrk, dpotrf)
            _exchanges(V, pi, M, [l0], np.array([k0]), False, info, math.inf)   # the LBE
            only_null = nullify and pi[k0] < NULL
            _exchanges(V, pi, M, lx.tolist(), kx, only_null, info, deadline)
            pi[pi < NULL] = 0.0
            pi /= pi.sum()
    return _finish("rex", V, pi, it, t0, ok, info)


def leading_batch(batch: float | str, N: int, d: int, K: int) -> int:
    """L, the number of leading rows (largest variances) of an iteration with K support rows
    among N candidates in R^d: min(N, ceil(batch * d)) for a number ``batch`` (R's gamma); for
    "auto", min(N, ceil(4 d), max(ceil(d / 2), ceil(N / K))): R's 4 d rows while a pass's L K
    exchanges number at most N (the rows of the variance scan that starts each iteration),
    fewer down to d / 2 rows when the support is large (module docstring)."""
    if batch == "auto":
        return min(N, 4 * d, max(-(-d // 2), -(-N // max(K, 1))))
    return min(N, int(math.ceil(float(batch) * d)))


def _exchanges(V: np.ndarray, pi: np.ndarray, M: np.ndarray, ls: list[int], ks: np.ndarray,
               only_nullifying: bool, info: dict[str, Any], deadline: float) -> None:
    """For each l of ``ls`` in order, for each k of ``ks`` (int array) in order, the optimal
    exchange of mass from k to l (module docstring); in place on ``pi`` (N,) and on the lower
    triangle of ``M`` (d, d) = M(pi), Fortran-ordered (its upper triangle is left stale).
    Stops between two l once ``time.perf_counter()`` passes ``deadline``. With
    ``only_nullifying`` an exchange is made only if it empties k or l.

    While M is unchanged (most of a pass with ``only_nullifying``), each block's
    Y = C^{-1} X^T and Gram Y^T Y are computed once and reused for every l: only l's own
    column is new."""
    C = None                    # Cholesky factor of M while M is unchanged
    cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}    # block start -> (Y, Y^T Y) at C
    for l in ls:
        if time.perf_counter() > deadline:
            return
        yl = None
        for s in range(0, ks.size, BLOCK):
            blk = ks[s:s + BLOCK]
            keep = blk != l
            if not keep.any() or (pi[l] <= 0 and not (pi[blk] > 0).any()):
                continue
            if C is None:
                C, bad = lapack.dpotrf(M, lower=1, clean=0)
                if bad:
                    raise ValueError("V: the information matrix M(pi) lost positive "
                                     "definiteness during the exchanges (rounding on nearly "
                                     "dependent candidates); rescale V or use solver 'fw'")
                cache.clear()
                yl = None
            if s not in cache:
                Y = lapack.dtrtrs(C, V[blk].T, lower=1)[0]         # (d, b) = C^{-1} X^T
                cache[s] = Y, blas.dsyrk(1.0, Y, trans=1, lower=1)  # lower triangle of Y^T Y
            Y, Gb = cache[s]
            if yl is None:
                yl = lapack.dtrtrs(C, V[l], lower=1)[0]            # (d,) = C^{-1} v_l
            if not keep.all():
                blk, Y, Gb = blk[keep], Y[:, keep], Gb[np.ix_(keep, keep)]
            rows = np.append(blk, l)                               # the k, then l
            q = blk.size
            G = np.empty((q + 1, q + 1))              # lower triangle: v_i^T M^{-1} v_j
            G[:q, :q] = Gb
            G[q, :q] = yl @ Y
            G[q, q] = yl @ yl
            D = _block(G, pi, rows, only_nullifying, info)
            moved = np.flatnonzero(D)
            if moved.size:                             # M += sum_i D_i v_i v_i^T (lower)
                for sign in (1.0, -1.0):
                    r = moved[sign * D[moved] > 0]
                    if r.size:
                        Z = V[rows[r]] * np.sqrt(np.abs(D[r]))[:, None]
                        blas.dsyrk(sign, Z, beta=1.0, c=M, trans=1, lower=1, overwrite_c=1)
                C = None


def _block(G: np.ndarray, pi: np.ndarray, rows: np.ndarray, only_nullifying: bool,
           info: dict[str, Any]) -> np.ndarray:
    """The exchanges from k = rows[j] (j = 0..m-2, in order) to l = rows[-1], on the lower
    triangle of the block's Gram matrix G (m, m) = X M^{-1} X^T (overwritten) and on ``pi``; returns D (m,), the mass
    each block row gained (M's change is sum_j D_j v_j v_j^T). The work is
    :func:`_block_kernel`'s."""
    D = np.zeros(rows.size)
    made, refused = _kernel()(G, pi, rows, only_nullifying, D)
    info["exchanges"] += made
    info["refused"] += refused
    return D


def _block_kernel(G: np.ndarray, pi: np.ndarray, rows: np.ndarray, only_nullifying: bool,
                  D: np.ndarray) -> tuple[int, int]:
    """:func:`_block`'s loop, in numba's subset of Python (compiled by :func:`_kernel` when
    numba is importable, else run by Python): adds to D (m,) and returns the
    numbers of exchanges made and refused.

    An exchange of a from k to l is M' = M + a (v_l v_l^T - v_k v_k^T) = M + B^T E B with
    B = [v_k; v_l] and E = diag(-a, a); by Woodbury, every v_i^T M'^{-1} v_j changes by
    -G[i, (k, l)] (E^{-1} + C)^{-1} G[(k, l), j] with C = G[(k, l), (k, l)], and
    (E^{-1} + C)^{-1} = (a / det) [[-t22, -t12], [t21, t11]] with T = I + E C,
    det = det T = det M' / det M. Only the rows still to be visited (j + 1 .. m - 1, l last)
    are updated.
    """
    m = rows.size
    q = m - 1                   # l's row of G
    l = rows[q]
    made = 0
    refused = 0
    wk = np.empty(m)
    wl = np.empty(m)
    for j in range(q):
        k = rows[j]
        pk = pi[k]
        pl = pi[l]
        if pk <= 0 and pl <= 0:
            continue
        gk = G[j, j]
        gl = G[q, q]
        gkl = G[q, j]
        a = min(pk, max(-pl, exchange_step(gk, gl, gkl)))
        if a == 0.0:
            continue
        nk = pk - a
        nl = pl + a
        if only_nullifying and not (nk < NULL or nl < NULL):
            continue
        t11 = 1.0 - a * gk
        t12 = -a * gkl
        t21 = a * gkl
        t22 = 1.0 + a * gl
        det = t11 * t22 - t12 * t21
        if not det > 1e-10:
            refused += 1
            continue
        pi[k] = nk
        pi[l] = nl
        D[j] -= a
        D[q] += a
        made += 1
        c = a / det
        s00, s01, s11 = -c * t22, -c * t12, c * t11          # S, symmetric (t21 = -t12)
        for p in range(j + 1, m):       # W = G[j+1:, (j, q)], copied: row q is updated
            wk[p] = G[p, j]
            wl[p] = G[q, p]
        for p in range(j + 1, m):       # G[j+1:, j+1:] -= W S W^T, lower triangle
            u = s00 * wk[p] + s01 * wl[p]
            v = s01 * wk[p] + s11 * wl[p]
            for r in range(j + 1, p + 1):
                G[p, r] -= u * wk[r] + v * wl[r]
    return made, refused
