"""Greedy log-det picks over candidate subsets, under weights that may change between picks.

The companion of the blocked engine (:class:`sim.design.greedy.BlockedGreedy`, the exact argmax
over all rows); both keep H through the same :class:`sim.design.greedy.GreedyState`. This
engine serves the two cases the blocked one cannot:

* a fresh random subset of m candidates per pick (paper sec. 3.1, speedup 2), and
* ``track_all=True``: the exact q_i of *all* N rows after every pick (O(N d) per pick), which
  Assumption 4's kappa (:meth:`IncrementalGreedy.kappa`) and ``record_kappa`` need.

It keeps the *unweighted* quadratic forms q_i = phi_i^T H^{-1} phi_i and scores a candidate as
w_i q_i = v_i^T H^{-1} v_i (eq. 10 with v_i = sqrt(w_i) phi_i; the weights w_i of Lemma 1 change
whenever ADPO refits theta_hat, Algorithm 1 line 5). Because H only grows, a q_i computed
earlier is an upper bound on its current value whatever the weights are now, so a lazy argmax
stays exact across refits: candidates are examined in the order of their stale bound
w_i q_i^stale, and only those whose bound beats the best exact score found so far are
refreshed (Minoux's lazy greedy; ties go to the lowest index).

Who multiplies (:class:`RowProducts`): the two products whose work grows with the rows, the
exact q_i of k candidates (O(k d^2)) and, with ``track_all``, the downdate of all N q_i after a
pick (O(N d)), run on numpy by default and on torch (CPU or CUDA) with
:class:`sim.design.torch_greedy.TorchRowProducts` (``--backend torch``), so both backends run
this one engine. The rank-one updates of H^{-1} stay in the shared
:class:`~sim.design.greedy.GreedyState` (O(d^2) per pick). The engine is float64 only: the
scores and H^{-1} are float64 on either backend (no float32 mode, unlike the blocked engine).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .greedy import GreedyState


class RowProducts:
    """The incremental engine's products over the candidate rows phi (N, d), on numpy.

    ``scores(state, idx)``: phi_i^T H^{-1} phi_i for the rows idx (k,) (H^{-1} with the
    state's pending rank-one terms, :meth:`GreedyState.scores`), O(k d^2);
    ``downdate(q, w)``: q_i -= (phi_i^T w)^2 for all N rows in place (Sherman-Morrison, after a
    pick with (H + v v^T)^{-1} = H^{-1} - w w^T), O(N d). Backends subclass it
    (:class:`sim.design.torch_greedy.TorchRowProducts`); ``BulkProducts.rows(phi)`` builds
    the one that goes with a blocked engine's products.
    """

    name = "numpy"

    def __init__(self, phi: np.ndarray) -> None:
        self.phi = phi

    def scores(self, state: GreedyState, idx: np.ndarray) -> np.ndarray:
        """(k,) exact phi_i^T H^{-1} phi_i of the rows idx (k,) int64."""
        return state.scores(self.phi[idx])

    def downdate(self, q: np.ndarray, w: np.ndarray) -> None:
        """q (N,) float64 <- q - (phi @ w)^2, in place; w (d,)."""
        c = self.phi @ w
        q -= c * c


class IncrementalGreedy:
    """H = gamma I + sum_t v_t v_t^T over the picks so far, and bounds q_i >= phi_i^T H^{-1} phi_i.

    Args:
        phi: (N, d) candidate vectors (unweighted; the weights come with each query).
        state: the H^{-1} and log det H to extend (shared with whoever built it).
        q0: (N,) exact phi_i^T H^{-1} phi_i for the current state (default ||phi_i||^2 / gamma,
            right for an empty design).
        track_all: keep all N q_i exact after every pick (O(N d) per pick), for :meth:`kappa`.
        products: the backend's products (:class:`sim.design.greedy.BulkProducts` or a
            subclass, e.g. :class:`sim.design.torch_greedy.TorchProducts`); its ``rows(phi)``
            runs this engine's :class:`RowProducts`. None: numpy's.
    """

    def __init__(self, phi: np.ndarray, state: GreedyState, *, q0: np.ndarray | None = None,
                 track_all: bool = False, products: Any = None) -> None:
        self.phi = phi
        self.state = state
        self.products: RowProducts = RowProducts(phi) if products is None else products.rows(phi)
        self.q = (np.einsum("ij,ij->i", phi, phi) / state.gamma if q0 is None
                  else np.array(q0, dtype=np.float64))
        self.fresh = np.ones(phi.shape[0], dtype=bool)  # q_i exact for the current H
        self.track_all = track_all
        self.n_evals = 0

    @property
    def logdet(self) -> float:
        """log det H."""
        return self.state.logdet

    def exact_q(self, idx: np.ndarray) -> np.ndarray:
        """phi_i^T H^{-1} phi_i for the rows idx (k,), O(k d^2); refreshes their bounds."""
        q = self.products.scores(self.state, idx)
        self.q[idx] = q
        self.fresh[idx] = True
        self.n_evals += len(idx)
        return q

    def argmax(self, weights: np.ndarray | None, candidates: np.ndarray) -> tuple[int, float]:
        """The candidate maximizing w_i phi_i^T H^{-1} phi_i, and that (exact) score.

        weights: (N,) >= 0, or None for all ones; candidates: (k,) int64 ascending rows.
        Sorts the stale bounds and refreshes them in doubling blocks until no remaining bound
        can beat the best exact score; ties go to the lowest index.
        """
        bound = self.q[candidates] if weights is None else weights[candidates] * self.q[candidates]
        if self.track_all:  # all q exact already
            j = int(np.argmax(bound))
            return int(candidates[j]), float(bound[j])
        order = np.argsort(-bound, kind="stable")
        best_i, best = -1, -np.inf
        pos, block = 0, 8
        while pos < len(order) and bound[order[pos]] >= best:
            chunk = candidates[order[pos:pos + block]]
            stale = chunk[~self.fresh[chunk]]
            if stale.size:
                self.exact_q(stale)
            scores = self.q[chunk] if weights is None else weights[chunk] * self.q[chunk]
            top = scores.max()
            j = int(chunk[scores == top].min())  # ties go to the lowest index
            if top > best or (top == best and j < best_i):
                best, best_i = float(top), j
            pos += block
            block = min(2 * block, 4096)
        return best_i, best

    def add(self, v: np.ndarray) -> float:
        """H <- H + v v^T (Algorithm 1 line 8); returns the gain log(1 + v^T H^{-1} v).

        With ``track_all`` every q_i is downdated exactly, q_i -= (phi_i^T w)^2 with
        (H + v v^T)^{-1} = H^{-1} - w w^T (Sherman-Morrison); otherwise all bounds go stale.
        """
        gain, w = self.state._add(np.asarray(v, dtype=np.float64))
        if self.track_all:
            self.products.downdate(self.q, w)
        else:
            self.fresh[:] = False
        return gain

    def kappa(self, weights: np.ndarray | None, chosen_score: float) -> float:
        """Assumption 4's ratio max_{i in [N]} w_i q_i / (score of the pick), over ALL rows."""
        if not self.track_all:
            raise ValueError("record_kappa: construct with track_all=True to measure kappa")
        top = self.q.max() if weights is None else np.max(weights * self.q)
        return float(top / chosen_score)
