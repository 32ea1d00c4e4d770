"""The paper's guarantees as explicit numbers: Theorems 2, 3, 4 and the self-normalized bound.

Notation (paper sec. 5): d features, budget n, DPO scale beta, design ridge gamma (H_0 = Sigma_0
= gamma I), failure probability delta, diversity constant kappa >= 1 (Assumption 4),
c_max / c_min from :mod:`theory.constants`. Sigma_n = gamma I + grad^2 L_DPO(theta_*; S_n).

* Theorem 3 (concentration), for any S_n, w.p. >= 1 - delta:
      ||theta_hat_n - theta_*||_{Sigma_n} <= sqrt((beta^2 d / c_min) log((1 + c_min n / gamma)
      / delta)) + 2 sqrt(gamma).                                    :func:`theorem3_radius`
* The same proof with Theorem 1 of Abbasi-Yadkori et al. (2011) kept exact (R = 1/2,
  lambda = gamma / c_min, V_n = lambda I + sum phi phi^T, ||phi|| <= 1):
      2 (beta / sqrt(c_min)) (1/2) sqrt(2 log(det(V_n)^{1/2} det(lambda I)^{-1/2} / delta))
      + 2 sqrt(gamma),
  with log det(V_n) / det(lambda I) <= d log(1 + c_min n / (gamma d)) (AM-GM) or the actual
  value for the selected rows.                                  :func:`self_normalized_radius`
* Theorem 4 (design quality), for every i:
      phi_i^T Sigma_n^{-1} phi_i <= C kappa d log(1 + c_max n / (gamma d))
                                    / (gamma log(1 + c_max / gamma) n),
  with C = c_max^3 / c_min as printed and C = c_max^2 / c_min^2 corrected (PAPER.md sec. 4:
  the step phi^T A phi <= c_max v^T A v must divide by the weight, giving 1 / c_min).
                                                                        :func:`theorem4_bound`
* Theorem 2 (main), by Cauchy-Schwarz (eq. 11): max_i |phi_i^T (theta_hat_n - theta_*)| <=
  radius (Theorem 3) * sqrt(Theorem 4), w.p. >= 1 - delta.              :func:`theorem2_bound`

Choices the paper leaves open (documented, and parameters here):
* "printed" forms use the printed c_min = beta^2 mu(-4 beta) (as the paper would evaluate
  them); "corrected" forms use the tight c_min = beta^2 mu(2 beta) mu(-2 beta). Pass
  ``c_min=`` to override.
* The paper's error (7) drops beta; ``beta_scaled=True`` multiplies by beta (eq. 7 literally).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.linalg
from numpy.typing import ArrayLike

from sim.validation import as_matrix, positive_int, positive_scalar

from . import constants

FORMS = ("printed", "corrected")


# --------------------------------------------------------------------------- validation
def _prob(delta: float) -> float:
    delta = positive_scalar(delta, "delta")
    if not delta < 1:
        raise ValueError(f"delta: failure probability must be in (0, 1), got {delta}")
    return delta


def _kappa(kappa: float) -> float:
    kappa = positive_scalar(kappa, "kappa")
    if kappa < 1:
        raise ValueError(f"kappa: Assumption 4's constant is >= 1 by definition, got {kappa}")
    return kappa


def _form(form: Any) -> str:
    if form not in FORMS:
        raise ValueError(f"form: must be one of {FORMS}, got {form!r}")
    return form


def _c_min_for(beta: float, form: str, c_min: float | None) -> float:
    if c_min is not None:
        return positive_scalar(c_min, "c_min")
    return constants.c_min_printed(beta) if form == "printed" else constants.c_min_tight(beta)


# --------------------------------------------------------------------------- Theorem 3
def theorem3_radius(d: int, n: int, beta: float, gamma: float, delta: float, *,
                    c_min: float | None = None) -> float:
    """Theorem 3: the confidence radius on ||theta_hat_n - theta_*||_{Sigma_n}, as printed.

    sqrt((beta^2 d / c_min) log((1 + c_min n / gamma) / delta)) + 2 sqrt(gamma), with c_min the
    tight constant unless given. Holds w.p. >= 1 - delta for any S_n of size n (Assumptions 1-3).
    """
    d, n = positive_int(d, "d"), positive_int(n, "n", minimum=0)
    beta, gamma, delta = positive_scalar(beta, "beta"), positive_scalar(gamma, "gamma"), _prob(delta)
    cm = constants.c_min_tight(beta) if c_min is None else positive_scalar(c_min, "c_min")
    return math.sqrt(beta**2 * d / cm * math.log((1.0 + cm * n / gamma) / delta)) \
        + 2.0 * math.sqrt(gamma)


def self_normalized_radius(d: int, n: int, beta: float, gamma: float, delta: float, *,
                           c_min: float | None = None,
                           phi_selected: ArrayLike | None = None) -> float:
    """Theorem 3's radius with Abbasi-Yadkori et al. (2011, Thm. 1) kept exact.

    (beta / sqrt(c_min)) sqrt(log det(V_n) / det(lambda I) + 2 log(1 / delta)) + 2 sqrt(gamma),
    lambda = gamma / c_min. Without ``phi_selected`` the log-det ratio is bounded by
    d log(1 + c_min n / (gamma d)) (valid when ||phi_i|| <= 1); with ``phi_selected`` (n, d) the
    actual value log det(I + Phi^T Phi / lambda) is used (a Cholesky factor, no inverse).
    Never larger than :func:`theorem3_radius` for d >= 2 (PAPER.md sec. 4, remark b).
    """
    d, n = positive_int(d, "d"), positive_int(n, "n", minimum=0)
    beta, gamma, delta = positive_scalar(beta, "beta"), positive_scalar(gamma, "gamma"), _prob(delta)
    cm = constants.c_min_tight(beta) if c_min is None else positive_scalar(c_min, "c_min")
    lam = gamma / cm
    if phi_selected is None:
        logdet_ratio = d * math.log1p(n / (lam * d))
    else:
        p = as_matrix(phi_selected, "phi_selected", n_cols=d)
        chol = scipy.linalg.cholesky(np.eye(d) + p.T @ p / lam, lower=True)
        logdet_ratio = 2.0 * float(np.sum(np.log(np.diag(chol))))
    return beta / math.sqrt(cm) * math.sqrt(logdet_ratio + 2.0 * math.log(1.0 / delta)) \
        + 2.0 * math.sqrt(gamma)


# --------------------------------------------------------------------------- Theorem 4
def theorem4_constant(beta: float, form: str = "corrected", *, c_min: float | None = None) -> float:
    """C of Theorem 4: c_max^3 / c_min (printed) or c_max^2 / c_min^2 (corrected)."""
    form = _form(form)
    beta = positive_scalar(beta, "beta")
    cx, cm = constants.c_max(beta), _c_min_for(beta, form, c_min)
    return cx**3 / cm if form == "printed" else cx**2 / cm**2


def theorem4_bound(d: int, n: int, beta: float, gamma: float, kappa: float, *,
                   form: str = "corrected", c_min: float | None = None) -> float:
    """Theorem 4: the bound on max_i phi_i^T Sigma_n^{-1} phi_i after n greedy picks.

    C kappa d log(1 + c_max n / (gamma d)) / (gamma log(1 + c_max / gamma) n), C from
    :func:`theorem4_constant` (printed: c_max^3/c_min with the printed c_min; corrected:
    c_max^2/c_min^2 with the tight c_min).
    """
    d, n = positive_int(d, "d"), positive_int(n, "n")
    beta, gamma, kappa = positive_scalar(beta, "beta"), positive_scalar(gamma, "gamma"), _kappa(kappa)
    cx = constants.c_max(beta)
    return (theorem4_constant(beta, form, c_min=c_min) * kappa * d * math.log1p(cx * n / (gamma * d))
            / (gamma * math.log1p(cx / gamma) * n))


def lemma6_constant(beta: float, gamma: float) -> float:
    """c_max / (gamma log(1 + c_max / gamma)): Lemma 6's y <= const * log(1 + y), y <= c_max/gamma."""
    cx = constants.c_max(beta)
    gamma = positive_scalar(gamma, "gamma")
    return cx / (gamma * math.log1p(cx / gamma))


