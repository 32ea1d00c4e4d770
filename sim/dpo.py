"""DPO for log-linear policies: stable sigmoids, the loss, its derivatives and the MLE.

Under Assumption 1 (log-linear policies, paper eq. 8) the DPO preference probability of pair i
is eq. 9,

    mu_i(theta) = mu(beta * (phi_i^T theta - b_i)),

with phi_i (d,) the feature difference of the two responses and b_i the reference log-ratio.
The DPO loss on a subset S (eq. 6) is the *sum* of negative log-likelihoods; this module adds
an optional ridge (fit_ridge / 2) ||theta||^2 and an optional ball constraint ||theta|| <= radius
(Assumption 2's Theta).

Shapes: ``phi`` (N, d), ``b`` (N,), ``s`` (N,) in {0, 1}, ``theta`` (d,).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import overload

import numpy as np
import scipy.linalg
from numpy.typing import ArrayLike, DTypeLike
from scipy.optimize import brentq
from scipy.special import expit

from .linalg import weighted_gram  # noqa: F401  (re-exported: sim.dpo.weighted_gram)
from .validation import (
    as_labels,
    as_matrix,
    as_vector,
    positive_scalar,
    renamed_keywords,
)


class ConvergenceError(RuntimeError):
    """The MLE solver did not converge; the message says why and what to change."""


# --------------------------------------------------------------------------- stable primitives
@overload
def sigmoid(z: float) -> float: ...


@overload
def sigmoid(z: np.ndarray) -> np.ndarray: ...


def sigmoid(z: float | np.ndarray) -> float | np.ndarray:
    """mu(z) = 1 / (1 + exp(-z)), exact to float precision for any finite z (a scalar gives a
    numpy float, an array an array of its shape)."""
    return expit(z)


def log_sigmoid(z: np.ndarray) -> np.ndarray:
    """log mu(z) = -log(1 + exp(-z)), stable for |z| up to 1e308 (no overflow, no -inf)."""
    z = np.asarray(z, dtype=np.float64)
    return -np.logaddexp(0.0, -z)


def logistic_weight(z: np.ndarray) -> np.ndarray:
    """mu(z) (1 - mu(z)) = mu'(z), computed as mu(z) mu(-z) so it never cancels to 0 early."""
    return expit(z) * expit(-z)


def dpo_logits(phi: np.ndarray, b: np.ndarray, beta: float, theta: np.ndarray) -> np.ndarray:
    """Bradley-Terry logits beta (phi_i^T theta - b_i) of eq. 9. Shape (N,)."""
    return beta * (phi @ theta - b)


def dpo_weights(phi: np.ndarray, b: np.ndarray, beta: float, theta: np.ndarray) -> np.ndarray:
    """Lemma 1's per-pair Hessian weights w_i = beta^2 mu(z_i)(1 - mu(z_i)), z = eq. 9's logits.

    phi (N, d), b (N,), theta (d,) -> (N,). grad^2 L_DPO(theta; S) = sum_{i in S} w_i phi_i
    phi_i^T, so these are the weights of the greedy design (eq. 10 with v_i = sqrt(w_i) phi_i).
    """
    return beta**2 * logistic_weight(dpo_logits(phi, b, beta, theta))


# --------------------------------------------------------------------------- loss and derivatives
@renamed_keywords(gamma="fit_ridge")
def dpo_loss(theta: np.ndarray, phi: np.ndarray, b: np.ndarray, beta: float, s: np.ndarray,
             fit_ridge: float = 0.0) -> float:
    """L_DPO(theta; S) + (fit_ridge/2) ||theta||^2, eq. 6 (a sum over the rows given).

    -[s log mu(z) + (1-s) log(1-mu(z))] = softplus(z) - s z, evaluated with logaddexp so logits of
    +-1e4 neither overflow nor lose the linear tail.
    """
    z = dpo_logits(phi, b, beta, theta)
    return float(np.sum(np.logaddexp(0.0, z) - s * z) + 0.5 * fit_ridge * theta @ theta)


