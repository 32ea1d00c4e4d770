"""Every theory check is shown to catch a wrong version of what it checks.

Each test runs the check on the project's own output (it passes), then injects a mutant - a
wrong bound, a wrong constant, a wrong measured quantity or a selector that ignores the
design - and asserts that the same check fails. Theorem 3 coverage mutants live beside the
coverage tests (tests/test_theory_coverage.py) and rate mutants beside the rate tests
(tests/test_theory_rates.py), where the expensive runs are already at hand.
"""

import math

import numpy as np
import pytest

from sim.design import greedy_select
from sim.dpo import dpo_gradient, dpo_hessian, logistic_weight, sigmoid
from theory import bounds as B
from theory import checks, constants as C
from theory.regimes import needle_instance


# --------------------------------------------------------------------------- Lemma 1
def _lemma1_ok(r, n, beta):
    return (r["grad_err"] <= 1e-7 * max(1.0, n * beta) and r["hess_err"] <= 1e-7 * max(1.0, n * beta**2)
            and r["min_eig"] >= -1e-12 * max(1.0, r["hess_scale"]))


@pytest.fixture(scope="module")
def lemma1_instance():
    rng = np.random.default_rng(5)
    n, d, beta = 30, 4, 2.0
    phi = rng.standard_normal((n, d)) / 2
    b, theta = rng.uniform(-1, 1, n), rng.standard_normal(d) / 2
    s = (rng.random(n) < sigmoid(beta * (phi @ theta - b))).astype(np.int8)
    return phi, b, beta, s, theta


def _hess_missing_beta(theta, phi, b, beta):
    return dpo_hessian(theta, phi, b, beta) / beta**2


def _hess_mu_squared(theta, phi, b, beta):
    mu = sigmoid(beta * (phi @ theta - b))
    return beta**2 * (phi * mu[:, None] ** 2).T @ phi


def _grad_flipped(theta, phi, b, beta, s):
    return -dpo_gradient(theta, phi, b, beta, s)


def _grad_missing_beta(theta, phi, b, beta, s):
    return dpo_gradient(theta, phi, b, beta, s) / beta


def test_lemma1_check_passes_on_sim_dpo(lemma1_instance):
    phi, b, beta, s, theta = lemma1_instance
    assert _lemma1_ok(checks.lemma1_check(phi, b, beta, s, theta), len(b), beta)


@pytest.mark.parametrize("mutant", [dict(hessian=_hess_missing_beta), dict(hessian=_hess_mu_squared),
                                    dict(gradient=_grad_flipped), dict(gradient=_grad_missing_beta)],
                         ids=["hessian-without-beta2", "hessian-mu-squared", "gradient-sign",
                              "gradient-without-beta"])
def test_lemma1_check_catches(lemma1_instance, mutant):
    phi, b, beta, s, theta = lemma1_instance
    assert not _lemma1_ok(checks.lemma1_check(phi, b, beta, s, theta, **mutant), len(b), beta)


# --------------------------------------------------------------------------- the greedy engine
@pytest.fixture(scope="module")
def engine_run():
    """sim.design.greedy_select (exact argmax, fixed Lemma 1 weights) on a small instance."""
    rng = np.random.default_rng(7)
    N, d, beta, gamma, n = 80, 4, 1.0, 0.5, 30
    phi = rng.standard_normal((N, d))
    phi /= np.maximum(1.0, np.linalg.norm(phi, axis=1))[:, None]
    theta, b = rng.standard_normal(d) / 2, rng.uniform(-1, 1, N)
    w = beta**2 * logistic_weight(beta * (phi @ theta - b))
    res = greedy_select(phi, n, gamma=gamma, weights=w, record_kappa=True)
    return dict(phi=phi, w=w, v=np.sqrt(w)[:, None] * phi, gamma=gamma, beta=beta, res=res)


def test_engine_gains_and_logdet_match_brute_force_slogdet(engine_run):
    r, v, g = engine_run["res"], engine_run["v"], engine_run["gamma"]
    ref = checks.brute_force_gains(v, g, r.indices)
    np.testing.assert_allclose(r.gains, ref, rtol=1e-9, atol=1e-12)
    full = np.linalg.slogdet(g * np.eye(v.shape[1]) + v[r.indices].T @ v[r.indices])[1]
    assert r.logdet == pytest.approx(full, rel=1e-10)


