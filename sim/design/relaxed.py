"""Approximate (relaxed) D-optimal designs: pi on the simplex maximizing log det M(pi),
M(pi) = sum_i pi_i v_i v_i^T (the continuous relaxation of paper sec. 2's log det objective).

The gradient of f(pi) = log det M(pi) is g_i = v_i^T M(pi)^{-1} v_i, with sum_i pi_i g_i = d.
Every solver here stops on the Kiefer-Wolfowitz certificate d / max_i g_i >= ``efficiency``
(see :mod:`sim.design.common`).

* :func:`fw_design` -- Frank-Wolfe (Fedorov-Wynn) with away steps (Wolfe 1970; Atwood 1973; the
  WA-TY method of Ahipasaoglu, Sun and Todd 2008). A toward step moves mass alpha to the vertex
  j = argmax g; an away step takes mass from the support vertex k = argmin g. Both use the exact
  line search of f along the segment, in closed form:

      f((1 - a) pi + a e_i) - f(pi) = (d - 1) log(1 - a) + log(1 - a + a g_i),
      a* = (g_i - d) / (d (g_i - 1)),

  clipped for away steps at -pi_k / (1 - pi_k) (a "drop" step, which removes k from the support).
  M^{-1} and all g are updated by the rank-one formulas

      M'^{-1} = (M^{-1} - b u u^T) / (1 - a),  u = M^{-1} v_i,  b = a / (1 - a + a g_i),
      g'      = (g - b (V u)^2) / (1 - a),

  O(m d) per step for m candidate rows, and recomputed from a Cholesky factor every ``d`` steps.
  The default step is the *pairwise* one (Fedorov's vertex exchange; Boehning 1986): move mass
  delta from the support vertex k = argmin g to j = argmax g, where

      det M(pi') / det M(pi) = (1 + delta g_j)(1 - delta g_k) + delta^2 g_jk^2,
      delta* = (g_j - g_k) / (2 (g_j g_k - g_jk^2)),  clipped to [0, pi_k],

  with g_jk = v_j^T M^{-1} v_k and two Sherman-Morrison updates. Measured here it needs about
  half the steps of the away-step variant (``step="away"``) for the same certificate.
  The start is the greedy design of d rows (a small-support start). For large N the steps run on
  a working set that grows by the most violating rows (largest g_i > d) until the certificate
  over *all* N rows holds; the final certificate is always computed over all N rows.
* :func:`multiplicative_design` -- pi_i <- pi_i g_i / d (Titterington 1976; Silvey, Titterington
  and Torsney 1978), the baseline: monotone but sublinear.
* :func:`cvxpy_design` -- the convex program in cvxpy (Clarabel by default), the certifier for
  small cases. The affine map pi -> M(pi) has N d^2 coefficients, so this does not scale.
"""

from __future__ import annotations

from numpy.typing import ArrayLike

from typing import Any

import time

import numpy as np

from ..linalg import inv_from_chol, weighted_gram
from ..validation import as_rng, positive_int, positive_scalar
from .common import (DesignResult, check_pi, chol, design_vectors, information_matrix,
                     logdet_chol, require_full_rank, variances)
from .relaxed_rows import NumpyRows, TorchRows, check_backend, make_rows

Rows = NumpyRows | TorchRows
START_ROWS = 32   # the greedy start looks at the START_ROWS * d longest rows (see _start)


def _check_relaxed(V: ArrayLike, weights: ArrayLike | None, efficiency: float,
                   max_iter: int) -> tuple[np.ndarray, float, int]:
    """The common opening of the relaxed solvers: the design vectors sqrt(w_i) V_i (N, d) of
    full rank, the target efficiency in (0, 1) and max_iter >= 1."""
    V = design_vectors(V, weights)
    require_full_rank(V)
    return V, _check_efficiency(efficiency), positive_int(max_iter, "max_iter")


def _check_efficiency(efficiency: float) -> float:
    e = positive_scalar(efficiency, "efficiency")
    if not e < 1:
        raise ValueError(f"efficiency: must lie in (0, 1) (1 is reached only in the limit), "
                         f"got {e}; e.g. 1 - 1e-6")
    return e


def _finish(solver: str, V: np.ndarray, pi: np.ndarray, it: int, t0: float, converged: bool,
            info: dict, rows: Rows | None = None) -> DesignResult:
    """Result with log det M(pi) and the certificate over all N rows, from one Cholesky (the
    variances in float64, on ``rows``' backend when given)."""
    pi = np.where(pi > 0, pi, 0.0)
    pi = pi / pi.sum()
    L = chol(information_matrix(V, pi), "M(pi)")
    g = variances(V, L) if rows is None else rows.scan(L, exact=True)
    eff = V.shape[1] / float(g.max())
    return DesignResult(solver=solver, pi=pi, logdet=logdet_chol(L), efficiency=eff,
                        support=int((pi > 0).sum()), iterations=int(it),
                        seconds=time.perf_counter() - t0, converged=bool(converged), info=info)


