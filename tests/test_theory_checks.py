"""Tests of theory.checks: Lemma 1, the greedy identity, Lemmas 5-6, kappa and Theorem 4 along
real selector runs, each against an independent reference (finite differences, slogdet, fresh
Cholesky factors, a brute-force greedy loop)."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from sim.dpo import fit_dpo, logistic_weight, sigmoid
from sim.envs import gaussian_env
from theory import checks, constants as C

SETTINGS = settings(max_examples=30, deadline=None)


def _ball(rng, n, d):
    x = rng.standard_normal((n, d))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x * rng.random((n, 1)) ** (1 / d)


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), d=st.integers(1, 6), n=st.integers(1, 40),
       beta=st.floats(0.05, 5))
def test_lemma1_gradient_and_hessian_match_finite_differences(seed, d, n, beta):
    rng = np.random.default_rng(seed)
    phi, b, theta = _ball(rng, n, d), rng.uniform(-1, 1, n), _ball(rng, 1, d)[0]
    s = (rng.random(n) < sigmoid(beta * (phi @ theta - b))).astype(np.int8)
    r = checks.lemma1_check(phi, b, beta, s, theta, eps=1e-5)
    # Central differences: error O(eps^2 * third derivative) + rounding O(1e-16 * loss / eps).
    assert r["grad_err"] <= 1e-7 * max(1.0, n * beta)
    assert r["hess_err"] <= 1e-7 * max(1.0, n * beta**2)
    assert r["min_eig"] >= -1e-12 * max(1.0, r["hess_scale"])


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), d=st.integers(1, 8), k=st.integers(0, 20),
       gamma=st.floats(1e-3, 10), scale=st.floats(1e-3, 10))
def test_greedy_identity_log_det_gain_equals_log1p_quadratic_form(seed, d, k, gamma, scale):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((k, d))
    h = gamma * np.eye(d) + a.T @ a
    v = scale * rng.standard_normal(d)
    lhs, rhs = checks.greedy_identity_gap(h, v)
    assert lhs == pytest.approx(rhs, rel=1e-9, abs=1e-11)


@pytest.fixture(scope="module")
def env():
    """Assumption 2 holds: ||phi|| <= 1, |b| <= 1, theta_true and theta_star in the unit ball."""
    data = gaussian_env(600, 5, beta=1.0, seed=3, theta_norm=1.0, ref_norm=1.0, assumption2=True)
    assert checks.assumption2_holds(data)
    return data


@pytest.mark.parametrize("name,m", [("adpo", None), ("adpo", 16), ("adpo+", None), ("adpo+", 16)])
def test_lemmas_5_and_6_and_the_gains_along_real_runs(env, name, m):
    tr = checks.selector_trace(name, env, 80, n_candidates=m, gamma=0.5, seed=1)
    assert tr.v.shape == (80, env.d)
    assert np.all(np.sum(tr.v**2, axis=1) <= C.c_max(env.beta) * (1 + 1e-12))
    q = checks.quad_form_path(tr.v, 0.5, env.phi)
    assert checks.lemma5_max_increase(q) <= 1e-10
    assert q[-1].max() < q[0].max()  # and the design did shrink something
    assert checks.lemma6_ratios(tr.v, 0.5, env.beta).max() <= 1 + 1e-12
    # The selector's Sherman-Morrison gains against fresh Cholesky factors.
    np.testing.assert_allclose(tr.gains, np.log1p(checks.picked_scores(tr.v, 0.5)), rtol=1e-9)


def test_selector_kappa_matches_brute_force_greedy(env):
    sel_tr = checks.selector_trace("adpo+", env, 60, alpha=0.0, gamma=0.5, seed=0)
    theta = fit_dpo(env.phi, env.b, env.beta, env.s, gamma=1e-3).theta
    w = env.beta**2 * logistic_weight(env.beta * (env.phi @ theta - env.b))
    idx, kappa = checks.reference_greedy(env.phi, w, 0.5, 60)
    np.testing.assert_array_equal(sel_tr.indices, idx)
    np.testing.assert_allclose(sel_tr.kappa, kappa, rtol=1e-8)
    assert kappa[0] == pytest.approx(1.0)
    assert np.all(kappa >= 1 - 1e-12)


def test_kappa_grows_with_candidate_subsampling(env):
    full = checks.kappa_along_run("adpo", env, 100, n_candidates=None, gamma=0.5, seed=0)
    sub = checks.kappa_along_run("adpo", env, 100, n_candidates=8, gamma=0.5, seed=0)
    assert full[0] == pytest.approx(1.0) and np.all(full >= 1 - 1e-12)
    assert sub.max() > full.max()


@pytest.mark.parametrize("name,m", [("adpo", None), ("adpo", 16), ("adpo+", None)])
def test_corrected_theorem4_holds_along_real_runs(env, name, m):
    tr = checks.selector_trace(name, env, 128, n_candidates=m, gamma=0.5, seed=2)
    res = checks.theorem4_along_run(env, tr.indices, 0.5, tr.kappa, [8, 32, 128])
    assert np.all(res["measured"] <= res["corrected"])
    assert np.all(res["kappa"] >= 1)


def test_assumption3_weights_bracketed_at_theta_star(env):
    assert checks.c_min_holds(env, env.theta_star)
    lo, hi = checks.assumption3_weights(env, env.theta_star)
    assert C.c_min_tight(env.beta) <= lo <= hi <= C.c_max(env.beta)


def test_selector_trace_refuses_non_greedy_methods(env):
    with pytest.raises(ValueError, match="name"):
        checks.selector_trace("uniform", env, 5)
