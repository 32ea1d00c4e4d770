"""Empirical checks of the paper's lemmas, Assumption 4 and Theorem 4, on instances and runs.

Each check returns plain numbers (or small dataclasses of arrays) so that tests assert on them
and figure scripts plot them. What is checked is the project's own output (``sim.dpo``'s
gradient and Hessian, the gains / log det / kappa / picks that ``sim.design.greedy_select`` and
the selectors report); the references are computed independently of it: finite differences
for derivatives, ``numpy.linalg.slogdet`` of explicitly formed H_t = gamma I + sum_{s<=t} v_s
v_s^T, fresh Cholesky factors for quadratic forms (never the engines' Sherman-Morrison
state), and a brute-force greedy loop for kappa on small instances. The pieces compared are
arguments (or injectable callables), so tests hand in wrong versions and watch each check fail.

Shapes: phi (N, d), b (N,), s (N,), theta (d,), H (d, d), V (n, d) = the picked weighted
vectors v_{t, I_t} in selection order (weights frozen at the round of the pick, Algorithm 1
line 8).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import ArrayLike

from sim.data import PreferenceData
from sim.dpo import dpo_gradient, dpo_hessian, dpo_loss, dpo_weights
from sim.linalg import chol_quad_forms, cholesky
from sim.metrics import max_design_variance
from sim.registry import METHODS
from sim.selectors import Selector, make_selector, method_names
from sim.validation import as_matrix, as_vector, positive_int, positive_scalar
from sim.validation import rng_for  # noqa: F401  (moved to sim.validation; old import path kept)

from . import bounds, constants


# --------------------------------------------------------------------------- linear algebra
def quad_forms(h: np.ndarray, x: np.ndarray) -> np.ndarray:
    """x_i^T H^{-1} x_i for the rows of x (m, d), by one Cholesky factor of H (d, d). Shape (m,)."""
    return chol_quad_forms(np.atleast_2d(x), cholesky(as_matrix(h, "H")))


def design_matrix(v: np.ndarray, gamma: float) -> np.ndarray:
    """H = gamma I + V^T V for the picked vectors V (t, d) (Algorithm 1, line 8)."""
    v = np.atleast_2d(v)
    return positive_scalar(gamma, "gamma") * np.eye(v.shape[1]) + v.T @ v


# --------------------------------------------------------------------------- Lemma 1
def lemma1_check(phi: ArrayLike, b: ArrayLike, beta: float, s: ArrayLike, theta: ArrayLike, *,
                 eps: float = 1e-5, gradient: Callable[..., np.ndarray] = dpo_gradient,
                 hessian: Callable[..., np.ndarray] = dpo_hessian,
                 loss: Callable[..., float] = dpo_loss) -> dict[str, float]:
    """Lemma 1 against central finite differences.

    ``gradient``, ``hessian`` and ``loss`` default to the project's :mod:`sim.dpo` functions
    (the code under test); tests pass wrong versions to show the check catches them.

    Returns {"grad_err", "hess_err", "grad_scale", "hess_scale", "min_eig"}: max-abs errors of
    the analytic gradient beta sum (mu_i - s_i) phi_i against differences of the loss (eq. 6),
    and of the analytic Hessian beta^2 sum mu_i (1 - mu_i) phi_i phi_i^T against differences of
    the analytic gradient; the scales are max-abs entries, and min_eig checks PSD-ness.
    """
    phi = as_matrix(phi, "phi")
    d = phi.shape[1]
    theta = as_vector(theta, "theta", length=d)
    g = gradient(theta, phi, b, beta, s)
    h = hessian(theta, phi, b, beta)
    g_fd, h_fd = np.empty(d), np.empty((d, d))
    for j in range(d):
        e = np.zeros(d)
        e[j] = eps
        g_fd[j] = (loss(theta + e, phi, b, beta, s) - loss(theta - e, phi, b, beta, s)) / (2 * eps)
        h_fd[:, j] = (gradient(theta + e, phi, b, beta, s)
                      - gradient(theta - e, phi, b, beta, s)) / (2 * eps)
    return {"grad_err": float(np.max(np.abs(g - g_fd))), "hess_err": float(np.max(np.abs(h - h_fd))),
            "grad_scale": float(np.max(np.abs(g))), "hess_scale": float(np.max(np.abs(h))),
            "min_eig": float(np.linalg.eigvalsh(h).min())}


# --------------------------------------------------------------------------- the greedy engine (eq. 10)
def brute_force_gains(v_all: np.ndarray, gamma: float, indices: ArrayLike) -> np.ndarray:
    """log det H_t - log det H_{t-1} for the picks ``indices`` (n,) of rows of v_all (N, d).

    Each H_t = gamma I + sum_{s <= t} v_{I_s} v_{I_s}^T is formed explicitly and its log det
    taken by ``numpy.linalg.slogdet`` (no determinant lemma, no rank-one update). (n,).
    """
    v = as_matrix(v_all, "v_all")
    idx = np.asarray(indices, dtype=np.int64)
    d = v.shape[1]
    h = positive_scalar(gamma, "gamma") * np.eye(d)
    prev = np.linalg.slogdet(h)[1]
    out = np.empty(idx.size)
    for t, i in enumerate(idx):
        h = h + np.outer(v[i], v[i])
        cur = np.linalg.slogdet(h)[1]
        out[t], prev = cur - prev, cur
    return out


def greedy_optimality_gaps(v_all: np.ndarray, gamma: float, indices: ArrayLike) -> np.ndarray:
    """Per pick t: (best log-det gain over the rows not yet picked) - (gain of the pick).

    The gain of every row is log det(H_{t-1} + v v^T) - log det H_{t-1} by a batched
    ``numpy.linalg.slogdet`` of the explicitly formed matrices (eq. 10 literally, no greedy
    identity). Zero up to rounding for an exact greedy run (paper eq. 10, full argmax); large
    when the picks ignore the design. O(n N d^3): small instances. (n,).
    """
    v = as_matrix(v_all, "v_all")
    idx = np.asarray(indices, dtype=np.int64)
    n_rows, d = v.shape
    h = positive_scalar(gamma, "gamma") * np.eye(d)
    free = np.ones(n_rows, dtype=bool)
    outer = v[:, :, None] * v[:, None, :]
    gaps = np.empty(idx.size)
    for t, i in enumerate(idx):
        base = np.linalg.slogdet(h)[1]
        gain = np.linalg.slogdet(h[None] + outer)[1] - base
        gaps[t] = gain[free].max() - gain[i]
        free[i] = False
        h = h + outer[i]
    return gaps


def engine_max_scores(gains: np.ndarray, kappa: float) -> np.ndarray:
    """max_i v_i^T H_{t-1}^{-1} v_i per round, as the engine reports it: kappa_t (e^{g_t} - 1).

    gains (n,) = log(1 + score of the pick) and kappa (n,) = max score / pick score are the
    engine's public outputs (``DesignResult.gains/kappa``, ``Selector.gains_/kappa_``). (n,).
    """
    return np.asarray(kappa, dtype=np.float64) * np.expm1(np.asarray(gains, dtype=np.float64))


def reference_max_scores(v_all: np.ndarray, gamma: float, indices: ArrayLike) -> np.ndarray:
    """max over ALL rows of v_i^T H_{t-1}^{-1} v_i, t = 1..n, with H_{t-1} formed explicitly
    from the picks ``indices`` and solved by ``numpy.linalg.solve`` (independent of the
    project's Cholesky helpers). Reference for :func:`engine_max_scores`. (n,)."""
    v = as_matrix(v_all, "v_all")
    idx = np.asarray(indices, dtype=np.int64)
    h = positive_scalar(gamma, "gamma") * np.eye(v.shape[1])
    out = np.empty(idx.size)
    for t, i in enumerate(idx):
        out[t] = np.einsum("ij,ji->i", v, np.linalg.solve(h, v.T)).max()
        h = h + np.outer(v[i], v[i])
    return out


def lemma5_max_increase(q_path: np.ndarray) -> float:
    """Lemma 5: max over t (and i) of (q[t] - q[t-1]) / q[t-1]; <= 0 up to rounding.

    q_path: (n,) per-round values, e.g. :func:`engine_max_scores` of a fixed-weight run (the
    max of non-increasing forms is non-increasing), or (n + 1, m) per row."""
    q = np.asarray(q_path)
    return float(np.max((q[1:] - q[:-1]) / q[:-1]))


def picked_scores(v_picked: np.ndarray, gamma: float) -> np.ndarray:
    """y_t = v_t^T H_{t-1}^{-1} v_t, t = 1..n, each from a fresh Cholesky of H_{t-1}. (n,).

    By the greedy identity, log(1 + y_t) is the log-det gain of pick t (eq. 10).
    """
    v = as_matrix(v_picked, "v_picked")
    h = positive_scalar(gamma, "gamma") * np.eye(v.shape[1])
    y = np.empty(v.shape[0])
    for t in range(v.shape[0]):
        y[t] = quad_forms(h, v[t][None])[0]
        h = h + np.outer(v[t], v[t])
    return y


def lemma6_ratios(v_picked: np.ndarray, gamma: float, beta: float, *,
                  constant: float | None = None) -> np.ndarray:
    """Lemma 6 along a run: y_t / (c log(1 + y_t)) with y_t from :func:`picked_scores`. (n,).

    c = c_max / (gamma log(1 + c_max / gamma)). Lemma 6 says every ratio is <= 1 when
    ||v_t||^2 <= c_max (equality when ||v_t||^2 = c_max at t = 1, e.g. ADPO's cold start).
    ``constant`` overrides c (tests inject wrong ones).
    """
    y = picked_scores(v_picked, gamma)
    c = bounds.lemma6_constant(beta, gamma) if constant is None else constant
    return y / (c * np.log1p(y))


# --------------------------------------------------------------------------- runs of selectors
@dataclass
class Trace:
    """A selector run: ``indices`` (n,), picked weighted vectors ``v`` (n, d), ``gains`` (n,)
    as the selector reported them, ``kappa`` (n,) (NaN where not recorded), ``selector``."""

    indices: np.ndarray
    v: np.ndarray
    gains: np.ndarray
    kappa: np.ndarray
    selector: Selector


@runtime_checkable
class RecordsPicks(Protocol):
    """What a selector tagged ``greedy-design`` records of each pick (as
    :class:`sim.selectors.greedy.GreedySelector` does): its log det gain and kappa_t."""

    gains_: list[float]

    @property
    def kappa_(self) -> np.ndarray:
        """(n,) Assumption 4's kappa_t per pick (with ``record_kappa=True``)."""


def selector_trace(name: str, data: PreferenceData, n: int, **kwargs: Any) -> Trace:
    """Run a greedy selector ("adpo", "adpo+", "oracle", "apo") and record each pick's v_t.

    The picked vectors are captured by the selector's public ``on_pick(i, v)`` hook, v being
    the vector of its rank-one update (Algorithm 1 line 8), so they carry the weights frozen at
    pick time. kwargs go to :func:`sim.selectors.make_selector` (e.g. n_candidates, gamma,
    alpha, seed).
    """
    if "greedy-design" not in METHODS.get(name).tags:
        raise ValueError(f"name: selector {name!r} has no greedy design engine to trace; use "
                         f"one of {', '.join(method_names('greedy-design'))}")
    kwargs.setdefault("seed", 0)
    kwargs.setdefault("record_kappa", True)
    sel = make_selector(name, data, **kwargs)
    if not isinstance(sel, RecordsPicks):
        raise ValueError(f"name: selector {name!r} is tagged greedy-design but records no "
                         f"gains_ / kappa_ per pick, so its run cannot be traced")
    picked: list[np.ndarray] = []
    sel.observe(on_pick=lambda i, v: picked.append(np.array(v, dtype=np.float64)))
    idx = sel.select(positive_int(n, "n"))
    kappa = np.asarray(sel.kappa_) if kwargs["record_kappa"] else np.full(len(idx), np.nan)
    return Trace(indices=idx, v=np.asarray(picked), gains=np.asarray(sel.gains_), kappa=kappa,
                 selector=sel)


def reference_greedy(phi: ArrayLike, weights: ArrayLike | None, gamma: float,
                     n: int) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force greedy with fixed weights (ADPO+ with alpha = 0): indices (n,), kappa (n,).

    Round t: scores w_i phi_i^T H_{t-1}^{-1} phi_i for all N from a fresh Cholesky of H_{t-1};
    I_t = the best unselected row (ties to the lowest index); kappa_t = the max score over ALL
    N rows (selected included, Assumption 4) / the score of I_t. O(n N d^2): small cases only.
    """
    phi = as_matrix(phi, "phi")
    w = (np.ones(phi.shape[0]) if weights is None
         else as_vector(weights, "weights", length=phi.shape[0]))
    n = positive_int(n, "n")
    v_all = np.sqrt(w)[:, None] * phi
    h = positive_scalar(gamma, "gamma") * np.eye(phi.shape[1])
    free = np.ones(phi.shape[0], dtype=bool)
    idx, kappa = np.empty(n, dtype=np.int64), np.empty(n)
    for t in range(n):
        score = quad_forms(h, v_all)
        masked = np.where(free, score, -np.inf)
        i = int(np.argmax(masked))
        idx[t], kappa[t] = i, score.max() / score[i]
        free[i] = False
        h = h + np.outer(v_all[i], v_all[i])
    return idx, kappa


def kappa_along_run(name: str, data: PreferenceData, n: int, *, n_candidates: int | None = None,
                    **kwargs: Any) -> np.ndarray:
    """Assumption 4's kappa_t, t = 1..n, along a run of selector ``name`` (adpo / adpo+).

    kappa_t = max over ALL i in [N] (selected rows included) of v_{t,i}^T H_{t-1}^{-1} v_{t,i}
    divided by the picked row's score, as the selector measures it (``record_kappa=True``);
    ``n_candidates=None`` is the exact argmax, 256 the paper's random subset.
    """
    return selector_trace(name, data, n, n_candidates=n_candidates, record_kappa=True,
                          **kwargs).kappa


# --------------------------------------------------------------------------- Theorem 4
def theorem4_along_run(data: PreferenceData, indices: ArrayLike, gamma: float, kappa: ArrayLike,
                       n_grid: Iterable[int], *,
                       bound: Callable[..., float] = bounds.theorem4_bound
                       ) -> dict[str, np.ndarray]:
    """Theorem 4 at each n in n_grid for the first n picks of ``indices``.

    Measured: max_i phi_i^T Sigma_n^{-1} phi_i over all N rows, Sigma_n = gamma I +
    grad^2 L_DPO(theta_*; S_n) with theta_* = data.theta_star
    (:func:`sim.metrics.max_design_variance`, also run_cell's ``max_design_variance`` metric). Bounds: printed
    and corrected, with kappa = max_{t <= n} kappa_t of the run (the smallest constant that
    makes Assumption 4 hold up to round n; ``kappa`` is the run's (n,) kappa_t, or one number
    used for every round). ``bound`` (d, n, beta, gamma, kappa, form=) is
    injectable (tests pass wrong versions). Returns arrays keyed "n", "measured", "kappa",
    "printed", "corrected", and "ceiling" = max_i ||phi_i||^2 / gamma, the value no design can
    exceed (:func:`theory.bounds.theorem4_ceiling`): where a bound is >= it, the check at that
    n is vacuous.
    """
    if data.theta_star is None:
        raise ValueError("data.theta_star: Theorem 4's Sigma_n is the Hessian at theta_star")
    idx = np.asarray(indices, dtype=np.int64)
    kappas = np.asarray(kappa, dtype=np.float64)
    if kappas.ndim == 0:  # one constant for every round
        kappas = np.full(idx.size, float(kappas))
    if kappas.ndim != 1:
        raise ValueError(f"kappa: expected a number or the run's kappa_t (n,), got shape "
                         f"{kappas.shape}")
    rows: dict[str, list[float]] = {
        k: [] for k in ("n", "measured", "kappa", "printed", "corrected", "ceiling")}
    ceiling = bounds.theorem4_ceiling(gamma, float(np.linalg.norm(data.phi, axis=1).max()))
    for n in n_grid:
        n = positive_int(n, "n_grid")
        if n > idx.size:
            raise ValueError(f"n_grid: {n} exceeds the run's {idx.size} picks")
        if n > kappas.size or np.isnan(kappas[:n]).any():
            raise ValueError(f"kappa: kappa_t of rounds 1..{n} not recorded (NaN or missing); "
                             f"trace the run with record_kappa=True")
        k = float(max(1.0, np.max(kappas[:n])))
        rows["n"].append(n)
        rows["measured"].append(max_design_variance(data, idx[:n], gamma))
        rows["kappa"].append(k)
        rows["ceiling"].append(ceiling)
        for form in bounds.FORMS:
            rows[form].append(bound(data.d, n, data.beta, gamma, k, form=form))
    return {k: np.asarray(v) for k, v in rows.items()}


def assumption3_weights(data: PreferenceData, theta: ArrayLike) -> tuple[float, float]:
    """(min_i, max_i) of beta^2 mu_i(theta)(1 - mu_i(theta)): what Assumption 3 brackets."""
    w = dpo_weights(data.phi, data.b, data.beta, np.asarray(theta))
    return float(w.min()), float(w.max())


def assumption2_holds(data: PreferenceData, *, tol: float = 1e-12) -> bool:
    """||phi_i|| <= 1, |b_i| <= 1 and, where present, ||theta_star||, ||theta_true|| <= 1."""
    ok = bool(np.all(np.linalg.norm(data.phi, axis=1) <= 1 + tol) and np.all(np.abs(data.b) <= 1 + tol))
    for th in (data.theta_star, data.theta_true):
        if th is not None:
            ok &= bool(np.linalg.norm(th) <= 1 + tol)
    return ok


def c_min_holds(data: PreferenceData, theta: ArrayLike) -> bool:
    """Whether the tight c_min and c_max bracket the weights at theta (Assumption 3)."""
    lo, hi = assumption3_weights(data, theta)
    return constants.c_min_tight(data.beta) <= lo * (1 + 1e-12) and hi <= constants.c_max(data.beta)
