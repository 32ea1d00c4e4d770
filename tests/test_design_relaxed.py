"""Relaxed D-optimal designs (sim.design.relaxed): cross-solver agreement, the Kiefer-Wolfowitz
equivalence theorem, a closed-form optimum, and clear errors."""

import numpy as np
import pytest

from sim.design import cvxpy_design, efficiency_certificate, fw_design, multiplicative_design
from sim.design.common import information_matrix


def _kw(V, pi):
    """(max_i g_i, sum_i pi_i g_i) with g_i = v_i^T M(pi)^{-1} v_i, by a dense solve."""
    M = V.T @ (pi[:, None] * V)
    g = np.einsum("ij,ij->i", V, np.linalg.solve(M, V.T).T)
    return g.max(), float(pi @ g)


@pytest.mark.parametrize("seed,N,d", [(0, 40, 3), (1, 120, 5), (2, 150, 7)])
def test_fw_multiplicative_and_cvxpy_agree_on_log_det(seed, N, d):
    rng = np.random.default_rng(seed)
    V = rng.standard_normal((N, d)) * rng.uniform(0.2, 2.0, (N, 1))
    fw = fw_design(V, efficiency=1 - 1e-9)
    fwa = fw_design(V, efficiency=1 - 1e-9, step="away")
    mult = multiplicative_design(V, efficiency=1 - 1e-7, max_iter=200_000)
    cv = cvxpy_design(V, tol_gap_rel=1e-12, tol_gap_abs=1e-12, tol_feas=1e-12)
    for r in (fw, fwa, mult, cv):
        assert abs(r.logdet - fw.logdet) <= 1e-6 * abs(fw.logdet) + 1e-9, r.solver
    assert fw.converged and mult.converged
    assert fw.efficiency >= 1 - 1e-9 and mult.efficiency >= 1 - 1e-7
    # the reported log det and certificate are those of the returned pi
    M = V.T @ (fw.pi[:, None] * V)
    assert fw.logdet == pytest.approx(np.linalg.slogdet(M)[1], rel=1e-12, abs=1e-12)
    assert fw.efficiency == pytest.approx(d / _kw(V, fw.pi)[0], rel=1e-10)


@pytest.mark.parametrize("step", ["pairwise", "away"])
def test_kiefer_wolfowitz_conditions_hold_at_the_optimum(step):
    rng = np.random.default_rng(3)
    V = rng.standard_normal((200, 6))
    res = fw_design(V, efficiency=1 - 1e-10, step=step)
    assert res.info[step] > 0
    gmax, avg = _kw(V, res.pi)
    assert gmax == pytest.approx(6, rel=1e-9)                 # max_i g_i = d
    assert avg == pytest.approx(6, rel=1e-12)                 # sum_i pi_i g_i = d (any pi)
    M = V.T @ (res.pi[:, None] * V)
    g = np.einsum("ij,ij->i", V, np.linalg.solve(M, V.T).T)
    assert np.all(np.abs(g[res.pi > 1e-8] - 6) < 1e-6)        # g_i = d on the support
    assert res.support <= 6 * 7 // 2                          # Caratheodory bound d(d+1)/2


def test_closed_form_optimum_of_the_cross_polytope():
    # +-e_i and points strictly inside the unit ball: the D-optimal design is uniform on the
    # 2d vertices, M* = I/d, log det M* = -d log d, and every interior point has g = d|v|^2 < d.
    rng = np.random.default_rng(4)
    d = 5
    inner = rng.standard_normal((60, d))
    inner *= rng.uniform(0, 0.95, (60, 1)) / np.linalg.norm(inner, axis=1, keepdims=True)
    V = np.vstack([np.eye(d), -np.eye(d), inner])
    opt = -d * np.log(d)
    for r in (fw_design(V, efficiency=1 - 1e-10), fw_design(V, efficiency=1 - 1e-10, step="away"),
              fw_design(V, efficiency=1 - 1e-4, step="fw", start="uniform"),
              multiplicative_design(V, efficiency=1 - 1e-6)):
        # log det M* - log det M(pi) <= d log(1 / efficiency): the certificate's guarantee
        assert opt - d * np.log(1 / r.efficiency) - 1e-12 <= r.logdet <= opt + 1e-12, r.info
    assert fw_design(V, efficiency=1 - 1e-10).logdet == pytest.approx(opt, abs=1e-8)
    fw = fw_design(V, efficiency=1 - 1e-12)
    assert fw.pi[2 * d:].sum() < 1e-9
    np.testing.assert_allclose(information_matrix(V, fw.pi), np.eye(d) / d, atol=1e-9)


