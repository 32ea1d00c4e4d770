"""Rates: log-log slopes of the max logit error in n (theory -1/2) and in d (theory <= 1).

Each seed gives one curve; its slope is the least-squares fit of log(error) on log(x). Seeds
are independent, so the slopes are i.i.d. and their mean gets a Student-t interval
(:func:`slope_summary`). Curves come from :func:`sim.experiment.run_cell` (the same cells the
experiment figures use): theta_hat_n is fitted on the first n picks and the error is
max_i |phi_i^T (theta_hat_n - theta_*)| with theta_* = data.theta_star (the paper's target).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from sim.experiment import run_cell
from sim.validation import positive_int


def loglog_slope(x, y) -> float:
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


def slope_summary(x, curves, level: float = 0.95) -> SlopeSummary:
    """Per-seed log-log slopes of ``curves`` (R, k) against x (k,), and a t interval."""
    curves = np.atleast_2d(np.asarray(curves, dtype=float))
    slopes = np.array([loglog_slope(x, c) for c in curves])
    if slopes.size < 2:
        raise ValueError("curves: need two or more seeds for an interval")
    se = float(slopes.std(ddof=1) / np.sqrt(slopes.size))
    q = stats.t.isf((1 - level) / 2, slopes.size - 1)
    m = float(slopes.mean())
    return SlopeSummary(per_seed=slopes, mean=m, se=se, ci=(m - q * se, m + q * se), level=level)


def error_curves_in_n(env: dict, method: dict, seeds, n_grid, metric: str = "max_logit_error"
                      ) -> np.ndarray:
    """Max logit error at each n of n_grid (k,), one row per seed: shape (R, k)."""
    out = []
    for seed in seeds:
        rows = run_cell(env, method, int(seed), n_grid)
        by_n = {r["n"]: r["value"] for r in rows if r["metric"] == metric}
        out.append([by_n[int(n)] for n in n_grid])
    return np.asarray(out)


def error_curves_in_d(env: dict, method: dict, seeds, d_grid, n: int,
                      metric: str = "max_logit_error") -> np.ndarray:
    """Max logit error at budget n for each d of d_grid (k,), one row per seed: (R, k)."""
    n = positive_int(n, "n")
    out = np.empty((len(seeds), len(d_grid)))
    for j, d in enumerate(d_grid):
        for r, seed in enumerate(seeds):
            rows = run_cell({**env, "d": int(d)}, method, int(seed), [n])
            out[r, j] = next(x["value"] for x in rows if x["metric"] == metric)
    return out
