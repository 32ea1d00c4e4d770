"""ADPO+ with shrunk weights: a remedy for ADPO+'s small-budget failure.

On the digits recipe (sec. 6.1) the paper's ADPO+ is the worst method for n <= 64 and wins only
from n ~ 512 (the Fig. 1 analogue). Its weights w_i = beta^2 mu(z_i)(1 - mu(z_i)) at the
all-pool theta_hat concentrate the design on the few pairs whose logits are near zero; with few
labels the MLE on those pairs is poorly determined along every other direction, and the maximum
logit error (eq. 7) is set by exactly those directions.

This variant shrinks theta_hat toward the cold start theta = 0 while the budget is small and
releases it as labels accumulate: before round t the weights are Lemma 1's at

    theta_t = lambda_t theta_hat,   lambda_t = t / (t + n0),

(with eq. 13's optimism alpha as in ADPO+), recomputed on the paper's refit schedule (t = 2, 4,
8, ...). At t << n0 the weights are the cold-start ones beta^2 mu(beta b_i) mu(-beta b_i) (for
b = 0 the unweighted APO design, which is best at small n); at t >> n0 they are ADPO+'s. Each
pick keeps its weight as of its round (Algorithm 1 line 8). Default n0 = d (a full-rank design's
worth of labels). Like ADPO+ it fits theta_hat on all logged labels of the pool.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..registry import register_method
from ..validation import positive_int
from .base import Pow2
from .greedy import ADPOPlus, ADPOPlusConfig


@dataclass(frozen=True)
class ADPOPlusShrinkConfig(ADPOPlusConfig):
    """ADPO+'s options plus ``n0``: the budget at which theta_hat gets half its weight
    (None: d, the dimension)."""

    n0: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n0 is not None:
            object.__setattr__(self, "n0", positive_int(self.n0, "n0"))


@register_method("adpo+shrink", config=ADPOPlusShrinkConfig, aliases=("adpo-plus-shrink",),
                 tags=("offline", "reads-logged-labels", "greedy-design"),
                 help="ADPO+ with theta_hat shrunk toward the cold start by t/(t + n0) on the "
                      "pow2 refit schedule: cold-start (APO-like) weights at small budgets",
                 style={"color": "#17becf", "marker": "P", "label": "ADPO+ shrink"})
class ADPOPlusShrink(ADPOPlus):
    """ADPO+ with weights at lambda_t theta_hat, lambda_t = t / (t + n0) (see the module)."""

    name = "adpo+shrink"
    Config = ADPOPlusShrinkConfig

    def __init__(self, data, *, seed=0, **options) -> None:  # noqa: ANN001
        super().__init__(data, seed=seed, **options)
        self.schedule = Pow2()
        self.n0 = self.cfg.n0 if self.cfg.n0 is not None else self.data.d
        self._fitted: tuple[np.ndarray, np.ndarray] | None = None
        self.lambdas_: list[tuple[int, float]] = []

    def _round(self) -> int:
        """Offline, no labels are told: round t counts the picks (1 + rows selected so far)."""
        return len(self.selected_) + 1

    def weights(self) -> np.ndarray:
        if self._fitted is None:
            self._fitted = self._theta_hat()
        theta_hat, rows = self._fitted
        t = self._round()
        lam = t / (t + self.n0)
        self.lambdas_.append((t, lam))
        self.theta_ = lam * theta_hat
        return self._ucb_weights(self.theta_, rows)
