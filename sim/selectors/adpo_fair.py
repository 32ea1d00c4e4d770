"""Fair ADPO+: Algorithm 2 with a theta_hat that never saw the labels it is evaluated against.

The paper's ADPO+ (Algorithm 2, line 3) fits theta_hat on the logged labels of the *whole pool*.
In a simulated environment the evaluation target theta_star is the MLE on those very labels
(eq. 5), so ADPO+ starts from the target: with alpha = 0 it *is* ``oracle``. This variant keeps
everything else of ADPO+ (weights of eq. 13, UCB alpha, greedy log det, the paper's candidate
subsets) and changes only what theta_hat is fitted on (``theta_source``):

* ``"fresh"`` (default): an independent label draw for the same N pairs,
  s'_i ~ Ber(mu(beta (phi_i^T theta_true - b_i))) (eq. 12), i.e. a second logged data set of the
  same size from the same model. theta_hat has the statistical quality of ADPO+'s but shares no
  noise with theta_star. Needs ``data.theta_true`` (both simulated environments store it).
* ``"split"``: a disjoint logged split: a random ``log_fraction`` of the rows is the log; theta_hat
  and Sigma_hat are fitted on their labels, and those rows are never available for selection.
  Works on real data (no theta_true). The target theta_star, when fitted on the whole pool, still
  contains the log rows' labels, so this removes the leak only in proportion 1 - log_fraction;
  on simulated data prefer "fresh".

The label draw / log split comes from the selector's seed (independent of the environment's).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..data import PreferenceData
from ..dpo import sigmoid
from ..registry import register_method
from ..splits import random_split
from ..validation import positive_scalar
from .greedy import ADPOPlus, ADPOPlusConfig

THETA_SOURCES = ("fresh", "split")


@dataclass(frozen=True)
class ADPOPlusFairConfig(ADPOPlusConfig):
    """ADPO+'s options plus where theta_hat comes from: ``theta_source`` "fresh" | "split" and,
    for "split", ``log_fraction``, the share of the rows that form the log."""

    theta_source: str = "fresh"
    log_fraction: float = 0.5

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "log_fraction", _check_source(self.theta_source,
                                                               self.log_fraction))


def _check_source(theta_source: str, log_fraction: float) -> float:
    if theta_source not in THETA_SOURCES:
        raise ValueError(f"theta_source: one of {', '.join(THETA_SOURCES)}, got {theta_source!r}")
    log_fraction = positive_scalar(log_fraction, "log_fraction")
    if not log_fraction < 1:
        raise ValueError(f"log_fraction: the log's share of the rows must lie in (0, 1), got "
                         f"{log_fraction}")
    return log_fraction


@register_method("adpo+fair", config=ADPOPlusFairConfig, aliases=("adpo-plus-fair",),
                 tags=("offline", "greedy-design", "theta-hat:independent-labels"),
                 style={"color": "#bcbd22", "marker": "h", "label": "ADPO+ fair"})
class ADPOPlusFair(ADPOPlus):
    """ADPO+ with theta_hat fitted on an independent label draw (or a disjoint logged split).

    (The first line is the method's help in ``adpo methods``.) theta_hat never sees the labels
    that define the evaluation target theta_star.

    Attributes after use: ``theta_`` (d,), ``log_rows_`` (the log's rows with "split", else
    None), ``fresh_labels_`` (N,) with "fresh".
    """

    name = "adpo+fair"
    Config = ADPOPlusFairConfig

    def __init__(self, data: PreferenceData, *, seed: Any = 0, **options) -> None:
        super().__init__(data, seed=seed, **options)
        self.log_rows_ = None
        if self.cfg.theta_source == "fresh" and self.data.theta_true is None:
            raise ValueError("theta_true: theta_source='fresh' draws new labels from theta_true, "
                             "which the data lacks; use theta_source='split' on real data")
        if self.cfg.theta_source == "split":
            self.log_rows_ = random_split(self.data.N, self.cfg.log_fraction, seed=self.rng).test
            self._available[self.log_rows_] = False  # the log is never selected

    def _theta_hat(self) -> tuple[np.ndarray, np.ndarray]:
        d = self.data
        self.n_refits_ += 1
        if self.cfg.theta_source == "fresh":
            rows: np.ndarray = np.arange(d.N)
            p = sigmoid(d.beta * (d.phi @ d.theta_true - d.b))
            s: np.ndarray = (self.rng.random(d.N) < p).astype(np.int8)
            self.fresh_labels_ = s
        else:
            if self._logged_labels is None:
                raise ValueError("s: theta_source='split' fits theta_hat on logged labels; the "
                                 "data has none")
            assert self.log_rows_ is not None  # drawn in __init__ for theta_source="split"
            rows = self.log_rows_
            s = self._logged_labels[rows]
        return self._fit(rows, s), rows
