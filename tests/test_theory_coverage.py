"""Statistical tests of Theorem 3's coverage (theory.coverage), in regimes where it can fail.

theta_* = the generating parameter, fresh labels per trial, theta_hat_n = the unit-ball MLE.
Informative regime: theta_hat and theta_* lie in the unit ball, so the norm can never exceed
sup_{||theta||<=1} ||theta - theta_*||_{Sigma_n}; at n = 200, d = 5 that sup is ~6 against a
radius of 19 and coverage is forced. Here n >> d (uniform: d = 3, n = 8000, ceiling ~41 >
radius 18.7; ADPO: d = 2, n = 1000) and each test asserts radius < the smallest attained
ceiling over trials BEFORE its verdict (coverage.coverage_verdict).

False-failure probability: if Theorem 3 holds, the misses at level delta are stochastically at
most Binomial(R, delta); the verdict allows k misses with P(Binomial(R, delta) > k) <= 1e-6 /
(verdicts in the test). Mutants that these checks catch are in tests/test_theory_mutants.py.
"""

import numpy as np
import pytest
from scipy.stats import binom

from sim.envs import gaussian_env
from theory import coverage

#: The informative uniform regime (shared with the mutation tests).
UNIFORM = dict(N=12000, d=3, n=8000, trials=200, deltas=(0.01, 0.05, 0.2))
ADPO = dict(N=2000, d=2, n=1000, trials=40, delta=0.05, n_candidates=32)


def uniform_study():
    env = gaussian_env(UNIFORM["N"], UNIFORM["d"], beta=1.0, seed=11, theta_norm=1.0,
                       ref_norm=1.0, assumption2=True)
    return env, coverage.coverage_study(env, UNIFORM["n"], deltas=UNIFORM["deltas"],
                                        trials=UNIFORM["trials"], gamma=1.0, seed=0)


@pytest.fixture(scope="module")
def uniform():
    return uniform_study()


def test_binomial_miss_limit_is_the_tail_quantile():
    k = coverage.binomial_miss_limit(200, 0.05, 1e-6)
    assert binom.sf(k, 200, 0.05) <= 1e-6 < binom.sf(k - 1, 200, 0.05)


def test_theorem3_coverage_on_uniform_designs(uniform):
    _, res = uniform
    assert res.ridge_fallbacks == 0
    fa = 1e-6 / (2 * len(UNIFORM["deltas"]))
    for delta, r, r_sn in zip(res.deltas, res.radius, res.radius_self_normalized):
        for radius in (r, r_sn):
            v = coverage.coverage_verdict(res.norms, radius, delta, res.ceiling, false_alarm=fa)
            assert v["informative"], f"radius {radius:.1f} >= ceiling {res.ceiling.min():.1f}"
            assert v["passed"], v
    # The rigorous-curvature norm (PAPER.md sec. 4 remark a) is no larger here.
    assert np.all(res.misses_at(res.radius, rigorous=True) == 0)


def test_theorem3_radius_slack_is_documented(uniform):
    """A measured fact, asserted so that it can regress: Theorem 3's radius is 5-10x the
    empirical 95% quantile of the norm (so no coverage test can see errors below ~7x; the
    mutants use 10x). Catches a norm computed in the wrong matrix (too small)."""
    _, res = uniform
    slack = res.radius[1] / np.quantile(res.norms, 0.95)
    assert 5.0 < slack < 10.0, slack


def test_theorem3_coverage_on_adpo_designs():
    env = gaussian_env(ADPO["N"], ADPO["d"], beta=1.0, seed=11, theta_norm=1.0, ref_norm=1.0,
                       assumption2=True)
    res = coverage.coverage_study(env, ADPO["n"], deltas=(ADPO["delta"],), trials=ADPO["trials"],
                                  gamma=1.0, method="adpo", seed=1,
                                  selector_kwargs={"n_candidates": ADPO["n_candidates"]})
    v = coverage.coverage_verdict(res.norms, res.radius[0], ADPO["delta"], res.ceiling,
                                  false_alarm=1e-6)
    assert v["informative"], (res.radius[0], res.ceiling.min())
    assert v["passed"], v


def test_coverage_needs_theta_true(uniform):
    env, _ = uniform
    with pytest.raises(ValueError, match="theta_true"):
        coverage.coverage_study(env.with_(theta_true=None), 10, trials=2)


