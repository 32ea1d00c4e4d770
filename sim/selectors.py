"""Active selection of preference pairs: ADPO, ADPO+ and the baselines behind ONE protocol.

Every method is a :class:`Selector` and works in two modes:

* online ask/tell — ``ask(k)`` returns the next k row indices (a batch is chosen with
  within-batch rank-one updates before any of its labels arrive), ``tell(indices, labels)``
  feeds the labels back; the same object serves a simulation and a human in the loop;
* offline ``select(n)`` — ask/tell in a loop, labels revealed from ``data.s`` only as rows are
  selected (a :class:`LabelOracle`); methods that use no labels never read them.

Online methods never hold the label array: the constructor keeps ``data`` without ``s``
(``data.with_(s=None)``), so reading a label before selecting it is impossible by construction.

Methods (``make_selector(name, data, ...)``):

==============  =====================================================================
name            rule
==============  =====================================================================
adpo            Algorithm 1: greedy log det with weights from theta_hat refitted on the
                labels seen so far (refit schedule), optimistic weights of eq. 13 (alpha)
adpo+           Algorithm 2: theta_hat fitted once on all N logged labels, then greedy
oracle          greedy log det with weights from data.theta_star (an upper reference)
apo             APO (Das et al. 2024), the practical rule used by the paper:
                argmax phi^T V^{-1} phi, V = gamma I + sum phi phi^T (no logistic weights)
apo-logistic    APO (Das et al. 2024) with a logistic Hessian re-estimated at each refit:
                argmax phi^T H(theta_hat)^{-1} phi, past terms re-weighted
pmc             PMC (Muldrew et al. 2024): largest |beta (phi^T theta_hat - b)|
uncertainty     largest mu(1 - mu), i.e. the logit nearest zero under theta_hat
dope            sample n distinct rows from the relaxed D-optimal design (Mukherjee et
                al. 2024, "Dope"): successive sampling without replacement from pi
uniform         a uniformly random subset
==============  =====================================================================

Choices the paper leaves open (PAPER.md marks them INFERRED), all parameters:
* cold start: theta_hat_0 = 0 (weights beta^2 mu(-beta b_i) mu(beta b_i));
* refits at t = 2, 4, 8, ... ("pow2", the paper's), "every" round, or every K rounds, on the
  labels told so far, with ridge ``fit_gamma``; between refits the last theta_hat is reused;
* Sigma_hat of eq. 13 = (gamma I + grad^2 L(theta_hat; S_t))^{-1} (for ADPO+: on all N rows);
  the UCB is used by ADPO and ADPO+ (the paper's "our algorithms");
* H_t keeps each pick's weight as of the round it was picked (Algorithm 1 line 8);
* ties in an argmax go to the lowest index.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg

from .data import PreferenceData, check_indices
from .dpo import dpo_hessian, fit_dpo, logistic_weight
from .validation import as_labels, as_rng, positive_int, positive_scalar
from .weighted_greedy import WeightedGreedy

METHODS = ("adpo", "adpo+", "oracle", "apo", "apo-logistic", "pmc", "uncertainty", "dope",
           "uniform")


class LabelOracle:
    """Reveals ``s[i]`` only for rows that have been asked for; counts what it revealed."""

    def __init__(self, s: np.ndarray):
        self._s = as_labels(s, "s")
        self.revealed: list[int] = []

    def __call__(self, indices) -> np.ndarray:
        idx = np.asarray(indices, dtype=np.int64)
        self.revealed.extend(idx.tolist())
        return self._s[idx]


@dataclass
class _Config:
    gamma: float = 1.0          # ridge of the design matrix H_0 = gamma I
    fit_gamma: float = 1e-3     # ridge of the DPO fits theta_hat
    radius: float | None = None  # optional ball constraint of the fits (Assumption 2)
    n_candidates: int | None = None  # None: exact argmax over all unselected rows; m: the paper's subset
    alpha: float = 3.0          # UCB width of eq. 13; 0 disables
    refit: str | int = "pow2"   # "pow2" | "every" | K
    batch_size: int = 1


class Selector:
    """The protocol: ``ask(k)``, ``tell(indices, labels)``, ``select(n)``.

    Attributes after use: ``selected_`` (ordered indices asked so far), ``labels_`` (dict of
    told labels), ``n_refits_``.
    """

    name = "base"
    uses_labels = False  # whether the method's choices depend on told labels

    def __init__(self, data: PreferenceData, *, seed=0, gamma=1.0, fit_gamma=1e-3, radius=None,
                 n_candidates=None, alpha=3.0, refit="pow2", batch_size=1):
        if not isinstance(data, PreferenceData):
            raise ValueError("data: expected a PreferenceData (see sim.data)")
        self.cfg = _Config(
            gamma=positive_scalar(gamma, "gamma"),
            fit_gamma=positive_scalar(fit_gamma, "fit_gamma", allow_zero=True),
            radius=None if radius is None else positive_scalar(radius, "radius"),
            n_candidates=None if n_candidates in (None, "all") else positive_int(
                n_candidates, "n_candidates (m)"),
            alpha=positive_scalar(alpha, "alpha", allow_zero=True),
            refit=_check_refit(refit),
            batch_size=positive_int(batch_size, "batch_size"))
        self._logged_labels = data.s  # only offline methods (adpo+) may read these
        self.data = data.with_(s=None)
        self.rng = as_rng(seed)
        self.selected_: list[int] = []
        self.labels_: dict[int, int] = {}
        self.n_refits_ = 0
        self._available = np.ones(data.N, dtype=bool)

    # ------------------------------------------------------------------ protocol
    def ask(self, k: int = 1) -> np.ndarray:
        """The next ``k`` distinct unselected rows (int64 array, in selection order).

        A batch is chosen before any of its labels arrive: theta_hat is refitted (if due) once,
        then each pick updates the design before the next one (within-batch rank-one updates).
        """
        k = positive_int(k, "k")
        if k > int(self._available.sum()):
            raise ValueError(f"k: asked for {k} rows but only {int(self._available.sum())} "
                             f"unselected rows remain (N = {self.data.N})")
        t = len(self.labels_) + 1
        if self._refit_due(t):
            self._refit(t)
            self._last_refit_t = t
        picks = []
        for _ in range(k):
            i = int(self._pick_one())
            self._available[i] = False
            self.selected_.append(i)
            picks.append(i)
        return np.asarray(picks, dtype=np.int64)

    def tell(self, indices, labels) -> None:
        """Feed back labels (1 = the first response preferred) for previously asked rows."""
        idx = check_indices(np.atleast_1d(indices), self.data.N)
        lab = as_labels(np.atleast_1d(labels), "labels", length=idx.size)
        asked = set(self.selected_)
        for i, y in zip(idx.tolist(), lab.tolist()):
            if i not in asked:
                raise ValueError(f"indices: row {i} was told before it was asked; ask() first")
            self.labels_[i] = y

    def select(self, n: int, labels=None) -> np.ndarray:
        """Select ``n`` rows offline; labels come from ``labels`` (a callable idx -> s[idx]) or
        from the data's logged labels, revealed as rows are selected. Returns (n,) indices."""
        n = positive_int(n, "n")
        remaining = self.data.N - len(self.selected_)
        if n > remaining:
            raise ValueError(f"n: budget {n} exceeds the {remaining} unselected rows "
                             f"(N = {self.data.N}); choose n <= N")
        if labels is None and self.uses_labels:
            if self._logged_labels is None:
                raise ValueError(f"s: method {self.name!r} needs labels; the data has none")
            labels = LabelOracle(self._logged_labels)
        out = []
        while len(out) < n:
            idx = self.ask(min(self.cfg.batch_size, n - len(out)))
            if self.uses_labels:
                self.tell(idx, labels(idx))
            out.extend(idx.tolist())
        return np.asarray(out, dtype=np.int64)

    # ------------------------------------------------------------------ hooks
    def _refit(self, t: int) -> None:
        """Recompute whatever depends on theta_hat before round t (called when due)."""

    def _pick_one(self) -> int:
        raise NotImplementedError

    def _candidates(self) -> np.ndarray:
        """Unselected rows, or a fresh random subset of m of them (paper sec. 3.1, speedup 2)."""
        avail = np.flatnonzero(self._available)
        m = self.cfg.n_candidates
        if m is None or m >= avail.size:
            return avail
        return np.sort(self.rng.choice(avail, size=m, replace=False))

    # ------------------------------------------------------------------ theta_hat
    def _fit_told(self) -> np.ndarray:
        """theta_hat on the labels told so far (theta_hat_0 = 0 when none)."""
        self.n_refits_ += 1
        if not self.labels_:
            return np.zeros(self.data.d)
        idx = np.fromiter(self.labels_.keys(), dtype=np.int64)
        s = np.fromiter(self.labels_.values(), dtype=np.int8)
        return self._fit(idx, s)

    def _fit(self, idx, s) -> np.ndarray:
        d = self.data
        return fit_dpo(d.phi[idx], d.b[idx], d.beta, s, gamma=self.cfg.fit_gamma,
                       radius=self.cfg.radius).theta

    def _refit_due(self, t: int) -> bool:
        """Whether a scheduled refit falls in (last refit round, t]; always true at the start.

        Schedules: "pow2" refits at rounds t = 2, 4, 8, ... (the paper's "t = 2^i, i > 0"),
        "every" at every round, K at rounds 1 + K, 1 + 2K, ...
        """
        last = getattr(self, "_last_refit_t", None)
        if last is None:
            return True
        r = self.cfg.refit
        if r == "every":
            return t > last
        if r == "pow2":
            return t >= 1 << last.bit_length()  # the smallest power of two > last
        return t >= last + r