# --------------------------------------------------------------------------- Theorem 2
def theorem2_bound(d: int, n: int, beta: float, gamma: float, delta: float, kappa: float, *,
                   form: str = "corrected", radius: str = "theorem3",
                   beta_scaled: bool = False) -> float:
    """Theorem 2 made explicit: max_i |phi_i^T (theta_hat_n - theta_*)| <= r * sqrt(T4).

    r: ``radius="theorem3"`` (:func:`theorem3_radius`) or ``"self_normalized"``
    (:func:`self_normalized_radius`, AM-GM log det); T4 = :func:`theorem4_bound`. Both use the
    c_min of ``form`` (printed / tight). ``beta_scaled`` multiplies by beta (eq. 7 literally).
    Holds w.p. >= 1 - delta under Assumptions 1-4 (and, for "printed" with beta < 0.3047, not
    at all, since the printed c_min then overstates the curvature).
    """
    form = _form(form)
    beta = positive_scalar(beta, "beta")
    cm = _c_min_for(beta, form, None)
    if radius == "theorem3":
        r = theorem3_radius(d, n, beta, gamma, delta, c_min=cm)
    elif radius == "self_normalized":
        r = self_normalized_radius(d, n, beta, gamma, delta, c_min=cm)
    else:
        raise ValueError(f"radius: must be 'theorem3' or 'self_normalized', got {radius!r}")
    e = r * math.sqrt(theorem4_bound(d, n, beta, gamma, kappa, form=form))
    return beta * e if beta_scaled else e


