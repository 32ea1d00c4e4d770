"""D-, A- and G-optimal designs, greedy and relaxed, with a prior information matrix.

Notation as in :mod:`sim.design.common`: design vectors v_i (rows of ``V``, (N, d)), already
weighted (sqrt(w_i) phi_i carries the Lemma 1 weight); H = gamma I + P + sum_{i in S} v_i v_i^T
with P (d, d) PSD the information of pairs labelled before (the *prior*, zero by default).

Criteria (all on H^{-1}, the covariance of theta_hat up to the Lemma 1 scaling):

* ``d``: maximize log det H (the paper's eq. 10 objective);
* ``a``: minimize tr H^{-1} (the mean variance of theta_hat's coordinates);
* ``g``: minimize max_j t_j^T H^{-1} t_j over *target* vectors t_j (rows of ``targets``; by
  default the unweighted rows phi_j): the largest predicted variance of a logit phi_j^T theta_hat,
  which is what the paper's metric, the maximum logit error of eq. 7, measures.

Greedy steps (:func:`greedy_criterion`; :class:`CriterionGreedy`, the engine of the selectors'
``criterion`` option; both score with :func:`criterion_scores`) use the Sherman–Morrison
identities for H + v v^T, computed through a Cholesky factor of H (never an explicit inverse):
with z = L^{-1} v and q = ||z||^2 = v^T H^{-1} v,

    d: log(1 + q)      a: ||L^{-T} z||^2 / (1 + q)      g: t_j^T H^{-1} t_j - (t_j^T H^{-1} v)^2/(1 + q).

Relaxed designs (pi on the simplex, M(pi) = sum pi_i v_i v_i^T) come with optimality
certificates derived from convexity (the Kiefer–Wolfowitz argument of common.py):

* D: efficiency (det M / det M*)^{1/d} >= d / max_i v_i^T M^{-1} v_i;
* A: efficiency tr M*^{-1} / tr M^{-1} >= tr M^{-1} / max_i v_i^T M^{-2} v_i
  (from tr X^{-1} >= 2 tr M^{-1}/c - tr(M^{-2} X)/c^2 for X = M*, optimized over c > 0);
* G: a lower bound on the optimal value, G* >= (sum_j rho_j t_j^T M^{-1} t_j)^2 /
  max_i v_i^T M^{-1} B M^{-1} v_i with B = sum_j rho_j t_j t_j^T for any distribution rho (the
  same argument for the linear criterion tr(M^{-1} B)), see :func:`g_lower_bound`.

With a prior P and a budget of n labels the relaxed problem is over M(pi) = P/n + sum pi_i v_i
v_i^T (n M(pi) = P + n sum pi_i v_i v_i^T is the information after n labels spread as pi):
:func:`prior_design`, certified for every criterion by the Frank–Wolfe duality gap of the convex
objective (the bounds above need P = 0).

The relaxed A-design is computed by the multiplicative algorithm pi_i <- pi_i (v_i^T M^{-2}
v_i)^{1/2} / sum_k pi_k (v_k^T M^{-2} v_k)^{1/2}, monotone for A-optimality (Yu 2010, Ann.
Statist. 38); the relaxed G-design by a multiplicative saddle-point iteration with the G
certificate (:func:`g_design`), and by cvxpy (an independent certifier for small instances).
"""

from __future__ import annotations

import time

import numpy as np
import scipy.linalg
from numpy.typing import ArrayLike

from ..validation import as_matrix, positive_int, positive_scalar
from .common import DesignResult, check_pi, chol, design_vectors, information_matrix, variances
from .greedy import GreedyState

CRITERIA = ("d", "a", "g")


def check_criterion(criterion: str) -> str:
    """Validated criterion name (``d``, ``a`` or ``g``, case-insensitive)."""
    c = str(criterion).lower()
    if c not in CRITERIA:
        raise ValueError(f"criterion: {criterion!r} is not one of {', '.join(CRITERIA)} "
                         "(D-, A- or G-optimal)")
    return c


def _prior(P: ArrayLike | None, d: int) -> np.ndarray:
    if P is None:
        return np.zeros((d, d))
    M = as_matrix(P, "prior", n_rows=d, n_cols=d)
    if not np.allclose(M, M.T, atol=1e-12 * max(1.0, np.abs(M).max())):
        raise ValueError("prior: the prior information matrix must be symmetric")
    if np.linalg.eigvalsh(M).min() < -1e-10 * max(1.0, np.abs(M).max()):
        raise ValueError("prior: the prior information matrix must be positive semidefinite "
                         "(an information matrix sum_j w_j phi_j phi_j^T of labelled pairs)")
    return M


