"""K-wise rankings under the Plackett–Luce model implied by a log-linear policy.

Each of M prompts x_i has K >= 2 responses with features psi_ik = psi(x_i, y_ik) and reference
log-probabilities b_ik = log pi_0(y_ik | x_i). Under Assumption 1 (log-linear policies, paper
eq. 8) the DPO implicit reward of response k is, up to a prompt constant that cancels,

    r_ik(theta) = beta * (psi_ik^T theta - b_ik),

and a ranking tau (best first) is observed with the Plackett–Luce probability (the DPO paper's
ranking extension of eq. 3)

    P(tau | x_i; theta) = prod_{j=1}^{K-1} exp(r_{i tau_j}) / sum_{l >= j} exp(r_{i tau_l}).

At K = 2 this is the Bradley–Terry model of eq. 9 with phi_i = psi_i1 - psi_i2 and
b_i = b_i1 - b_i2 (tested against :mod:`sim.dpo`).

The negative log-likelihood is a sum over stages j of logsumexp(r over the remaining set R_j)
minus the reward of the stage's winner; its Hessian is

    beta^2 sum_j Cov_{p_j}(psi)  =  beta^2 Psi_i^T A_i(tau) Psi_i,
    A_i(tau) = sum_j (diag(p_j) - p_j p_j^T)     (K x K, rows sum to 0),

with p_j the softmax of the rewards over R_j (zero outside it). A_i is a weighted sum of
difference outer products (e_l - e_m)(e_l - e_m)^T, so the information of a ranked K-tuple lives
in the span of its K - 1 feature differences; at K = 2 it is beta^2 mu (1 - mu) phi phi^T of
Lemma 1. The Hessian depends on the observed ranking only through the remaining sets; designs,
chosen before the ranking is seen, use its expectation over tau (the Fisher information),
computed exactly by enumerating the K! rankings (K <= ``EXACT_MAX_K``) or by a seeded Monte
Carlo average.

Shapes: ``psi`` (M, K, d), ``b`` (M, K), ``rankings`` (M, K) (each row a permutation of 0..K-1,
best first), ``theta`` (d,).

A *ranking pool* file (``adpo env --kind ranking``, :meth:`RankingData.save`) is a ``.npz`` with

============  ===========  ==========================================================
key           shape        meaning
============  ===========  ==========================================================
psi           (M, K, d)    per-prompt response features psi_ik = psi(x_i, y_ik)
b             (M, K)       reference log-probabilities b_ik = log pi_0(y_ik | x_i)
beta          ()           DPO scale beta > 0
rankings      (M, K)       optional observed rankings, row i a permutation of 0..K-1, best first
theta_star    (d,)         optional target: the PL MLE on all M rankings
theta_true    (d,)         optional generating parameter of the rankings
============  ===========  ==========================================================

Its key ``psi`` tells it apart from a pairwise file (``phi``, :mod:`sim.data`):
:func:`load_pool` reads either.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg
from scipy.special import softmax

from .data import KnownParameters, PreferenceData
from .dpo import ConvergenceError, armijo_step
from .io import atomic_savez
from .validation import DataError, as_rng, as_vector, check_beta, positive_int, positive_scalar

RANKING_NPZ_KEYS = ("psi", "b", "beta", "rankings", "theta_star", "theta_true")

EXACT_MAX_K = 6  # K! = 720 rankings per prompt: exact expectation; above, Monte Carlo


@dataclass(frozen=True, eq=False)
class RankingData(KnownParameters):
    """M prompts with K responses each; optional observed rankings and known parameters.

    ``psi`` (M, K, d), ``b`` (M, K), ``beta`` > 0, ``rankings`` (M, K) int (best first) or None,
    ``theta_true`` (d,) generating parameter, ``theta_star`` (d,) the PL MLE on all M rankings
    (both keyword-only, :class:`sim.data.KnownParameters`).
    """

    psi: np.ndarray
    b: np.ndarray
    beta: float = 1.0
    rankings: np.ndarray | None = None

    def __post_init__(self) -> None:
        psi = np.asarray(self.psi, dtype=np.float64)
        if psi.ndim != 3 or psi.shape[1] < 2 or 0 in psi.shape:
            raise ValueError(f"psi: expected shape (M, K, d) with K >= 2, got {psi.shape}")
        if not np.all(np.isfinite(psi)):
            raise ValueError("psi: contains NaN or inf; pass finite features")
        M, K, d = psi.shape
        b = np.asarray(self.b, dtype=np.float64)
        if b.shape != (M, K) or not np.all(np.isfinite(b)):
            raise ValueError(f"b: expected finite reference log-probs of shape {(M, K)}, "
                             f"got {b.shape}")
        object.__setattr__(self, "psi", psi)
        object.__setattr__(self, "b", b)
        object.__setattr__(self, "beta", positive_scalar(self.beta, "beta"))
        if self.rankings is not None:
            object.__setattr__(self, "rankings", check_rankings(self.rankings, M, K))
        self._check_parameters(d)

    @property
    def M(self) -> int:
        return int(self.psi.shape[0])

    @property
    def K(self) -> int:
        return int(self.psi.shape[1])

    @property
    def d(self) -> int:
        return int(self.psi.shape[2])

    @property
    def N(self) -> int:  # noqa: N802 (the selectable units, as PreferenceData.N)
        """The number of prompts M (what a selector chooses among)."""
        return self.M

    def save(self, path: str) -> None:
        """Write the keys of the module table (absent optional fields omitted) atomically."""
        path = str(path)
        if not path.endswith(".npz"):
            raise ValueError(f"path: data files must end in .npz, got {path!r}")
        arrays: dict[str, Any] = {"psi": self.psi, "b": self.b, "beta": np.float64(self.beta)}
        for key in RANKING_NPZ_KEYS[3:]:
            if getattr(self, key) is not None:
                arrays[key] = getattr(self, key)
        atomic_savez(path, **arrays)

    @classmethod
    def load(cls, path: str) -> RankingData:
        """Read a ranking pool written by :meth:`save` (no pickle); DataError names the file."""
        try:
            with np.load(path, allow_pickle=False) as f:
                arrays = {k: f[k] for k in f.files}
        except (OSError, ValueError, EOFError) as exc:
            raise DataError(f"data file {path!r}: not a readable .npz file ({exc})") from None
        unknown = sorted(set(arrays) - set(RANKING_NPZ_KEYS))
        missing = [k for k in RANKING_NPZ_KEYS[:3] if k not in arrays]
        if unknown or missing:
            raise DataError(f"data file {path!r}: a ranking pool has keys "
                            f"{list(RANKING_NPZ_KEYS)} (psi, b, beta required); "
                            f"unknown {unknown}, missing {missing}")
        try:
            return cls(beta=check_beta(float(np.asarray(arrays.pop("beta")).reshape(()))),
                       **arrays)
        except ValueError as exc:
            raise DataError(f"data file {path!r}: {exc}") from None


def is_ranking_file(path: str) -> bool:
    """Whether ``path`` is a ranking pool (a .npz holding ``psi``), without loading it."""
    import zipfile
    try:
        with zipfile.ZipFile(path) as z:
            return "psi.npy" in z.namelist()
    except (OSError, zipfile.BadZipFile):
        return False  # PreferenceData.load names the problem


def load_pool(path: str) -> PreferenceData | RankingData:
    """A pairwise data file (:class:`sim.data.PreferenceData`) or a ranking pool, by its keys."""
    return RankingData.load(path) if is_ranking_file(path) else PreferenceData.load(path)


def check_rankings(rankings: object, M: int, K: int) -> np.ndarray:
    """Validate (M, K) rankings: each row a permutation of 0..K-1 (best first)."""
    r = np.asarray(rankings)
    if r.shape != (M, K) or r.dtype.kind not in "iu":
        raise ValueError(f"rankings: expected an integer array of shape {(M, K)}, got "
                         f"{r.shape} of dtype {r.dtype}")
    if not np.array_equal(np.sort(r, axis=1), np.broadcast_to(np.arange(K), (M, K))):
        bad = int(np.flatnonzero(np.any(np.sort(r, axis=1) != np.arange(K), axis=1))[0])
        raise ValueError(f"rankings: row {bad} is not a permutation of 0..{K - 1}: {r[bad]}")
    return r.astype(np.int64)


# --------------------------------------------------------------------------- the model
def pl_rewards(psi: np.ndarray, b: np.ndarray, beta: float, theta: np.ndarray) -> np.ndarray:
    """Implicit rewards r_ik = beta (psi_ik^T theta - b_ik). Shape (M, K)."""
    return beta * (psi @ theta - b)


def sample_rankings(psi: np.ndarray, b: np.ndarray, beta: float, theta: np.ndarray,
                    seed: object) -> np.ndarray:
    """Draw one Plackett–Luce ranking per prompt (best first), by the Gumbel-max trick.

    Sorting r_ik + G_ik (G i.i.d. standard Gumbel) in decreasing order gives a ranking with
    exactly the PL law (Yellott 1977). Shape (M, K).
    """
    rng = as_rng(seed)
    r = pl_rewards(psi, b, beta, theta)
    return np.argsort(-(r + rng.gumbel(size=r.shape)), axis=1, kind="stable").astype(np.int64)


def ranking_log_prob(psi: np.ndarray, b: np.ndarray, beta: float, theta: np.ndarray,
                     rankings: np.ndarray) -> np.ndarray:
    """log P(tau_i | x_i; theta) for each prompt. Shape (M,)."""
    r = np.take_along_axis(pl_rewards(psi, b, beta, theta), rankings, axis=1)
    K = r.shape[1]
    # stage j: r[:, j] - logsumexp(r[:, j:]); a reversed cumulative logsumexp gives all stages
    tail = np.logaddexp.accumulate(r[:, ::-1], axis=1)[:, ::-1]
    return np.sum(r[:, :K - 1] - tail[:, :K - 1], axis=1)


def _stage_probs(r_sorted: np.ndarray) -> np.ndarray:
    """p[:, j, l] = softmax over the remaining set {l >= j} of the sorted rewards (0 for l < j).

    ``r_sorted`` (M, K) rewards in ranking order. Returns (M, K - 1, K).
    """
    M, K = r_sorted.shape
    mask = np.triu(np.ones((K - 1, K), dtype=bool))          # stage j keeps l >= j
    z = np.where(mask[None], r_sorted[:, None, :], -np.inf)
    return softmax(z, axis=2)


def pl_loss(theta: np.ndarray, psi: np.ndarray, b: np.ndarray, beta: float,
            rankings: np.ndarray, fit_ridge: float = 0.0) -> float:
    """Negative log-likelihood of the rankings plus (fit_ridge / 2) ||theta||^2 (a sum, as eq. 6)."""
    return float(-np.sum(ranking_log_prob(psi, b, beta, theta, rankings))
                 + 0.5 * fit_ridge * theta @ theta)


def pl_gradient(theta: np.ndarray, psi: np.ndarray, b: np.ndarray, beta: float,
                rankings: np.ndarray, fit_ridge: float = 0.0) -> np.ndarray:
    """beta sum_i sum_j (E_{p_ij}[psi] - psi_{i tau_j}) + fit_ridge theta. Shape (d,)."""
    ps = np.take_along_axis(psi, rankings[:, :, None], axis=1)           # (M, K, d) ranked
    r = np.take_along_axis(pl_rewards(psi, b, beta, theta), rankings, axis=1)
    p = _stage_probs(r)                                                   # (M, K-1, K)
    expected = np.einsum("mjl,mld->d", p, ps)
    winners = ps[:, :-1, :].sum(axis=(0, 1))
    return beta * (expected - winners) + fit_ridge * theta


def stage_laplacian(psi: np.ndarray, b: np.ndarray, beta: float, theta: np.ndarray,
                    rankings: np.ndarray) -> np.ndarray:
    """A_i(tau) = sum_j diag(p_j) - p_j p_j^T in the prompt's response order. Shape (M, K, K)."""
    r = np.take_along_axis(pl_rewards(psi, b, beta, theta), rankings, axis=1)
    p = _stage_probs(r)                                                   # ranked order
    diag = p.sum(axis=1)                                                  # (M, K)
    a_ranked = np.einsum("ml,lk->mlk", diag, np.eye(p.shape[2])) - np.einsum("mjl,mjk->mlk", p, p)
    # back to the response order: A[k, k'] = A_ranked[pos(k), pos(k')]
    pos = np.argsort(rankings, axis=1)
    return np.take_along_axis(np.take_along_axis(a_ranked, pos[:, :, None], axis=1),
                              pos[:, None, :], axis=2)


