"""REX (sim.design.rex): agreement with Frank-Wolfe and cvxpy, the Kiefer-Wolfowitz conditions at
its optimum, and mutants (a wrong exchange step, no leading batch) that fail to certify."""

import numpy as np
import pytest

import sim.design.rex as rex
from sim.design import cvxpy_design, fw_design, rex_design


def _g(V, pi):
    """g_i = v_i^T M(pi)^{-1} v_i by a dense solve (independent of the solvers' factorizations)."""
    M = V.T @ (pi[:, None] * V)
    return np.einsum("ij,ij->i", V, np.linalg.solve(M, V.T).T)


@pytest.mark.parametrize("seed,N,d", [(0, 40, 3), (1, 150, 7), (2, 400, 10)])
def test_rex_agrees_with_fw_and_cvxpy(seed, N, d):
    rng = np.random.default_rng(seed)
    V = rng.standard_normal((N, d)) * rng.uniform(0.2, 2.0, (N, 1))
    r = rex_design(V, efficiency=1 - 1e-9, seed=seed)
    fw = fw_design(V, efficiency=1 - 1e-9)
    cv = cvxpy_design(V, tol_gap_rel=1e-12, tol_gap_abs=1e-12, tol_feas=1e-12)
    assert r.converged and r.solver == "rex"
    assert r.efficiency >= 1 - 1e-9
    for other in (fw, cv):
        assert abs(r.logdet - other.logdet) <= 1e-6 * max(1.0, abs(other.logdet)), other.solver
    # reported numbers are those of the returned pi, recomputed independently here
    assert r.logdet == pytest.approx(np.linalg.slogdet(V.T @ (r.pi[:, None] * V))[1], abs=1e-10)
    assert r.efficiency == pytest.approx(d / _g(V, r.pi).max(), rel=1e-9)
    assert r.pi.min() >= 0 and r.pi.sum() == pytest.approx(1, abs=1e-12)


def test_kiefer_wolfowitz_equivalence_at_the_rex_optimum():
    V = np.random.default_rng(3).standard_normal((300, 6))
    r = rex_design(V, efficiency=1 - 1e-11, seed=0)
    g = _g(V, r.pi)
    assert g.max() == pytest.approx(6, rel=1e-10)            # max_i g_i = d at the optimum
    assert np.all(np.abs(g[r.pi > 1e-6] - 6) < 1e-6)         # g_i = d on the support
    assert r.info["exchanges"] > 0


def test_same_seed_same_design_and_certificate_target_is_met():
    V = np.random.default_rng(5).standard_normal((200, 6))
    a = rex_design(V, efficiency=1 - 1e-7, seed=11)
    b = rex_design(V, efficiency=1 - 1e-7, seed=11)
    assert np.array_equal(a.pi, b.pi)
    loose = rex_design(V, efficiency=0.99, seed=11)
    assert loose.efficiency >= 0.99 and loose.iterations <= a.iterations


def test_wrong_exchange_step_fails_to_certify(monkeypatch):
    V = np.random.default_rng(1).standard_normal((150, 7))
    assert rex_design(V, efficiency=1 - 1e-9, max_iter=30).converged
    right = rex.exchange_step
    monkeypatch.setattr(rex, "exchange_step", lambda gk, gl, gkl: 2 * right(gk, gl, gkl))
    bad = rex_design(V, efficiency=1 - 1e-9, max_iter=30)
    assert not bad.converged and bad.efficiency < 1 - 1e-4


def test_without_the_leading_batch_it_fails_to_certify_in_the_same_budget():
    V = np.random.default_rng(1).standard_normal((150, 7))
    assert rex_design(V, efficiency=1 - 1e-9, max_iter=20).converged       # 8 iterations here
    # batch -> 0 leaves L = 1 (the argmax only): Boehning's vertex exchange, ~60 iterations
    assert not rex_design(V, efficiency=1 - 1e-9, max_iter=20, batch=1e-9).converged


def test_bad_inputs():
    V = np.random.default_rng(0).standard_normal((30, 4))
    with pytest.raises(ValueError, match="efficiency"):
        rex_design(V, efficiency=1.0)
    with pytest.raises(ValueError, match="batch"):
        rex_design(V, batch=0)
    with pytest.raises(ValueError, match="rank"):
        rex_design(np.c_[V, V[:, :1]])


def test_max_seconds_stops_once_past_the_time_and_reports_it():
    V = np.random.default_rng(2).standard_normal((300, 8))
    assert rex_design(V, efficiency=1 - 1e-9).converged
    r = rex_design(V, efficiency=1 - 1e-9, max_seconds=1e-9)   # R's t.max; the start is longer
    assert not r.converged and r.iterations == 0 and r.efficiency < 1 - 1e-9
    with pytest.raises(ValueError, match="max_seconds"):
        rex_design(V, max_seconds=0)