@renamed_keywords(gamma="fit_ridge")
def dpo_gradient(theta: np.ndarray, phi: np.ndarray, b: np.ndarray, beta: float, s: np.ndarray,
                 fit_ridge: float = 0.0) -> np.ndarray:
    """Gradient beta sum_i (mu_i(theta) - s_i) phi_i + fit_ridge theta (Lemma 1's proof).
    Shape (d,)."""
    z = dpo_logits(phi, b, beta, theta)
    return beta * (phi.T @ (sigmoid(z) - s)) + fit_ridge * theta


@renamed_keywords(gamma="ridge")
def dpo_hessian(theta: np.ndarray, phi: np.ndarray, b: np.ndarray, beta: float,
                ridge: float = 0.0) -> np.ndarray:
    """Hessian beta^2 sum_i mu_i (1 - mu_i) phi_i phi_i^T + ridge I (Lemma 1). Shape (d, d).

    ``ridge`` is the multiple of I added: the fit ridge for the Hessian of
    :func:`dpo_loss` (``fit_ridge``), or the design ridge gamma for eq. 13's
    Sigma_t^{-1} = gamma I + grad^2 L(theta; S_t)."""
    return weighted_gram(phi, dpo_weights(phi, b, beta, theta)) + ridge * np.eye(phi.shape[1])


# --------------------------------------------------------------------------- the MLE
def check_fit_inputs(phi: ArrayLike, b: ArrayLike, beta: float, s: ArrayLike, fit_ridge: float
                     ) -> tuple[np.ndarray, np.ndarray, float, np.ndarray, float]:
    """The validated inputs of an MLE solver: phi (N, d), b (N,), beta > 0, s (N,) as float64
    labels in {0, 1}, fit_ridge >= 0; a one-line ``ValueError`` naming the field otherwise."""
    phi = as_matrix(phi, "phi")
    n = phi.shape[0]
    return (phi, as_vector(b, "b", length=n), positive_scalar(beta, "beta"),
            as_labels(s, "s", length=n).astype(np.float64),
            positive_scalar(fit_ridge, "fit_ridge", allow_zero=True))


@dataclass(frozen=True)
class FitResult:
    """Outcome of :func:`fit_dpo`.

    Attributes: ``theta`` (d,), ``converged``, ``n_iter`` (Newton steps in total),
    ``grad_norm`` (max-abs of the optimality residual), ``loss`` (objective value),
    ``multiplier`` (the Lagrange multiplier of the ball constraint, 0 if inactive).
    """

    theta: np.ndarray
    converged: bool
    n_iter: int
    grad_norm: float
    loss: float
    multiplier: float = 0.0