def criterion_value(H: np.ndarray, criterion: str, targets: ArrayLike | None = None) -> float:
    """log det H (d), tr H^{-1} (a) or max_j t_j^T H^{-1} t_j (g) of a (d, d) SPD matrix."""
    c = check_criterion(criterion)
    L = chol(H, "H")
    if c == "d":
        return 2.0 * float(np.log(np.diag(L)).sum())
    if c == "a":
        Linv = scipy.linalg.solve_triangular(L, np.eye(H.shape[0]), lower=True)
        return float(np.sum(Linv**2))
    if targets is None:
        raise ValueError("targets: the G criterion needs target vectors (rows phi_j)")
    return float(variances(np.asarray(targets, dtype=np.float64), L).max())


def criterion_scores(L: np.ndarray, X: np.ndarray, criterion: str,
                     targets: np.ndarray | None = None) -> np.ndarray:
    """The improvement of each candidate row under one criterion, larger is better. (N,).

    ``L`` (d, d) lower Cholesky factor of the current H; ``X`` (N, d) candidate vectors (already
    weighted); ``targets`` (T, d) for ``g``. With z = L^{-1} v, q = ||z||^2 = v^T H^{-1} v:

    * d: log(1 + q), the log det gain (matrix determinant lemma);
    * a: ||H^{-1} v||^2 / (1 + q) = tr H^{-1} - tr (H + v v^T)^{-1} (Sherman–Morrison);
    * g: -max_j [t_j^T H^{-1} t_j - (t_j^T H^{-1} v)^2 / (1 + q)], minus the largest target
      variance after adding v.

    Cost O(N d^2) (d, a) and O(N d (d + T)) (g); no inverse is formed.
    """
    c = check_criterion(criterion)
    Z = scipy.linalg.solve_triangular(L, X.T, lower=True)               # (d, N): L^{-1} v_i
    q = np.einsum("ij,ij->j", Z, Z)
    if c == "d":
        return np.log1p(q)
    if c == "a":
        Y = scipy.linalg.solve_triangular(L, Z, lower=True, trans="T")  # H^{-1} v_i
        return np.einsum("ij,ij->j", Y, Y) / (1.0 + q)
    if targets is None:
        raise ValueError("targets: the G criterion needs target vectors (rows phi_j)")
    Zt = scipy.linalg.solve_triangular(L, targets.T, lower=True)        # (d, T)
    u = np.einsum("ij,ij->j", Zt, Zt)                                    # current variances
    cross = Zt.T @ Z                                                     # t_j^T H^{-1} v_i
    return -np.max(u[:, None] - cross**2 / (1.0 + q)[None, :], axis=0)


def greedy_criterion(V: ArrayLike, n: int, *, criterion: str = "d", gamma: float = 1.0,
                     weights: ArrayLike | None = None, prior: ArrayLike | None = None,
                     targets: ArrayLike | None = None,
                     exclude: ArrayLike | None = None) -> DesignResult:
    """Greedy exact design of n distinct rows for the D, A or G criterion.

    Args: V (N, d) candidate vectors; weights (N,) >= 0 (the design uses sqrt(w_i) v_i);
    prior (d, d) PSD information already collected; targets (T, d) for G (default: the
    unweighted rows of V); exclude: rows never picked (e.g. already labelled).
    Each pick is the argmax of the criterion's improvement (ties: lowest index). Cost per pick
    O(N d^2) for d and a, O(N d (d + T)) for g. ``info['values']`` records the criterion after
    each pick; ``logdet`` is log det H of the final design for every criterion.
    """
    t0 = time.perf_counter()
    c = check_criterion(criterion)
    X = design_vectors(V, weights)
    N, d = X.shape
    n = positive_int(n, "n")
    gamma = positive_scalar(gamma, "gamma")
    H = gamma * np.eye(d) + _prior(prior, d)
    T = None
    if c == "g":
        T = as_matrix(V if targets is None else targets, "targets", n_cols=d)
    avail = np.ones(N, dtype=bool)
    if exclude is not None:
        avail[np.asarray(exclude, dtype=np.int64)] = False
    if n > int(avail.sum()):
        raise ValueError(f"n: budget {n} exceeds the {int(avail.sum())} eligible rows (N = {N})")
    picks: list[int] = []
    values: list[float] = []
    for _ in range(n):
        L = chol(H, "H")
        score = criterion_scores(L, X, c, T)
        score[~avail] = -np.inf
        i = int(np.argmax(score))
        picks.append(i)
        avail[i] = False
        H = H + np.outer(X[i], X[i])
        values.append(criterion_value(H, c, T))
    logdet = criterion_value(H, "d")
    return DesignResult(solver=f"greedy-{c}", indices=np.asarray(picks, dtype=np.int64),
                        logdet=logdet, support=n, iterations=n,
                        seconds=time.perf_counter() - t0,
                        info={"criterion": c, "values": values, "final": values[-1]})


