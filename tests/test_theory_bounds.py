"""Tests of theory.bounds: the inequalities behind each bound, checked on random instances
satisfying Assumptions 2-3, an analytic counterexample to Theorem 4 as printed, and the CLI."""

import json
import math

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

from adpo.cli import main as cli_main
from sim.data import PreferenceData
from sim.dpo import logistic_weight
from theory import bounds as B
from theory import checks, constants as C

from helpers import ball

SETTINGS = settings(max_examples=40, deadline=None)




@SETTINGS
@given(d=st.integers(2, 500), n=st.integers(0, 10**6), beta=st.floats(0.05, 10),
       gamma=st.floats(1e-3, 100), delta=st.floats(1e-9, 0.99))
def test_exact_self_normalized_radius_never_exceeds_theorem3(d, n, beta, gamma, delta):
    # PAPER.md sec. 4 remark (b): the printed simplification is looser for d >= 2.
    assert B.self_normalized_radius(d, n, beta, gamma, delta) <= B.theorem3_radius(d, n, beta, gamma, delta) * (1 + 1e-12)


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), d=st.integers(1, 8), n=st.integers(1, 60),
       beta=st.floats(0.05, 5), gamma=st.floats(1e-2, 10))
def test_data_dependent_log_det_is_below_the_am_gm_bound(seed, d, n, beta, gamma):
    rng = np.random.default_rng(seed)
    phi = ball(rng, n, d)
    exact = B.self_normalized_radius(d, n, beta, gamma, 0.1, phi_selected=phi)
    assert exact <= B.self_normalized_radius(d, n, beta, gamma, 0.1) * (1 + 1e-12)
    # The exact log det term against numpy.slogdet.
    lam = gamma / C.c_min_tight(beta)
    ld = np.linalg.slogdet(lam * np.eye(d) + phi.T @ phi)[1] - d * math.log(lam)
    want = beta / math.sqrt(C.c_min_tight(beta)) * math.sqrt(ld + 2 * math.log(10)) + 2 * math.sqrt(gamma)
    assert exact == pytest.approx(want, rel=1e-10)


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), d=st.integers(1, 3), n=st.integers(15, 40),
       beta=st.floats(0.05, 0.5), g=st.floats(0.5, 4))
def test_corrected_theorem4_holds_for_every_greedy_run(seed, d, n, beta, g):
    """Theorem 4 is deterministic: for any greedy run whose weights lie in [c_min, c_max],
    max_i phi_i^T Sigma_n^{-1} phi_i <= corrected bound with kappa = the run's max kappa_t.

    Domain chosen so the check is informative: small beta (C = (c_max/c_min)^2 <= 1.2) and
    gamma = g c_max make the bound < the ceiling max ||phi||^2 / gamma in 296 of 300 draws
    (measured; those draws had measured/bound <= 0.59). Vacuous draws are discarded by assume.
    The old domain (beta up to 5, n <= 25) was informative in ~0.3% of draws.
    """
    rng = np.random.default_rng(seed)
    N, gamma = 120, g * C.c_max(beta)
    phi, b = ball(rng, N, d), rng.uniform(-1, 1, N)
    theta_hat, theta_star = ball(rng, 1, d)[0], ball(rng, 1, d)[0]
    w = beta**2 * logistic_weight(beta * (phi @ theta_hat - b))  # design weights (ADPO+-like)
    idx, kappa = checks.reference_greedy(phi, w, gamma, n)
    data = PreferenceData(phi=phi, b=b, beta=beta, theta_star=theta_star)
    res = checks.theorem4_along_run(data, idx, gamma, kappa, [n])
    assume(res["corrected"][0] < res["ceiling"][0])
    assert res["measured"][0] <= res["corrected"][0] * (1 + 1e-10)
    assert res["measured"][0] > res["printed"][0]  # and the printed constant fails here


def test_printed_theorem4_fails_on_an_analytic_instance():
    """d = 1, every phi_i = 1, b_i = -1, theta_* = 1 (Assumption 2 holds with equality): after
    n = 1 pick, phi^T Sigma_1^{-1} phi = 1 / (gamma + c_min) while kappa = 1 (all rows alike),
    and the printed bound c_max^3/c_min * log(1+c_max/gamma)/(gamma log(1+c_max/gamma)) is
    smaller; the corrected c_max^2/c_min^2 is not."""
    beta, gamma = 1.0, 1.0
    cm_t = beta**2 * math.exp(2) / (1 + math.exp(2)) ** 2  # weight at logit 2 beta
    measured = 1 / (gamma + cm_t)
    printed = (beta**2 / 4) ** 3 / (beta**2 / (1 + math.exp(4))) / gamma
    assert measured == pytest.approx(0.90498, abs=1e-5)
    assert printed == pytest.approx(0.868721, abs=1e-6)  # (1 + e^4) / 64
    assert B.theorem4_bound(1, 1, beta, gamma, 1.0, form="printed") == pytest.approx(printed, rel=1e-12)
    data = PreferenceData(phi=np.ones((5, 1)), b=-np.ones(5), beta=beta, theta_star=np.ones(1))
    idx, kappa = checks.reference_greedy(data.phi, np.full(5, 0.2), gamma, 1)
    res = checks.theorem4_along_run(data, idx, gamma, kappa, [1])
    assert res["measured"][0] == pytest.approx(measured, rel=1e-12)
    assert res["measured"][0] > res["printed"][0]
    assert res["measured"][0] < res["corrected"][0]