@renamed_keywords(gamma="fit_ridge")
def fit_dpo(phi: ArrayLike, b: ArrayLike, beta: float, s: ArrayLike, *, fit_ridge: float = 1e-3,
            radius: float | None = None,
            theta0: ArrayLike | None = None, tol: float = 1e-20, max_iter: int = 200,
            hessian_dtype: DTypeLike | None = None) -> FitResult:
    """The DPO MLE  argmin_theta L_DPO(theta; S) + (fit_ridge/2)||theta||^2  [||theta|| <= radius].

    Damped Newton (IRLS) with an Armijo backtracking line search; the Newton system is solved by
    Cholesky, never by an explicit inverse. With ``radius`` set (Assumption 2's unit ball when
    ``radius=1``) the constrained minimizer of this convex problem is the ridge solution whose
    extra multiplier lambda >= 0 makes ||theta(lambda)|| = radius; ||theta(lambda)|| is monotone,
    so lambda is found by a bracketed root search on log(lambda).

    Args:
        phi: (N, d) feature differences. b: (N,) reference log-ratios. beta: DPO scale > 0.
        s: (N,) labels in {0, 1}. fit_ridge: ridge >= 0 (eq. 6's regularizer).
        radius: ball constraint or None.
        theta0: (d,) warm start. tol: stop when the Newton decrement^2 / 2 < tol * max(1, |loss|)
        (the default asks for float64 precision; when rounding stalls the loss first, the fit
        is accepted once the decrement is below 1e-10 * max(1, |loss|)).
        hessian_dtype: dtype used to *form* the Hessian. ``None`` picks float32 when N*d >= 1e6
        (half the cost) and float64 otherwise. Gradients and losses are always float64, so the
        fixed point is the exact MLE either way; only the Newton path is approximate.

    Raises:
        ValueError: bad inputs (named). ConvergenceError: no convergence, e.g. separable labels
        with fit_ridge = 0 (the MLE does not exist; set fit_ridge > 0 or a radius).
    """
    phi, b, beta, s, ridge = check_fit_inputs(phi, b, beta, s, fit_ridge)
    n, d = phi.shape
    theta = np.zeros(d) if theta0 is None else as_vector(theta0, "theta0", length=d).copy()
    if radius is not None:
        radius = positive_scalar(radius, "radius")
        if np.linalg.norm(theta) > radius:
            theta *= radius / np.linalg.norm(theta)
    if hessian_dtype is None:
        hessian_dtype = np.float32 if n * d >= 1_000_000 else np.float64
    phi_h = (phi, np.dtype(hessian_dtype))

    res = _newton(phi, phi_h, b, beta, s, ridge, theta, tol, max_iter)
    if radius is None or np.linalg.norm(res.theta) <= radius * (1 + 1e-12):
        return res

    # Active constraint: find lambda > 0 with ||theta(ridge + lambda)|| = radius.
    total_iter = res.n_iter
    cache: dict[float, FitResult] = {}
    warm = [res.theta]

    def excess(log_lam: float) -> float:
        nonlocal total_iter
        r = _newton(phi, phi_h, b, beta, s, ridge + np.exp(log_lam), warm[0], tol, max_iter)
        total_iter += r.n_iter
        cache[log_lam] = r
        warm[0] = r.theta
        return float(np.linalg.norm(r.theta) - radius)

    hi = np.log(max(ridge, 1e-8)) + 1.0
    while excess(hi) > 0:
        hi += 3.0
        if hi > 100:
            raise ConvergenceError("fit_dpo: could not bracket the ball constraint's multiplier")
    lo = hi - 3.0
    while lo > -60 and excess(lo) < 0:
        lo -= 3.0
    log_lam = brentq(excess, lo, hi, xtol=1e-13, rtol=1e-13, maxiter=200)
    r = cache.get(log_lam) or _newton(phi, phi_h, b, beta, s, ridge + np.exp(log_lam), warm[0],
                                      tol, max_iter)
    theta = r.theta * min(1.0, radius / np.linalg.norm(r.theta))
    loss = dpo_loss(theta, phi, b, beta, s, ridge)
    return FitResult(theta, r.converged, total_iter, r.grad_norm, loss, float(np.exp(log_lam)))


