"""Fair ADPO+ (sim.selectors.adpo_fair): theta_hat on labels independent of theta_star, else ADPO+.

The paper's ADPO+ starts from the evaluation target (theta_hat = theta_star, so with alpha = 0 it
picks exactly what ``oracle`` picks); the fair variant must not, and must otherwise be ADPO+.
"""

import numpy as np
import pytest

from sim.dpo import fit_dpo, sigmoid
from sim.envs import gaussian_env
from sim.registry import METHODS as REGISTRY
from sim.selectors import make_selector
from test_selectors import naive_greedy, ucb_weights


@pytest.fixture(scope="module")
def env():
    return gaussian_env(500, 5, beta=1.5, seed=11)


def test_paper_adpo_plus_is_the_oracle_and_fair_is_not(env):
    plus = make_selector("adpo+", env, alpha=0.0, seed=0)
    picks = plus.select(60).tolist()
    np.testing.assert_allclose(plus.theta_, env.theta_star, atol=1e-9)  # it starts at the target
    assert picks == make_selector("oracle", env, seed=0).select(60).tolist()
    fair = make_selector("adpo+fair", env, alpha=0.0, seed=0)
    assert fair.select(60).tolist() != picks
    err = np.linalg.norm(fair.theta_ - env.theta_star)
    assert err > 0.05  # an independent fit sits a statistical error away from theta_star


def test_fresh_labels_are_an_independent_draw_from_theta_true(env):
    """theta_hat is the MLE on s' ~ Ber(mu(beta(phi^T theta_true - b))) drawn from the selector's
    seed, and the picks are greedy on the UCB weights at it (literal reference)."""
    rng = np.random.default_rng(4)
    fresh = (rng.random(env.N) < sigmoid(env.beta * (env.phi @ env.theta_true - env.b))).astype(int)
    theta = fit_dpo(env.phi, env.b, env.beta, fresh, fit_ridge=1e-3).theta
    w = ucb_weights(env, theta, np.arange(env.N), gamma=1.0, alpha=3.0)
    sel = make_selector("adpo+fair", env, seed=4)
    assert sel.select(40).tolist() == naive_greedy(env.phi * np.sqrt(w)[:, None], 40, 1.0)
    np.testing.assert_allclose(sel.theta_, theta, atol=1e-9)
    # independent of the logged labels: agreement = sum p^2 + (1-p)^2 in expectation (sd of the
    # mean <= 0.5/sqrt(500) = 0.022; |z| < 5 fails with prob < 1e-6); copying the logged labels
    # would give agreement 1 (z > 10 here)
    p = sigmoid(env.beta * (env.phi @ env.theta_true - env.b))
    expected = np.mean(p**2 + (1 - p) ** 2)
    assert abs(np.mean(sel.fresh_labels_ == env.s) - expected) < 5 * 0.5 / np.sqrt(env.N)


def test_split_log_is_disjoint_from_the_selection(env):
    sel = make_selector("adpo+fair", env, theta_source="split", log_fraction=0.4, alpha=0.0, seed=2)
    log = sel.log_rows_
    assert log.size == 200
    picks = sel.select(env.N - log.size)  # everything selectable, and nothing of the log
    assert not set(picks.tolist()) & set(log.tolist())
    ref = fit_dpo(env.phi[log], env.b[log], env.beta, env.s[log], fit_ridge=1e-3).theta
    np.testing.assert_allclose(sel.theta_, ref, atol=1e-9)
    with pytest.raises(ValueError, match="n"):
        make_selector("adpo+fair", env, theta_source="split", seed=2).select(env.N - 249)


def test_bad_options_and_missing_theta_true(env):
    with pytest.raises(ValueError, match="theta_true"):
        make_selector("adpo+fair", env.with_(theta_true=None), seed=0)
    with pytest.raises(ValueError, match="theta_source"):
        make_selector("adpo+fair", env, theta_source="all", seed=0)
    with pytest.raises(ValueError, match="log_fraction"):
        make_selector("adpo+fair", env, theta_source="split", log_fraction=1.0, seed=0)
    entry = REGISTRY.get("adpo+fair")
    assert "theta-hat:independent-labels" in entry.tags
    with pytest.raises(ValueError, match="theta_source"):
        entry.make_config({"theta_source": "pool"})
