"""APO with the logistic Hessian (Das et al. 2024), re-weighted at every refit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..data import PreferenceData
from ..design.greedy import GreedyState
from ..design.incremental import IncrementalGreedy
from ..dpo import dpo_weights
from ..registry import register_method
from .base import DesignOptions, FitOptions, Seed, Selector


@dataclass(frozen=True)
class APOLogisticConfig(FitOptions, DesignOptions):
    """Design options (gamma, n_candidates) and fit/refit options."""


@register_method("apo-logistic", config=APOLogisticConfig,
                 help="APO with a logistic Hessian re-estimated at each refit: argmax phi^T "
                 "H(theta_hat)^{-1} phi, past terms re-weighted", tags=("online",),
                 style={"color": "#17becf", "marker": "<", "label": "APO (logistic)"})
class APOLogistic(Selector):
    """APO (Das et al. 2024) with the logistic Hessian: argmax phi_i^T H_t(theta_hat)^{-1} phi_i,
    H_t(theta_hat) = gamma I + sum_{j in S} beta^2 mu_j(1 - mu_j) phi_j phi_j^T re-weighted at
    every refit (unlike ADPO, which freezes each pick's weight). Between refits the new picks
    enter H with the current weights."""

    name = "apo-logistic"
    Config = APOLogisticConfig
    uses_labels = True

    def __init__(self, data: PreferenceData, *, seed: Seed = 0, **options: Any) -> None:
        super().__init__(data, seed=seed, **options)
        self._engine: IncrementalGreedy | None = None

    def _refit(self, t: int) -> None:
        d = self.data
        self.theta_ = self._fit_told()
        self._w = dpo_weights(d.phi, d.b, d.beta, self.theta_)
        self._engine = IncrementalGreedy(d.phi, GreedyState(d.d, self.cfg.gamma))
        for j in self.selected_:  # the past picks, re-weighted at the new theta_hat
            self._engine.add(np.sqrt(self._w[j]) * d.phi[j])

    @property
    def n_evals_(self) -> int:
        return 0 if self._engine is None else int(self._engine.n_evals)

    def _pick_one(self) -> tuple[int, np.ndarray]:
        eng = self._engine
        assert eng is not None  # built by the first refit, before the first pick
        i, _ = eng.argmax(None, self.candidates(self._eligible()))
        v = np.sqrt(self._w[i]) * self.data.phi[i]
        eng.add(v)
        return i, v
