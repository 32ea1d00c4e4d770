"""Statistical tests of the rates (theory.rates): the log-log slope of the max logit error in n
(theory: -1/2) and in d (theory: at most linear).

False-failure probability. Each seed's slope is an independent least-squares slope; with R = 30
seeds the mean slope's one-sided Student-t bounds at level 5e-7 each (scipy.stats.t, computed in
SlopeSummary.t_bounds) are wrong with probability <= 5e-7 apiece, so each test, which checks two
such bounds, fails with probability <= 1e-6 when the true mean slope lies in the stated band
(t-approximation of the mean of 30 i.i.d. slopes). Bands: n-slope in [-0.75, -0.25] (theory
-1/2, with room for the pre-asymptotic MLE bias seen at n = 64..1024: about -0.6 for uniform and
-0.5 for ADPO+); d-slope in [0.25, 1] (at most linear by Theorem 2; about sqrt(d log N) growth
via the union bound of sec. 5 gives ~0.5).
"""

import numpy as np
import pytest

from theory import rates

ALPHA = 5e-7  # per one-sided bound; two bounds per test -> <= 1e-6
SEEDS = range(30)
ENV = {"kind": "gaussian", "N": 16384, "d": 4, "beta": 1.0, "theta_norm": 1.0}
N_GRID = [64, 128, 256, 512, 1024]


def test_loglog_slope_recovers_a_power_law_exactly():
    x = np.array([1.0, 2.0, 8.0, 64.0])
    assert rates.loglog_slope(x, 3.0 * x**-0.5) == pytest.approx(-0.5, abs=1e-12)
    s = rates.slope_summary(x, [2.0 * x**-0.4, 5.0 * x**-0.6])
    assert s.mean == pytest.approx(-0.5) and s.ci[0] < -0.5 < s.ci[1]


@pytest.mark.parametrize("method", [{"name": "uniform"}, {"name": "adpo+", "n_candidates": 256}])
def test_max_logit_error_decays_like_one_over_root_n(method):
    curves = rates.error_curves_in_n(ENV, method, SEEDS, N_GRID)
    s = rates.slope_summary(N_GRID, curves)
    lo, hi = s.t_bounds(ALPHA)
    assert lo <= -0.25, f"slope {s.mean:.3f} +- {s.se:.3f}: error does not decay like n^-1/2"
    assert hi >= -0.75, f"slope {s.mean:.3f} +- {s.se:.3f}: faster than the band allows"


def test_max_logit_error_grows_at_most_linearly_in_d():
    d_grid = [2, 4, 8, 16, 32]
    curves = rates.error_curves_in_d({**ENV, "N": 4096}, {"name": "uniform"}, SEEDS, d_grid, 512)
    s = rates.slope_summary(d_grid, curves)
    lo, hi = s.t_bounds(ALPHA)
    assert lo <= 1.0, f"d-slope {s.mean:.3f} +- {s.se:.3f}: superlinear in d"
    assert hi >= 0.25, f"d-slope {s.mean:.3f} +- {s.se:.3f}: error does not grow with d"