class CriterionGreedy:
    """The argmax engine of the greedy selectors for the A and G criteria (``criterion`` option).

    Same interface as :class:`sim.design.incremental.IncrementalGreedy` (``argmax(weights,
    candidates)``, ``add(v)``), so a selector keeps its own weights w_i (v_i = sqrt(w_i) phi_i,
    Lemma 1) and only the gain changes: each pick maximizes :func:`criterion_scores` over the
    candidates. ``add`` also extends the shared :class:`sim.design.greedy.GreedyState`, so the
    selector's ``logdet_`` and ``gains_`` (log det increments) keep their meaning.

    Args: V (N, d) rows handed to the selector's engine (weighted or not); state: the shared
    H^{-1} / log det (its H is copied once); criterion ``a`` or ``g`` (``d`` works and picks as
    the D engines do); targets (T, d) for ``g`` (the unweighted phi_j: eq. 7's logits).
    Cost per pick O(m d^2) for m candidates (``a``), O(m d (d + T)) (``g``), plus a d^3 Cholesky.
    """

    def __init__(self, V: np.ndarray, state: GreedyState, criterion: str,
                 targets: np.ndarray | None = None) -> None:
        self.V = V
        self.state = state
        self.criterion = check_criterion(criterion)
        self.targets = targets
        state._fold()  # H itself (float64, exact sums), not its inverse
        self.H = state._H.copy()
        self.n_evals = 0

    def argmax(self, weights: np.ndarray | None, candidates: np.ndarray) -> tuple[int, float]:
        """The candidate with the largest criterion improvement (ties: lowest index), and it."""
        X = self.V[candidates]
        if weights is not None:
            X = X * np.sqrt(weights[candidates])[:, None]
        score = criterion_scores(chol(self.H, "H"), X, self.criterion, self.targets)
        self.n_evals += len(candidates)
        j = int(np.argmax(score))
        return int(candidates[j]), float(score[j])

    def add(self, v: np.ndarray) -> float:
        """H <- H + v v^T; returns the log det gain log(1 + v^T H^{-1} v)."""
        v = np.asarray(v, dtype=np.float64)
        self.H = self.H + np.outer(v, v)
        return self.state._add(v)[0]


# --------------------------------------------------------------------------- relaxed
def a_efficiency(V: ArrayLike, pi: ArrayLike) -> float:
    """Lower bound tr M^{-1} / max_i v_i^T M^{-2} v_i on the A-efficiency tr M*^{-1}/tr M^{-1}."""
    X = as_matrix(V, "V")
    p = check_pi(pi, X.shape[0])
    L = chol(information_matrix(X, p), "M(pi)")
    Y = scipy.linalg.solve_triangular(L, scipy.linalg.solve_triangular(L, X.T, lower=True),
                                      lower=True, trans="T")
    g = np.einsum("ij,ij->j", Y, Y)
    return criterion_value(L @ L.T, "a") / float(g.max())


def g_lower_bound(V: ArrayLike, pi: ArrayLike, targets: ArrayLike,
                  rho: ArrayLike | None = None) -> float:
    """A lower bound on G* = min_pi max_j t_j^T M(pi)^{-1} t_j, read off the design pi.

    For any distribution rho over the targets, B = sum_j rho_j t_j t_j^T and the convex
    h(M) = tr(M^{-1} B) <= max_j t_j^T M^{-1} t_j, the convexity argument of the module doc gives
    G* >= h(M)^2 / max_i v_i^T M^{-1} B M^{-1} v_i. ``rho`` None tries the uniform distribution,
    the point mass on the largest variance, and pi itself when the targets are the rows of V
    (then the bound is tight at the unweighted optimum: it equals d, Kiefer–Wolfowitz).
    """
    X = as_matrix(V, "V")
    T = as_matrix(targets, "targets", n_cols=X.shape[1])
    p = check_pi(pi, X.shape[0])
    L = chol(information_matrix(X, p), "M(pi)")
    Zt = scipy.linalg.solve_triangular(L, T.T, lower=True)               # (d, T)
    Z = scipy.linalg.solve_triangular(L, X.T, lower=True)                # (d, N)
    u = np.einsum("ij,ij->j", Zt, Zt)
    if rho is not None:
        rhos = [check_pi(rho, T.shape[0])]
    else:
        rhos = [np.full(T.shape[0], 1.0 / T.shape[0]), np.eye(T.shape[0])[int(np.argmax(u))]]
        if T.shape == X.shape and np.array_equal(T, X):
            rhos.append(p)
    best = 0.0
    for r in rhos:
        # sum_j rho_j (v_i^T M^{-1} t_j)^2 = ||(Zt sqrt(rho))^T z_i||^2 via the (d, d) Gram
        G = (Zt * r) @ Zt.T
        denom = float(np.max(np.einsum("ij,ik,kj->j", Z, G, Z)))
        best = max(best, float(r @ u) ** 2 / denom)
    return best


