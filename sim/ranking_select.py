"""Which prompts to have ranked: ADPO, ADPO+ and baselines over K-tuples (Plackett–Luce).

The K-wise analogue of Algorithms 1 and 2: the design matrix is H = gamma I + sum_{picked i}
F_i F_i^T with F_i F_i^T the expected information of a ranked K-tuple at theta_hat
(:func:`sim.ranking.information_factors`); each round adds the prompt with the largest log det
gain log det(I + F_i^T H^{-1} F_i). With K = 2 every rule reduces to its pairwise version
without the UCB of eq. 13 (alpha = 0: the optimistic width of a K-tuple is not defined by the
paper; we leave it out rather than invent one).

Methods: ``adpo`` (online; theta_hat refitted on the rankings told so far at rounds 2, 4, 8, ...,
theta_hat_0 = 0), ``adpo+`` (offline; theta_hat = the PL MLE on ALL logged rankings — it reads
every label of the pool), ``oracle`` (theta_star), ``d-opt`` (information at theta = 0 for all
rounds: a label-free design), ``uniform``. Ties go to the lowest index; H keeps each pick's
information as of the round it was picked (Algorithm 1 line 8).

Same protocol as the pairwise selectors: ``ask(k)`` / ``tell(indices, rankings)`` /
``select(n)``; online methods never hold the logged rankings.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from .ranking import RankingData, fit_pl, information_factors, pl_rewards
from .validation import as_rng, positive_int, positive_scalar

RANKING_METHODS = ("adpo", "adpo+", "oracle", "d-opt", "uniform")


class RankingSelector:
    """Select prompts to rank. ``selected_`` (pick order), ``told_`` (dict index -> ranking)."""

    def __init__(self, data: RankingData, method: str, *, seed: object = 0, gamma: float = 1.0,
                 fit_ridge: float = 1e-3, n_mc: int = 256):
        if not isinstance(data, RankingData):
            raise ValueError(f"data: ranking method {method!r} selects prompts of a ranking pool "
                             "(sim.ranking.RankingData, `adpo env --kind ranking`); this is "
                             "pairwise data: use a pairwise method")
        if method not in RANKING_METHODS:
            raise ValueError(f"method: {method!r} is not a ranking method; choose one of "
                             f"{', '.join(RANKING_METHODS)}")
        self.method = method
        self.gamma = positive_scalar(gamma, "gamma")
        self.fit_ridge = positive_scalar(fit_ridge, "fit_ridge", allow_zero=True)
        self.n_mc = positive_int(n_mc, "n_mc")
        self.rng = as_rng(seed)
        self._logged = data.rankings if method == "adpo+" else None
        self._reveal = data.rankings if method == "adpo" else None  # told one at a time
        self.data = data.with_(rankings=None)
        self._theta_star = data.theta_star
        self.selected_: list[int] = []
        self.told_: dict[int, np.ndarray] = {}
        self._avail = np.ones(data.M, dtype=bool)
        self._H = self.gamma * np.eye(data.d)
        self._F: np.ndarray | None = None
        self._last_refit: int | None = None
        self.theta_ = np.zeros(data.d)

    @property
    def uses_labels(self) -> bool:
        return self.method == "adpo"

    @property
    def logdet_(self) -> float:
        """log det H, H = gamma I + sum of the picks' information (as of their rounds)."""
        return float(np.linalg.slogdet(self._H)[1])

    def _theta(self) -> np.ndarray:
        d = self.data
        if self.method == "adpo+":
            if self._logged is None:
                raise ValueError("rankings: ADPO+ fits theta_hat on all logged rankings; the "
                                 "data has none")
            return fit_pl(d.psi, d.b, d.beta, self._logged, fit_ridge=self.fit_ridge).theta
        if self.method == "oracle":
            if self._theta_star is None:
                raise ValueError("theta_star: the oracle needs data.theta_star")
            return self._theta_star
        if self.method == "adpo" and self.told_:
            idx = np.fromiter(self.told_, dtype=np.int64)
            return fit_pl(d.psi[idx], d.b[idx], d.beta, np.stack(list(self.told_.values())),
                          fit_ridge=self.fit_ridge).theta
        return np.zeros(d.d)

    def _refit_due(self, t: int) -> bool:
        if self._last_refit is None:
            return True
        return self.method == "adpo" and t >= 1 << self._last_refit.bit_length()

    def ask(self, k: int = 1) -> np.ndarray:
        """The next k distinct prompts (int64, pick order), with within-batch updates."""
        k = positive_int(k, "k")
        if k > int(self._avail.sum()):
            raise ValueError(f"k: asked for {k} prompts but only {int(self._avail.sum())} remain")
        t = len(self.told_) + 1
        if self.method != "uniform" and self._refit_due(t):
            self.theta_ = self._theta()
            d = self.data
            self._F = information_factors(d.psi, d.b, d.beta, self.theta_, n_mc=self.n_mc,
                                          seed=self.rng)
            self._last_refit = t
        out = []
        for _ in range(k):
            i = self._pick()
            self._avail[i] = False
            self.selected_.append(i)
            out.append(i)
        return np.asarray(out, dtype=np.int64)

    def _pick(self) -> int:
        if self.method == "uniform":
            return int(self.rng.choice(np.flatnonzero(self._avail)))
        F = self._F
        assert F is not None
        M, d, c = F.shape
        L = np.linalg.cholesky(self._H)
        W = scipy.linalg.solve_triangular(L, F.transpose(1, 0, 2).reshape(d, M * c),
                                          lower=True).reshape(d, M, c)
        _, gain = np.linalg.slogdet(np.einsum("dmc,dme->mce", W, W) + np.eye(c))
        gain[~self._avail] = -np.inf
        i = int(np.argmax(gain))
        self._H = self._H + F[i] @ F[i].T
        return i

    def tell(self, indices: np.ndarray, rankings: np.ndarray) -> None:
        """Feed back the observed rankings (rows best first) of previously asked prompts."""
        idx = np.atleast_1d(np.asarray(indices, dtype=np.int64))
        rk = np.atleast_2d(np.asarray(rankings))
        asked = set(self.selected_)
        for i, r in zip(idx.tolist(), rk):
            if i not in asked:
                raise ValueError(f"indices: prompt {i} was told before it was asked; ask() first")
            self.told_[i] = r

    def select(self, n: int, rankings: np.ndarray | None = None,
               batch_size: int = 1) -> np.ndarray:
        """Select n prompts; online methods are told ``rankings[i]`` as each i is selected
        (default: the data's logged rankings, revealed one prompt at a time)."""
        n = positive_int(n, "n")
        rankings = self._reveal if rankings is None else rankings
        out: list[int] = []
        while len(out) < n:
            idx = self.ask(min(batch_size, n - len(out)))
            if self.uses_labels:
                if rankings is None:
                    raise ValueError("rankings: method 'adpo' needs the rankings to reveal")
                self.tell(idx, rankings[idx])
            out.extend(idx.tolist())
        return np.asarray(out, dtype=np.int64)


def ranking_logit_errors(data: RankingData, theta: np.ndarray,
                         target: np.ndarray) -> tuple[float, float]:
    """Max and mean over prompts and response pairs of |(r_k - r_l)(theta) - (r_k - r_l)(target)|.

    The K-wise version of eq. 7 (the reference terms cancel, as there)."""
    dr = (pl_rewards(data.psi, data.b, data.beta, theta)
          - pl_rewards(data.psi, data.b, data.beta, target))
    diff = np.abs(dr[:, :, None] - dr[:, None, :])
    K = data.K
    iu = np.triu_indices(K, 1)
    pairs = diff[:, iu[0], iu[1]]
    return float(pairs.max()), float(pairs.mean())