# --------------------------------------------------------------------------- Frank-Wolfe
def fw_design(V: ArrayLike, *, weights: ArrayLike | None = None, efficiency: float = 1 - 1e-6,
              max_iter: int = 1_000_000,
              step: str = "pairwise", working_set: bool | None = None, start: str = "greedy",
              pi0: ArrayLike | None = None, backend: str = "numpy",
              device: str = "cpu") -> DesignResult:
    """Frank-Wolfe with away steps for the relaxed D-optimal design (module docstring).

    Args:
        V: (N, d) candidate vectors, spanning R^d. weights: None or (N,) >= 0 (design uses
            sqrt(w_i) v_i).
        efficiency: stop once d / max_i g_i >= efficiency (over all N rows), in (0, 1).
        max_iter: cap on the total number of steps (converged=False if hit).
        step: "away" (toward or away/drop steps, whichever has the larger gap), "pairwise"
            (move mass from the worst support vertex to the best vertex: Fedorov's vertex
            exchange, also with a closed-form step), or "fw" (toward steps only: classic
            Fedorov-Wynn, sublinear).
        working_set: restrict steps to a growing working set (default: when N > 2000).
        start: "greedy" (uniform on the greedy design of d rows) or "uniform" (all rows).
        pi0: (N,) explicit starting design (overrides ``start``).
        backend, device: "numpy" (CPU), or "torch" on "cpu" / "cuda" (needs PyTorch): where the
            O(N d) work of every step and the scans over all N rows run
            (:mod:`sim.design.relaxed_rows`); the steps themselves are the same float64
            arithmetic, so both give the same design to rounding.

    Returns:
        DesignResult with ``pi`` (N,), ``logdet`` = log det M(pi), ``efficiency``, ``support``,
        ``iterations``; ``info`` counts toward/away/drop steps and working-set rounds, and
        names the backend and device.

    Memory: V (as float64, shared with the torch CPU backend, copied once to a GPU), O(N)
    vectors, blocks of ``relaxed_rows.BLOCK`` rows and the working set's rows.
    """
    t0 = time.perf_counter()
    check_backend(backend, device)
    V, eff_target, max_iter = _check_relaxed(V, weights, efficiency, max_iter)
    N, d = V.shape
    if step not in ("away", "pairwise", "fw"):
        raise ValueError(f"step: 'away', 'pairwise' or 'fw', got {step!r}")
    pi = _start(V, start, pi0)
    if working_set is None:
        working_set = N > 2000
    rows = make_rows(V, backend, device)
    info = {"toward": 0, "away": 0, "pairwise": 0, "drop": 0, "rounds": 0,
            "working_set": bool(working_set), "step": step, "backend": backend,
            "device": str(device)}
    if not working_set:
        pi, it, ok = _fw_core(rows, pi, eff_target, max_iter, step, info)
        return _finish("fw", V, pi, it, t0, ok, info, rows)

    # Working set: FW on the rows W (the support plus violators); after each solve, check the
    # certificate on all N rows and add the rows with the largest g_i > d.
    inner_target = 1 - (1 - eff_target) / 2
    ws = np.zeros(N, dtype=bool)
    ws[pi > 0] = True
    it_total, ok = 0, False
    g = rows.scan(chol(information_matrix(V, pi), "M(pi)"))
    while True:
        viol = np.flatnonzero(g > d / inner_target)
        if viol.size:
            add = max(2 * d, int(ws.sum()) // 2)
            top = viol[np.argsort(-g[viol])[:add]] if viol.size > add else viol
            ws[top] = True
        idx = np.flatnonzero(ws)
        info["rounds"] += 1
        # Solve the working set 10x closer to optimal than the current design is over all rows
        # (and to inner_target at the end): early rounds, whose working sets still miss rows,
        # are not solved to full precision.
        target = min(1 - 0.1 * (1 - d / float(g.max())), inner_target)
        sub, it, ok_sub = _fw_core(rows.take(idx), pi[idx], target, max_iter - it_total,
                                   step, info)
        it_total += it
        pi = np.zeros(N)
        pi[idx] = sub
        g = rows.scan(chol(information_matrix(V, pi), "M(pi)"))
        if d / g.max() >= eff_target:
            ok = True
            break
        if not ok_sub or it_total >= max_iter:
            break
        ws &= pi > 0  # keep the working set small: drop rows the solver emptied
    info["working_set_size"] = int(ws.sum())
    return _finish("fw", V, pi, it_total, t0, ok, info, rows)


def _start(V: ArrayLike, start: Any, pi0: ArrayLike | None) -> np.ndarray:
    N, d = V.shape
    if pi0 is not None:
        return check_pi(pi0, N)
    if start == "uniform":
        return np.full(N, 1.0 / N)
    if start != "greedy":
        raise ValueError(f"start: 'greedy' or 'uniform', got {start!r}")
    from .greedy import greedy_select
    # A tiny ridge makes greedy's first d picks a pivoted-Cholesky basis: a well-spread,
    # full-rank support of d rows. Among the START_ROWS * d longest rows only (all rows when N
    # is smaller): greedy over all N rows copies V (measured +2 GB and 20 s at N = 1e6,
    # d = 128), and the long rows are where the D-optimal mass goes (g_i grows as |v_i|^2).
    norms = np.einsum("ij,ij->i", V, V)
    m = min(N, START_ROWS * d)
    cand = np.arange(N) if m == N else np.sort(np.argpartition(-norms, m - 1)[:m])
    for rows in (cand, np.arange(N)) if m < N else (cand,):
        idx = rows[greedy_select(V[rows], d, gamma=1e-9 * float(norms.max())).indices]
        pi = np.zeros(N)
        pi[idx] = 1.0 / d
        try:
            chol(information_matrix(V, pi))
            return pi
        except ValueError:  # numerically singular basis: all rows, then the uniform design
            continue
    return np.full(N, 1.0 / N)


def _fw_core(R: Rows, p: np.ndarray, target: float, max_iter: int, step: str,
             info: dict) -> tuple[np.ndarray, int, bool]:
    """Steps on the rows R (m, d) from p (m,); returns (p, iterations, converged).

    Each step is a few O(m d) matrix-vector products: for m d below ~4e6 BLAS threads cost more
    to wake than they save (measured 4-5x slower at m = 1000, d = 32 on 2 cores; torch's CPU
    pool 60x slower on a loaded machine), so CPU steps run single-threaded there.
    """
    if R.shape[0] * R.shape[1] > 4_000_000 or str(getattr(R, "device", "cpu")) != "cpu":
        return _fw_steps(R, p, target, max_iter, step, info)
    from threadpoolctl import threadpool_limits
    with threadpool_limits(limits=1, user_api="blas"), R.single_thread():
        return _fw_steps(R, p, target, max_iter, step, info)


def pairwise_step(gj: float, gk: float, gjk: float) -> float:
    """The unclipped optimal mass delta* = (g_j - g_k) / (2 (g_j g_k - g_jk^2)) moved from the
    support vertex k to j (module docstring); inf when the quadratic is not concave."""
    den = 2.0 * (gj * gk - gjk * gjk)
    return (gj - gk) / den if den > 0 else np.inf


def _fw_steps(R: Rows, p: np.ndarray, target: float, max_iter: int, step: str,
              info: dict) -> tuple[np.ndarray, int, bool]:
    m, d = R.shape
    p = p.copy()
    it, recompute_every = 0, max(4 * d, 200)
    while True:
        sup = np.flatnonzero(p > 0)
        L = chol(weighted_gram(R.host_rows(sup), p[sup]), "M(pi)")
        # M^{-1} from the Cholesky factor: the O(d^2) rank-one updates below maintain it.
        Minv = inv_from_chol(L)
        R.refresh(L)
        for _ in range(recompute_every):
            j, gmax = R.top()
            if d / gmax >= target:
                return p, it, True
            if it >= max_iter:
                return p, it, False
            it += 1
            k, gk = j, gmax
            if step != "fw":
                sup = np.flatnonzero(p > 0)
                gs = R.values(sup)
                a = int(np.argmin(gs))
                k, gk = int(sup[a]), float(gs[a])
            if step == "pairwise" and k != j:
                # Move delta from the support vertex k (smallest g) to j = argmax g. The det
                # ratio (1 + delta g_j)(1 - delta g_k) + delta^2 g_jk^2 is a concave quadratic,
                # maximized at delta* = (g_j - g_k) / (2 (g_j g_k - g_jk^2)); clip to [0, pi_k].
                xj, xk = R.host_rows(j), R.host_rows(k)
                uj = Minv @ xj
                uk = Minv @ xk
                gjk = float(uj @ xk)
                delta = min(pairwise_step(gmax, gk, gjk), p[k])
                # M + delta v_j v_j^T, then - delta v_k v_k^T: two Sherman-Morrison steps.
                r1 = delta / (1.0 + delta * gmax)
                uk1 = uk - r1 * gjk * uj
                gk1 = gk - r1 * gjk * gjk
                r2 = delta / (1.0 - delta * gk1) if delta * gk1 < 1 - 1e-12 else np.inf
                p[j] += delta
                p[k] = 0.0 if delta >= p[k] else p[k] - delta
                info["drop" if p[k] == 0 else "pairwise"] += 1
                if not np.isfinite(r2):
                    break  # the drop left M nearly singular: refactorize from p
                U = np.column_stack([uj, uk1])
                Minv = Minv + (U * (-r1, r2)) @ U.T
                R.update(U, (-r1, r2), 1.0)
                continue
            i, a, kind = j, (gmax - d) / (d * (gmax - 1.0)), "toward"
            if step == "away" and d - gk > gmax - d:  # the away direction has the larger gap
                a_min = -p[k] / (1.0 - p[k]) if p[k] < 1 else -np.inf
                a_star = (gk - d) / (d * (gk - 1.0)) if gk > 1 else -np.inf
                i, a, kind = k, max(a_star, a_min), "away"
                if a == a_min:
                    kind = "drop"
            gi = gmax if i == j else gk
            u = Minv @ R.host_rows(i)
            b = a / (1.0 - a + a * gi)
            Minv = (Minv - b * np.outer(u, u)) / (1.0 - a)
            R.update(u[:, None], (-b,), 1.0 - a)
            p *= 1.0 - a
            p[i] += a
            if kind == "drop":
                p[i] = 0.0
            info[kind] += 1


# --------------------------------------------------------------------------- multiplicative
def multiplicative_design(V: ArrayLike, *, weights: ArrayLike | None = None,
                          efficiency: float = 1 - 1e-6,
                          max_iter: int = 100_000, pi0: ArrayLike | None = None) -> DesignResult:
    """The multiplicative algorithm pi_i <- pi_i g_i / d from the uniform design (or ``pi0``).

    Each iteration costs one Cholesky of M(pi) and all N variances, O(N d^2). It never leaves the
    support of the start, so it starts from the uniform design; convergence is sublinear, so
    tight efficiencies may need ``max_iter`` (converged=False if hit).
    """
    t0 = time.perf_counter()
    V, eff_target, max_iter = _check_relaxed(V, weights, efficiency, max_iter)
    N, d = V.shape
    pi = np.full(N, 1.0 / N) if pi0 is None else check_pi(pi0, N)
    ok = False
    for it in range(max_iter + 1):
        g = variances(V, chol(information_matrix(V, pi), "M(pi)"))
        if d / g.max() >= eff_target:
            ok = True
            break
        if it == max_iter:
            break
        pi = pi * g / d
        pi /= pi.sum()  # sum pi g = d exactly in theory; renormalise away the rounding
    return _finish("multiplicative", V, pi, it, t0, ok, {})


# --------------------------------------------------------------------------- cvxpy
def cvxpy_design(V: ArrayLike, *, weights: ArrayLike | None = None, solver: str = "CLARABEL",
                 verbose: bool = False,
                 **solver_opts) -> DesignResult:
    """Solve max log det(V^T diag(pi) V) s.t. pi >= 0, sum pi = 1 with cvxpy (default Clarabel).

    Formulated as V^T (pi * V) with pi broadcast over the columns, which cvxpy canonicalises
    without the N x N diagonal matrix of ``V.T @ cp.diag(pi) @ V``. The solver's pi is clipped to
    >= 0 and renormalised; log det and the certificate are recomputed here, so they are
    comparable with the other solvers. The solver stops on its own tolerances (Clarabel's
    defaults give an efficiency near 1 - 5e-5); pass e.g. tol_gap_rel=1e-10 to tighten.
    """
    import cvxpy as cp

    t0 = time.perf_counter()
    V = design_vectors(V, weights)
    N, d = V.shape
    require_full_rank(V)
    pi = cp.Variable(N, nonneg=True)
    M = V.T @ cp.multiply(cp.reshape(pi, (N, 1), order="C"), V)
    prob = cp.Problem(cp.Maximize(cp.log_det((M + M.T) / 2)), [cp.sum(pi) == 1])
    try:
        prob.solve(solver=solver, verbose=verbose, **solver_opts)
    except cp.error.SolverError as exc:
        raise ValueError(f"solver: cvxpy/{solver} failed ({exc}); try solver='SCS'") from None
    if pi.value is None:
        raise ValueError(f"solver: cvxpy/{solver} returned status {prob.status!r}")
    p = np.clip(np.asarray(pi.value, dtype=np.float64), 0.0, None)
    # Interior-point solutions carry ~1e-9 mass on every row; zero it so 'support' is meaningful.
    p[p < 1e-9 * p.max()] = 0.0
    stats = prob.solver_stats
    return _finish("cvxpy", V, p, stats.num_iters or 0, t0, prob.status == "optimal",
                   {"solver": solver, "status": prob.status,
                    "solve_seconds": stats.solve_time})


def random_design(N: int, seed: Any) -> np.ndarray:
    """A random point of the simplex (flat Dirichlet), for tests and warm-start experiments."""
    rng = as_rng(seed)
    p = rng.exponential(size=positive_int(N, "N"))
    return p / p.sum()