#: Keys of :func:`bound_summary` (and of ``adpo bound``'s JSON), with their meaning.
SUMMARY_KEYS = {
    "inputs": "the arguments d, n, beta, gamma, delta, kappa",
    "c_max": "beta^2/4 (Assumption 3)",
    "c_min_tight": "beta^2 mu(2 beta) mu(-2 beta), the valid Assumption 3 constant",
    "c_min_printed": "beta^2 mu(-4 beta), as printed",
    "c_min_printed_valid": "whether c_min_printed <= c_min_tight (beta >= 0.3047)",
    "printed_c_min_beta_min": "0.5 ln(1.8393...) = the beta below which the printed c_min is wrong",
    "theorem3_radius": "Theorem 3 with c_min_tight: bound on ||theta_hat - theta_*||_{Sigma_n}",
    "theorem3_radius_printed": "Theorem 3 with c_min_printed",
    "self_normalized_radius": "Theorem 3 with Abbasi-Yadkori (2011) exact, c_min_tight",
    "theorem4_printed": "max_i phi_i^T Sigma_n^{-1} phi_i bound, c_max^3/c_min, c_min_printed",
    "theorem4_corrected": "the same with c_max^2/c_min^2, c_min_tight",
    "theorem2_printed": "max logit error bound = theorem3_radius_printed * sqrt(theorem4_printed)",
    "theorem2_corrected": "max logit error bound = theorem3_radius * sqrt(theorem4_corrected)",
    "theorem2_corrected_self_normalized": "self_normalized_radius * sqrt(theorem4_corrected)",
    "beta_scaled": "the three theorem2_* values times beta (eq. 7 with its factor beta)",
}