def pl_hessian(theta: np.ndarray, psi: np.ndarray, b: np.ndarray, beta: float,
               rankings: np.ndarray, fit_ridge: float = 0.0) -> np.ndarray:
    """beta^2 sum_i Psi_i^T A_i(tau_i) Psi_i + fit_ridge I (the observed information). (d, d)."""
    a = stage_laplacian(psi, b, beta, theta, rankings)
    h = beta**2 * np.einsum("mkd,mkl,mle->de", psi, a, psi)
    return h + fit_ridge * np.eye(psi.shape[2])


def expected_laplacian(psi: np.ndarray, b: np.ndarray, beta: float, theta: np.ndarray, *,
                       n_mc: int = 256, seed: object = None) -> np.ndarray:
    """E_tau[A_i(tau)] under P(tau | x_i; theta): exact for K <= EXACT_MAX_K, else Monte Carlo.

    The expected information of prompt i is beta^2 Psi_i^T E[A_i] Psi_i. Shape (M, K, K).
    Monte Carlo (``n_mc`` Gumbel-max rankings, ``seed`` required) is used only above
    ``EXACT_MAX_K``.
    """
    M, K, _ = psi.shape
    if K <= EXACT_MAX_K:
        perms = np.array(list(itertools.permutations(range(K))), dtype=np.int64)
        out = np.zeros((M, K, K))
        for tau in perms:
            t = np.broadcast_to(tau, (M, K))
            w = np.exp(ranking_log_prob(psi, b, beta, theta, t))
            out += w[:, None, None] * stage_laplacian(psi, b, beta, theta, t)
        return out
    if seed is None:
        raise ValueError(f"seed: K = {K} > {EXACT_MAX_K} uses a Monte Carlo expectation; "
                         "pass a seed")
    rng = as_rng(seed)
    n_mc = positive_int(n_mc, "n_mc")
    out = np.zeros((M, K, K))
    for _ in range(n_mc):
        out += stage_laplacian(psi, b, beta, theta, sample_rankings(psi, b, beta, theta, rng))
    return out / n_mc