def test_certificate_is_a_lower_bound_on_the_d_efficiency():
    rng = np.random.default_rng(5)
    V = rng.standard_normal((80, 4))
    opt = fw_design(V, efficiency=1 - 1e-12).logdet
    for s in range(20):
        pi = rng.exponential(size=80) * (rng.uniform(size=80) < 0.3 + 0.03 * s)
        if pi.sum() == 0:
            continue
        pi /= pi.sum()
        eff = efficiency_certificate(V, pi)
        d_eff = np.exp((np.linalg.slogdet(V.T @ (pi[:, None] * V))[1] - opt) / 4)
        assert 0 < eff <= d_eff + 1e-9


def test_working_set_gives_the_same_optimum_and_certifies_over_all_rows():
    rng = np.random.default_rng(6)
    V = rng.standard_normal((3000, 10))
    ws = fw_design(V, efficiency=1 - 1e-8, working_set=True)
    full = fw_design(V, efficiency=1 - 1e-8, working_set=False)
    assert ws.info["working_set"] and ws.info["rounds"] >= 1
    assert ws.logdet == pytest.approx(full.logdet, rel=1e-7)
    assert ws.efficiency >= 1 - 1e-8
    assert ws.efficiency == pytest.approx(10 / _kw(V, ws.pi)[0], rel=1e-9)


def test_weights_scale_the_rows_and_zero_weights_get_no_mass():
    rng = np.random.default_rng(7)
    V = rng.standard_normal((50, 3))
    w = rng.uniform(0.5, 2.0, 50)
    w[:5] = 0.0
    a = fw_design(V, weights=w, efficiency=1 - 1e-9)
    b = fw_design(V * np.sqrt(w)[:, None], efficiency=1 - 1e-9)
    assert a.logdet == pytest.approx(b.logdet, rel=1e-9)
    assert a.pi[:5].sum() == 0


def test_stops_on_the_requested_efficiency_and_reports_non_convergence():
    rng = np.random.default_rng(8)
    V = rng.standard_normal((500, 8))
    r = fw_design(V, efficiency=0.9)
    assert 0.9 <= r.efficiency
    assert fw_design(V, efficiency=1 - 1e-9).iterations > r.iterations
    capped = multiplicative_design(V, efficiency=1 - 1e-9, max_iter=3)
    assert not capped.converged and capped.iterations == 3


def test_bad_inputs():
    rng = np.random.default_rng(9)
    with pytest.raises(ValueError, match="V.*rank"):
        fw_design(rng.standard_normal((30, 2)) @ rng.standard_normal((2, 5)))
    with pytest.raises(ValueError, match="V.*rows"):
        multiplicative_design(rng.standard_normal((3, 5)))
    with pytest.raises(ValueError, match="V.*rank"):
        cvxpy_design(np.c_[rng.standard_normal((10, 2)), np.zeros(10)])
    V = rng.standard_normal((10, 2))
    V[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fw_design(V)
    with pytest.raises(ValueError, match="efficiency"):
        fw_design(rng.standard_normal((10, 2)), efficiency=1.0)
    with pytest.raises(ValueError, match="step"):
        fw_design(rng.standard_normal((10, 2)), step="newton")
    with pytest.raises(ValueError, match="pi"):
        efficiency_certificate(rng.standard_normal((10, 2)), -np.ones(10))
