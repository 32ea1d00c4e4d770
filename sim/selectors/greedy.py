"""The greedy log-det family: ADPO (Algorithm 1), ADPO+ (Algorithm 2), the oracle and APO.

A greedy rule writes only its weights: :meth:`GreedySelector.weights` returns the (N,) w_i of
v_i = sqrt(w_i) phi_i, and the selector picks argmax_i v_i^T H^{-1} v_i (eq. 10), then
H <- H + v v^T (Algorithm 1 line 8; each pick keeps the weight it had when it was picked).

Choices the paper leaves open (PAPER.md marks them INFERRED), all options:

* cold start: theta_hat_0 = 0 (weights beta^2 mu(-beta b_i) mu(beta b_i));
* refits at t = 2, 4, 8, ... ("pow2", the paper's), "every" round, or every K rounds, on the
  labels told so far, with ridge ``fit_ridge``; between refits the last theta_hat is reused;
* Sigma_hat of eq. 13 = (gamma I + grad^2 L(theta_hat; S_t))^{-1} (for ADPO+: on all N rows);
  the UCB is used by ADPO and ADPO+ (the paper's "our algorithms");
* ties in an argmax go to the lowest index.

Engines: while the weights are fixed (ADPO+, oracle, APO, and ADPO between two refits) and the
argmax is over all unselected rows, the blocked engine (:class:`sim.design.greedy.BlockedGreedy`)
runs, the one :func:`sim.design.greedy_select` runs; a random candidate subset
(``n_candidates=m``) or ``record_kappa`` uses :class:`sim.design.incremental.IncrementalGreedy`.
Both take the selector's :attr:`GreedySelector.products` (numpy's, or torch's with ``adpo
select --backend torch``).
Fixed-weight rules hand the engine v_i = sqrt(w_i) phi_i with unit weights, exactly as
``greedy_select(phi, weights=w)`` does, so the two pick the same rows for the same seed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

import numpy as np
import scipy.linalg

from ..data import PreferenceData
from ..design.criteria import CriterionGreedy
from ..design.greedy import BlockedGreedy, BulkProducts, GreedyState, row_threads
from ..design.incremental import IncrementalGreedy
from ..dpo import dpo_hessian, dpo_logits, dpo_weights, logistic_weight
from ..linalg import chol_quad_forms, cholesky
from ..registry import register_method
from .base import CriterionOptions, DesignOptions, FitOptions, Once, Seed, Selector


_ALPHA = "UCB width of eq. 13's optimistic weights (0 disables)"


@dataclass(frozen=True)
class GreedyOptions(CriterionOptions, DesignOptions):
    """Design options plus ``record_kappa``: measure Assumption 4's kappa at every pick over all
    N rows (O(N d) per pick; :attr:`GreedySelector.kappa_`)."""

    record_kappa: bool = field(default=False, metadata={
        "help": "measure Assumption 4's kappa at every pick over all N rows (O(N d) per pick)"})


@dataclass(frozen=True)
class ADPOConfig(FitOptions, GreedyOptions):
    """ADPO: design, fit and refit options, and ``alpha``, the UCB width of eq. 13 (0 disables)."""

    alpha: float = field(default=3.0, metadata={"help": _ALPHA})


@dataclass(frozen=True)
class ADPOPlusConfig(GreedyOptions):
    """ADPO+: design options, the fit's ``fit_ridge`` / ``radius``, and ``alpha`` (eq. 13)."""

    fit_ridge: float = field(default=1e-3, metadata={"help": "ridge of the theta_hat fit"})
    radius: float | None = field(default=None, metadata={
        "help": "ball constraint ||theta_hat|| <= radius of the fit (Assumption 2)"})
    alpha: float = field(default=3.0, metadata={"help": _ALPHA})


