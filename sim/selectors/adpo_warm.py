"""ADPO+ with a warm start: a remedy for ADPO+'s small-budget failure.

On the digits recipe (sec. 6.1) the paper's ADPO+ is the worst method for n <= 64 and wins only
from n ~ 256-512 (the Fig. 1 analogue). Its weights w_i = beta^2 mu(z_i)(1 - mu(z_i)) at the
all-pool theta_hat concentrate the design on the few pairs whose logits are near zero; with few
labels the MLE on those pairs is poorly determined along every other direction, and the maximum
logit error (eq. 7) is set by exactly those directions. APO (unit weights) covers every
direction first and is the best method at those budgets.

This variant runs APO's unweighted greedy (w_i = 1, the design of Das et al. 2024 that the
paper compares with) for the first ``n0`` picks — default n0 = d, one full-rank design's worth
of labels — and ADPO+'s weighted greedy (eq. 13's optimism alpha included) from pick n0 + 1 on,
with the design matrix H carrying every earlier pick as it was added (Algorithm 1 line 8).
A measured alternative, shrinking theta_hat toward the cold start theta = 0, did not help on
digits: there the cold-start weights mu(beta b_i) mu(-beta b_i) are as extreme as ADPO+'s,
because |b_i| is large. Like ADPO+ it fits theta_hat on all logged labels of the pool.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..registry import register_method
from ..validation import positive_int
from .greedy import ADPOPlus, ADPOPlusConfig


@dataclass(frozen=True)
class ADPOPlusWarmConfig(ADPOPlusConfig):
    """ADPO+'s options plus ``n0``: the number of unweighted (APO) picks before ADPO+'s weights
    take over (None: d, the dimension)."""

    n0: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n0 is not None:
            object.__setattr__(self, "n0", positive_int(self.n0, "n0"))


@dataclass(frozen=True)
class _SwitchAt:
    """Refit once more at round ``t_switch`` (the first ADPO+ pick)."""

    t_switch: int

    def due(self, t: int, last: int) -> bool:
        return last < self.t_switch <= t


@register_method("adpo+warm", config=ADPOPlusWarmConfig, aliases=("adpo-plus-warm",),
                 tags=("offline", "reads-logged-labels", "greedy-design"),
                 style={"color": "#17becf", "marker": "P", "label": "ADPO+ warm"})
class ADPOPlusWarm(ADPOPlus):
    """ADPO+ after a warm start: APO's greedy for picks 1..n0 (n0 = d), ADPO+'s weights after.

    (The first line is the method's help in ``adpo methods``.) The small-budget remedy: see the
    module docstring.
    """

    name = "adpo+warm"
    Config = ADPOPlusWarmConfig

    def __init__(self, data, *, seed=0, **options) -> None:  # noqa: ANN001
        super().__init__(data, seed=seed, **options)
        self.n0 = self.cfg.n0 if self.cfg.n0 is not None else self.data.d
        self.schedule = _SwitchAt(self.n0 + 1)
        self.phases_: list[tuple[int, str]] = []

    def _round(self) -> int:
        """Offline, no labels are told: round t counts the picks (1 + rows selected so far)."""
        return len(self.selected_) + 1

    def _round_after(self, k: int) -> int:
        return self._round() + k

    def weights(self) -> np.ndarray:
        t = self._round()
        if t <= self.n0:
            self.phases_.append((t, "apo"))
            return np.ones(self.data.N)
        self.phases_.append((t, "adpo+"))
        return super().weights()