def test_engine_gains_mutants_are_caught(engine_run):
    r, v, g = engine_run["res"], engine_run["v"], engine_run["gamma"]
    ref = checks.brute_force_gains(v, g, r.indices)
    unweighted = checks.brute_force_gains(engine_run["phi"], g, r.indices)  # weights forgotten
    for wrong in (unweighted, np.roll(r.gains, 1), np.log(np.expm1(r.gains))):  # off-by-one, no log1p
        assert not np.allclose(wrong, ref, rtol=1e-9, atol=1e-12)


def test_engine_picks_are_the_greedy_argmax_and_uniform_picks_are_not(engine_run):
    """Greedy identity (eq. 10) on the engine: each pick maximizes the brute-force log-det gain."""
    r, v, g = engine_run["res"], engine_run["v"], engine_run["gamma"]
    assert checks.greedy_optimality_gaps(v, g, r.indices).max() <= 1e-10
    uniform = np.random.default_rng(0).choice(len(v), len(r.indices), replace=False)
    assert checks.greedy_optimality_gaps(v, g, uniform).max() > 0.1
    # Mutant: the engine run on the unweighted design (APO's) is not greedy for these weights.
    apo = greedy_select(engine_run["phi"], len(r.indices), gamma=g).indices
    assert checks.greedy_optimality_gaps(v, g, apo).max() > 1e-3


def test_lemma5_on_engine_max_scores_and_a_wrong_downdate(engine_run):
    """Lemma 5 on the engine's own outputs: max_i v_i^T H_{t-1}^{-1} v_i = kappa_t (e^{g_t} - 1)
    (fixed weights) equals fresh Cholesky solves and never increases. Mutant: the scores of an
    engine whose Sherman-Morrison step has the wrong sign (H^{-1} grows) are caught."""
    r, v, g = engine_run["res"], engine_run["v"], engine_run["gamma"]
    eng = checks.engine_max_scores(r.gains, r.kappa)
    np.testing.assert_allclose(eng, checks.reference_max_scores(v, g, r.indices), rtol=1e-9)
    assert checks.lemma5_max_increase(eng) <= 1e-12
    hinv, wrong = np.eye(v.shape[1]) / g, []
    for i in r.indices:
        wrong.append(np.einsum("ij,jk,ik->i", v, hinv, v).max())
        u = hinv @ v[i]
        hinv = hinv + np.outer(u, u) / (1 + v[i] @ u)  # sign flipped: should be minus
    assert checks.lemma5_max_increase(np.asarray(wrong)) > 0.01


def test_lemma6_on_engine_scores_and_its_mutants(engine_run):
    r, g, beta = engine_run["res"], engine_run["gamma"], engine_run["beta"]
    v_picked = engine_run["v"][r.indices]
    assert checks.lemma6_ratios(v_picked, g, beta).max() <= 1 + 1e-12
    # The first pick sits near Lemma 6's equality case, so small errors are visible:
    assert checks.lemma6_ratios(v_picked, g, beta).max() > 0.9
    # Mutant vectors: weights beta^2 without mu(1 - mu) (||v||^2 > c_max): caught.
    raw = beta * engine_run["phi"][r.indices]
    assert checks.lemma6_ratios(raw, g, beta).max() > 1.0
    # Mutant constant: c_min in place of c_max.
    cm = C.c_min_tight(beta)
    assert checks.lemma6_ratios(v_picked, g, beta, constant=cm / (g * math.log1p(cm / g))).max() > 1.0


# --------------------------------------------------------------------------- Theorem 4
#: Informative regime (theory.regimes.needle_instance): with beta = 0.25, gamma = c_max the
#: corrected bound is ~0.18x the ceiling 1/gamma at n = 256, kappa = 1 (needles never run out).
T4 = dict(N=32768, d=8, needles=64, beta=0.25, n=256, grid=[64, 128, 256])


@pytest.fixture(scope="module")
def t4_run():
    data = needle_instance(T4["N"], T4["d"], needles=T4["needles"], beta=T4["beta"], seed=0)
    gamma = C.c_max(T4["beta"])
    tr = checks.selector_trace("oracle", data, T4["n"], gamma=gamma, seed=0)
    return data, gamma, tr


def _t4_holds(res, form="corrected"):
    assert np.all(res[form] < res["ceiling"]), "vacuous checkpoint: bound >= max ||phi||^2/gamma"
    return bool(np.all(res["measured"] <= res[form]))


