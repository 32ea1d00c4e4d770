"""The candidate sampler: which rows the greedy argmax looks at in a round (paper sec. 3.1).

"Speedup 2" of the paper: instead of the exact argmax over all unselected rows, each round looks
at a fresh uniformly random subset of m of them (m = 256 in the paper's experiments). ONE random
stream serves :func:`sim.design.greedy_select` (``candidates=m``) and every selector
(``n_candidates=m``), so with the same seed and the same weights they look at the same subsets
and pick the same rows.
"""

from __future__ import annotations

import numpy as np

from ..validation import Seed, as_rng, positive_int


class CandidateSampler:
    """All eligible rows (``m=None``), or m of them drawn uniformly without replacement.

    Args:
        m: subset size, or None for the exact argmax over every eligible row.
        rng: int seed or ``numpy.random.Generator`` (consumed only when a subset is drawn,
            i.e. when more than m rows are eligible); may be None when m is None.
    """

    def __init__(self, m: int | None, rng: Seed | None) -> None:
        self.m = None if m is None else positive_int(m, "candidates (m)")
        self.rng: np.random.Generator | None = (None if (m is None and rng is None)
                                                else as_rng(rng))

    @property
    def exhaustive(self) -> bool:
        """Whether every round looks at all eligible rows (the exact argmax)."""
        return self.m is None

    def __call__(self, eligible: np.ndarray) -> np.ndarray:
        """The rows to score this round: (k,) int64 ascending, from ``eligible`` (ascending).

        eligible: (E,) int64 ascending row indices. Returns them all when m is None or m >= E,
        else ``sort(rng.choice(eligible, m, replace=False))``.
        """
        if self.m is None or self.m >= eligible.size:
            return eligible
        assert self.rng is not None  # set whenever m is
        return np.sort(self.rng.choice(eligible, size=self.m, replace=False))