def _newton(phi: np.ndarray, phi_h: tuple[np.ndarray, np.dtype], b: np.ndarray, beta: float,
            s: np.ndarray, ridge: float, theta: np.ndarray, tol: float, max_iter: int) -> FitResult:
    """Damped Newton with exact gradients and a cheap Hessian schedule.

    Far from the optimum the curvature need not be exact: the Hessian is formed on a strided
    subsample of 16 d rows (scaled to the full sum) for the first step only, then the full data.
    Close to the optimum a full-data Cholesky factor is reused (chord steps) while each step
    still shrinks the Newton decrement 10x. Gradients and losses are always exact and in
    float64, so the fixed point is the exact MLE; only the path to it is cheaper.
    """
    n, d = phi.shape
    theta = theta.copy()
    m = min(n, max(512, 16 * d))
    factor, fresh, prev_dec, gnorm = None, False, np.inf, np.inf
    for it in range(1, max_iter + 1):
        # Exact logits each step (line-search updates of z would accumulate rounding error).
        z = dpo_logits(phi, b, beta, theta)
        f = _loss_from_logits(z, s) + 0.5 * ridge * theta @ theta
        g = beta * (phi.T @ (sigmoid(z) - s)) + ridge * theta
        gnorm = float(np.max(np.abs(g)))
        if factor is None:
            factor, fresh = _hessian_factor(phi_h, z, beta, ridge, m), m == n
        p = -scipy.linalg.cho_solve(factor, g, check_finite=False)
        decrement = float(-g @ p)
        local = decrement / 2 <= 1e-8 * max(1.0, abs(f))
        # Converged: the decrement is negligible, or it stopped shrinking under exact full-data
        # Newton steps in the local region (the rounding floor of the gradient).
        if decrement / 2 <= tol * max(1.0, abs(f)) or (local and fresh and decrement >= prev_dec):
            if ridge == 0 and np.max(logistic_weight(z)) < 1e-10:
                raise ConvergenceError(
                    "fit_dpo: every pair is fitted with |logit| > 23 — the labels are separable, "
                    "so the unregularized MLE does not exist; set fit_ridge > 0 or a radius")
            return FitResult(theta, True, it - 1, gnorm, f)
        step = 1.0
        if not local:  # Armijo backtracking; in the local region full steps are safe and exact
            zp = beta * (phi @ p)

            def loss_at(t: float) -> float:
                th_new = theta + t * p
                return _loss_from_logits(z + t * zp, s) + 0.5 * ridge * th_new @ th_new

            step = armijo_step(loss_at, f, decrement, "fit_dpo", "phi")
        theta = theta + step * p
        if not np.all(np.isfinite(theta)) or np.linalg.norm(theta) > 1e10:
            raise ConvergenceError(
                "fit_dpo: ||theta|| diverges — the labels are (nearly) separable, so the MLE does "
                "not exist; set fit_ridge > 0 or a radius")
        # Keep a full-data factor for chord steps only while they still converge fast.
        if m < n or step < 1.0 or decrement > 0.1 * prev_dec:
            factor = None
        else:
            fresh = False
        prev_dec = decrement
        m = n  # after one cheap subsampled step, exact curvature
    raise ConvergenceError(f"fit_dpo: no convergence in {max_iter} Newton steps "
                           f"(|grad| = {gnorm:.3g}); raise max_iter or fit_ridge")


def armijo_step(loss_at: Callable[[float], float], f: float, decrement: float, who: str,
                features: str) -> float:
    """Armijo backtracking along a Newton direction p (shared by every damped-Newton MLE here).

    Returns the first step t in 1, 1/2, 1/4, ... with ``loss_at(t) <= f - 1e-4 t decrement``,
    where ``loss_at(t)`` is the (scalar) loss at theta + t p, ``f`` the loss at theta and
    ``decrement = -g^T p > 0`` the Newton decrement; a NaN loss counts as no decrease. Raises
    ``ConvergenceError`` naming ``who`` (the solver) and ``features`` (what to rescale) once t
    would drop below 1e-12.
    """
    step = 1.0
    while not loss_at(step) <= f - 1e-4 * step * decrement:
        step *= 0.5
        if step < 1e-12:
            raise ConvergenceError(f"{who}: line search failed; the problem is badly scaled — "
                                   f"rescale {features} or set fit_ridge > 0")
    return step


def _loss_from_logits(z: np.ndarray, s: np.ndarray) -> float:
    return float(np.sum(np.logaddexp(0.0, z) - s * z))


def _hessian_factor(phi_h: tuple[np.ndarray, np.dtype], z: np.ndarray, beta: float, ridge: float,
                    m: int):
    """Cholesky factor of beta^2 sum w_i phi_i phi_i^T + ridge I, on m strided rows if m < N."""
    phi, dtype = phi_h
    n, d = phi.shape
    stride = max(1, n // m)
    rows = slice(None) if stride == 1 else slice(0, stride * (n // stride), stride)
    w = beta**2 * logistic_weight(z[rows])
    h = weighted_gram(phi[rows], w, dtype=dtype) * (n / len(w))
    h[np.diag_indices(d)] += ridge + 1e-12 * max(1.0, float(np.trace(h)) / d)
    try:
        return scipy.linalg.cho_factor(h, lower=True, check_finite=False)
    except np.linalg.LinAlgError:
        raise ConvergenceError(
            "fit_dpo: the Hessian is singular (too few or collinear rows for d features); "
            "set fit_ridge > 0 to regularize") from None
