"""Top-score baselines under theta_hat refitted on the schedule: PMC and uncertainty."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..dpo import dpo_logits
from ..registry import register_method
from .base import CandidateOptions, FitOptions, Selector


@dataclass(frozen=True)
class ScoreConfig(FitOptions, CandidateOptions):
    """Fit and refit options, and ``n_candidates``: None (the best unselected row) or m (the
    best of a fresh random subset of m per pick)."""


class ScoreSelector(Selector):
    """Pick the largest ``score(z)`` of the logits z = beta (phi_i^T theta_hat - b_i) (eq. 9)."""

    Config: ClassVar[type] = ScoreConfig
    uses_labels = True
    replace_refusal = ("it picks the top score under theta_hat, so it would repeat one pair "
                       "until the next refit")

    @staticmethod
    def score(z: np.ndarray) -> np.ndarray:
        """(N,) -> (N,) the rule's score of each row (larger is picked first)."""
        raise NotImplementedError

    def _refit(self, t: int) -> None:
        d = self.data
        self.theta_ = self._fit_told()
        self._score_all = self.score(dpo_logits(d.phi, d.b, d.beta, self.theta_))
        self._order = np.lexsort((np.arange(d.N), -self._score_all))  # ties: lowest index
        self._pos = 0

    def _pick_one(self) -> tuple[int, np.ndarray]:
        if self.candidates.exhaustive:
            while not self._available[self._order[self._pos]]:
                self._pos += 1
            i = int(self._order[self._pos])
        else:
            cand = self.candidates(self._eligible())
            sc = self._score_all[cand]
            i = int(cand[np.flatnonzero(sc == sc.max())[0]])
        return i, self.data.phi[i]


@register_method("pmc", config=ScoreConfig,
                 help="PMC (Muldrew et al. 2024): largest |beta (phi^T theta_hat - b)|",
                 tags=("online",), style={"color": "#2ca02c", "marker": "v", "label": "PMC"})
class PMC(ScoreSelector):
    """PMC (Muldrew et al. 2024): the largest estimated implicit-reward difference
    |beta (phi_i^T theta_hat - b_i)| (PAPER.md sec. 5.1)."""

    name = "pmc"

    @staticmethod
    def score(z: np.ndarray) -> np.ndarray:
        return np.abs(z)


@register_method("uncertainty", config=ScoreConfig,
                 help="largest mu(1 - mu): the logit nearest zero under theta_hat",
                 tags=("online",),
                 style={"color": "#8c564b", "marker": "P", "label": "Uncertainty"})
class Uncertainty(ScoreSelector):
    """Largest Bernoulli variance mu(z)(1 - mu(z)): the logit nearest zero."""

    name = "uncertainty"

    @staticmethod
    def score(z: np.ndarray) -> np.ndarray:
        return -np.abs(z)