class GreedySelector(Selector):
    """Greedy log-det selection (eq. 10): argmax v_i^T H^{-1} v_i, v_i = sqrt(w_i) phi_i.

    Subclasses write :meth:`weights` only (called when a refit is due: once for the
    fixed-weight rules, on the ``refit`` schedule for ADPO). Attributes after use: ``logdet_``
    (log det H_n), ``gains_`` (per pick), ``kappa_`` (per pick, with ``record_kappa=True``),
    ``n_evals_`` (exact score evaluations v^T H^{-1} v).
    """

    Config: ClassVar[type] = GreedyOptions

    #: Backend hook: a callable (V, eligible, state, q0) -> engine with ``next() -> (i, gain, v)``
    #: that replaces the blocked engine for fixed weights and the full argmax (``adpo select
    #: --backend torch --device cuda`` sets :func:`sim.design.torch_greedy.torch_engine`);
    #: None: the blocked engine with :attr:`products`.
    engine_factory: Callable[..., Any] | None = None
    #: Backend hook: who runs the engines' bulk products (:class:`sim.design.greedy
    #: .BulkProducts`): the blocked engine's and, through ``products.rows``, the incremental
    #: engine's (random subsets, ``record_kappa``). ``adpo select --backend torch`` sets
    #: :class:`sim.design.torch_greedy.TorchProducts`; None: numpy.
    products: BulkProducts | None = None

    def __init__(self, data: PreferenceData, *, seed: Seed = 0, **options: Any) -> None:
        super().__init__(data, seed=seed, **options)
        self.state = GreedyState(self.data.d, self.cfg.gamma)
        self._engine: Any = None  # BlockedGreedy, IncrementalGreedy, CriterionGreedy or engine_factory's
        self._V = self.data.phi
        self._w: np.ndarray | None = None
        self._reweight = False  # new weights the blocked engine has yet to take (ADPO)
        self.gains_: list[float] = []
        self.kappa_list: list[float] = []
        self.n_widths_ = 0  # rows whose eq. 13 width was computed (ucb_logits)

    def weights(self) -> np.ndarray:
        """The (N,) design weights w_i >= 0 for the picks that follow (Lemma 1's, or others)."""
        raise NotImplementedError

    @property
    def fixed_weights(self) -> bool:
        """Whether the weights are computed once (then the engine sees sqrt(w) phi)."""
        return isinstance(self.schedule, Once)

    @property
    def logdet_(self) -> float:
        return self.state.logdet

    @property
    def kappa_(self) -> np.ndarray:
        return np.asarray(self.kappa_list)

    @property
    def n_evals_(self) -> int:
        return 0 if self._engine is None else int(self._engine.n_evals)

    def _refit(self, t: int) -> None:
        w = np.asarray(self.weights(), dtype=np.float64)
        if self._engine is not None:  # changing weights: the engine keeps H and its scores
            self._w = w
            # The blocked engine takes them at the next pick (a new active set inside its
            # block, BlockedGreedy.reweight): engine work that refit_seconds_ leaves out.
            self._reweight = isinstance(self._engine, BlockedGreedy)
            return
        phi = self.data.phi
        if self.fixed_weights:
            self._V, self._w = phi * np.sqrt(w)[:, None], None
        else:
            self._V, self._w = phi, w
        q0 = np.einsum("ij,ij->i", self._V, self._V) / self.cfg.gamma
        if self.cfg.criterion != "d":  # A/G gains, same weights (base.CriterionOptions)
            self._engine = CriterionGreedy(self._V, self.state, self.cfg.criterion, phi)
        elif not self.candidates.exhaustive or self.cfg.record_kappa:  # incremental engine
            self._engine = IncrementalGreedy(self._V, self.state, q0=q0,
                                             track_all=self.cfg.record_kappa,
                                             products=self.products)
        elif self.engine_factory is not None and self.fixed_weights:
            self._engine = self.engine_factory(self._V, self._available.copy(), self.state, q0)
        else:
            self._engine = BlockedGreedy(self._V, self._available.copy(), self.state, q0,
                                         weights=self._w, replace=self.replace,
                                         products=self.products)

    def _exclude(self, rows: np.ndarray) -> None:
        if isinstance(self._engine, BlockedGreedy):  # it keeps its own eligibility mask
            self._engine.exclude(rows)

    def _picking(self) -> Any:
        return row_threads() if isinstance(self._engine, BlockedGreedy) else \
            super()._picking()

    def _pick_one(self) -> tuple[int, np.ndarray]:
        eng = self._engine
        if not isinstance(eng, (IncrementalGreedy, CriterionGreedy)):
            if self._reweight:
                eng.reweight(self._w)
                self._reweight = False
            i, gain, v = eng.next()
        else:
            assert eng is not None
            i, score = eng.argmax(self._w, self.candidates(self._eligible()))
            if self.cfg.record_kappa:
                self.kappa_list.append(eng.kappa(self._w, score))  # type: ignore[union-attr]
            v = self._V[i] if self._w is None else np.sqrt(self._w[i]) * self._V[i]
            gain = eng.add(v)
        self.gains_.append(gain)
        return i, v

    # ------------------------------------------------------------------ weights
    def _ucb_weights(self, theta: np.ndarray, idx: np.ndarray | None = None) -> np.ndarray:
        """Lemma 1's weights at theta, with the optimistic logits of eq. 13 when alpha > 0.

        z_i = max(|beta (phi_i^T theta - b_i)| - alpha sqrt(phi_i^T Sigma_hat phi_i), 0), with
        Sigma_hat = (gamma I + grad^2 L(theta; rows idx))^{-1}; returns beta^2 mu(z)(1 - mu(z)),
        (N,). theta (d,), idx (k,) rows of the Hessian (None or empty: gamma I only).
        Widths are computed only for the rows whose z can be positive (:func:`ucb_logits`);
        ``n_widths_`` counts them over the run.
        """
        d, alpha = self.data, self.cfg.alpha
        if alpha == 0:
            return dpo_weights(d.phi, d.b, d.beta, theta)
        idx = np.arange(0) if idx is None else np.asarray(idx)
        z, n_widths = ucb_logits(d.phi, d.b, d.beta, theta, idx, self.cfg.gamma, alpha)
        self.n_widths_ += n_widths
        return d.beta**2 * logistic_weight(z)


