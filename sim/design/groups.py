"""A cap on the picks per prompt: "at most c queries per prompt" as an exclusion mask.

When every prompt x_g has K candidate responses, the pool holds all K(K-1)/2 pairs of each
prompt (the ``prompts`` environment) and a design chooses (prompt, pair) rows; the option
"at most one query per prompt" (``max_per_prompt = 1``; peer rule: NS-DPO, and the analysis of
"Which Pairs to Compare for LLM Post-Training?", arXiv 2606.19607) is enforced here for every
engine the same way: after each pick the group's count rises, and once it reaches the cap every
row of that group leaves the eligible set (the greedy engines' exclusion mask;
:meth:`sim.design.greedy.BlockedGreedy.exclude`, the ``eligible`` mask of the incremental and
naive engines, a selector's ``_available``). Picks of a row picked before (designs with
replacement) count too.

Shapes: ``group`` (N,) int >= 0, the prompt id of each row.
"""

from __future__ import annotations

import numpy as np

from ..validation import positive_int


class GroupCap:
    """Counts picks per group; :meth:`picked` returns the rows to exclude after a pick.

    Args:
        group: (N,) int prompt id per row, or None (then ``cap`` must be None).
        cap: the largest number of picks per group, or None for no limit.
    """

    def __init__(self, group: np.ndarray | None, cap: int | None) -> None:
        self.cap = None if cap is None else positive_int(cap, "max_per_prompt")
        if self.cap is not None and group is None:
            raise ValueError("max_per_prompt: the data has no 'group' key (a prompt id per row); "
                             "draw a pool of prompts with `adpo env --kind prompts`")
        self.group = None if group is None else np.asarray(group, dtype=np.int64)
        if self.cap is not None:
            assert self.group is not None
            self._order = np.argsort(self.group, kind="stable")
            _, self._starts, sizes = np.unique(self.group[self._order], return_index=True,
                                               return_counts=True)
            self._ends = self._starts + sizes
            self._pos = np.searchsorted(self.group[self._order][self._starts], self.group)
            self.counts = np.zeros(self._starts.size, dtype=np.int64)

    @property
    def active(self) -> bool:
        """Whether a cap applies."""
        return self.cap is not None

    def picked(self, i: int) -> np.ndarray:
        """Count a pick of row i; returns the rows (ascending int64) to exclude now: all rows of
        i's group once its count reaches the cap, else none."""
        if self.cap is None:
            return np.empty(0, dtype=np.int64)
        g = self._pos[i]
        self.counts[g] += 1
        if self.counts[g] < self.cap:
            return np.empty(0, dtype=np.int64)
        return np.sort(self._order[self._starts[g]:self._ends[g]])

    def capacity(self, eligible: np.ndarray, replace: bool) -> int | None:
        """How many more picks the cap allows among the ``eligible`` rows ((N,) bool), or None
        without a cap: per group, cap - count, and without replacement at most the group's
        eligible rows."""
        if self.cap is None:
            return None
        assert self.group is not None
        avail = np.bincount(self._pos, weights=eligible.astype(np.float64),
                            minlength=self.counts.size).astype(np.int64)
        left = np.where(avail > 0, self.cap - self.counts, 0)
        return int(np.minimum(left, avail).sum() if not replace else left.sum())
