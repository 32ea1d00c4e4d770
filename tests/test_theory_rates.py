"""Statistical tests of the rates (theory.rates): the log-log slope of the max logit error in n
(theory: -1/2) and in d (theory: at most linear), with false failure AND power stated.

Variance model. Each seed gives one error curve and one least-squares log-log slope; seeds are
independent, so the R slopes are i.i.d. We treat them as normal (Student-t for their mean; the
power below is simulated without that assumption). Measured per-seed spreads (30 seeds, this
grid): sigma = 0.22 (uniform), 0.20 (ADPO+) in n; 0.17 in d.

Decision (theory.rates.SlopeBandTest): with q = t_{R-1}(1 - 5e-7), L = m - q se and U = m + q se;
the test fails iff U < a or L > b for the band [a, b]. If the true mean slope is in the band,
it fails with probability <= 1e-6 (two one-sided bounds of 5e-7).

* n: band [-0.7, -0.3] (theory -1/2, with 0.2 of pre-asymptotic allowance: measured means are
  -0.50 uniform, -0.54 ADPO+, -0.62 ADPO at n = 64..1024). R = 60: q = 5.46, se ~= 0.22 / sqrt(60)
  = 0.028, so q se ~= 0.16 and a true slope of 0 (no decay) or -1 is rejected unless the mean
  lands 0.14 = 4.9 se inside its side: power ~= 1 - 5e-7. Simulated below (>= 0.999 asserted).
* d: band [0.25, 1.0] (at most linear; it must grow). R = 30: q = 6.17, se ~= 0.031, q se ~=
  0.19; a true slope of 1.5 is rejected unless the mean falls 0.31 = 10 se: power ~= 1. The
  lower edge has little power: a true slope of 0 is rejected with probability ~0.92 only
  (simulated), so "the error grows with d" is not established at 1e-6 / 0.999.

Power by simulation (SlopeBandTest.power): the measured per-seed slopes are resampled with
replacement and shifted to the alternative (= the measured curves times x^(s1 - m), real noise,
alternative trend); 20000 replicates each. And the measured curves themselves, shifted to the
alternatives with theory.rates.shift_slope, must be rejected (the mutants).
"""

import numpy as np
import pytest

from theory import rates

ENV = {"kind": "gaussian", "N": 16384, "d": 4, "beta": 1.0, "theta_norm": 1.0}
N_GRID = [64, 128, 256, 512, 1024]
N_SEEDS = range(60)
N_TEST = rates.SlopeBandTest(band=(-0.7, -0.3), false_alarm=1e-6)
D_GRID = [2, 4, 8, 16, 32]
D_SEEDS = range(30)
D_TEST = rates.SlopeBandTest(band=(0.25, 1.0), false_alarm=1e-6)
POWER = 0.999


def test_loglog_slope_recovers_a_power_law_exactly():
    x = np.array([1.0, 2.0, 8.0, 64.0])
    assert rates.loglog_slope(x, 3.0 * x**-0.5) == pytest.approx(-0.5, abs=1e-12)
    s = rates.slope_summary(x, [2.0 * x**-0.4, 5.0 * x**-0.6])
    assert s.mean == pytest.approx(-0.5) and s.ci[0] < -0.5 < s.ci[1]
    shifted = rates.slope_summary(x, rates.shift_slope(x, [2.0 * x**-0.4, 5.0 * x**-0.6], 0.5))
    np.testing.assert_allclose(shifted.per_seed, [0.1, -0.1], atol=1e-12)


def test_band_test_power_matches_the_normal_model():
    """The simulated power agrees with the closed form under normal slopes (sanity of power())."""
    from scipy import stats
    rng = np.random.default_rng(0)
    slopes = rng.normal(-0.5, 0.6, 20)
    t = rates.SlopeBandTest(band=(-0.7, -0.3))
    sim = t.power(slopes, 0.0, reps=20000, seed=1)
    q = stats.t.isf(5e-7, 19)
    se = slopes.std(ddof=1) / np.sqrt(20)
    approx = stats.norm.sf((q * se - 0.3) / se)  # P(mean - q se > -0.3) with se fixed
    assert abs(sim - approx) < 0.1, (sim, approx)


@pytest.fixture(scope="module", params=[{"name": "uniform"}, {"name": "adpo+", "n_candidates": 256}],
                ids=["uniform", "adpo+"])
def n_curves(request):
    return rates.error_curves_in_n(ENV, request.param, N_SEEDS, N_GRID)


@pytest.fixture(scope="module")
def d_curves():
    return rates.error_curves_in_d({**ENV, "N": 4096}, {"name": "uniform"}, D_SEEDS, D_GRID, 512)


def test_max_logit_error_decays_like_one_over_root_n(n_curves):
    per_seed = rates.slope_summary(N_GRID, n_curves).per_seed
    # Before the verdict: the test could have failed. It rejects no decay and 1/n decay.
    for alt in (0.0, -1.0):
        assert N_TEST.power(per_seed, alt) >= POWER, f"power vs slope {alt} below {POWER}"
    v = N_TEST.decide(N_GRID, n_curves)
    assert v.passed, f"slope {v.summary.mean:.3f}, bounds [{v.lower:.3f}, {v.upper:.3f}]"


@pytest.mark.parametrize("alt", [0.0, -1.0, -0.1, -0.9])
def test_mutant_error_curves_with_the_wrong_n_slope_are_rejected(n_curves, alt):
    """Mutants: the measured curves re-trended to an error that does not decay (0), decays
    like 1/n (-1), or nearly so; the real noise is kept."""
    mean = rates.slope_summary(N_GRID, n_curves).mean
    assert not N_TEST.decide(N_GRID, rates.shift_slope(N_GRID, n_curves, alt - mean)).passed


def test_max_logit_error_grows_at_most_linearly_in_d(d_curves):
    per_seed = rates.slope_summary(D_GRID, d_curves).per_seed
    assert D_TEST.power(per_seed, 1.5) >= POWER, f"power vs slope 1.5 below {POWER}"
    v = D_TEST.decide(D_GRID, d_curves)
    assert v.passed, f"d-slope {v.summary.mean:.3f}, bounds [{v.lower:.3f}, {v.upper:.3f}]"


@pytest.mark.parametrize("alt", [1.5, 1.2, 0.0])
def test_mutant_error_curves_with_the_wrong_d_slope_are_rejected(d_curves, alt):
    """Mutants: superlinear growth in d (1.5, 1.2) and no growth (0)."""
    mean = rates.slope_summary(D_GRID, d_curves).mean
    assert not D_TEST.decide(D_GRID, rates.shift_slope(D_GRID, d_curves, alt - mean)).passed


def test_power_needs_a_seed():
    """``seed: Seed``: None gave numpy's unseeded stream (a different power on every call); it
    is refused now, and a seed gives the same value twice."""
    from theory.rates import SlopeBandTest
    t = SlopeBandTest(band=(-0.7, -0.3))
    per_seed = np.random.default_rng(0).normal(-0.5, 0.2, 12)
    with pytest.raises(ValueError, match="^seed:"):
        t.power(per_seed, 0.0, reps=100, seed=None)
    assert t.power(per_seed, -0.2, reps=500, seed=3) == t.power(per_seed, -0.2, reps=500, seed=3)