def _check_refit(refit):
    if refit in ("pow2", "every"):
        return refit
    try:
        return positive_int(int(refit), "refit")
    except (TypeError, ValueError):
        raise ValueError(f"refit: must be 'pow2', 'every' or a positive integer K, got {refit!r}") \
            from None


# ====================================================================== simple baselines
class Uniform(Selector):
    """A uniformly random subset, in random order."""

    name = "uniform"

    def _pick_one(self):
        return self.rng.choice(np.flatnonzero(self._available))


class _ScoreSelector(Selector):
    """Top-score selection under theta_hat refitted on the schedule (PMC, uncertainty)."""

    uses_labels = True

    def _refit(self, t):
        d = self.data
        self.theta_ = self._fit_told()
        self._score_all = self._score(d.beta * (d.phi @ self.theta_ - d.b))
        self._order = np.lexsort((np.arange(d.N), -self._score_all))  # ties: lowest index
        self._pos = 0

    def _pick_one(self):
        if self.cfg.n_candidates is None:
            while not self._available[self._order[self._pos]]:
                self._pos += 1
            return self._order[self._pos]
        cand = self._candidates()
        sc = self._score_all[cand]
        return cand[np.flatnonzero(sc == sc.max())[0]]


class PMC(_ScoreSelector):
    """PMC (Muldrew et al. 2024): the largest estimated implicit-reward difference
    |beta (phi_i^T theta_hat - b_i)| (PAPER.md sec. 5.1)."""

    name = "pmc"

    @staticmethod
    def _score(z):
        return np.abs(z)


