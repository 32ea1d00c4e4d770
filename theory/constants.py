"""The problem constants of Assumption 3: c_max and c_min, tight and as printed.

Assumption 3 (paper sec. 5) asks for constants with

    0 <= c_min <= beta^2 mu_i(theta) (1 - mu_i(theta)) <= c_max   for all i in [N], theta in Theta.

* c_max = beta^2 / 4, because mu (1 - mu) <= 1/4 (equality at logit 0).
* c_min: under Assumption 2 (||phi_i|| <= 1, |b_i| <= 1, ||theta|| <= 1) every DPO logit obeys
  |beta (phi_i^T theta - b_i)| <= 2 beta, and mu(z) mu(-z) decreases in |z|, so the tight valid
  constant is  c_min = beta^2 mu(2 beta) mu(-2 beta)  (:func:`c_min_tight`).
  The paper prints  c_min = beta^2 mu(-4 beta)  (:func:`c_min_printed`), derived through the
  invalid step mu (1 - mu) >= mu^2 >= mu(-4 beta). With u = e^{2 beta},
  mu(-4 beta) <= mu(2 beta) mu(-2 beta)  <=>  u^3 - u^2 - u - 1 >= 0,
  so the printed constant is a valid (looser) lower bound only for beta >= ln(u*) / 2 ~= 0.3047,
  where u* ~= 1.8393 is the real root (the tribonacci constant); below that it overstates
  c_min (e.g. beta = 0.1: printed 0.401 beta^2 against the true minimum 0.2475 beta^2).

All functions take beta > 0 (a float) and return floats; bad input raises ValueError.
"""

from __future__ import annotations

import math

from sim.dpo import sigmoid
from sim.validation import positive_scalar

#: Real root of u^3 - u^2 - u - 1 = 0 (the tribonacci constant), in closed form (Cardano).
TRIBONACCI = (1.0 + (19.0 + 3.0 * math.sqrt(33.0)) ** (1 / 3)
              + (19.0 - 3.0 * math.sqrt(33.0)) ** (1 / 3)) / 3.0

#: The printed c_min = beta^2 mu(-4 beta) is a valid lower bound iff beta >= this (~0.30469).
PRINTED_C_MIN_BETA_MIN = 0.5 * math.log(TRIBONACCI)


def c_max(beta: float) -> float:
    """c_max = beta^2 / 4 (Assumption 3): the largest Lemma 1 weight, attained at logit 0."""
    beta = positive_scalar(beta, "beta")
    return 0.25 * beta * beta


def c_min_tight(beta: float, max_logit: float | None = None) -> float:
    """c_min = beta^2 mu(L) mu(-L), the tight Assumption 3 constant (L = 2 beta by default).

    L bounds |beta (phi_i^T theta - b_i)| over the data and Theta; Assumption 2 gives
    L = beta (||phi|| ||theta|| + |b|) <= 2 beta. Pass ``max_logit`` for another bound.
    """
    beta = positive_scalar(beta, "beta")
    z = 2.0 * beta if max_logit is None else positive_scalar(max_logit, "max_logit",
                                                             allow_zero=True)
    return beta * beta * float(sigmoid(z) * sigmoid(-z))


def c_min_printed(beta: float) -> float:
    """c_min = beta^2 mu(-4 beta), as printed under Assumption 3 (valid only for beta >= 0.3047).

    See :func:`printed_c_min_valid`; below the threshold it exceeds the true minimum weight.
    """
    beta = positive_scalar(beta, "beta")
    return beta * beta * float(sigmoid(-4.0 * beta))


def printed_c_min_valid(beta: float) -> bool:
    """Whether the printed c_min is a valid lower bound, i.e. c_min_printed <= c_min_tight.

    Decided against the closed-form threshold :data:`PRINTED_C_MIN_BETA_MIN` (the sign of
    u^3 - u^2 - u - 1 at u = e^{2 beta}), not by a float compare of two nearly equal constants.
    """
    beta = positive_scalar(beta, "beta")
    return beta >= PRINTED_C_MIN_BETA_MIN


def c_min(beta: float, form: str = "tight") -> float:
    """Dispatch: ``form`` = "tight" (:func:`c_min_tight`) or "printed" (:func:`c_min_printed`)."""
    if form == "tight":
        return c_min_tight(beta)
    if form == "printed":
        return c_min_printed(beta)
    raise ValueError(f"form: must be 'tight' or 'printed', got {form!r}")