def bound_summary(d: int, n: int, beta: float, gamma: float, delta: float,
                  kappa: float = 1.0) -> dict[str, Any]:
    """Every constant and bound above for one (d, n, beta, gamma, delta, kappa); keys in
    :data:`SUMMARY_KEYS`. The max-logit-error bounds drop beta, as the paper's plots do."""
    d, n = positive_int(d, "d"), positive_int(n, "n")
    beta, gamma, delta, kappa = (positive_scalar(beta, "beta"), positive_scalar(gamma, "gamma"),
                                 _prob(delta), _kappa(kappa))
    cm_t, cm_p = constants.c_min_tight(beta), constants.c_min_printed(beta)
    t2 = {f"theorem2_{f}": theorem2_bound(d, n, beta, gamma, delta, kappa, form=f) for f in FORMS}
    t2["theorem2_corrected_self_normalized"] = theorem2_bound(
        d, n, beta, gamma, delta, kappa, form="corrected", radius="self_normalized")
    return {
        "inputs": dict(d=d, n=n, beta=beta, gamma=gamma, delta=delta, kappa=kappa),
        "c_max": constants.c_max(beta),
        "c_min_tight": cm_t,
        "c_min_printed": cm_p,
        "c_min_printed_valid": constants.printed_c_min_valid(beta),
        "printed_c_min_beta_min": constants.PRINTED_C_MIN_BETA_MIN,
        "theorem3_radius": theorem3_radius(d, n, beta, gamma, delta, c_min=cm_t),
        "theorem3_radius_printed": theorem3_radius(d, n, beta, gamma, delta, c_min=cm_p),
        "self_normalized_radius": self_normalized_radius(d, n, beta, gamma, delta, c_min=cm_t),
        "theorem4_printed": theorem4_bound(d, n, beta, gamma, kappa, form="printed"),
        "theorem4_corrected": theorem4_bound(d, n, beta, gamma, kappa, form="corrected"),
        **t2,
        "beta_scaled": {k: beta * v for k, v in t2.items()},
    }


# --------------------------------------------------------------------------- trivial ceilings
def theorem2_ceiling(phi_norm: float = 1.0, theta_radius: float = 1.0,
                     theta_star_norm: float = 1.0) -> float:
    """max_i |phi_i^T (theta_hat - theta_*)| <= max ||phi_i|| (||theta_hat|| + ||theta_*||).

    Under Assumption 2 (all three norms <= 1) this is 2: any Theorem 2 bound >= 2 is vacuous,
    i.e. no estimator in Theta could ever violate it.
    """
    return (positive_scalar(phi_norm, "phi_norm")
            * (positive_scalar(theta_radius, "theta_radius")
               + positive_scalar(theta_star_norm, "theta_star_norm", allow_zero=True)))


def theorem4_ceiling(gamma: float, phi_norm: float = 1.0) -> float:
    """max_i phi_i^T Sigma_n^{-1} phi_i <= max ||phi_i||^2 / gamma, since Sigma_n >= gamma I.

    A Theorem 4 bound >= this holds for every design whatsoever (it checks nothing).
    """
    return positive_scalar(phi_norm, "phi_norm") ** 2 / positive_scalar(gamma, "gamma")


def informative_n(bound: Callable[[int], float], ceiling: float, *, n_max: float = 1e15
                  ) -> float:
    """The smallest n with ``bound(n) < ceiling``, for a bound that decreases in n.

    ``bound``: callable n (int) -> float. Bisection on integers in [1, n_max]; returns
    ``math.inf`` when the bound stays >= ceiling up to n_max. Used to state how far a bound is
    from saying anything (e.g. Theorem 2 against :func:`theorem2_ceiling`).
    """
    ceiling = positive_scalar(ceiling, "ceiling")
    lo, hi = 1, int(n_max)
    if bound(lo) < ceiling:
        return 1.0
    if bound(hi) >= ceiling:
        return math.inf
    while hi - lo > 1:  # invariant: bound(lo) >= ceiling > bound(hi)
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if bound(mid) >= ceiling else (lo, mid)
    return float(hi)