def test_attained_ceiling_is_attained_and_below_the_geometric_sup():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((6, 3))
    sig = np.eye(3) + a.T @ a
    th = rng.standard_normal(3)
    th /= 2 * np.linalg.norm(th)
    c = coverage.attained_ceiling(sig, th)
    lam = np.linalg.eigvalsh(sig)[-1]
    assert np.sqrt(lam) <= c <= 1.5 * np.sqrt(lam) + 1e-12  # (1 + ||theta_*||) sqrt(lam_max)
    # Brute force over the unit sphere: the sup is >= the attained value, never below it.
    x = rng.standard_normal((20000, 3))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    brute = np.sqrt(np.einsum("ij,jk,ik->i", x - th, sig, x - th)).max()
    assert c <= brute * (1 + 1e-9) and brute <= 1.5 * np.sqrt(lam) + 1e-9


def test_ridge_fallback_is_checked_and_recorded():
    # Separable labels: the unregularized Newton path fails, the 1e-10 ridge fit is used, its
    # shift bound is checked (full-rank Hessian) and the fallback is reported.
    phi = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    theta, fell_back = coverage.fit_unit_ball(phi, np.zeros(4), 1.0, np.array([1, 0, 1, 0]))
    assert fell_back and np.linalg.norm(theta) == pytest.approx(1.0)
    # Separable AND rank-deficient: the shift cannot be bounded, so it is an error, not silence.
    with pytest.raises(ValueError, match="ridge"):
        coverage.fit_unit_ball(phi[:2], np.zeros(2), 1.0, np.array([1, 0]))


def test_ridge_fallback_takes_array_likes():
    """Found by mypy (dpo_hessian takes arrays, fit_unit_ball ArrayLike): lists reached the
    fallback's Hessian and failed with AttributeError 'list' has no attribute 'shape'."""
    phi = [[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]]
    theta, fell_back = coverage.fit_unit_ball(phi, [0.0] * 4, 1.0, [1, 0, 1, 0])
    ref, _ = coverage.fit_unit_ball(np.array(phi), np.zeros(4), 1.0, np.array([1, 0, 1, 0]))
    assert fell_back and np.array_equal(theta, ref)


# --------------------------------------------------------------------------- mutants
def _flipped_labels(phi, b, beta, s):
    """Mutant estimator: chosen/rejected swapped (fits on 1 - s)."""
    return coverage.fit_unit_ball(phi, b, beta, 1 - np.asarray(s))


def test_coverage_catches_inflated_norms_and_a_shrunken_radius(uniform):
    _, res = uniform
    delta, r = res.deltas[1], res.radius[1]
    assert coverage.coverage_verdict(res.norms, r, delta, res.ceiling)["passed"]
    # The radius is ~7x the 95% quantile, so the check resolves errors of ~10x, not 4x.
    assert not coverage.coverage_verdict(10 * res.norms, r, delta, res.ceiling)["passed"]
    assert not coverage.coverage_verdict(res.norms, r / 10, delta, res.ceiling)["passed"]


def test_coverage_catches_an_estimator_with_flipped_labels(uniform):
    env, _ = uniform
    res = coverage.coverage_study(env, UNIFORM["n"], deltas=(0.05,), trials=10, gamma=1.0,
                                  seed=5, fit=_flipped_labels)
    v = coverage.coverage_verdict(res.norms, res.radius[0], 0.05, res.ceiling, false_alarm=1e-6)
    assert v["informative"] and not v["passed"]


def test_slack_fact_catches_norms_in_the_wrong_matrix(uniform):
    _, res = uniform
    assert res.radius[1] / np.quantile(res.norms / 4, 0.95) > 10.0


def test_the_old_regime_is_flagged_vacuous():
    """n = 200, d = 5 (the previous test): the radius 19 is above every attainable norm."""
    env = gaussian_env(2000, 5, beta=1.0, seed=11, theta_norm=1.0, ref_norm=1.0, assumption2=True)
    res = coverage.coverage_study(env, 200, deltas=(0.05,), trials=5, gamma=1.0, seed=0)
    v = coverage.coverage_verdict(res.norms, res.radius[0], 0.05, res.ceiling)
    assert not v["informative"] and not v["passed"]