#: Relative slack on lambda_max(Sigma_hat^{-1}) in :func:`ucb_logits`' skip test: a row is
#: skipped only if its width bound clears |logit| / alpha by far more than the rounding of the
#: widths it replaces (relative ~ eps cond(Sigma_hat^{-1}) < 1e-9 here).
SKIP_SLACK = 1e-6


class _Precision:
    """eq. 13's Sigma_hat^{-1} = gamma I + grad^2 L(theta; rows idx) through a Cholesky factor.

    With t = |idx| > d / 4 rows: the factor L of the d x d precision; :meth:`quad` by blocked
    triangular solves, O(m d^2) for m rows. With fewer (ADPO's first refits, t = 1, 2, 4, ...
    <= d / 4), the precision is gamma I + U^T U with U = (sqrt(w_j) phi_j)_{j in idx} (t, d),
    and by Woodbury phi^T Sigma_hat phi = (||phi||^2 - ||L_M^{-1} U phi||^2) / gamma, L_M the
    Cholesky factor of M = gamma I_t + U U^T: O(m d t), the same numbers to rounding (relative
    error ~ eps lambda_max(M) / gamma, from the cancellation). (Measured at N = 2^14, d = 128,
    one BLAS thread: 5-11 ms instead of 19-21 ms for t = 1..32; no gain left at t = d / 2.)
    """

    def __init__(self, phi: np.ndarray, b: np.ndarray, beta: float, theta: np.ndarray,
                 idx: np.ndarray, gamma: float) -> None:
        t, d = idx.size, phi.shape[1]
        self.gamma = gamma
        self.U: np.ndarray | None = None       # Woodbury's (t, d) rows, t <= d / 4
        self.matrix: np.ndarray | None = None  # the matrix L factors (None: gamma I alone)
        if 4 * t > d:
            self.matrix = dpo_hessian(theta, phi[idx], b[idx], beta, ridge=gamma)
            self.L = cholesky(self.matrix, "gamma I + grad^2 L")
        elif t:
            self.U = phi[idx] * np.sqrt(dpo_weights(phi[idx], b[idx], beta, theta))[:, None]
            self.matrix = gamma * np.eye(t) + self.U @ self.U.T  # M: lambda_max(M) = that of
            self.L = cholesky(self.matrix, "gamma I + U^T U")     # gamma I + U^T U

    def lambda_max(self) -> float:
        """The largest eigenvalue of Sigma_hat^{-1} (gamma with no rows)."""
        if self.matrix is None:
            return self.gamma
        k = self.matrix.shape[0]
        return float(scipy.linalg.eigvalsh(self.matrix, subset_by_index=[k - 1, k - 1],
                                           check_finite=False)[0])

    def quad(self, X: np.ndarray) -> np.ndarray:
        """x_i^T Sigma_hat x_i for the rows of X (m, d) -> (m,)."""
        if self.U is None and self.matrix is not None:
            return chol_quad_forms(X, self.L)
        sq = np.einsum("ij,ij->i", X, X)
        if self.U is None:
            return sq / self.gamma
        return np.maximum(sq - chol_quad_forms(X @ self.U.T, self.L), 0.0) / self.gamma


def ucb_widths_sq(phi: np.ndarray, b: np.ndarray, beta: float, theta: np.ndarray,
                  idx: np.ndarray, gamma: float) -> np.ndarray:
    """phi_i^T Sigma_hat phi_i for every row, Sigma_hat = (gamma I + grad^2 L(theta; rows idx))^{-1}
    (eq. 13). phi (N, d), b (N,), theta (d,), idx (t,) -> (N,). O(N d min(d, t))
    (:class:`_Precision`)."""
    return _Precision(phi, b, beta, theta, idx, gamma).quad(phi)


