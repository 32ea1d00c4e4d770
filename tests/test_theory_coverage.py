"""Statistical tests of Theorem 3's coverage (theory.coverage).

theta_* = the generating parameter, fresh labels per trial, theta_hat_n = the unit-ball MLE.
False-failure probability: if Theorem 3 holds, the number of misses at level delta is
stochastically at most Binomial(R, delta); each assertion allows up to k misses with
P(Binomial(R, delta) > k) <= 1e-6 / (number of assertions in the test) (scipy.stats.binom,
coverage.binomial_miss_limit), so each test fails with probability <= 1e-6 when the theorem holds.
"""

import numpy as np
import pytest
from scipy.stats import binom

from sim.envs import gaussian_env
from theory import bounds, coverage


@pytest.fixture(scope="module")
def env():
    return gaussian_env(2000, 5, beta=1.0, seed=11, theta_norm=1.0, ref_norm=1.0, assumption2=True)


def test_binomial_miss_limit_is_the_tail_quantile():
    k = coverage.binomial_miss_limit(200, 0.05, 1e-6)
    assert binom.sf(k, 200, 0.05) <= 1e-6 < binom.sf(k - 1, 200, 0.05)


def test_theorem3_coverage_on_uniform_designs(env):
    deltas = (0.01, 0.05, 0.2)
    res = coverage.coverage_study(env, 200, deltas=deltas, trials=200, gamma=1.0, seed=0)
    limit = [coverage.binomial_miss_limit(200, dl, 1e-6 / 9) for dl in deltas]  # 9 assertions
    for delta, misses, r, k in zip(deltas, res.misses, res.radius, limit):
        assert r == pytest.approx(bounds.theorem3_radius(5, 200, 1.0, 1.0, delta))
        assert misses <= k
    # The rigorous-curvature norm (PAPER.md sec. 4 remark a) and the exact self-normalized radius.
    assert np.all(res.misses_at(res.radius, rigorous=True) <= limit)
    assert np.all(res.misses_at(res.radius_self_normalized) <= limit)
    assert np.all(res.norms > 0) and np.all(np.isfinite(res.norms))


def test_theorem3_coverage_on_adpo_designs(env):
    res = coverage.coverage_study(env, 200, deltas=(0.05,), trials=60, gamma=1.0, method="adpo",
                                  selector_kwargs={"n_candidates": 64}, seed=1)
    assert res.misses[0] <= coverage.binomial_miss_limit(60, 0.05, 1e-6 / 2)
    rig = res.misses_at(res.radius, rigorous=True)
    assert rig[0] <= coverage.binomial_miss_limit(60, 0.05, 1e-6 / 2)


def test_coverage_needs_theta_true(env):
    with pytest.raises(ValueError, match="theta_true"):
        coverage.coverage_study(env.with_(theta_true=None), 10, trials=2)
