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

Runner cells. One trial is :func:`coverage_trial`; :func:`coverage_study` runs R of them on the
streams (seed, r), and the runner's cell kind ``coverage`` (registered here, found by
``sim.runner`` through the entry-point group ``adpo.cells``) runs one per cell,
:func:`run_coverage_cell`, the trial being the cell's seed and the features the env table's
fixed ``seed``: sweeps cache, resume and parallelize trials like any other cells.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from sim.data import PreferenceData
from sim.dpo import ConvergenceError, check_fit_inputs, dpo_hessian, fit_dpo, sigmoid
from sim.runner import CellKind, never, register_cell_kind
from sim.selectors import make_selector, method_options
from sim.validation import Seed, positive_int, positive_scalar, rng_for

from . import bounds, constants


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


def coverage_trial(data: PreferenceData, budgets: Iterable[int], rng: np.random.Generator, *,
                   method: str = "uniform", gamma: float = 1.0,
                   selector_kwargs: dict[str, Any] | None = None,
                   fit: Callable[[np.ndarray, np.ndarray, float, np.ndarray],
                                 tuple[np.ndarray, bool]] = fit_unit_ball) -> list[dict]:
    """One trial of Theorem 3's coverage on the fixed features of ``data``, from ``rng``.

    Fresh labels s_i ~ Ber(mu(beta (phi_i^T theta_* - b_i))) for all N rows (eq. 12, theta_* =
    data.theta_true), then S_n: for ``method = "uniform"`` one uniformly random ordered draw of
    max(budgets) distinct rows (``rng.choice``; S_n is its first n), otherwise the picks of the
    selector ``method`` run on the trial's labels (seeded by ``rng``, with ``selector_kwargs``
    and the design ridge ``gamma`` when it takes one), continued from budget to budget. At each
    budget n (sorted): theta_hat_n = ``fit(phi_S, b_S, beta, s_S)`` (Theorem 3's unit-ball MLE),
    Sigma_n = gamma I + grad^2 L_DPO(theta_*; S_n), and the returned dict per n holds
    ``n``, ``norm`` ||theta_hat_n - theta_*||_{Sigma_n}, ``norm_rigorous`` (the norm in gamma I +
    c_min Phi^T Phi), ``ceiling`` (:func:`attained_ceiling` of Sigma_n) and ``ridge_fallback``
    (1 if the fit needed :data:`FALLBACK_RIDGE`, else 0).
    """
    budgets = sorted({positive_int(n, "budgets") for n in budgets})
    theta = data.theta_true
    if theta is None:
        raise ValueError("data.theta_true: coverage needs the generating parameter as theta_*")
    if budgets[-1] > data.N:
        raise ValueError(f"n: budget {budgets[-1]} exceeds N = {data.N}")
    p_true = sigmoid(data.beta * (data.phi @ theta - data.b))
    s = (rng.random(data.N) < p_true).astype(np.int8)
    if method == "uniform":
        order = rng.choice(data.N, size=budgets[-1], replace=False)
    else:
        sel = make_selector(method, data.with_(s=s), seed=rng, **(selector_kwargs or {}),
                            **method_options(method, {"gamma": gamma}))
        chosen: list[int] = []
    cm = constants.c_min_tight(data.beta)
    out = []
    for n in budgets:
        if method == "uniform":
            idx = order[:n]
        else:
            chosen.extend(sel.select(n - len(chosen)).tolist())
            idx = np.asarray(chosen)
        phi, b = data.phi[idx], data.b[idx]
        theta_hat, fell_back = fit(phi, b, data.beta, s[idx])
        delta_theta = theta_hat - theta
        sig = dpo_hessian(theta, phi, b, data.beta, ridge=gamma)
        rig = gamma * delta_theta @ delta_theta + cm * np.sum((phi @ delta_theta) ** 2)
        out.append({"n": n, "norm": float(np.sqrt(delta_theta @ sig @ delta_theta)),
                    "norm_rigorous": float(np.sqrt(rig)),
                    "ceiling": attained_ceiling(sig, theta), "ridge_fallback": int(fell_back)})
    return out


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
        seed: trial r is :func:`coverage_trial` on the stream (seed, r) (``rng_for(seed, r)``).
        fit: the estimator, (phi, b, beta, s) -> (theta, used_fallback); radius_fn: Theorem
            3's radius, (d, n, beta, gamma, delta) -> float. Both injectable so that tests can
            hand in wrong versions and watch the check fail.
    """
    if data.theta_true is None:
        raise ValueError("data.theta_true: coverage needs the generating parameter as theta_*")
    n, trials = positive_int(n, "n"), positive_int(trials, "trials")
    gamma = positive_scalar(gamma, "gamma")
    delta_grid = np.atleast_1d(np.asarray(deltas, dtype=np.float64))
    rows = [coverage_trial(data, [n], rng_for(seed, r), method=method, gamma=gamma,
                           selector_kwargs=selector_kwargs, fit=fit)[0] for r in range(trials)]
    norms, norms_rig, ceiling = (np.array([row[k] for row in rows])
                                 for k in ("norm", "norm_rigorous", "ceiling"))
    radius = np.array([radius_fn(data.d, n, data.beta, gamma, dl) for dl in delta_grid])
    radius_sn = np.array([bounds.self_normalized_radius(data.d, n, data.beta, gamma, dl)
                          for dl in delta_grid])
    misses = np.array([(norms > r).sum() for r in radius])
    return CoverageResult(norms=norms, norms_rigorous=norms_rig, ceiling=ceiling, deltas=delta_grid,
                          radius=radius, radius_self_normalized=radius_sn, misses=misses, n=n,
                          gamma=gamma, ridge_fallbacks=sum(row["ridge_fallback"] for row in rows))


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


# --------------------------------------------------------------------------- runner cells
#: Rows of a coverage cell at each budget n (see :func:`coverage_trial`).
COVERAGE_METRICS = ("norm", "norm_rigorous", "ceiling", "ridge_fallback")
#: Keys of a coverage ``[[methods]]`` table besides the selector's options.
COVERAGE_KEYS = ("name", "label", "gamma")
#: Method options a coverage cell refuses, and why.
COVERAGE_REFUSED = {
    "fit_ridge": "Theorem 3's estimator is the unregularized unit-ball MLE (fit_unit_ball); "
                 "drop it",
    "radius": "Theorem 3's estimator is the unregularized unit-ball MLE (radius 1); drop it",
    "replace": "a repeated pick would reuse its label; coverage cells pick distinct pairs",
    "series": "coverage cells record no per-round series; drop it"}


def coverage_config(method: dict, where: str = "method") -> dict[str, Any]:
    """The check of a coverage ``[[methods]]`` table (the runner's ``CellKind.check_method``):
    ``name`` a pairwise method of sim.registry.METHODS, ``label``, ``gamma`` (Theorem 3's ridge
    of Sigma_n, default 1.0, also the design ridge of a method that takes one) and the method's
    own options, validated by its registry entry; ``uniform`` takes none (it is one
    ``rng.choice`` draw, :func:`coverage_trial`). Returns {"method", "gamma",
    "selector_kwargs"}; ValueError naming ``where.key``."""
    from sim.registry import METHODS
    from sim.runner import method_config

    entry = METHODS.entry_at(method.get("name"), f"{where}.name")
    if "ranking" in entry.tags:
        raise ValueError(f"{where}.name: {entry.name!r} ranks prompts of a ranking pool; a "
                         "coverage cell needs a pairwise method")
    for key, why in COVERAGE_REFUSED.items():
        if key in method:
            raise ValueError(f"{where}.{key}: not a coverage cell option: {why}")
    gamma = positive_scalar(method.get("gamma", 1.0), f"{where}.gamma")
    options = {k: v for k, v in method.items() if k not in COVERAGE_KEYS}
    if entry.name == "uniform" and options:
        raise ValueError(f"{where}.{next(iter(options))}: uniform in a coverage cell is one "
                         "uniformly random subset and takes no options")
    method_config({"name": entry.name, **options, **method_options(entry.name, {"gamma": gamma})},
                  where)
    return {"method": entry.name, "gamma": gamma, "selector_kwargs": options}


def trial_stream(env: dict, seed: int) -> np.random.Generator:
    """The stream of the trial ``seed`` (a coverage cell's seed): ``rng_for(f + 1, seed)``,
    where f is the features' draw, the env table's ``seed`` (fixed features for every trial)
    or else the cell's own. These are :func:`coverage_study`'s streams with ``seed = f + 1``
    (trial r: (f + 1, r)), so the runner's trials repeat the study's exactly."""
    return rng_for(int(env.get("seed", seed)) + 1, int(seed))


@functools.lru_cache(maxsize=4)
def _fixed_env(table: str) -> PreferenceData | Any:
    """The environment of an env table (canonical JSON) that fixes its own ``seed``, built once
    per process and shared by the cells of every trial (building it, e.g. gaussian's fit of
    theta_star on all N rows, cost as much as a uniform trial). Safe to share: PreferenceData
    is frozen and its arrays are read-only."""
    from sim.experiment import build_env

    env = json.loads(table)
    return build_env(env, env["seed"])


def run_coverage_cell(env: dict, method: dict, seed: int, budgets: Iterable[int], *,
                      data: PreferenceData | None = None) -> list[dict]:
    """One trial of Theorem 3's coverage as a runner cell (a sweep's ``cell = "coverage"``).

    Args:
        env: an environment table (sim.runner schema) with a generating theta_true, e.g.
            ``kind = "gaussian"`` with ``assumption2 = true`` (Assumption 2, which Theorem 3
            needs); its ``seed`` fixes the features for every trial (without it each trial
            draws its own). No ``holdout``.
        method: {"name", "label", "gamma", **the method's options} (:func:`coverage_config`).
        seed: the trial: fresh labels and S_n from :func:`trial_stream`.
        budgets: the n at which S_n (nested) is scored.
        data: a pre-built environment (skips ``build_env``).

    Returns: tidy rows {"env", "method", "seed", "n", "metric", "value"} of
    :data:`COVERAGE_METRICS` at each n (:func:`coverage_trial`). The radius and the verdict
    are the reader's (:mod:`theory.bounds`, :func:`coverage_verdict`): they depend on delta.
    """
    from sim.experiment import build_env, label

    cfg = coverage_config(method)
    if env.get("holdout") is not None:
        raise ValueError("env.holdout: a coverage cell draws labels for every row; drop holdout")
    if data is None:
        data = (_fixed_env(json.dumps(env, sort_keys=True)) if "seed" in env
                else build_env(env, int(seed)))
    if not isinstance(data, PreferenceData) or data.theta_true is None:
        raise ValueError(f"env.kind: {env.get('kind')!r} has no generating theta_true; a "
                         "coverage cell needs one (e.g. kind = \"gaussian\", assumption2 = true)")
    rows = coverage_trial(data, budgets, trial_stream(env, seed), method=cfg["method"],
                          gamma=cfg["gamma"], selector_kwargs=cfg["selector_kwargs"],
                          fit=fit_unit_ball)
    e_label, m_label = label(env, "kind"), label(method, "name")
    return [{"env": e_label, "method": m_label, "seed": int(seed), "n": r["n"], "metric": k,
             "value": float(r[k])} for r in rows for k in COVERAGE_METRICS]


register_cell_kind("coverage", CellKind(run_coverage_cell, coverage_config, never, env_seed=True),
                   help="Theorem 3's coverage: one trial (fresh labels on fixed features) per "
                        "cell (theory.coverage.run_coverage_cell)")
