"""Relaxed D/A/G designs with a prior information matrix (sim.design.criteria.prior_design)
against cvxpy, closed forms and the prior-free solvers; its certificate is a valid bound."""

import numpy as np
import pytest

from sim.design import criteria as C
from sim.design.common import information_matrix


def _instance(seed=0, N=40, d=3):
    rng = np.random.default_rng(seed)
    V = rng.standard_normal((N, d))
    A = rng.standard_normal((2, d))
    P = 3.0 * A.T @ A                      # rank 2: two directions already well labelled
    return V, P


def _objective(V, pi, P0, c, T=None):
    M = P0 + information_matrix(V, pi)
    if c == "d":
        return -float(np.linalg.slogdet(M)[1])
    Mi = np.linalg.inv(M)                  # explicit inverse: an independent reference
    if c == "a":
        return float(np.trace(Mi))
    T = V if T is None else T
    return float(np.max(np.einsum("ij,jk,ik->i", T, Mi, T)))


@pytest.mark.parametrize("c", ["d", "a", "g"])
def test_prior_design_matches_cvxpy_and_its_certificate_is_a_bound(c):
    V, P = _instance()
    n = 10
    ours = C.prior_design(V, c, n, prior=P, efficiency=1 - 1e-5)
    ref = C.cvxpy_criterion_design(V, c, prior=P, n=n)
    f_ours, f_ref = (_objective(V, r.pi, P / n, c) for r in (ours, ref))
    assert ours.converged
    assert f_ours == pytest.approx(f_ref, rel=2e-4, abs=2e-4)
    # the certificate bounds the distance to cvxpy's optimum from below (never optimistic)
    if c == "d":
        true_eff = np.exp((f_ref - f_ours) / V.shape[1])
    else:
        true_eff = f_ref / f_ours
    assert ours.efficiency <= true_eff + 1e-6


def test_the_prior_changes_the_design_toward_unlabelled_directions():
    """P informs e1 and e2 heavily: the D-design with the prior puts its mass on the rows
    along e3, the prior-free one spreads it (mutant: a solver that drops P gives the latter)."""
    V = np.eye(3)
    P = np.diag([100.0, 100.0, 0.0])
    with_p = C.prior_design(V, "d", 1, prior=P, efficiency=1 - 1e-6)
    without = C.prior_design(V, "d", 1, prior=None, efficiency=1 - 1e-6)
    np.testing.assert_allclose(without.pi, 1 / 3, atol=1e-5)
    # closed form: maximize log(100+p1)+log(100+p2)+log(p3) on the simplex -> p3 = 1
    assert with_p.pi[2] > 0.99
    ref = C.cvxpy_criterion_design(V, "d", prior=P, n=1)
    assert with_p.pi[2] == pytest.approx(ref.pi[2], abs=1e-3)


@pytest.mark.parametrize("c", ["a", "g"])
def test_without_a_prior_it_agrees_with_the_prior_free_solvers(c):
    V, _ = _instance(1)
    ours = C.prior_design(V, c, 7, efficiency=1 - 1e-6)
    other = (C.a_design if c == "a" else C.g_design)(V, efficiency=1 - 1e-6)
    assert _objective(V, ours.pi, 0, c) == pytest.approx(_objective(V, other.pi, 0, c), rel=1e-4)


def test_g_without_prior_meets_kiefer_wolfowitz():
    V, _ = _instance(2)
    res = C.prior_design(V, "g", 5, efficiency=1 - 1e-6)
    assert res.info["value"] == pytest.approx(V.shape[1], rel=1e-4)   # G* = d


def test_certificate_rejects_an_unconverged_design():
    """Stopped after 2 iterations the certificate must stay below the target (mutant: an
    'efficiency' of 1 for any pi would pass here)."""
    V, P = _instance(3)
    res = C.prior_design(V, "a", 10, prior=P, efficiency=1 - 1e-9, max_iter=2)
    assert not res.converged and res.efficiency < 1 - 1e-9


def test_bad_prior_and_budget_are_refused():
    V, P = _instance()
    with pytest.raises(ValueError, match="prior"):
        C.prior_design(V, "d", 5, prior=-P)
    with pytest.raises(ValueError, match="n"):
        C.prior_design(V, "d", 0, prior=P)
