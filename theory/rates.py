"""Rates: log-log slopes of the max logit error in n (theory -1/2) and in d (theory <= 1).

Each seed gives one curve; its slope is the least-squares fit of log(error) on log(x). Seeds
are independent, so the slopes are i.i.d. and their mean gets a Student-t interval
(:func:`slope_summary`). Curves come from :func:`sim.experiment.run_cell` (the same cells the
experiment figures use): theta_hat_n is fitted on the first n picks and the error is
max_i |phi_i^T (theta_hat_n - theta_*)| with theta_* = data.theta_star (the paper's target).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from sim.experiment import run_cell
from sim.validation import Seed, as_rng, positive_int


def loglog_slope(x: ArrayLike, y: ArrayLike) -> float:
    """Least-squares slope of log y on log x (x, y: (k,) positive, k >= 2)."""
    lx, ly = np.log(np.asarray(x, dtype=float)), np.log(np.asarray(y, dtype=float))
    if lx.size < 2 or lx.size != ly.size:
        raise ValueError("x, y: need two or more points of equal count")
    lx = lx - lx.mean()
    return float(lx @ (ly - ly.mean()) / (lx @ lx))


@dataclass
class SlopeSummary:
    """``per_seed`` (R,) slopes; ``mean``, ``se`` (standard error), ``ci`` = (low, high) at
    ``level`` (two-sided Student-t with R - 1 degrees of freedom)."""

    per_seed: np.ndarray
    mean: float
    se: float
    ci: tuple[float, float]
    level: float

    def t_bounds(self, false_alarm: float) -> tuple[float, float]:
        """(lower, upper) one-sided confidence bounds, each wrong w.p. <= false_alarm."""
        q = stats.t.isf(false_alarm, self.per_seed.size - 1)
        return self.mean - q * self.se, self.mean + q * self.se


def slope_summary(x: ArrayLike, curves: ArrayLike, level: float = 0.95) -> SlopeSummary:
    """Per-seed log-log slopes of ``curves`` (R, k) against x (k,), and a t interval."""
    rows = np.atleast_2d(np.asarray(curves, dtype=float))
    slopes = np.array([loglog_slope(x, c) for c in rows])
    if slopes.size < 2:
        raise ValueError("curves: need two or more seeds for an interval")
    se = float(slopes.std(ddof=1) / np.sqrt(slopes.size))
    q = stats.t.isf((1 - level) / 2, slopes.size - 1)
    m = float(slopes.mean())
    return SlopeSummary(per_seed=slopes, mean=m, se=se, ci=(m - q * se, m + q * se), level=level)


def error_curves_in_n(env: dict, method: dict, seeds: Iterable[int], n_grid: Sequence[int],
                      metric: str = "max_logit_error"
                      ) -> np.ndarray:
    """Max logit error at each n of n_grid (k,), one row per seed: shape (R, k)."""
    out = []
    for seed in seeds:
        rows = run_cell(env, method, int(seed), n_grid)
        by_n = {r["n"]: r["value"] for r in rows if r["metric"] == metric}
        out.append([by_n[int(n)] for n in n_grid])
    return np.asarray(out)


def error_curves_in_d(env: dict, method: dict, seeds: Sequence[int], d_grid: Sequence[int],
                      n: int,
                      metric: str = "max_logit_error") -> np.ndarray:
    """Max logit error at budget n for each d of d_grid (k,), one row per seed: (R, k)."""
    n = positive_int(n, "n")
    out = np.empty((len(seeds), len(d_grid)))
    for j, d in enumerate(d_grid):
        for r, seed in enumerate(seeds):
            rows = run_cell({**env, "d": int(d)}, method, int(seed), [n])
            out[r, j] = next(x["value"] for x in rows if x["metric"] == metric)
    return out


# --------------------------------------------------------------------------- band test with power
@dataclass
class BandVerdict:
    """Outcome of :meth:`SlopeBandTest.decide`: ``passed``; ``lower``/``upper`` the one-sided
    t confidence bounds on the mean slope (each wrong w.p. <= false_alarm / 2); ``summary``."""

    passed: bool
    lower: float
    upper: float
    summary: SlopeSummary


@dataclass(frozen=True)
class SlopeBandTest:
    """Test "the mean per-seed log-log slope lies in ``band`` = [a, b]".

    Decision: with R per-seed slopes (mean m, standard error se) and q = the Student-t quantile
    t_{R-1}(1 - false_alarm / 2), the lower bound L = m - q se and the upper bound U = m + q se
    are each wrong with probability <= false_alarm / 2 (per-seed slopes i.i.d. and close to
    normal: the t model). The test FAILS iff U < a (significantly below the band) or L > b
    (significantly above it). If the true mean is in [a, b], it fails w.p. <= false_alarm.

    Power against a true mean slope s1 outside the band: it rejects iff L > b (s1 > b) or U < a
    (s1 < a). Under the same model, P(reject) ~= Phi((|s1 - edge| - q sigma / sqrt(R))
    / (sigma / sqrt(R))) for per-seed spread sigma; :meth:`power` measures it by simulation
    instead (resampled measured slopes, shifted to s1), which needs no normality.
    """

    band: tuple[float, float]
    false_alarm: float = 1e-6

    def bounds(self, per_seed: ArrayLike) -> tuple[float, float]:
        """(L, U) for per-seed slopes (R,)."""
        x = np.asarray(per_seed, dtype=float)
        q = stats.t.isf(self.false_alarm / 2, x.size - 1)
        m, se = x.mean(), x.std(ddof=1) / np.sqrt(x.size)
        return float(m - q * se), float(m + q * se)

    def decide(self, x: ArrayLike, curves: ArrayLike) -> BandVerdict:
        """Run the test on ``curves`` (R, k) measured at ``x`` (k,)."""
        s = slope_summary(x, curves)
        lo, hi = self.bounds(s.per_seed)
        passed = not (hi < self.band[0] or lo > self.band[1])
        return BandVerdict(passed=passed, lower=lo, upper=hi, summary=s)

    def power(self, per_seed: ArrayLike, alternative: float, *, reps: int = 20000,
              seed: Seed = 0) -> float:
        """P(the test rejects) when the true mean slope is ``alternative``, by simulation.

        Each replicate draws R slopes with replacement from the measured ``per_seed`` (R,) and
        shifts them by alternative - mean: exactly the per-seed slopes of the measured error
        curves multiplied by x^(alternative - mean) (the slope is linear in log y), i.e.
        synthetic curves with the measured noise and the alternative's trend. Returns the
        fraction of the ``reps`` replicates that the decision rule rejects.
        """
        x = np.asarray(per_seed, dtype=float)
        rng = as_rng(seed)
        boot = x[rng.integers(0, x.size, size=(positive_int(reps, "reps"), x.size))]
        boot += alternative - x.mean()
        q = stats.t.isf(self.false_alarm / 2, x.size - 1)
        m, se = boot.mean(axis=1), boot.std(axis=1, ddof=1) / np.sqrt(x.size)
        reject = (m + q * se < self.band[0]) | (m - q * se > self.band[1])
        return float(reject.mean())


def shift_slope(x: ArrayLike, curves: ArrayLike, delta_slope: float) -> np.ndarray:
    """``curves`` (R, k) times x^delta_slope: every per-seed slope moves by exactly
    ``delta_slope``, the noise around each fit is kept. Builds synthetic alternatives."""
    return np.asarray(curves, dtype=float) * np.asarray(x, dtype=float) ** delta_slope