class Uncertainty(_ScoreSelector):
    """Largest Bernoulli variance mu(z)(1 - mu(z)): the logit nearest zero."""

    name = "uncertainty"

    @staticmethod
    def _score(z):
        return -np.abs(z)


# ====================================================================== the greedy family
class _GreedySelector(Selector):
    """Greedy log-det selection (eq. 10): argmax v_i^T H^{-1} v_i, v_i = sqrt(w_i) phi_i.

    Subclasses define ``_weights()`` -> (N,) w_i (called when a refit is due) and
    ``_score_weights`` (weights applied to the candidate score; APO-logistic scores unweighted
    phi but weights H). Attributes after use: ``logdet_`` (log det H_n), ``gains_`` (per pick),
    ``kappa_`` (per pick, with ``record_kappa=True``).
    """

    def __init__(self, data, *, record_kappa=False, **kw):
        super().__init__(data, **kw)
        self._engine = WeightedGreedy(self.data.phi, self.cfg.gamma, track_all=record_kappa)
        self.record_kappa = record_kappa
        self.gains_: list[float] = []
        self.kappa_list: list[float] = []

    @property
    def logdet_(self) -> float:
        return self._engine.logdet

    @property
    def kappa_(self) -> np.ndarray:
        return np.asarray(self.kappa_list)

    def _refit(self, t):
        self._w = self._weights()
        if self.cfg.n_candidates is None and not self.record_kappa:
            self._engine.start_lazy(self._w, np.flatnonzero(self._available))

    def _pick_one(self):
        if self.cfg.n_candidates is None and not self.record_kappa:
            i, score = self._engine.argmax_lazy()
        else:
            i, score = self._engine.argmax(self._w, self._candidates())
        if self.record_kappa:
            self.kappa_list.append(self._engine.kappa(self._w, score))
        self.gains_.append(self._engine.add(np.sqrt(self._w[i]) * self.data.phi[i]))
        return i

    # ------------------------------------------------------------------ weights
    def _dpo_weights(self, theta, idx=None, s=None) -> np.ndarray:
        """beta^2 mu(z)(1 - mu(z)) with the optimistic z of eq. 13 when alpha > 0.

        z_i = max(|beta (phi_i^T theta - b_i)| - alpha sqrt(phi_i^T Sigma_hat phi_i), 0), with
        Sigma_hat = (gamma I + grad^2 L(theta; rows idx))^{-1}, via a Cholesky solve.
        """
        d = self.data
        z = np.abs(d.beta * (d.phi @ theta - d.b))
        if self.cfg.alpha > 0:
            if idx is None or len(idx) == 0:
                prec = self.cfg.gamma * np.eye(d.d)
            else:
                prec = dpo_hessian(theta, d.phi[idx], d.b[idx], d.beta, gamma=self.cfg.gamma)
            chol = scipy.linalg.cholesky(prec, lower=True)
            width = np.sqrt(np.sum(scipy.linalg.solve_triangular(
                chol, d.phi.T, lower=True) ** 2, axis=0))
            z = np.maximum(z - self.cfg.alpha * width, 0.0)
        return d.beta**2 * logistic_weight(z)


