"""Greedy log-det selection under weights that may change between picks.

ADPO's weights w_i = beta^2 mu_i(theta_hat)(1 - mu_i(theta_hat)) change whenever theta_hat is
refitted, so the greedy engine of the selectors keeps the *unweighted* quadratic forms
q_i = phi_i^T H^{-1} phi_i and scores a candidate as w_i q_i = v_i^T H^{-1} v_i (eq. 10 with
v_i = sqrt(w_i) phi_i). Because H only grows, a q_i computed earlier is an upper bound on its
current value, whatever the weights are now. Lazy evaluation therefore stays exact across
refits: candidates are examined in order of their stale bound w_i q_i^stale, and only those
whose bound beats the best exact score found so far are refreshed (Minoux's lazy greedy; the
argmax is the same as a full recomputation, ties broken by the lowest index).

H^{-1} is kept by :class:`sim.design.GreedyState` (buffered Sherman-Morrison updates with a
periodic Cholesky refresh, paper sec. 3.1), O(d^2) per pick; no N x N or N x d x d array is ever
formed.
"""

from __future__ import annotations

import heapq

import numpy as np

from .design import GreedyState
from .validation import positive_scalar


class WeightedGreedy:
    """State of H = gamma I + sum_t v_t v_t^T over the picks so far, and stale bounds q_i.

    Args:
        phi: (N, d) candidate features (unweighted).
        gamma: ridge of H_0 = gamma I (> 0).
        track_all: maintain the exact q_i of *all* N rows after every pick (O(N d) per pick),
            which :meth:`kappa` needs to measure Assumption 4 over all of [N].
    """

    def __init__(self, phi: np.ndarray, gamma: float, *, track_all: bool = False):
        self.phi = phi
        self.gamma = positive_scalar(gamma, "gamma")
        n, d = phi.shape
        self.state = GreedyState(d, self.gamma)
        # Stale upper bounds on phi_i^T H^{-1} phi_i; exact at the start (H = gamma I).
        self.q = np.einsum("ij,ij->i", phi, phi) / self.gamma
        self.fresh = np.ones(n, dtype=bool)  # q_i exact for the current H
        self.track_all = track_all
        self.n_evals = 0

    @property
    def logdet(self) -> float:
        """log det H."""
        return self.state.logdet

    # ------------------------------------------------------------------ exact scores
    def exact_q(self, idx: np.ndarray) -> np.ndarray:
        """phi_i^T H^{-1} phi_i for the rows idx, O(len(idx) d^2); refreshes the bounds."""
        q = self.state.scores(self.phi[idx])
        self.q[idx] = q
        self.fresh[idx] = True
        self.n_evals += len(idx)
        return q

    def argmax(self, weights: np.ndarray, candidates: np.ndarray) -> tuple[int, float]:
        """The candidate maximizing w_i phi_i^T H^{-1} phi_i, and that score (exact).

        For a small candidate set (the paper's random m = 256): sort the stale bounds and refresh
        in doubling blocks until no remaining bound can beat the best exact score.
        weights: (N,) non-negative; candidates: 1-D int array of eligible rows.
        """
        if self.track_all:  # all q exact already
            scores = weights[candidates] * self.q[candidates]
            j = int(np.argmax(scores))
            return int(candidates[j]), float(scores[j])
        bound = weights[candidates] * self.q[candidates]
        order = np.argsort(-bound, kind="stable")
        best_i, best = -1, -np.inf
        pos, block = 0, 8
        while pos < len(order) and bound[order[pos]] >= best:
            chunk = candidates[order[pos:pos + block]]
            stale = chunk[~self.fresh[chunk]]
            if stale.size:
                self.exact_q(stale)
            scores = weights[chunk] * self.q[chunk]
            top = scores.max()
            j = int(chunk[scores == top].min())  # ties go to the lowest index
            if top > best or (top == best and j < best_i):
                best, best_i = float(top), j
            pos += block
            block = min(2 * block, 4096)
        return best_i, best

    def start_lazy(self, weights: np.ndarray, available: np.ndarray) -> None:
        """(Re)build the priority queue over ``available`` rows for :meth:`argmax_lazy`.

        Call it whenever the weights change; keys are the stale bounds w_i q_i.
        """
        self._w = weights
        keys = -(weights[available] * self.q[available])
        self._heap = list(zip(keys.tolist(), available.tolist()))
        heapq.heapify(self._heap)
        self._taken = np.zeros(len(self.q), dtype=bool)

    def argmax_lazy(self) -> tuple[int, float]:
        """Exact argmax over the queue (lazy greedy); removes and returns (index, score)."""
        if self.track_all:
            raise ValueError("argmax_lazy: not available with track_all=True; use argmax")
        heap, w = self._heap, self._w
        while heap:
            key, i = heap[0]
            if self._taken[i]:
                heapq.heappop(heap)
                continue
            if self.fresh[i]:  # key is exact and every other key is an upper bound
                heapq.heappop(heap)
                self._taken[i] = True
                return i, -key
            # Refresh a block of stale tops with one matrix product.
            stale = []
            while heap and len(stale) < 32:
                key, j = heap[0]
                if self._taken[j]:
                    heapq.heappop(heap)
                elif self.fresh[j]:
                    break
                else:
                    heapq.heappop(heap)
                    stale.append(j)
            if stale:
                idx = np.asarray(stale)
                for j, k in zip(stale, (-(w[idx] * self.exact_q(idx))).tolist()):
                    heapq.heappush(heap, (k, j))
        raise ValueError("n: no candidates left to select")

    # ------------------------------------------------------------------ updates
    def add(self, v: np.ndarray) -> float:
        """H <- H + v v^T by Sherman-Morrison; returns the gain log(1 + v^T H^{-1} v)."""
        if self.track_all:
            u = self.state.solve(v)
            self.q -= (self.phi @ u) ** 2 / (1.0 + float(v @ u))
        else:
            self.fresh[:] = False
        return self.state.add(v)

    def kappa(self, weights: np.ndarray, chosen_score: float) -> float:
        """Assumption 4's ratio max_{i in [N]} w_i q_i / (score of the pick), over ALL rows."""
        if not self.track_all:
            raise ValueError("record_kappa: construct with track_all=True to measure kappa")
        return float(np.max(weights * self.q) / chosen_score)