def information_factors(psi: np.ndarray, b: np.ndarray, beta: float, theta: np.ndarray, *,
                        rankings: np.ndarray | None = None, n_mc: int = 256,
                        seed: object = None) -> np.ndarray:
    """F_i (d, K) with F_i F_i^T = the information of a ranked K-tuple at theta.

    With ``rankings`` the observed information of those rankings, otherwise the expected
    (Fisher) information. F_i = beta Psi_i^T U_i where U_i U_i^T = A_i (symmetric PSD square
    root by eigh, negative rounding clipped). Shape (M, d, K).
    """
    a = (stage_laplacian(psi, b, beta, theta, rankings) if rankings is not None
         else expected_laplacian(psi, b, beta, theta, n_mc=n_mc, seed=seed))
    lam, vec = np.linalg.eigh(a)
    u = vec * np.sqrt(np.clip(lam, 0.0, None))[:, None, :]               # (M, K, K)
    return beta * np.einsum("mkd,mkc->mdc", psi, u)


# --------------------------------------------------------------------------- the MLE
@dataclass(frozen=True)
class PLFitResult:
    """``theta`` (d,), ``converged``, ``n_iter``, ``grad_norm`` (max-abs), ``loss``."""

    theta: np.ndarray
    converged: bool
    n_iter: int
    grad_norm: float
    loss: float


