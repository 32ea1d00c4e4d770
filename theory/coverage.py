"""Theorem 3's coverage: how often ||theta_hat_n - theta_*||_{Sigma_n} stays within the radius.

Setting (PAPER.md sec. 7, note 5): theta_* := the generating parameter data.theta_true (in the
unit ball), features and offsets fixed, and in each trial fresh labels
s_i ~ Ber(mu(beta (phi_i^T theta_* - b_i))) (eq. 12). theta_hat_n = argmin over the unit ball
of the unregularized L_DPO(theta; S_n) (Theorem 3's estimator, ``fit_dpo(gamma=0, radius=1)``),
and Sigma_n = gamma I + grad^2 L_DPO(theta_*; S_n). The theorem says the miss rate is <= delta
for every delta, whichever S_n is used; S_n here is a uniform subset drawn per trial, or the
picks of a selector run on the trial's labels (ADPO picks depend on past labels only, which is
the conditional independence the proof needs).

Also reported: the norm in the matrix gamma I + c_min sum phi phi^T, for which the proof is
rigorous (PAPER.md sec. 4, remark a).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.data import PreferenceData
from sim.dpo import ConvergenceError, dpo_hessian, fit_dpo, sigmoid
from sim.selectors import make_selector
from sim.validation import positive_int, positive_scalar

from . import bounds, constants
from sim.validation import rng_for


@dataclass
class CoverageResult:
    """``norms`` (R,) ||theta_hat - theta_*||_{Sigma_n} per trial, ``norms_rigorous`` (R,) in
    gamma I + c_min Phi^T Phi, ``deltas`` (k,), ``radius`` (k,) Theorem 3's radius (tight
    c_min) per delta, ``radius_self_normalized`` (k,), ``misses`` (k,) trials with
    norm > radius, ``n``, ``gamma``."""

    norms: np.ndarray
    norms_rigorous: np.ndarray
    deltas: np.ndarray
    radius: np.ndarray
    radius_self_normalized: np.ndarray
    misses: np.ndarray
    n: int
    gamma: float

    @property
    def coverage(self) -> np.ndarray:
        return 1.0 - self.misses / self.norms.size

    def misses_at(self, radius: np.ndarray, rigorous: bool = False) -> np.ndarray:
        """Trials whose norm exceeds each given radius (k,)."""
        x = self.norms_rigorous if rigorous else self.norms
        return np.array([(x > r).sum() for r in np.atleast_1d(radius)])


def _fit_unit_ball(phi, b, beta, s):
    """argmin over ||theta|| <= 1 of the unregularized loss; a 1e-10 ridge only if the
    unconstrained Newton path cannot start (it changes the minimizer by < 1e-9)."""
    try:
        return fit_dpo(phi, b, beta, s, gamma=0.0, radius=1.0).theta
    except ConvergenceError:
        return fit_dpo(phi, b, beta, s, gamma=1e-10, radius=1.0).theta


def coverage_study(data: PreferenceData, n: int, *, deltas=(0.05,), trials: int = 200,
                   gamma: float = 1.0, method: str = "uniform", seed=0,
                   selector_kwargs: dict | None = None) -> CoverageResult:
    """Run ``trials`` independent label draws and measure Theorem 3's coverage.

    Args:
        data: features phi (N, d), offsets b, beta and theta_true; Assumption 2 should hold
            (``gaussian_env(..., assumption2=True)``), else the theorem does not apply.
        n: budget. deltas: failure probabilities. gamma: ridge of Sigma_n (and of the design).
        method: "uniform" (a fresh uniform S_n per trial) or a selector name run on the
            trial's labels (e.g. "adpo"), with ``selector_kwargs``.
        seed: trial r uses the stream (seed, r).
    """
    if data.theta_true is None:
        raise ValueError("data.theta_true: coverage needs the generating parameter as theta_*")
    n, trials = positive_int(n, "n"), positive_int(trials, "trials")
    gamma = positive_scalar(gamma, "gamma")
    if n > data.N:
        raise ValueError(f"n: budget {n} exceeds N = {data.N}")
    deltas = np.atleast_1d(np.asarray(deltas, dtype=np.float64))
    theta = data.theta_true
    p_true = sigmoid(data.beta * (data.phi @ theta - data.b))
    cm = constants.c_min_tight(data.beta)
    norms, norms_rig = np.empty(trials), np.empty(trials)
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
        delta_theta = _fit_unit_ball(phi, b, data.beta, s[idx]) - theta
        sig = dpo_hessian(theta, phi, b, data.beta, gamma=gamma)
        norms[r] = np.sqrt(delta_theta @ sig @ delta_theta)
        rig = gamma * delta_theta @ delta_theta + cm * np.sum((phi @ delta_theta) ** 2)
        norms_rig[r] = np.sqrt(rig)
    radius = np.array([bounds.theorem3_radius(data.d, n, data.beta, gamma, dl) for dl in deltas])
    radius_sn = np.array([bounds.self_normalized_radius(data.d, n, data.beta, gamma, dl)
                          for dl in deltas])
    misses = np.array([(norms > r).sum() for r in radius])
    return CoverageResult(norms=norms, norms_rigorous=norms_rig, deltas=deltas, radius=radius,
                          radius_self_normalized=radius_sn, misses=misses, n=n, gamma=gamma)


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