class ADPO(_GreedySelector):
    """Algorithm 1 (online): weights from theta_hat refitted on the labels told so far."""

    name = "adpo"
    uses_labels = True

    def _weights(self):
        theta = self._fit_told()
        self.theta_ = theta
        idx = np.fromiter(self.labels_.keys(), dtype=np.int64)
        return self._dpo_weights(theta, idx)


class ADPOPlus(_GreedySelector):
    """Algorithm 2 (offline): theta_hat fitted once on all N logged labels (line 3)."""

    name = "adpo+"

    def _weights(self):
        if self._logged_labels is None:
            raise ValueError("s: ADPO+ fits theta_hat on all logged labels; the data has none "
                             "(use 'adpo' for online labels or 'oracle' with theta_star)")
        self.n_refits_ += 1
        all_rows = np.arange(self.data.N)
        self.theta_ = self._fit(all_rows, self._logged_labels)
        return self._dpo_weights(self.theta_, all_rows)

    def _refit_due(self, t):
        return not hasattr(self, "_last_refit_t")


class Oracle(_GreedySelector):
    """Greedy log det with the Lemma 1 weights at data.theta_star (no UCB): an upper reference."""

    name = "oracle"

    def _weights(self):
        d = self.data
        if d.theta_star is None:
            raise ValueError("theta_star: the oracle needs data.theta_star")
        self.theta_ = d.theta_star
        return d.beta**2 * logistic_weight(d.beta * (d.phi @ d.theta_star - d.b))

    def _refit_due(self, t):
        return not hasattr(self, "_last_refit_t")