def ucb_logits(phi: np.ndarray, b: np.ndarray, beta: float, theta: np.ndarray,
               idx: np.ndarray, gamma: float, alpha: float) -> tuple[np.ndarray, int]:
    """eq. 13's optimistic logits z_i = max(|l_i| - alpha sqrt(phi_i^T Sigma_hat phi_i), 0),
    l = beta (phi theta - b), Sigma_hat as in :func:`ucb_widths_sq`; returns (z (N,), the number
    of rows whose width was computed).

    Since phi^T Sigma_hat phi >= ||phi||^2 / lambda_max(Sigma_hat^{-1}), every row with
    |l_i| <= alpha ||phi_i|| / sqrt(lambda_max) has z_i = 0 without its width (one eigenvalue,
    O(d^3), instead of O(d^2) per row); only the others are computed. The bound is applied with
    a relative slack ``SKIP_SLACK`` far above the widths' rounding, so z is what computing every
    width gives (to the last bit: mu(z)(1 - mu(z)) is flat at 0). At N = 2^14, d = 128 the rows
    skipped are 99-100% of the first refits and 15-90% of the later ones.
    """
    logits = np.abs(dpo_logits(phi, b, beta, theta))
    prec = _Precision(phi, b, beta, theta, idx, gamma)
    bound_sq = np.einsum("ij,ij->i", phi, phi) / (prec.lambda_max() * (1 + SKIP_SLACK))
    rows = np.flatnonzero(logits > alpha * np.sqrt(bound_sq))
    z = np.zeros(phi.shape[0])
    if rows.size:
        z[rows] = np.maximum(logits[rows] - alpha * np.sqrt(prec.quad(phi[rows])), 0.0)
    return z, int(rows.size)


_DOC = "ADPO (Algorithm 1): greedy log det, weights from theta_hat refitted on told labels (eq. 13)"


@register_method("adpo", config=ADPOConfig, help=_DOC, tags=("online", "greedy-design"),
                 style={"color": "#ff7f0e", "marker": "s", "label": "ADPO"})
class ADPO(GreedySelector):
    """Algorithm 1 (online): weights from theta_hat refitted on the labels told so far."""

    name = "adpo"
    Config = ADPOConfig
    uses_labels = True

    def weights(self) -> np.ndarray:
        self.theta_ = self._fit_told()
        return self._ucb_weights(self.theta_, self._told()[0])


@register_method("adpo+", config=ADPOPlusConfig, aliases=("adpo-plus", "adpoplus"),
                 help="ADPO+ (Algorithm 2): theta_hat fitted once on ALL N logged labels, then "
                 "greedy log det (it has seen every label it is evaluated on)",
                 tags=("offline", "reads-logged-labels", "greedy-design"),
                 style={"color": "#d62728", "marker": "o", "label": "ADPO+"})
class ADPOPlus(GreedySelector):
    """Algorithm 2 (offline): theta_hat fitted once on all N logged labels (line 3).

    Subclass and override :meth:`_theta_hat` for another source of theta_hat (e.g. a disjoint
    logged split); the weights, the UCB and the engine follow.
    """

    name = "adpo+"
    Config = ADPOPlusConfig

    def _theta_hat(self) -> tuple[np.ndarray, np.ndarray]:
        """(theta_hat (d,), the rows (k,) whose Hessian gives eq. 13's Sigma_hat)."""
        if self._logged_labels is None:
            raise ValueError("s: ADPO+ fits theta_hat on all logged labels; the data has none "
                             "(use 'adpo' for online labels or 'oracle' with theta_star)")
        self.n_refits_ += 1
        rows = np.arange(self.data.N)
        return self._fit(rows, self._logged_labels), rows

    def weights(self) -> np.ndarray:
        self.theta_, rows = self._theta_hat()
        return self._ucb_weights(self.theta_, rows)


@register_method("oracle", config=GreedyOptions,
                 help="greedy log det with Lemma 1's weights at data.theta_star (no UCB): an "
                 "upper reference", tags=("offline", "reads-logged-labels", "needs-theta-star",
                                          "greedy-design"),
                 style={"color": "#9467bd", "marker": "*", "label": "Oracle"})
class Oracle(GreedySelector):
    """Greedy log det with the Lemma 1 weights at data.theta_star (no UCB): an upper reference."""

    name = "oracle"

    def weights(self) -> np.ndarray:
        d = self.data
        if d.theta_star is None:
            raise ValueError("theta_star: the oracle needs data.theta_star")
        self.theta_ = d.theta_star
        return dpo_weights(d.phi, d.b, d.beta, d.theta_star)


@register_method("apo", config=GreedyOptions,
                 help="APO (Das et al. 2024), the practical rule: argmax phi^T V^{-1} phi, "
                 "V = gamma I + sum phi phi^T (no logistic weights)",
                 tags=("offline", "greedy-design"),
                 style={"color": "#1f77b4", "marker": "^", "label": "APO"})
class APO(GreedySelector):
    """APO (Das et al. 2024), the practical rule: argmax ||phi_i||_{V^{-1}}, V = gamma I + sum
    phi phi^T over picks — a linear-model design that ignores logistic factors and beta."""

    name = "apo"

    def weights(self) -> np.ndarray:
        return np.ones(self.data.N)