def fit_pl(psi: np.ndarray, b: np.ndarray, beta: float, rankings: np.ndarray, *,
           fit_ridge: float = 1e-3, theta0: np.ndarray | None = None, tol: float = 1e-12,
           max_iter: int = 100) -> PLFitResult:
    """The ranking MLE argmin_theta NLL(theta) + (fit_ridge/2)||theta||^2, by damped Newton.

    Newton systems are solved by Cholesky (never an explicit inverse); Armijo backtracking.
    Stops when the Newton decrement^2 / 2 < tol * max(1, |loss|). Raises ConvergenceError when
    the rankings are separable and fit_ridge = 0 (the MLE does not exist).
    """
    psi = np.asarray(psi, dtype=np.float64)
    M, K, d = psi.shape
    rankings = check_rankings(rankings, M, K)
    beta = positive_scalar(beta, "beta")
    fit_ridge = positive_scalar(fit_ridge, "fit_ridge", allow_zero=True)
    theta = np.zeros(d) if theta0 is None else as_vector(theta0, "theta0", length=d).copy()
    g = np.zeros(d)
    for it in range(max_iter):
        f = pl_loss(theta, psi, b, beta, rankings, fit_ridge)
        g = pl_gradient(theta, psi, b, beta, rankings, fit_ridge)
        h = pl_hessian(theta, psi, b, beta, rankings, fit_ridge)
        h[np.diag_indices(d)] += 1e-12 * max(1.0, float(np.trace(h)) / d)
        try:
            p = -scipy.linalg.cho_solve(scipy.linalg.cho_factor(h, lower=True), g)
        except np.linalg.LinAlgError:
            raise ConvergenceError("fit_pl: the Hessian is singular (too few rankings for d "
                                   "features); set fit_ridge > 0") from None
        dec = float(-g @ p)
        if dec / 2 <= tol * max(1.0, abs(f)):
            return PLFitResult(theta, True, it, float(np.max(np.abs(g))), f)
        step = armijo_step(lambda t: pl_loss(theta + t * p, psi, b, beta, rankings, fit_ridge),
                           f, dec, "fit_pl", "psi")
        theta = theta + step * p
        if np.linalg.norm(theta) > 1e10:
            raise ConvergenceError("fit_pl: ||theta|| diverges — the rankings are separable; "
                                   "set fit_ridge > 0")
    raise ConvergenceError(f"fit_pl: no convergence in {max_iter} Newton steps "
                           f"(|grad| = {np.max(np.abs(g)):.3g}); raise max_iter or fit_ridge")