def a_design(V: ArrayLike, *, weights: ArrayLike | None = None,
             efficiency: float = 1 - 1e-6, max_iter: int = 100_000) -> DesignResult:
    """Relaxed A-optimal design by the monotone multiplicative algorithm, stopped on the
    certificate ``a_efficiency >= efficiency``."""
    t0 = time.perf_counter()
    X = design_vectors(V, weights)
    N, d = X.shape
    p = np.full(N, 1.0 / N)
    eff, it = 0.0, 0
    for it in range(1, max_iter + 1):
        L = chol(information_matrix(X, p), "M(pi)")
        Y = scipy.linalg.solve_triangular(L, scipy.linalg.solve_triangular(L, X.T, lower=True),
                                          lower=True, trans="T")
        g = np.einsum("ij,ij->j", Y, Y)                                  # v_i^T M^{-2} v_i
        trace = float(p @ g)                                             # = tr M^{-1}
        eff = trace / float(g.max())
        if eff >= efficiency:
            break
        p = p * np.sqrt(g)
        p /= p.sum()
    L = chol(information_matrix(X, p), "M(pi)")
    return DesignResult(solver="multiplicative-a", pi=p, logdet=2.0 * float(np.log(np.diag(L)).sum()),
                        efficiency=eff, support=int(np.count_nonzero(p > 1e-12)), iterations=it,
                        seconds=time.perf_counter() - t0, converged=eff >= efficiency,
                        info={"criterion": "a", "trace": criterion_value(L @ L.T, "a")})


def _g_step(p: np.ndarray, rho: np.ndarray, u: np.ndarray, g: np.ndarray,
            lin: float) -> tuple[np.ndarray, np.ndarray]:
    """One multiplicative step of :func:`g_design` on (pi (N,), rho (T,)); see its doc."""
    p = p * np.sqrt(g / lin)
    rho = rho * (u / lin)
    return p / p.sum(), rho / rho.sum()