def test_theorem4_constant_corrections_numeric_example():
    # beta = 1: printed C = c_max^3 / c_min_printed, corrected C = c_max^2 / c_min_tight^2.
    assert B.theorem4_constant(1.0, "printed") == pytest.approx(0.015625 / 0.0179862, rel=1e-5)
    assert B.theorem4_constant(1.0, "corrected") == pytest.approx(0.0625 / 0.104994**2, rel=1e-5)


@SETTINGS
@given(d=st.integers(1, 400), n=st.integers(1, 10**5), beta=st.floats(0.05, 10),
       gamma=st.floats(1e-3, 100), delta=st.floats(1e-9, 0.99), kappa=st.floats(1, 100))
def test_monotonicity_of_the_bounds(d, n, beta, gamma, delta, kappa):
    r = B.theorem3_radius(d, n, beta, gamma, delta)
    assert B.theorem3_radius(d, n, beta, gamma, delta / 2) > r
    t4 = B.theorem4_bound(d, n, beta, gamma, kappa)
    assert B.theorem4_bound(d, 2 * n, beta, gamma, kappa) < t4
    assert B.theorem4_bound(d, n, beta, gamma, 2 * kappa) == pytest.approx(2 * t4, rel=1e-12)


def test_theorem2_against_a_hand_computation():
    """d = 4, n = 1000, beta = gamma = 1, delta = 0.05, kappa = 1, corrected; every factor
    written out from PAPER.md sec. 4 (not from theory.bounds)."""
    cmax, cmin = 0.25, math.exp(2) / (1 + math.exp(2)) ** 2
    r = math.sqrt(4 / cmin * math.log((1 + cmin * 1000) / 0.05)) + 2
    t4 = (cmax / cmin) ** 2 * 4 * math.log(1 + cmax * 1000 / 4) / (math.log(1 + cmax) * 1000)
    assert B.theorem2_bound(4, 1000, 1.0, 1.0, 0.05, 1.0) == pytest.approx(r * math.sqrt(t4), rel=1e-12)
    assert B.theorem2_bound(4, 1000, 0.5, 1.0, 0.05, 1.0, beta_scaled=True) == pytest.approx(
        0.5 * B.theorem2_bound(4, 1000, 0.5, 1.0, 0.05, 1.0), rel=1e-12)
    assert r * math.sqrt(t4) == pytest.approx(12.4, abs=0.05)  # > 2: vacuous at this n


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), d=st.integers(1, 6), t=st.integers(0, 30),
       beta=st.floats(0.05, 5), gamma=st.floats(1e-2, 10))
def test_lemma6_on_random_designs(seed, d, t, beta, gamma):
    rng = np.random.default_rng(seed)
    cmax = C.c_max(beta)
    vs = ball(rng, t + 1, d) * math.sqrt(cmax)  # ||v||^2 <= c_max
    h = gamma * np.eye(d) + vs[:-1].T @ vs[:-1]
    y = checks.quad_forms(h, vs[-1:])[0]
    assert y <= B.lemma6_constant(beta, gamma) * math.log1p(y) * (1 + 1e-12) + 1e-300


def test_bad_inputs_name_the_field():
    with pytest.raises(ValueError, match="delta"):
        B.theorem3_radius(2, 10, 1.0, 1.0, 1.5)
    with pytest.raises(ValueError, match="kappa"):
        B.theorem4_bound(2, 10, 1.0, 1.0, 0.5)
    with pytest.raises(ValueError, match="form"):
        B.theorem4_bound(2, 10, 1.0, 1.0, 1.0, form="paper")
    with pytest.raises(ValueError, match="gamma"):
        B.theorem2_bound(2, 10, 1.0, 0.0, 0.1, 1.0)


def test_cli_bound_prints_documented_keys(capsys):
    assert cli_main(["bound", "--d", "384", "--n", "8192", "--beta", "1", "--design-ridge", "1",
                     "--delta", "0.05", "--kappa", "2"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == set(B.SUMMARY_KEYS)
    assert out["inputs"]["kappa"] == 2.0
    assert out["theorem2_corrected"] == pytest.approx(
        B.theorem2_bound(384, 8192, 1.0, 1.0, 0.05, 2.0), rel=1e-12)
    assert out["c_min_printed_valid"] is True


def test_cli_bound_errors_and_help(capsys):
    assert cli_main(["bound", "--d", "3", "--n", "10", "--delta", "0"]) == 2
    assert "delta" in capsys.readouterr().err
    assert cli_main(["bound", "--help"]) == 0  # the CLI's error boundary returns, never exits
    help_text = capsys.readouterr().out
    for key in B.SUMMARY_KEYS:
        assert key in help_text