class APO(_GreedySelector):
    """APO (Das et al. 2024), the practical rule: argmax ||phi_i||_{V^{-1}}, V = gamma I + sum
    phi phi^T over picks — a linear-model design that ignores logistic factors and beta."""

    name = "apo"

    def _weights(self):
        return np.ones(self.data.N)

    def _refit_due(self, t):
        return not hasattr(self, "_last_refit_t")


class APOLogistic(Selector):
    """APO (Das et al. 2024) with the logistic Hessian: argmax phi_i^T H_t(theta_hat)^{-1} phi_i,
    H_t(theta_hat) = gamma I + sum_{j in S} beta^2 mu_j(1 - mu_j) phi_j phi_j^T re-weighted at
    every refit (unlike ADPO, which freezes each pick's weight). Between refits the new picks
    enter H with the current weights."""

    name = "apo-logistic"
    uses_labels = True

    def _refit(self, t):
        d = self.data
        self.theta_ = self._fit_told()
        self._w = d.beta**2 * logistic_weight(d.beta * (d.phi @ self.theta_ - d.b))
        self._engine = WeightedGreedy(d.phi, self.cfg.gamma)
        for j in self.selected_:  # the past picks, re-weighted at the new theta_hat
            self._engine.add(np.sqrt(self._w[j]) * d.phi[j])
        self._ones = np.ones(d.N)

    def _pick_one(self):
        i, _ = self._engine.argmax(self._ones, self._candidates())
        self._engine.add(np.sqrt(self._w[i]) * self.data.phi[i])
        return i


class Dope(Selector):
    """Design-then-sample: the relaxed D-optimal design pi over sqrt(w_i) phi_i (weights 1, or
    the Lemma 1 weights at ``theta_star`` with ``weights="theta_star"``), then n distinct rows
    by successive sampling from pi (Mukherjee et al. 2024 sample with replacement; each pair is
    labelled at most once here, so repeats are redrawn)."""

    name = "dope"

    def __init__(self, data, *, weights="none", design_tol=1e-4, **kw):
        super().__init__(data, **kw)
        self.weights = weights
        self.design_tol = design_tol
        self._pi = None

    def _refit_due(self, t):
        return self._pi is None

    def _refit(self, t):
        from .design.relaxed import fw_design  # Frank-Wolfe with away steps
        d = self.data
        if self.weights == "theta_star":
            if d.theta_star is None:
                raise ValueError("theta_star: weights='theta_star' needs data.theta_star")
            w = d.beta**2 * logistic_weight(d.beta * (d.phi @ d.theta_star - d.b))
        elif self.weights == "none":
            w = np.ones(d.N)
        else:
            raise ValueError(f"weights: 'none' or 'theta_star', got {self.weights!r}")
        res = fw_design(d.phi * np.sqrt(w)[:, None], efficiency=1 - self.design_tol)
        self._pi = np.asarray(res.pi, dtype=np.float64)

    def _pick_one(self):
        p = self._pi * self._available
        if p.sum() <= 0:  # the design's support is exhausted: continue uniformly
            p = self._available.astype(float)
        return self.rng.choice(self.data.N, p=p / p.sum())


_REGISTRY = {"adpo": ADPO, "adpo+": ADPOPlus, "oracle": Oracle, "apo": APO,
             "apo-logistic": APOLogistic, "pmc": PMC, "uncertainty": Uncertainty, "dope": Dope,
             "uniform": Uniform}


def make_selector(name: str, data: PreferenceData, **kwargs) -> Selector:
    """Construct a selector by name (see the module docstring for the methods and options)."""
    key = str(name).lower().replace("_", "-")
    key = {"adpo-plus": "adpo+", "adpoplus": "adpo+", "random": "uniform"}.get(key, key)
    if key not in _REGISTRY:
        raise ValueError(f"method: unknown method {name!r}; choose one of {', '.join(METHODS)}")
    return _REGISTRY[key](data, **kwargs)


# Fair ADPO+ lives in its own module (it subclasses ADPOPlus, so it is imported last).
from .adpo_fair import ADPOPlusFair  # noqa: E402

_REGISTRY["adpo+fair"] = ADPOPlusFair
METHODS = METHODS + ("adpo+fair",)
