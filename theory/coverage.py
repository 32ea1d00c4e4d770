"""Theorem 3's coverage: how often ||theta_hat_n - theta_*||_{Sigma_n} stays within the radius.

Setting (PAPER.md sec. 7, note 5): theta_* := the generating parameter data.theta_true (in the
unit ball), features and offsets fixed, and in each trial fresh labels
s_i ~ Ber(mu(beta (phi_i^T theta_* - b_i))) (eq. 12). theta_hat_n = argmin over the unit ball
of the unregularized L_DPO(theta; S_n) (Theorem 3's estimator, ``fit_dpo(fit_ridge=0, radius=1)``),
and Sigma_n = gamma I + grad^2 L_DPO(theta_*; S_n). The theorem says the miss rate is <= delta
for every delta, whichever S_n is used; S_n here is a uniform subset drawn per trial, or the
picks of a selector run on the trial's labels (ADPO picks depend on past labels only, which is
the conditional independence the proof needs).

Also reported: the norm in the matrix gamma I + c_min sum phi phi^T, for which the proof is
rigorous (PAPER.md sec. 4, remark a).

When a coverage check is informative. theta_hat and theta_* both lie in the unit ball, so
||theta_hat - theta_*||_{Sigma_n} can never exceed sup_{||theta|| <= 1} ||theta - theta_*||_{Sigma_n}
<= 2 sqrt(lambda_max(Sigma_n)) <= 2 sqrt(gamma + beta^2 n / 4). If the radius is above that
sup, 100% coverage is forced by geometry and the check verifies nothing. Each trial records
:func:`attained_ceiling`, a norm that some theta in the ball does reach; a radius below it
could have been exceeded. Checks assert ``radius < ceiling.min()`` before their verdict.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from sim.data import PreferenceData
from sim.dpo import ConvergenceError, check_fit_inputs, dpo_hessian, fit_dpo, sigmoid
from sim.selectors import make_selector
from sim.validation import Seed, positive_int, positive_scalar

from . import bounds, constants
from sim.validation import rng_for


@dataclass
class CoverageResult:
    """``norms`` (R,) ||theta_hat - theta_*||_{Sigma_n} per trial, ``norms_rigorous`` (R,) in
    gamma I + c_min Phi^T Phi, ``ceiling`` (R,) :func:`attained_ceiling` per trial, ``deltas``
    (k,), ``radius`` (k,) Theorem 3's radius (tight c_min) per delta,
    ``radius_self_normalized`` (k,), ``misses`` (k,) trials with norm > radius, ``n``,
    ``gamma``, ``ridge_fallbacks`` (trials whose fit needed the 1e-10 ridge, see
    :func:`fit_unit_ball`)."""

    norms: np.ndarray
    ceiling: np.ndarray
    norms_rigorous: np.ndarray
    deltas: np.ndarray
    radius: np.ndarray
    radius_self_normalized: np.ndarray
    misses: np.ndarray
    n: int
    gamma: float
    ridge_fallbacks: int = 0

    @property
    def coverage(self) -> np.ndarray:
        return 1.0 - self.misses / self.norms.size

    def misses_at(self, radius: np.ndarray, rigorous: bool = False) -> np.ndarray:
        """Trials whose norm exceeds each given radius (k,)."""
        x = self.norms_rigorous if rigorous else self.norms
        return np.array([(x > r).sum() for r in np.atleast_1d(radius)])


#: Ridge of the fallback fit in :func:`fit_unit_ball`, and the largest change of the
#: minimizer it may cause (checked on every use).
FALLBACK_RIDGE, FALLBACK_MAX_SHIFT = 1e-10, 1e-9


def fit_unit_ball(phi: ArrayLike, b: ArrayLike, beta: float, s: ArrayLike) -> tuple[np.ndarray,
                  bool]:
    """argmin over ||theta|| <= 1 of the unregularized L_DPO: (theta (d,), used_fallback).

    If the unregularized Newton path cannot start (ConvergenceError), the fit is redone with
    the ridge FALLBACK_RIDGE and the shift is bounded, not assumed: the ridge moves the
    minimizer by at most FALLBACK_RIDGE ||theta|| / lambda_min(grad^2 L(theta)) (strong
    convexity of the unregularized loss near theta). If that bound exceeds FALLBACK_MAX_SHIFT
    the fit raises ValueError naming the sample. The caller records the fallback.
    """
    phi, b, beta, s, _ = check_fit_inputs(phi, b, beta, s, 0.0)  # arrays for the Hessian below
    try:
        return fit_dpo(phi, b, beta, s, fit_ridge=0.0, radius=1.0).theta, False
    except ConvergenceError:
        theta = fit_dpo(phi, b, beta, s, fit_ridge=FALLBACK_RIDGE, radius=1.0).theta
    lam_min = float(np.linalg.eigvalsh(dpo_hessian(theta, phi, b, beta)).min())
    shift = FALLBACK_RIDGE * float(np.linalg.norm(theta)) / lam_min if lam_min > 0 else np.inf
    if not shift <= FALLBACK_MAX_SHIFT:
        raise ValueError(f"s: the unregularized unit-ball fit failed and the {FALLBACK_RIDGE} "
                         f"ridge may move the minimizer by {shift:.3g} > {FALLBACK_MAX_SHIFT}; "
                         "use a larger budget n (the Hessian is near singular)")
    return theta, True


def attained_ceiling(sigma: np.ndarray, theta_star: np.ndarray, radius: float = 1.0) -> float:
    """A value of ||theta - theta_*||_Sigma that some theta with ||theta|| <= radius attains.

    The max over the candidates theta = +-radius u_max (top eigenvector of Sigma (d, d)) and
    theta = -radius theta_* / ||theta_*||. A lower bound on the sup over the ball (and at least
    sqrt(lambda_max(Sigma)) radius): a confidence radius below it could have been exceeded.
    """
    sigma = np.asarray(sigma, dtype=np.float64)
    th = np.asarray(theta_star, dtype=np.float64)
    u = np.linalg.eigh(sigma)[1][:, -1]
    cands = [radius * u, -radius * u]
    if np.linalg.norm(th) > 0:
        cands.append(-radius * th / np.linalg.norm(th))
    return float(max(np.sqrt((c - th) @ sigma @ (c - th)) for c in cands))


def coverage_study(data: PreferenceData, n: int, *, deltas: ArrayLike = (0.05,),
                   trials: int = 200, gamma: float = 1.0, method: str = "uniform",
                   seed: Seed = 0, selector_kwargs: dict[str, Any] | None = None,
                   fit: Callable[[np.ndarray, np.ndarray, float, np.ndarray],
                                 tuple[np.ndarray, bool]] = fit_unit_ball,
                   radius_fn: Callable[..., float] = bounds.theorem3_radius) -> CoverageResult:
    """Run ``trials`` independent label draws and measure Theorem 3's coverage.

    Args:
        data: features phi (N, d), offsets b, beta and theta_true; Assumption 2 should hold
            (``gaussian_env(..., assumption2=True)``), else the theorem does not apply.
        n: budget. deltas: failure probabilities. gamma: ridge of Sigma_n (and of the design).
        method: "uniform" (a fresh uniform S_n per trial) or a selector name run on the
            trial's labels (e.g. "adpo"), with ``selector_kwargs``.
        seed: trial r uses the stream (seed, r).
        fit: the estimator, (phi, b, beta, s) -> (theta, used_fallback); radius_fn: Theorem
            3's radius, (d, n, beta, gamma, delta) -> float. Both injectable so that tests can
            hand in wrong versions and watch the check fail.
    """
    if data.theta_true is None:
        raise ValueError("data.theta_true: coverage needs the generating parameter as theta_*")
    n, trials = positive_int(n, "n"), positive_int(trials, "trials")
    gamma = positive_scalar(gamma, "gamma")
    if n > data.N:
        raise ValueError(f"n: budget {n} exceeds N = {data.N}")
    delta_grid = np.atleast_1d(np.asarray(deltas, dtype=np.float64))
    theta = data.theta_true
    p_true = sigmoid(data.beta * (data.phi @ theta - data.b))
    cm = constants.c_min_tight(data.beta)
    norms, norms_rig, ceiling = np.empty(trials), np.empty(trials), np.empty(trials)
    fallbacks = 0
    for r in range(trials):
        rng = rng_for(seed, r)
        s = (rng.random(data.N) < p_true).astype(np.int8)
        if method == "uniform":
            idx = rng.choice(data.N, size=n, replace=False)
        else:
            sel = make_selector(method, data.with_(s=s), seed=rng, gamma=gamma,
                                **(selector_kwargs or {}))
            idx = sel.select(n)
        phi, b = data.phi[idx], data.b[idx]
        theta_hat, fell_back = fit(phi, b, data.beta, s[idx])
        fallbacks += int(fell_back)
        delta_theta = theta_hat - theta
        sig = dpo_hessian(theta, phi, b, data.beta, ridge=gamma)
        norms[r] = np.sqrt(delta_theta @ sig @ delta_theta)
        ceiling[r] = attained_ceiling(sig, theta)
        rig = gamma * delta_theta @ delta_theta + cm * np.sum((phi @ delta_theta) ** 2)
        norms_rig[r] = np.sqrt(rig)
    radius = np.array([radius_fn(data.d, n, data.beta, gamma, dl) for dl in delta_grid])
    radius_sn = np.array([bounds.self_normalized_radius(data.d, n, data.beta, gamma, dl)
                          for dl in delta_grid])
    misses = np.array([(norms > r).sum() for r in radius])
    return CoverageResult(norms=norms, norms_rigorous=norms_rig, ceiling=ceiling, deltas=delta_grid,
                          radius=radius, radius_self_normalized=radius_sn, misses=misses, n=n,
                          gamma=gamma, ridge_fallbacks=fallbacks)


def coverage_verdict(norms: np.ndarray, radius: float, delta: float, ceiling: float, *,
                     false_alarm: float = 1e-6) -> dict[str, bool | int]:
    """Theorem 3's coverage check on measured ``norms`` (R,) at one ``delta``.

    ``informative``: radius < min(ceiling) (every trial's norm could have exceeded the radius);
    ``misses``: trials with norm > radius; ``limit``: :func:`binomial_miss_limit`;
    ``passed``: informative and misses <= limit. If Theorem 3 holds, a passing informative
    check fails with probability <= false_alarm.
    """
    norms = np.asarray(norms, dtype=np.float64)
    misses = int((norms > radius).sum())
    limit = binomial_miss_limit(norms.size, delta, false_alarm)
    informative = bool(radius < np.min(ceiling))
    return {"informative": informative, "misses": misses, "limit": limit,
            "passed": informative and misses <= limit}


def binomial_miss_limit(trials: int, delta: float, false_alarm: float = 1e-6) -> int:
    """The smallest k with P(Binomial(trials, delta) > k) <= false_alarm.

    If the true miss rate is <= delta (Theorem 3 holds), more than k misses occur with
    probability <= false_alarm, because the binomial tail grows with the rate.
    """
    from scipy.stats import binom

    k = int(binom.isf(false_alarm, positive_int(trials, "trials"), positive_scalar(delta, "delta")))
    while binom.sf(k, trials, delta) > false_alarm:
        k += 1
    return k