def g_design(V: ArrayLike, *, weights: ArrayLike | None = None,
             targets: ArrayLike | None = None, efficiency: float = 1 - 1e-6,
             max_iter: int = 100_000) -> DesignResult:
    """Relaxed G-optimal design: pi minimizing G(pi) = max_j t_j^T M(pi)^{-1} t_j on the simplex.

    V (N, d) candidates, v_i = sqrt(w_i) V_i (``weights`` (N,), Lemma 1); targets (T, d), by
    default the unweighted rows V_j (then G(pi) is the largest predicted logit variance of
    eq. 7's pairs, up to beta^2). M(pi) = sum_i pi_i v_i v_i^T must be nonsingular.

    The problem is the saddle point min_pi max_rho tr(M(pi)^{-1} B(rho)), B(rho) = sum_j rho_j
    t_j t_j^T, rho on the target simplex. Each iteration takes, with u_j = t_j^T M^{-1} t_j and
    g_i = v_i^T M^{-1} B M^{-1} v_i (note sum_i pi_i g_i = tr(M^{-1} B) = rho^T u):

        pi_i  <- pi_i (g_i / rho^T u)^{1/2}      (the multiplicative step for the linear
                                                  criterion tr(M^{-1} B), as for A-optimality)
        rho_j <- rho_j u_j / rho^T u             (mass moves to the largest variances)

    Certificate (the general equivalence theorem, :func:`g_lower_bound` with the current rho):
    G* >= (rho^T u)^2 / max_i g_i, so ``efficiency`` = that bound / G(pi) <= G*/G(pi) <= 1 is a
    proven lower bound on the design's G-efficiency; the loop stops once it reaches the target.
    At the optimum the bound is tight (rho* on the targets of largest variance, g_i <= rho*^T u
    with equality on pi*'s support). With targets = the design rows, unweighted, the G- and
    D-optimal designs coincide and G* = d (Kiefer–Wolfowitz). Each iteration costs
    O((N + T) d^2). No cvxpy; :func:`cvxpy_criterion_design` is the independent check.
    """
    t0 = time.perf_counter()
    X = design_vectors(V, weights)
    N, d = X.shape
    T = as_matrix(V if targets is None else targets, "targets", n_cols=d)
    if not 0 < efficiency < 1:
        raise ValueError(f"efficiency: must lie in (0, 1), got {efficiency}")
    max_iter = positive_int(max_iter, "max_iter")
    p = np.full(N, 1.0 / N)
    rho = np.full(T.shape[0], 1.0 / T.shape[0])
    eff, it, upper, lower = 0.0, 0, np.inf, 0.0
    for it in range(1, max_iter + 1):
        L = chol(information_matrix(X, p), "M(pi)")
        Zt = scipy.linalg.solve_triangular(L, T.T, lower=True)           # (d, T)
        Z = scipy.linalg.solve_triangular(L, X.T, lower=True)            # (d, N)
        u = np.einsum("ij,ij->j", Zt, Zt)                                # t_j^T M^{-1} t_j
        g = np.einsum("ij,ik,kj->j", Z, (Zt * rho) @ Zt.T, Z)            # v^T M^-1 B M^-1 v
        lin = float(rho @ u)
        upper, lower = float(u.max()), lin**2 / float(g.max())
        eff = lower / upper
        if eff >= efficiency:
            break
        p, rho = _g_step(p, rho, u, g, lin)
    L = chol(information_matrix(X, p), "M(pi)")
    return DesignResult(solver="multiplicative-g", pi=p,
                        logdet=2.0 * float(np.log(np.diag(L)).sum()), efficiency=eff,
                        support=int(np.count_nonzero(p > 1e-12)), iterations=it,
                        seconds=time.perf_counter() - t0, converged=eff >= efficiency,
                        info={"criterion": "g", "value": upper, "lower_bound": lower})