# --------------------------------------------------------------------------- environment
def ranking_env(M: int, K: int, d: int, *, beta: float = 1.0, seed: object,
                theta_norm: float = 3.0, ref_norm: float = 1.0,
                fit_ridge: float = 1e-3) -> RankingData:
    """A Gaussian log-linear ranking environment with known theta_true (the K-wise analogue
    of :func:`sim.envs.gaussian_env`).

    psi_ik ~ N(0, I_d / (2d)) (so differences psi_ik - psi_il have the pairwise env's scale,
    ||.|| about 1); theta_true = theta_norm u, theta_0 = ref_norm u' (uniform directions);
    b_ik = psi_ik^T theta_0; one PL ranking per prompt at theta_true; theta_star = PL MLE on all
    M rankings (ridge ``fit_ridge``).
    """
    M, K, d = positive_int(M, "M"), positive_int(K, "K"), positive_int(d, "d")
    if K < 2:
        raise ValueError(f"K: a ranking needs K >= 2 responses per prompt, got K={K}")
    beta = positive_scalar(beta, "beta")
    rng = as_rng(seed)
    psi = rng.standard_normal((M, K, d)) / np.sqrt(2 * d)
    u = rng.standard_normal(d)
    theta_true = theta_norm * u / np.linalg.norm(u)
    u0 = rng.standard_normal(d)
    b = psi @ (ref_norm * u0 / np.linalg.norm(u0))
    rankings = sample_rankings(psi, b, beta, theta_true, rng)
    theta_star = fit_pl(psi, b, beta, rankings, fit_ridge=fit_ridge).theta
    info = dict(kind="ranking", M=M, K=K, d=d, beta=beta, theta_norm=theta_norm,
                ref_norm=ref_norm, fit_ridge=fit_ridge)
    return RankingData(psi=psi, b=b, beta=beta, rankings=rankings, theta_star=theta_star,
                       theta_true=theta_true, info=info)


