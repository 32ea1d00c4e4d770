"""Evaluation metrics of the paper (section 6.1: logit errors; section 6.2: accuracy etc.).

Shapes: ``phi`` (N, d), ``b`` (N,), ``theta`` (d,). All metrics are over all N points.
"""

from __future__ import annotations

import numpy as np

from numpy.typing import ArrayLike

from .data import PreferenceData
from .dpo import dpo_hessian, log_sigmoid
from .linalg import chol_quad_forms, cholesky


def logit_errors(phi: np.ndarray, theta_hat: np.ndarray, theta_star: np.ndarray,
                 beta: float | None = None) -> np.ndarray:
    """|phi_i^T (theta_hat - theta_star)| per point, times beta if given (eq. 7). Shape (N,)."""
    e = np.abs(phi @ (np.asarray(theta_hat) - np.asarray(theta_star)))
    return e if beta is None else beta * e


def max_logit_error(phi: np.ndarray, theta_hat: np.ndarray, theta_star: np.ndarray,
                    beta: float | None = None) -> float:
    """max_i |phi_i^T(theta_hat - theta_star)|: the quantity Theorem 2 bounds (eq. 7 / sec. 6.1).

    With ``beta`` the error carries eq. 7's factor beta; the paper's plots omit it.
    """
    return float(logit_errors(phi, theta_hat, theta_star, beta).max())


def mean_logit_error(phi: np.ndarray, theta_hat: np.ndarray, theta_star: np.ndarray,
                     beta: float | None = None) -> float:
    """(1/N) sum_i |phi_i^T(theta_hat - theta_star)| (sec. 6.1), optionally times beta."""
    return float(logit_errors(phi, theta_hat, theta_star, beta).mean())


def error_rate(phi: np.ndarray, b: np.ndarray, theta_hat: np.ndarray,
               theta_star: np.ndarray) -> float:
    """(1/N) sum_i 1{sgn(phi_i^T theta_hat - b_i) != sgn(phi_i^T theta_star - b_i)} (sec. 6.1).

    The fraction of pairs ordered differently from theta_star. Invariant to beta > 0.
    """
    return float(np.mean(np.sign(phi @ theta_hat - b) != np.sign(phi @ theta_star - b)))


def _signed_logits(phi: np.ndarray, b: np.ndarray, beta: float, theta: np.ndarray,
                   s: np.ndarray | None) -> np.ndarray:
    """beta (phi^T theta - b) oriented so that positive means 'the preferred response wins'."""
    z = beta * (phi @ theta - b)
    return z if s is None else np.where(np.asarray(s) == 1, z, -z)


def accuracy(phi: np.ndarray, b: np.ndarray, beta: float, theta: np.ndarray,
             s: np.ndarray | None = None) -> float:
    """(1/N) sum_i 1{log pi(y_w)/pi_0(y_w) > log pi(y_l)/pi_0(y_l)} (sec. 6.2).

    y_w is y_i1 when s_i = 1 (or when s is None, i.e. rows are already (chosen, rejected)).
    """
    return float(np.mean(_signed_logits(phi, b, beta, theta, s) > 0))


def margin(phi: np.ndarray, b: np.ndarray, beta: float, theta: np.ndarray,
           s: np.ndarray | None = None) -> float:
    """(1/N) sum_i beta [log pi(y_w)/pi_0(y_w) - log pi(y_l)/pi_0(y_l)] (sec. 6.2)."""
    return float(np.mean(_signed_logits(phi, b, beta, theta, s)))


def neg_log_likelihood(phi: np.ndarray, b: np.ndarray, beta: float, theta: np.ndarray,
                       s: np.ndarray | None = None) -> float:
    """-(1/N) sum_i log mu(beta [log-ratio of y_w - log-ratio of y_l]) (sec. 6.2)."""
    return float(-np.mean(log_sigmoid(_signed_logits(phi, b, beta, theta, s))))


def evaluate(data: PreferenceData, theta_hat: np.ndarray) -> dict[str, float]:
    """Every metric the data allow for an estimate ``theta_hat`` (d,).

    Logit errors (with and without beta) and the error rate need ``data.theta_star``; the logit
    errors against the generating parameter (``*_logit_error_true``) need ``data.theta_true``
    (the paper measures against theta_star; with a known truth both are defined); accuracy,
    margin and NLL use the labels ``data.s`` (or treat rows as (chosen, rejected) without them).
    """
    theta_hat = np.asarray(theta_hat, dtype=np.float64)
    out = {"theta_norm": float(np.linalg.norm(theta_hat))}
    if data.theta_star is not None:
        e = logit_errors(data.phi, theta_hat, data.theta_star)
        out.update(max_logit_error=float(e.max()), mean_logit_error=float(e.mean()),
                   max_logit_error_beta=float(data.beta * e.max()),
                   mean_logit_error_beta=float(data.beta * e.mean()),
                   error_rate=error_rate(data.phi, data.b, theta_hat, data.theta_star))
    if data.theta_true is not None:  # against the generating parameter, not its MLE
        e = logit_errors(data.phi, theta_hat, data.theta_true)
        out.update(max_logit_error_true=float(e.max()), mean_logit_error_true=float(e.mean()))
    args = (data.phi, data.b, data.beta, theta_hat, data.s)
    out.update(accuracy=accuracy(*args), margin=margin(*args), nll=neg_log_likelihood(*args))
    return out


def max_design_variance(data: PreferenceData, indices: ArrayLike, gamma: float) -> float:
    """Theorem 4's left side: max_i phi_i^T Sigma_n^{-1} phi_i over all N rows (picked included).

    Sigma_n = gamma I + grad^2 L_DPO(theta_star; S_n) (sec. 5, Theorem 4) for the picks S_n =
    ``indices`` (n,), gamma the design ridge; by Cholesky solves. The largest variance of a
    logit phi_i^T theta_hat under the design; at most max_i ||phi_i||^2 / gamma (Sigma_n >= gamma I).
    """
    if data.theta_star is None:
        raise ValueError("data.theta_star: Theorem 4's Sigma_n is the Hessian at theta_star")
    idx = np.asarray(indices, dtype=np.int64)
    sig = dpo_hessian(data.theta_star, data.phi[idx], data.b[idx], data.beta, ridge=gamma)
    return float(chol_quad_forms(data.phi, cholesky(sig, "Sigma_n")).max())
