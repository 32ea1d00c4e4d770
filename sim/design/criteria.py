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

Greedy steps use the Sherman–Morrison identities for H + v v^T, computed through a Cholesky
factor of H (never an explicit inverse): with z = L^{-1} v and q = ||z||^2 = v^T H^{-1} v,

    d: log(1 + q)      a: ||L^{-T} z||^2 / (1 + q)      g: t_j^T H^{-1} t_j - (t_j^T H^{-1} v)^2/(1 + q).

Relaxed designs (pi on the simplex, M(pi) = sum pi_i v_i v_i^T) come with optimality
certificates derived from convexity (the Kiefer–Wolfowitz argument of common.py):

* D: efficiency (det M / det M*)^{1/d} >= d / max_i v_i^T M^{-1} v_i;
* A: efficiency tr M*^{-1} / tr M^{-1} >= tr M^{-1} / max_i v_i^T M^{-2} v_i
  (from tr X^{-1} >= 2 tr M^{-1}/c - tr(M^{-2} X)/c^2 for X = M*, optimized over c > 0);
* G: a lower bound on the optimal value, G* >= (sum_j rho_j t_j^T M^{-1} t_j)^2 /
  max_i v_i^T M^{-1} B M^{-1} v_i with B = sum_j rho_j t_j t_j^T for any distribution rho (the
  same argument for the linear criterion tr(M^{-1} B)), see :func:`g_lower_bound`.

The relaxed A-design is computed by the multiplicative algorithm pi_i <- pi_i (v_i^T M^{-2}
v_i)^{1/2} / sum_k pi_k (v_k^T M^{-2} v_k)^{1/2}, monotone for A-optimality (Yu 2010, Ann.
Statist. 38); the relaxed G-design by cvxpy (a certifier for small instances).
"""

from __future__ import annotations

import time

import numpy as np
import scipy.linalg

from ..validation import as_matrix, positive_int, positive_scalar
from .common import DesignResult, check_pi, chol, design_vectors, information_matrix, variances

CRITERIA = ("d", "a", "g")


def check_criterion(criterion: str) -> str:
    """Validated criterion name (``d``, ``a`` or ``g``, case-insensitive)."""
    c = str(criterion).lower()
    if c not in CRITERIA:
        raise ValueError(f"criterion: {criterion!r} is not one of {', '.join(CRITERIA)} "
                         "(D-, A- or G-optimal)")
    return c


def _prior(P: np.ndarray | None, d: int) -> np.ndarray:
    if P is None:
        return np.zeros((d, d))
    P = as_matrix(P, "prior", n_rows=d, n_cols=d)
    if not np.allclose(P, P.T, atol=1e-12 * max(1.0, np.abs(P).max())):
        raise ValueError("prior: the prior information matrix must be symmetric")
    if np.linalg.eigvalsh(P).min() < -1e-10 * max(1.0, np.abs(P).max()):
        raise ValueError("prior: the prior information matrix must be positive semidefinite "
                         "(an information matrix sum_j w_j phi_j phi_j^T of labelled pairs)")
    return P


def criterion_value(H: np.ndarray, criterion: str, targets: np.ndarray | None = None) -> float:
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


def greedy_criterion(V: np.ndarray, n: int, *, criterion: str = "d", gamma: float = 1.0,
                     weights: np.ndarray | None = None, prior: np.ndarray | None = None,
                     targets: np.ndarray | None = None,
                     exclude: np.ndarray | None = None) -> DesignResult:
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
    picks, values = [], []
    for _ in range(n):
        L = chol(H, "H")
        Z = scipy.linalg.solve_triangular(L, X.T, lower=True)           # (d, N): L^{-1} v_i
        q = np.einsum("ij,ij->j", Z, Z)
        if c == "d":
            score = np.log1p(q)
        elif c == "a":
            Y = scipy.linalg.solve_triangular(L, Z, lower=True, trans="T")  # H^{-1} v_i
            score = np.einsum("ij,ij->j", Y, Y) / (1.0 + q)
        else:
            assert T is not None
            Zt = scipy.linalg.solve_triangular(L, T.T, lower=True)      # (d, T)
            u = np.einsum("ij,ij->j", Zt, Zt)                            # current variances
            cross = Zt.T @ Z                                             # t_j^T H^{-1} v_i
            score = -np.max(u[:, None] - cross**2 / (1.0 + q)[None, :], axis=0)
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


# --------------------------------------------------------------------------- relaxed
def a_efficiency(V: np.ndarray, pi: np.ndarray) -> float:
    """Lower bound tr M^{-1} / max_i v_i^T M^{-2} v_i on the A-efficiency tr M*^{-1}/tr M^{-1}."""
    X = as_matrix(V, "V")
    p = check_pi(pi, X.shape[0])
    L = chol(information_matrix(X, p), "M(pi)")
    Y = scipy.linalg.solve_triangular(L, scipy.linalg.solve_triangular(L, X.T, lower=True),
                                      lower=True, trans="T")
    g = np.einsum("ij,ij->j", Y, Y)
    return criterion_value(L @ L.T, "a") / float(g.max())


def g_lower_bound(V: np.ndarray, pi: np.ndarray, targets: np.ndarray,
                  rho: np.ndarray | None = None) -> float:
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


def a_design(V: np.ndarray, *, weights: np.ndarray | None = None,
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


def cvxpy_criterion_design(V: np.ndarray, criterion: str, *, weights: np.ndarray | None = None,
                           targets: np.ndarray | None = None) -> DesignResult:
    """The relaxed A- or G-optimal design by cvxpy (an independent certifier; small N only)."""
    import cvxpy as cp

    t0 = time.perf_counter()
    c = check_criterion(criterion)
    X = design_vectors(V, weights)
    N, d = X.shape
    pi = cp.Variable(N, nonneg=True)
    M = X.T @ cp.diag(pi) @ X
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
    return DesignResult(solver=f"cvxpy-{c}", pi=p, support=int(np.count_nonzero(p > 1e-8)),
                        seconds=time.perf_counter() - t0,
                        info={"criterion": c, "value": float(prob.value), "status": prob.status})