def prior_design(V: ArrayLike, criterion: str, n: int, *, prior: ArrayLike | None = None,
                 weights: ArrayLike | None = None, targets: ArrayLike | None = None,
                 efficiency: float = 1 - 1e-6, max_iter: int = 100_000) -> DesignResult:
    """Relaxed D-, A- or G-optimal design of n labels on top of a prior information matrix.

    V (N, d) candidates (v_i = sqrt(w_i) V_i with ``weights`` (N,)); prior P (d, d) PSD, the
    information of pairs labelled before (None: 0, then M(pi) must be nonsingular); n >= 1 the
    number of new labels; targets (T, d) for G (default the unweighted rows of V). The design
    pi (N,) on the simplex optimizes the criterion of M(pi) = P/n + sum_i pi_i v_i v_i^T:

        d: maximize log det M      a: minimize tr M^{-1}      g: minimize max_j t_j^T M^{-1} t_j

    Iterations are multiplicative, pi_i <- pi_i s_i / sum_k pi_k s_k with s_i = g_i (D),
    sqrt(h_i) (A) or sqrt(k_i) (G, plus rho_j <- rho_j u_j / rho^T u on the targets, as
    :func:`g_design`), where g_i = v_i^T M^{-1} v_i, h_i = v_i^T M^{-2} v_i, u_j = t_j^T M^{-1} t_j,
    k_i = v_i^T M^{-1} B M^{-1} v_i, B = sum_j rho_j t_j t_j^T.

    Certificate (convexity; valid for any P and at every iterate): the objective f is convex in
    pi with partial derivatives -g_i (D), -h_i (A) and, for the lower envelope tr(M^{-1} B) <= G,
    -k_i (G), so f* >= f(pi) - gap with gap = max_i s*_i - pi^T s* (s* = g, h, k) — the Frank–Wolfe
    duality gap. Reported ``efficiency`` (a proven lower bound): exp(-gap/d) on the D-efficiency
    (det M/det M*)^{1/d}; (tr M^{-1} - gap)/tr M^{-1} on the A-efficiency; (rho^T u - gap)/max_j u_j
    on the G-efficiency G*/G(pi). The loop stops when it reaches ``efficiency``.
    Cost O((N + T) d^2) per iteration; :func:`cvxpy_criterion_design` (``prior``, ``n``) checks it.
    """
    t0 = time.perf_counter()
    c = check_criterion(criterion)
    X = design_vectors(V, weights)
    N, d = X.shape
    n = positive_int(n, "n")
    P0 = _prior(prior, d) / n
    T = as_matrix(V if targets is None else targets, "targets", n_cols=d) if c == "g" else None
    if not 0 < efficiency < 1:
        raise ValueError(f"efficiency: must lie in (0, 1), got {efficiency}")
    max_iter = positive_int(max_iter, "max_iter")
    p = np.full(N, 1.0 / N)
    rho = None if T is None else np.full(T.shape[0], 1.0 / T.shape[0])
    eff, it, value = 0.0, 0, np.nan
    for it in range(1, max_iter + 1):
        L = chol(P0 + information_matrix(X, p), "M(pi)")
        Z = scipy.linalg.solve_triangular(L, X.T, lower=True)            # (d, N): L^{-1} v_i
        if c == "d":
            grad = np.einsum("ij,ij->j", Z, Z)                             # g_i
            gap = float(grad.max() - p @ grad)
            value = 2.0 * float(np.log(np.diag(L)).sum())
            eff, step = float(np.exp(-gap / d)), grad
        elif c == "a":
            Y = scipy.linalg.solve_triangular(L, Z, lower=True, trans="T")  # M^{-1} v_i
            grad = np.einsum("ij,ij->j", Y, Y)                             # h_i
            gap = float(grad.max() - p @ grad)
            value = criterion_value(L @ L.T, "a")
            eff, step = (value - gap) / value, np.sqrt(grad)
        else:
            assert T is not None and rho is not None  # set above for "g"
            Zt = scipy.linalg.solve_triangular(L, T.T, lower=True)        # (d, T)
            u = np.einsum("ij,ij->j", Zt, Zt)
            grad = np.einsum("ij,ik,kj->j", Z, (Zt * rho) @ Zt.T, Z)       # k_i
            gap = float(grad.max() - p @ grad)
            value = float(u.max())
            eff, step = (float(rho @ u) - gap) / value, np.sqrt(grad)
            rho = rho * u
            rho /= rho.sum()
        if eff >= efficiency:
            break
        p = p * step
        p /= p.sum()
    return DesignResult(solver=f"multiplicative-{c}-prior", pi=p,
                        logdet=float(np.linalg.slogdet(P0 + information_matrix(X, p))[1]),
                        efficiency=max(eff, 0.0), support=int(np.count_nonzero(p > 1e-12)),
                        iterations=it, seconds=time.perf_counter() - t0,
                        converged=eff >= efficiency,
                        info={"criterion": c, "value": value, "n": n, "prior": prior is not None})


def cvxpy_criterion_design(V: ArrayLike, criterion: str, *, weights: ArrayLike | None = None,
                           targets: ArrayLike | None = None, prior: ArrayLike | None = None,
                           n: int = 1) -> DesignResult:
    """The relaxed D-, A- or G-optimal design by cvxpy (an independent certifier; small N only);
    with ``prior`` P over M(pi) = P/n + sum pi_i v_i v_i^T, as :func:`prior_design`."""
    import cvxpy as cp

    t0 = time.perf_counter()
    c = check_criterion(criterion)
    X = design_vectors(V, weights)
    N, d = X.shape
    P0 = _prior(prior, d) / positive_int(n, "n")
    pi = cp.Variable(N, nonneg=True)
    M = P0 + X.T @ cp.diag(pi) @ X
    if c == "a":
        obj = cp.sum([cp.matrix_frac(np.eye(d)[k], M) for k in range(d)])
    elif c == "g":
        T = as_matrix(V if targets is None else targets, "targets", n_cols=d)
        obj = cp.max(cp.hstack([cp.matrix_frac(t, M) for t in T]))
    else:
        obj = -cp.log_det(M)
    prob = cp.Problem(cp.Minimize(obj), [cp.sum(pi) == 1])
    prob.solve(solver="CLARABEL")
    p = np.clip(np.asarray(pi.value, dtype=np.float64), 0, None)
    p /= p.sum()
    ld = float(np.linalg.slogdet(P0 + information_matrix(X, p))[1])
    return DesignResult(solver=f"cvxpy-{c}", pi=p, logdet=ld,
                        support=int(np.count_nonzero(p > 1e-8)),
                        seconds=time.perf_counter() - t0,
                        info={"criterion": c, "value": float(prob.value), "status": prob.status})