def test_theorem4_corrected_holds_where_it_is_informative(t4_run):
    data, gamma, tr = t4_run
    res = checks.theorem4_along_run(data, tr.indices, gamma, tr.kappa, T4["grid"])
    assert np.all(res["corrected"] < 0.5 * res["ceiling"])  # informative, with room
    assert _t4_holds(res)
    # The oracle's kappa is also the engine's: greedy_select on the same weights agrees.
    w = data.beta**2 * logistic_weight(data.beta * (data.phi @ data.theta_star - data.b))
    eng = greedy_select(data.phi, T4["n"], gamma=gamma, weights=w, record_kappa=True)
    np.testing.assert_array_equal(eng.indices, tr.indices)


def test_theorem4_catches_the_printed_constant(t4_run):
    data, gamma, tr = t4_run
    res = checks.theorem4_along_run(data, tr.indices, gamma, tr.kappa, T4["grid"])
    assert not np.all(res["measured"] <= res["printed"])  # c_max^3/c_min fails (5000x smaller)


def test_theorem4_catches_a_bound_missing_d(t4_run):
    data, gamma, tr = t4_run

    def no_d(d, n, beta, gamma, kappa, form):
        return B.theorem4_bound(d, n, beta, gamma, kappa, form=form) / d
    res = checks.theorem4_along_run(data, tr.indices, gamma, tr.kappa, T4["grid"], bound=no_d)
    assert not _t4_holds(res)


def test_theorem4_catches_a_wrong_c_min(t4_run):
    """c_min taken as c_max (the weights' spread ignored): C = 1 instead of (c_max/c_min)^2
    makes the bound 13% smaller - not caught at this slack (5.8x); a c_min 8x too large is."""
    data, gamma, tr = t4_run

    def big_c_min(d, n, beta, gamma, kappa, form):
        return B.theorem4_bound(d, n, beta, gamma, kappa, form=form, c_min=8 * C.c_min_tight(beta))
    res = checks.theorem4_along_run(data, tr.indices, gamma, tr.kappa, T4["grid"], bound=big_c_min)
    assert not _t4_holds(res)


@pytest.mark.parametrize("seed", range(5))
def test_theorem4_catches_a_selector_that_ignores_the_design(t4_run, seed):
    """Uniform picks, judged with the greedy run's kappa (Assumption 4 as claimed), miss some
    needle axis: phi^T Sigma_n^{-1} phi stays near 1/gamma there, above the bound."""
    data, gamma, tr = t4_run
    u = np.random.default_rng(seed).choice(data.N, T4["n"], replace=False)
    res = checks.theorem4_along_run(data, u, gamma, tr.kappa, T4["grid"])
    assert not _t4_holds(res)


# --------------------------------------------------------------------------- Theorem 2
#: Measured facts: n at which the corrected Theorem 2 bound (kappa = 1) first drops below the
#: trivial ceiling 2 = max ||phi|| (||theta_hat|| + ||theta_*||), from the formula.
T2_FACTS = [  # (d, beta, gamma, delta, radius, n_cross)
    (8, 1.0, 1.0, 0.05, "theorem3", 603_000),          # the theory_bound figure's setting
    (8, 1.0, 1.0, 0.05, "self_normalized", 392_000),
    (2, 0.5, 3.0, 0.05, "theorem3", 9_390),            # the smallest found on a (d, beta, gamma) grid
]


@pytest.mark.parametrize("d,beta,gamma,delta,radius,n_cross", T2_FACTS)
def test_theorem2_is_vacuous_below_the_documented_n(d, beta, gamma, delta, radius, n_cross):
    def bound(n):
        return B.theorem2_bound(d, n, beta, gamma, delta, 1.0, radius=radius)
    n_star = B.informative_n(bound, B.theorem2_ceiling())
    assert n_star == pytest.approx(n_cross, rel=0.01)
    assert bound(int(n_star) - 1) >= 2.0 > bound(int(n_star))


def test_theorem2_vacuity_fact_catches_a_bound_missing_d():
    """Mutant: a Theorem 2 bound missing a factor sqrt(d) would be informative ~4x earlier
    at d = 8 (sqrt(8) on the radius... and on Theorem 4); the documented n no longer matches."""
    def no_sqrt_d(n):
        return B.theorem2_bound(8, n, 1.0, 1.0, 0.05, 1.0) / math.sqrt(8)
    assert B.informative_n(no_sqrt_d, B.theorem2_ceiling()) < 0.5 * T2_FACTS[0][5]


def test_informative_n_bisection_against_a_closed_form():
    # bound(n) = 10 / sqrt(n) < 2  <=>  n > 25: the first such integer is 26.
    assert B.informative_n(lambda n: 10 / math.sqrt(n), 2.0) == 26
    assert B.informative_n(lambda n: 1.0, 2.0) == 1
    assert B.informative_n(lambda n: 3.0, 2.0) == math.inf
