"""DPO loss, derivatives (Lemma 1) and the MLE, against independent references."""

import numpy as np
import pytest
import scipy.optimize
from sklearn.linear_model import LogisticRegression

from sim.dpo import (ConvergenceError, armijo_step, dpo_gradient, dpo_hessian, dpo_loss, fit_dpo,
                     log_sigmoid, logistic_weight, sigmoid, weighted_gram)


def _central_diff(f, x, h=1e-6):
    g = np.zeros_like(x)
    for j in range(x.size):
        e = np.zeros_like(x)
        e[j] = h
        g[j] = (f(x + e) - f(x - e)) / (2 * h)
    return g


def test_gradient_matches_finite_differences(small_data):
    d = small_data
    rng = np.random.default_rng(0)
    for ridge in (0.0, 0.7):
        theta = rng.standard_normal(d.d)
        fd = _central_diff(lambda t: dpo_loss(t, d.phi, d.b, d.beta, d.s, ridge), theta)
        np.testing.assert_allclose(dpo_gradient(theta, d.phi, d.b, d.beta, d.s, ridge), fd,
                                   rtol=1e-6, atol=1e-6)


def test_hessian_matches_finite_differences_of_gradient(small_data):
    d = small_data
    theta = np.random.default_rng(1).standard_normal(d.d)
    fd = np.column_stack([
        _central_diff(lambda t: dpo_gradient(t, d.phi, d.b, d.beta, d.s, 0.2)[j], theta)
        for j in range(d.d)])
    h = dpo_hessian(theta, d.phi, d.b, d.beta, 0.2)
    np.testing.assert_allclose(h, fd, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(h, h.T)
    assert np.linalg.eigvalsh(h - 0.2 * np.eye(d.d)).min() > -1e-12  # Lemma 1: PSD


def test_hessian_is_lemma1_formula(small_data):
    d = small_data
    theta = np.ones(d.d)
    mu = 1 / (1 + np.exp(-d.beta * (d.phi @ theta - d.b)))
    ref = d.beta**2 * sum(m * (1 - m) * np.outer(p, p) for m, p in zip(mu, d.phi))
    np.testing.assert_allclose(dpo_hessian(theta, d.phi, d.b, d.beta), ref, rtol=1e-10)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_weighted_gram(dtype):
    rng = np.random.default_rng(2)
    phi, w = rng.standard_normal((50, 7)), rng.random(50)
    ref = (phi * w[:, None]).T @ phi
    got = weighted_gram(phi.astype(dtype), w.astype(dtype))
    np.testing.assert_allclose(got, ref, rtol=1e-10 if dtype == np.float64 else 1e-4)


def test_stable_primitives_at_extreme_logits():
    z = np.array([-1e4, -800.0, -30.0, 0.0, 30.0, 800.0, 1e4])
    ls = log_sigmoid(z)
    assert np.all(np.isfinite(ls))
    np.testing.assert_allclose(ls[0], -1e4)  # log mu(-z) ~ -z for large z
    np.testing.assert_allclose(ls[-1], 0.0, atol=1e-300)
    assert np.all(np.isfinite(sigmoid(z))) and np.all(logistic_weight(z) >= 0)
    # Loss and gradient on logits of +-1e4: finite, and the loss is exactly linear in the tail.
    phi = np.array([[1.0], [1.0]])
    b = np.zeros(2)
    s = np.array([0, 1])
    theta = np.array([1e4])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss = dpo_loss(theta, phi, b, 1.0, s)
        grad = dpo_gradient(theta, phi, b, 1.0, s)
        hess = dpo_hessian(theta, phi, b, 1.0)
    assert loss == pytest.approx(1e4)  # the wrong label costs its logit, the right one ~0
    np.testing.assert_allclose(grad, [1.0])
    assert np.all(np.isfinite(hess))


def test_mle_matches_sklearn_logistic_regression():
    """b = 0, beta = 1, fit ridge r  <=>  LogisticRegression(C = 1/r, no intercept)."""
    rng = np.random.default_rng(3)
    n, d, ridge = 2000, 8, 0.5
    phi = rng.standard_normal((n, d))
    s = (rng.random(n) < sigmoid(phi @ rng.standard_normal(d))).astype(int)
    ours = fit_dpo(phi, np.zeros(n), 1.0, s, fit_ridge=ridge)
    ref = LogisticRegression(C=1 / ridge, fit_intercept=False, tol=1e-12, max_iter=10_000)
    ref.fit(phi, s)
    assert ours.converged
    np.testing.assert_allclose(ours.theta, ref.coef_[0], atol=1e-6, rtol=0)


@pytest.mark.parametrize("beta,ridge", [(0.3, 0.0), (2.5, 1e-3), (5.0, 1.0)])
def test_mle_matches_scipy_with_offsets_and_beta(small_data, beta, ridge):
    d = small_data
    ours = fit_dpo(d.phi, d.b, beta, d.s, fit_ridge=ridge)
    ref = scipy.optimize.minimize(dpo_loss, np.zeros(d.d), args=(d.phi, d.b, beta, d.s, ridge),
                                  jac=dpo_gradient, method="BFGS", options={"gtol": 1e-11})
    np.testing.assert_allclose(ours.theta, ref.x, atol=1e-6, rtol=0)
    assert np.max(np.abs(dpo_gradient(ours.theta, d.phi, d.b, beta, d.s, ridge))) < 1e-8


def test_mle_large_uses_float32_hessian_but_exact_fixed_point():
    rng = np.random.default_rng(4)
    n, d = 20_000, 60  # N*d >= 1e6 -> float32 Hessian path
    phi = rng.standard_normal((n, d)) / np.sqrt(d)
    b = 0.5 * rng.standard_normal(n)
    s = (rng.random(n) < sigmoid(2 * (phi @ rng.standard_normal(d) - b))).astype(int)
    fast = fit_dpo(phi, b, 2.0, s, fit_ridge=1e-3)
    exact = fit_dpo(phi, b, 2.0, s, fit_ridge=1e-3, hessian_dtype=np.float64)
    np.testing.assert_allclose(fast.theta, exact.theta, atol=1e-8)


def test_ball_constrained_mle_matches_scipy_slsqp(small_data):
    d = small_data
    ours = fit_dpo(d.phi, d.b, d.beta, d.s, fit_ridge=0.0, radius=0.5)
    assert np.linalg.norm(ours.theta) == pytest.approx(0.5, abs=1e-10)
    assert ours.multiplier > 0
    cons = {"type": "ineq", "fun": lambda t: 0.25 - t @ t, "jac": lambda t: -2 * t}
    ref = scipy.optimize.minimize(dpo_loss, np.zeros(d.d), args=(d.phi, d.b, d.beta, d.s, 0.0),
                                  jac=dpo_gradient, method="SLSQP", constraints=[cons],
                                  options={"ftol": 1e-15, "maxiter": 1000})
    np.testing.assert_allclose(ours.theta, ref.x, atol=1e-6)
    # KKT: grad = -lambda theta at the boundary.
    g = dpo_gradient(ours.theta, d.phi, d.b, d.beta, d.s)
    np.testing.assert_allclose(g, -ours.multiplier * ours.theta, atol=1e-6)


def test_inactive_ball_returns_unconstrained(small_data):
    d = small_data
    free = fit_dpo(d.phi, d.b, d.beta, d.s, fit_ridge=1e-3)
    boxed = fit_dpo(d.phi, d.b, d.beta, d.s, fit_ridge=1e-3, radius=10 * np.linalg.norm(free.theta))
    np.testing.assert_allclose(boxed.theta, free.theta)
    assert boxed.multiplier == 0.0


def test_separable_without_ridge_raises_clear_error():
    phi = np.array([[1.0, 0.0], [2.0, 1.0], [-1.0, 0.5], [-2.0, -1.0]])
    s = np.array([1, 1, 0, 0])
    with pytest.raises(ConvergenceError, match="separable|fit_ridge"):
        fit_dpo(phi, np.zeros(4), 1.0, s, fit_ridge=0.0)
    res = fit_dpo(phi, np.zeros(4), 1.0, s, fit_ridge=1e-2)  # a ridge makes it well posed
    assert np.all(np.isfinite(res.theta))


def test_fewer_rows_than_features_with_ridge():
    rng = np.random.default_rng(5)
    phi = rng.standard_normal((3, 20))
    res = fit_dpo(phi, np.zeros(3), 1.0, [1, 0, 1], fit_ridge=1e-3)
    assert res.converged and np.all(np.isfinite(res.theta))


@pytest.mark.parametrize("kwargs,field", [
    (dict(beta=0.0), "beta"), (dict(beta=-1.0), "beta"), (dict(beta=np.nan), "beta"),
    (dict(fit_ridge=-1.0), "fit_ridge"), (dict(s=[0, 1, 2]), "s"), (dict(s=[0, 1]), "s"),
    (dict(b=[0.0, np.nan, 0.0]), "b"), (dict(phi=np.ones(3)), "phi"),
    (dict(phi=[[1.0, np.inf]] * 3), "phi"), (dict(radius=0.0), "radius"),
])
def test_bad_inputs_name_the_field(kwargs, field):
    args = dict(phi=np.ones((3, 2)), b=np.zeros(3), beta=1.0, s=[0, 1, 1])
    args.update(kwargs)
    extra = {k: args.pop(k) for k in ("fit_ridge", "radius") if k in args}
    with pytest.raises(ValueError, match=field):
        fit_dpo(args["phi"], args["b"], args["beta"], args["s"], **extra)


def _first_armijo_halving(loss_at, f, dec):
    """Literal reference: the first t = 2^-k, k = 0, 1, ..., with loss(t) <= f - 1e-4 t dec."""
    for k in range(60):
        t = 2.0 ** -k
        if loss_at(t) <= f - 1e-4 * t * dec:
            return t
    return None


@pytest.mark.parametrize("shift", [0.0, 0.3, 1.7, 5.0])
def test_armijo_step_is_the_first_halving_with_sufficient_decrease(shift):
    # loss(theta + t p) of a wiggly 1-D function along an overshooting direction
    loss_at = lambda t: np.cos(9 * t + shift) + (1 - 6 * t) ** 2  # noqa: E731
    f = loss_at(0.0)
    dec = 12.0 + 9 * np.sin(shift)  # -g p: the derivative of this loss at t = 0, negated
    want = _first_armijo_halving(loss_at, f, dec)
    assert want is not None and want < 1  # the full step is refused: the search is exercised
    assert armijo_step(loss_at, f, dec, "fit_x", "phi") == want


def test_armijo_step_sufficient_decrease_constant_and_nan():
    f, dec = 1.0, 2.0
    # a decrease of 1.5e-4 t dec passes the 1e-4 rule at t = 1 (and fails any constant >= 2e-4)
    assert armijo_step(lambda t: f - 1.5e-4 * t * dec, f, dec, "fit_x", "phi") == 1.0
    # a NaN loss is no decrease: the step shrinks until the loss is a number again
    assert armijo_step(lambda t: np.nan if t > 0.1 else f - t, f, dec, "fit_x", "phi") == 0.0625
    with pytest.raises(ConvergenceError, match=r"^fit_pl: line search failed.*rescale psi"):
        armijo_step(lambda t: f + 1.0, f, dec, "fit_pl", "psi")