# --------------------------------------------------------------------------- designs
@dataclass(frozen=True)
class TupleDesign:
    """Greedy design over K-tuples: ``indices`` (n,) in pick order, ``logdet`` of
    gamma I + sum F_i F_i^T over the picks, ``gains`` (n,) the log det increments."""

    indices: np.ndarray
    logdet: float
    gains: np.ndarray


def greedy_tuples(F: np.ndarray, n: int, *, gamma: float = 1.0,
                  exclude: np.ndarray | None = None) -> TupleDesign:
    """Greedy D-optimal choice of n blocks: argmax_i log det(I + F_i^T H^{-1} F_i).

    ``F`` (M, d, c) information factors (rank-c blocks; c = 1 is the rank-one greedy of Alg. 2).
    The gain is computed through the Cholesky factor L of H (W_i = L^{-1} F_i, gain = log det(I
    + W_i^T W_i), matrix determinant lemma); H += F_i F_i^T after each pick (re-factored: d^3
    per pick, small next to the O(M d^2 c) scoring). Ties go to the lowest index.
    """
    F = np.asarray(F, dtype=np.float64)
    M, d, c = F.shape
    n = positive_int(n, "n")
    gamma = positive_scalar(gamma, "gamma")
    avail = np.ones(M, dtype=bool)
    if exclude is not None:
        avail[np.asarray(exclude, dtype=np.int64)] = False
    if n > int(avail.sum()):
        raise ValueError(f"n: budget {n} exceeds the {int(avail.sum())} selectable prompts")
    H = gamma * np.eye(d)
    picks, gains = [], []
    flat = F.transpose(1, 0, 2).reshape(d, M * c)
    for _ in range(n):
        L = np.linalg.cholesky(H)
        W = scipy.linalg.solve_triangular(L, flat, lower=True).reshape(d, M, c)
        G = np.einsum("dmc,dme->mce", W, W) + np.eye(c)
        _, ld = np.linalg.slogdet(G)
        ld[~avail] = -np.inf
        i = int(np.argmax(ld))
        picks.append(i)
        gains.append(float(ld[i]))
        avail[i] = False
        H = H + F[i] @ F[i].T
    _, total = np.linalg.slogdet(H)
    return TupleDesign(np.asarray(picks, dtype=np.int64), float(total), np.asarray(gains))


def tuple_logdet(F: np.ndarray, indices: np.ndarray, gamma: float) -> float:
    """log det(gamma I + sum_{i in indices} F_i F_i^T), formed explicitly (a reference)."""
    d = F.shape[1]
    H = gamma * np.eye(d) + sum((F[i] @ F[i].T for i in np.asarray(indices)), np.zeros((d, d)))
    return float(np.linalg.slogdet(H)[1])
