"""Environments: preference data with known parameters, each drawn from a seed.

Every environment kind is registered in :data:`sim.registry.ENVS` with a frozen config
dataclass (its options, defaults and help text, validated in ``__post_init__``); the CLI flags
of ``adpo env``, the sweep TOML schema and ``adpo envs`` all derive from these entries.

* ``gaussian`` — :func:`gaussian_env`, a log-linear environment with a known generating
  parameter; labels follow eq. 12, s_i ~ Bernoulli(mu(beta (phi_i^T theta_true - b_i))).
* ``digits`` — :func:`digits_env`, the paper's section 6.1 recipe on scikit-learn's handwritten
  digits (1797 images, 10 classes, 64 features), the offline stand-in for CIFAR + ResNet-50.
* ``prompts`` — :func:`prompts_env`, M prompts with K responses each and a pool of all
  K(K-1)/2 pairs per prompt, with a ``group`` prompt id per row (which pair to compare).
* ``ranking`` — :func:`ranking_kind`, a ranking pool (K responses per prompt, one
  Plackett–Luce ranking each; a :class:`sim.ranking.RankingData`, not pairs).
* ``file`` — :func:`file_env`, any ``.npz`` data file (``adpo env``, ``adpo features``, or
  written by hand with the keys of :mod:`sim.data`), optionally a random subset of its rows.
* ``llm-truth`` — :func:`truth_env`, the features of such a file (real LLM features) with labels
  redrawn from a known theta, given or fitted to the file's labels by the sec. 6.1 recipe.

Features files written by ``adpo features`` know each row's prompt (their sidecar): the file
kinds then set ``group`` (sim.data), and a runner ``holdout`` keeps each prompt on one side.

The synthetic kinds draw labels once and store them with the data, and return theta_star = the
DPO MLE on all N labelled pairs (paper eq. 5 and sec. 6.1 step 5), fitted with the same ridge
``fit_ridge`` (and ball ``radius``) that the methods later use on their subsets.

A factory is called as ``factory(seed=..., **options)`` with the validated options of its
config (:func:`make_env`); :func:`sim.testing.check_env` checks that contract for any kind.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import zipfile
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import scipy.linalg

from .data import PreferenceData
from .dpo import dpo_hessian, fit_dpo, sigmoid
from .ranking import RankingData, ranking_env
from .registry import ENVS, register_env
from .validation import (RenamedOptionsMeta, as_rng, check_beta, positive_int, positive_scalar,
                         renamed_keywords)


def _opt(default: Any = dataclasses.MISSING, help: str = "") -> Any:
    """A config field with its help text (read by the CLI and ``adpo envs``)."""
    return field(default=default, metadata={"help": help})


def _check_common(cfg: Any) -> None:
    """Validate (in place, on a frozen config) the options every synthetic kind shares."""
    object.__setattr__(cfg, "N", positive_int(cfg.N, "N"))
    object.__setattr__(cfg, "beta", check_beta(cfg.beta))
    _check_fit(cfg)


def _fit_ridge_opt(help: str = "ridge of the DPO MLE theta_star (and of later fits)") -> Any:
    """The ``fit_ridge`` option (default 1e-3) of every kind that fits theta_star (eq. 5)."""
    return _opt(1e-3, help)


def _radius_opt() -> Any:
    """The ``radius`` option (default None: no ball) of every kind that fits theta_star."""
    return _opt(None, "ball constraint ||theta|| <= radius of the fits")


def _check_fit(cfg: Any) -> None:
    """Validate (in place) the fit options ``fit_ridge`` (>= 0) and ``radius`` (None or > 0)."""
    object.__setattr__(cfg, "fit_ridge", positive_scalar(cfg.fit_ridge, "fit_ridge",
                                                         allow_zero=True))
    if cfg.radius is not None:
        object.__setattr__(cfg, "radius", positive_scalar(cfg.radius, "radius"))


@dataclass(frozen=True)
class GaussianConfig(metaclass=RenamedOptionsMeta):
    """Options of the ``gaussian`` environment (see :func:`gaussian_env`)."""

    N: int = _opt(help="number of candidate pairs")
    d: int = _opt(help="feature dimension")
    beta: float = _opt(1.0, "DPO scale beta > 0")
    theta_norm: float = _opt(3.0, "||theta_true||")
    ref_norm: float = _opt(1.0, "||theta_0|| of the log-linear reference (b_i = phi_i^T theta_0)")
    assumption2: bool = _opt(False, "enforce Assumption 2 (||phi|| <= 1, |b| <= 1, unit-ball "
                             "theta_star)")
    fit_ridge: float = _fit_ridge_opt()
    radius: float | None = _radius_opt()

    def __post_init__(self) -> None:
        _check_common(self)
        object.__setattr__(self, "d", positive_int(self.d, "d"))
        object.__setattr__(self, "theta_norm", positive_scalar(self.theta_norm, "theta_norm",
                                                               allow_zero=True))
        object.__setattr__(self, "ref_norm", positive_scalar(self.ref_norm, "ref_norm",
                                                             allow_zero=True))
        if not isinstance(self.assumption2, (bool, np.bool_)):
            raise ValueError(f"assumption2: expected true or false, got {self.assumption2!r}")
        if self.assumption2 and (self.theta_norm > 1 or self.ref_norm > 1):
            raise ValueError("theta_norm/ref_norm: Assumption 2 needs ||theta|| <= 1 and |b_i| <= 1;"
                             f" got theta_norm={self.theta_norm}, ref_norm={self.ref_norm} — pass "
                             "values <= 1 or assumption2=False")


@dataclass(frozen=True)
class DigitsConfig(metaclass=RenamedOptionsMeta):
    """Options of the ``digits`` environment (see :func:`digits_env`); d = 64 is fixed."""

    N: int = _opt(help="number of candidate pairs")
    beta: float = _opt(1.0, "DPO scale beta > 0")
    feature_scale: Literal["unit", "pixel"] = _opt(
        "unit", "unit: phi / max ||phi_i|| (Assumption 2's scale); pixel: raw differences")
    theta_bar_ridge: float = _opt(1.0, "ridge of the all-ones logistic fit theta_bar (sets the "
                                  "label noise)")
    fit_ridge: float = _fit_ridge_opt()
    radius: float | None = _radius_opt()
    positive_class: int | None = _opt(None, "the positive digit 0..9 (default: drawn from the "
                                      "seed)")

    def __post_init__(self) -> None:
        _check_common(self)
        object.__setattr__(self, "theta_bar_ridge", positive_scalar(self.theta_bar_ridge,
                                                                    "theta_bar_ridge"))
        if self.feature_scale not in ("pixel", "unit"):
            raise ValueError(f"feature_scale: must be 'pixel' or 'unit', got {self.feature_scale!r}")
        if self.positive_class is not None:
            c = positive_int(self.positive_class, "positive_class", minimum=0)
            if c > 9:
                raise ValueError(f"positive_class: must be a digit 0..9, got {c}")
            object.__setattr__(self, "positive_class", c)


def _unit(rng: np.random.Generator, d: int):
    v = rng.standard_normal(d)
    return v / np.linalg.norm(v)


@register_env("gaussian", config=GaussianConfig, tags=("synthetic", "theta_true"),
              help="Gaussian log-linear features, labels from a known theta_true (eq. 12)")
@renamed_keywords(fit_gamma="fit_ridge")
def gaussian_env(N: int, d: int, *, beta: float = 1.0, seed: Any, theta_norm: float = 3.0,
                 ref_norm: float = 1.0, assumption2: bool = False, fit_ridge: float = 1e-3,
                 radius: float | None = None) -> PreferenceData:
    """A Gaussian log-linear environment with known theta_true.

    phi_i ~ N(0, I_d / d) (so ||phi_i|| is about 1); theta_true = theta_norm * u, theta_0 =
    ref_norm * u' for independent uniform directions u, u'; the reference bias is that of a
    log-linear reference policy, b_i = phi_i^T theta_0; labels s_i ~ Ber(mu(beta(phi_i^T
    theta_true - b_i))) (eq. 12). theta_star is the DPO MLE on all N (ridge ``fit_ridge``).

    ``assumption2=True`` enforces Assumption 2: rows are shrunk to ||phi_i|| <= 1, theta_norm
    and ref_norm must be <= 1 (so |b_i| <= 1), and theta_star is fitted in the unit ball
    (``radius`` defaults to 1).

    Returns PreferenceData with phi (N, d), b (N,), s (N,), theta_true (d,), theta_star (d,).
    """
    cfg = GaussianConfig(N=N, d=d, beta=beta, theta_norm=theta_norm, ref_norm=ref_norm,
                         assumption2=assumption2, fit_ridge=fit_ridge, radius=radius)
    N, d, beta, theta_norm, ref_norm = cfg.N, cfg.d, cfg.beta, cfg.theta_norm, cfg.ref_norm
    fit_ridge, radius = cfg.fit_ridge, cfg.radius
    rng = as_rng(seed)
    if assumption2:
        radius = 1.0 if radius is None else radius
    phi = rng.standard_normal((N, d)) / np.sqrt(d)
    if assumption2:
        phi /= np.maximum(1.0, np.linalg.norm(phi, axis=1))[:, None]
    theta_true = theta_norm * _unit(rng, d)
    theta_0 = ref_norm * _unit(rng, d)
    b = phi @ theta_0
    s = (rng.random(N) < sigmoid(beta * (phi @ theta_true - b))).astype(np.int8)
    theta_star = fit_dpo(phi, b, beta, s, fit_ridge=fit_ridge, radius=radius).theta
    info = dict(kind="gaussian", N=N, d=d, beta=beta, theta_norm=theta_norm, ref_norm=ref_norm,
                assumption2=assumption2, fit_ridge=fit_ridge, radius=radius)
    return PreferenceData(phi=phi, b=b, beta=beta, s=s, theta_star=theta_star,
                          theta_true=theta_true, info=info)


@register_env("digits", config=DigitsConfig, tags=("real-features", "theta_true"),
              help="the paper's sec. 6.1 recipe on scikit-learn's digits (d = 64)")
@renamed_keywords(fit_gamma="fit_ridge")
def digits_env(N: int, *, beta: float = 1.0, seed: Any, feature_scale: Literal["unit", "pixel"] = "unit",
               theta_bar_ridge: float = 1.0, fit_ridge: float = 1e-3,
               radius: float | None = None, positive_class: int | None = None) -> PreferenceData:
    """The paper's sec. 6.1 recipe on scikit-learn's digits (d = 64).

    1. A random positive class c; phi_i = x_pos - x_neg for a random image of class c and a
       random image of another class (both drawn with replacement).
    2. theta_bar = the ridge-regularized logistic fit with every phi_i labelled 1 (without a ridge
       this fit is unbounded); Sigma_bar = its inverse Hessian (Laplace approximation).
    3. s_i ~ Ber(mu(phi_i^T theta_bar)) — no beta and no b, as in the paper.
    4. theta_0 ~ N(theta_bar, Sigma_bar); b_i = phi_i^T theta_0.
    5. theta_star = the DPO MLE on all N (ridge ``fit_ridge``, ball ``radius``).
    The labels then follow the DPO model exactly with theta_true = theta_0 + theta_bar / beta,
    which is stored as ``theta_true``.

    Choices the paper leaves open, exposed as parameters:
      feature_scale: "pixel" uses raw pixel differences in [-16, 16]; "unit" (default) divides
        all phi by max_i ||phi_i|| so that ||phi_i|| <= 1 (Assumption 2's scale for phi).
      theta_bar_ridge: the ridge of step 2 (a sum-loss ridge, as in scikit-learn with C = 1/ridge);
        it sets ||theta_bar|| and hence how noisy the labels are.
      fit_ridge, radius: the ridge / ball of the DPO fits (theta_star and every method's fit).
    """
    cfg = DigitsConfig(N=N, beta=beta, feature_scale=feature_scale,
                       theta_bar_ridge=theta_bar_ridge, fit_ridge=fit_ridge, radius=radius,
                       positive_class=positive_class)
    N, beta, theta_bar_ridge = cfg.N, cfg.beta, cfg.theta_bar_ridge
    fit_ridge, radius = cfg.fit_ridge, cfg.radius
    rng = as_rng(seed)
    x, y = _digits()
    c = int(rng.integers(10)) if cfg.positive_class is None else cfg.positive_class
    pos, neg = np.flatnonzero(y == c), np.flatnonzero(y != c)
    phi = x[rng.choice(pos, N)] - x[rng.choice(neg, N)]
    if feature_scale == "unit":
        phi = phi / np.linalg.norm(phi, axis=1).max()
    d = phi.shape[1]
    r = recipe_labels(phi, np.ones(N, dtype=np.int8), beta, rng, theta_bar_ridge=theta_bar_ridge)
    theta_star = fit_dpo(phi, r.b, beta, r.s, fit_ridge=fit_ridge, radius=radius).theta
    info = dict(kind="digits", N=N, d=d, beta=beta, positive_class=c, feature_scale=feature_scale,
                theta_bar_ridge=theta_bar_ridge, fit_ridge=fit_ridge, radius=radius,
                positive_label_rate=float(r.s.mean()),
                theta_bar_norm=float(np.linalg.norm(r.theta_bar)))
    return PreferenceData(phi=phi, b=r.b, beta=beta, s=r.s, theta_star=theta_star,
                          theta_true=r.theta_true, info=info)


@dataclass(frozen=True)
class RecipeDraw:
    """Steps 2-4 of the paper's sec. 6.1 recipe (:func:`recipe_labels`); shapes (N,) or (d,)."""

    s: np.ndarray            # labels s_i ~ Ber(mu(phi_i^T theta_bar)), int8 (N,)
    b: np.ndarray            # b_i = phi_i^T theta_0 (N,)
    theta_bar: np.ndarray    # the ridge logistic fit of step 2 (d,)
    theta_0: np.ndarray      # the reference policy, theta_0 ~ N(theta_bar, Sigma_bar) (d,)
    theta_true: np.ndarray   # theta_0 + theta_bar / beta: the generating DPO parameter (d,)


def recipe_labels(phi: np.ndarray, y: np.ndarray, beta: float, rng: np.random.Generator, *,
                  theta_bar_ridge: float) -> RecipeDraw:
    """Steps 2-4 of the paper's sec. 6.1 recipe on feature differences ``phi`` (N, d).

    2. theta_bar = the ridge-regularized logistic fit of the labels ``y`` (N,) on phi (no beta,
       no b; the paper labels every phi_i 1, ``y`` = ones, and needs the ridge, since that fit is
       otherwise unbounded); Sigma_bar = its inverse Hessian (Laplace approximation).
    3. s_i ~ Ber(mu(phi_i^T theta_bar)).
    4. theta_0 ~ N(theta_bar, Sigma_bar); b_i = phi_i^T theta_0.
    Then beta (phi_i^T theta - b_i) = phi_i^T theta_bar exactly at theta = theta_0 + theta_bar /
    beta: the labels follow the DPO model (eq. 12) with that theta_true. Draws from ``rng``: N
    uniforms, then d normals.
    """
    N, d = phi.shape
    zeros = np.zeros(N)
    theta_bar = fit_dpo(phi, zeros, 1.0, y, fit_ridge=theta_bar_ridge).theta
    # Laplace: Sigma_bar = H^{-1} with H = LL^T, so theta_bar + L^{-T} z has covariance H^{-1}.
    h = dpo_hessian(theta_bar, phi, zeros, 1.0, ridge=theta_bar_ridge)
    chol = scipy.linalg.cholesky(h, lower=True)
    s = (rng.random(N) < sigmoid(phi @ theta_bar)).astype(np.int8)
    theta_0 = theta_bar + scipy.linalg.solve_triangular(chol.T, rng.standard_normal(d), lower=False)
    return RecipeDraw(s=s, b=phi @ theta_0, theta_bar=theta_bar, theta_0=theta_0,
                      theta_true=theta_0 + theta_bar / beta)


@functools.lru_cache(maxsize=1)
def _digits():
    """scikit-learn's bundled digits (1797 x 64, pixel values 0..16), read once per process."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x.setflags(write=False)
    return x, y


# ---------------------------------------------------------------------------- prompts
@dataclass(frozen=True)
class PromptsConfig:
    """Options of the ``prompts`` environment (see :func:`prompts_env`)."""

    M: int = _opt(help="number of prompts")
    K: int = _opt(4, "responses per prompt (K >= 2); the pool holds all K(K-1)/2 pairs of each")
    d: int = _opt(8, "feature dimension")
    beta: float = _opt(1.0, "DPO scale beta > 0")
    theta_norm: float = _opt(3.0, "||theta_true||")
    ref_norm: float = _opt(1.0, "||theta_0|| of the log-linear reference policy")
    fit_ridge: float = _fit_ridge_opt()
    radius: float | None = _radius_opt()

    def __post_init__(self) -> None:
        object.__setattr__(self, "M", positive_int(self.M, "M"))
        object.__setattr__(self, "K", positive_int(self.K, "K"))
        if self.K < 2:
            raise ValueError(f"K: a pair needs K >= 2 responses per prompt, got K={self.K}")
        object.__setattr__(self, "d", positive_int(self.d, "d"))
        object.__setattr__(self, "beta", check_beta(self.beta))
        for key in ("theta_norm", "ref_norm"):
            object.__setattr__(self, key, positive_scalar(getattr(self, key), key,
                                                          allow_zero=True))
        _check_fit(self)

    @property
    def N(self) -> int:  # noqa: N802 (the paper's symbol)
        """Rows of the pool: M K (K - 1) / 2."""
        return self.M * self.K * (self.K - 1) // 2


def prompt_pairs(M: int, K: int) -> np.ndarray:
    """The (prompt, i, j) of every row of a ``prompts`` pool, (M K(K-1)/2, 3) int64: prompt g's
    pairs i < j in lexicographic order, prompt after prompt."""
    i, j = np.triu_indices(K, k=1)
    g = np.repeat(np.arange(M), i.size)
    return np.stack([g, np.tile(i, M), np.tile(j, M)], axis=1).astype(np.int64)


@register_env("prompts", config=PromptsConfig, tags=("synthetic", "theta_true", "groups"),
              help="M prompts x K responses (log-linear features), a pool of all K(K-1)/2 pairs "
                   "per prompt with a 'group' prompt id (which pair to compare)")
def prompts_env(M: int, K: int = 4, d: int = 8, *, beta: float = 1.0, seed: Any,
                theta_norm: float = 3.0, ref_norm: float = 1.0, fit_ridge: float = 1e-3,
                radius: float | None = None) -> PreferenceData:
    """Which pair to compare: every pair of K responses of M prompts, as a pairwise pool.

    The responses follow the ranking environment's feature model
    (:func:`sim.ranking.ranking_env`, same seed stream): psi_gk ~ N(0, I_d / (2d)) for
    response k of prompt g (so pair differences have the pairwise envs' scale), a log-linear
    reference with b_gk = psi_gk^T theta_0, and theta_true with ||theta_true|| = theta_norm.
    Row r = (g, i, j), i < j (:func:`prompt_pairs` gives the table), has

        phi_r = psi_gi - psi_gj   (d,),      b_r = b_gi - b_gj,      group_r = g,

    and one Bradley-Terry label s_r ~ Bernoulli(mu(beta (phi_r^T theta_true - b_r))) (eq. 12,
    what DPO's log-linear model implies for the pair; labels of different pairs are independent
    draws). theta_star = the DPO MLE on all N = M K(K-1)/2 labels (eq. 5; ridge ``fit_ridge``,
    ball ``radius``). Every pairwise selector runs on it unchanged; ``max_per_prompt`` (a
    selector option) limits the picks per prompt through ``group``. Peer rule and analysis:
    NS-DPO; "Which Pairs to Compare for LLM Post-Training?" (arXiv 2606.19607).

    Returns PreferenceData with phi (N, d), b (N,), s (N,), group (N,), theta_true (d,),
    theta_star (d,).
    """
    from .ranking import ranking_env

    cfg = PromptsConfig(M=M, K=K, d=d, beta=beta, theta_norm=theta_norm, ref_norm=ref_norm,
                        fit_ridge=fit_ridge, radius=radius)
    rng = as_rng(seed)
    rk = ranking_env(cfg.M, cfg.K, cfg.d, beta=cfg.beta, seed=rng, theta_norm=cfg.theta_norm,
                     ref_norm=cfg.ref_norm, fit_ridge=max(cfg.fit_ridge, 1e-3))
    rows = prompt_pairs(cfg.M, cfg.K)
    g, i, j = rows.T
    phi = rk.psi[g, i] - rk.psi[g, j]
    b = rk.b[g, i] - rk.b[g, j]
    s = (rng.random(phi.shape[0]) < sigmoid(cfg.beta * (phi @ rk.theta_true - b))).astype(np.int8)
    theta_star = fit_dpo(phi, b, cfg.beta, s, fit_ridge=cfg.fit_ridge, radius=cfg.radius).theta
    info = dict(kind="prompts", M=cfg.M, K=cfg.K, N=cfg.N, d=cfg.d, beta=cfg.beta,
                theta_norm=cfg.theta_norm, ref_norm=cfg.ref_norm, fit_ridge=cfg.fit_ridge,
                radius=cfg.radius)
    return PreferenceData(phi=phi, b=b, beta=cfg.beta, s=s, theta_star=theta_star,
                          theta_true=rk.theta_true, group=g, info=info)


# ---------------------------------------------------------------------------- file
def _rows_opt() -> Any:
    """The ``rows`` option of the kinds that read a data file (checked by ``_FileOptions``)."""
    return _opt(None, "a random subset of this many rows, drawn from the seed (default: every "
                "row, in file order)")


def _scale_opt(default: str) -> Any:
    """The ``scale`` option of the kinds that read a data file, with the kind's ``default``."""
    return _opt(default, "divide phi by one scalar: its largest row norm (unit: Assumption 2's "
                "||phi|| <= 1, as the digits recipe), its RMS row norm (rms), or not at all (none)")


class _FileOptions:
    """What the kinds that read a data file share: ``rows``, ``scale``, ``fit_ridge`` and
    ``radius`` checked alike, and ``N`` from the file's header."""

    rows: int | None
    scale: str
    fit_ridge: float
    radius: float | None

    @property
    def source(self) -> str:
        """The data file (or pool folder) read."""
        raise NotImplementedError

    def _check_file_options(self) -> None:
        if self.rows is not None:
            object.__setattr__(self, "rows", positive_int(self.rows, "rows"))
            if self.rows > self.N_file:
                raise ValueError(f"rows: {self.rows} exceeds the file's {self.N_file} rows")
        if self.scale not in ("none", "rms", "unit"):
            raise ValueError(f"scale: must be 'none', 'rms' or 'unit', got {self.scale!r}")
        _check_fit(self)

    @property
    def N_file(self) -> int:  # noqa: N802 (the paper's symbol)
        """Rows in the file (from the .npz header of ``phi`` or the pool folder's header,
        without loading it)."""
        if os.path.isdir(self.source):
            from .store import open_pool
            return open_pool(self.source).N
        return npz_rows(self.source)

    @property
    def N(self) -> int:  # noqa: N802
        """Rows of the environment: ``rows`` or every row of the file."""
        return self.N_file if self.rows is None else self.rows


@dataclass(frozen=True)
class FileConfig(_FileOptions, metaclass=RenamedOptionsMeta):
    """Options of the ``file`` environment (see :func:`file_env`)."""

    path: str = _opt(help=".npz data file (adpo env, adpo features, or the keys of sim.data); "
                     "relative paths are taken from the working directory")
    rows: int | None = _rows_opt()
    scale: Literal["none", "rms", "unit"] = _scale_opt("none")
    fit_ridge: float = _fit_ridge_opt("ridge of theta_star when it is fitted here (and of later "
                                      "fits)")
    radius: float | None = _radius_opt()

    def __post_init__(self) -> None:
        if not isinstance(self.path, (str, os.PathLike)) or not str(self.path):
            raise ValueError(f"path: expected the path of a .npz file, got {self.path!r}")
        object.__setattr__(self, "path", os.fspath(self.path))
        if not self.path.endswith(".npz"):
            raise ValueError(f"path: data files end in .npz, got {self.path!r}")
        if not os.path.isfile(self.path):
            raise ValueError(f"path: {self.path!r}: no such file; write one with `adpo env` or "
                             "`adpo features`")
        self._check_file_options()

    @property
    def source(self) -> str:
        return self.path


def npz_rows(path: str) -> int:
    """The number of rows of ``phi`` in a .npz file, from its array header (no full read)."""
    try:
        with zipfile.ZipFile(path) as z, z.open("phi.npy") as f:
            major, _ = np.lib.format.read_magic(f)
            read = (np.lib.format.read_array_header_1_0 if major == 1
                    else np.lib.format.read_array_header_2_0)
            shape = read(f)[0]
    except KeyError:
        raise ValueError(f"path: {path!r} has no 'phi' array; see `adpo --help` for the keys")
    except (OSError, zipfile.BadZipFile, ValueError) as exc:
        raise ValueError(f"path: {path!r}: not a readable .npz file ({exc})") from None
    if len(shape) != 2:
        raise ValueError(f"path: {path!r}: phi must be 2-D (N x d), got shape {shape}")
    return int(shape[0])


@functools.lru_cache(maxsize=4)
def _load_file(path: str, mtime_ns: int, size: int) -> PreferenceData:
    """One read per process and file version (sweeps build the same file env per seed)."""
    return PreferenceData.load(path)


@register_env("file", config=FileConfig, tags=("data-file",),
              help="a .npz data file (adpo env / adpo features), optionally a random row subset")
@renamed_keywords(fit_gamma="fit_ridge")
def file_env(path: str, *, seed: Any, rows: int | None = None, scale: Literal["none", "rms", "unit"] = "none",
             fit_ridge: float = 1e-3, radius: float | None = None) -> PreferenceData:
    """The preference data stored in ``path``, as an environment.

    ``rows``: a random subset of that many rows (drawn from ``seed``, kept in increasing file
    order); without it every row, and ``seed`` is unused. ``scale``: phi divided by one scalar,
    its RMS row norm ("rms") or largest row norm ("unit"); b is unchanged. ``theta_star`` is the
    file's when it has one and the rows and scale are the file's; otherwise, when the file has
    labels, the DPO MLE on the environment's rows (eq. 5; ridge ``fit_ridge``, ball ``radius``),
    as for the synthetic kinds. ``theta_true`` is kept only for the file's own rows and scale.

    Returns PreferenceData with phi (N, d), b (N,) and whatever of s, theta_star, theta_true
    the file holds (see above); ``info`` records the options and the scale divisor.
    """
    cfg = FileConfig(path=path, rows=rows, scale=scale, fit_ridge=fit_ridge, radius=radius)
    data, divisor = _read_rows(cfg.path, cfg.rows, cfg.scale, as_rng(seed))
    changed = (cfg.rows is not None and cfg.rows < cfg.N_file) or divisor != 1.0
    theta_star = data.theta_star
    if changed or theta_star is None:
        theta_star = None if data.s is None else fit_dpo(
            data.phi, data.b, data.beta, data.s, fit_ridge=cfg.fit_ridge, radius=cfg.radius).theta
    info = dict(kind="file", path=cfg.path, N=data.N, d=data.d, beta=data.beta, rows=cfg.rows,
                scale=cfg.scale, scale_divisor=divisor, fit_ridge=cfg.fit_ridge,
                radius=cfg.radius, **_groups_info(data))
    return data.with_(theta_star=theta_star, theta_true=None if changed else data.theta_true,
                      info=info)


def _read_rows(path: str, rows: int | None, scale: str,
               rng: np.random.Generator) -> tuple[PreferenceData, float]:
    """(data, scale divisor) of a data file: its ``rows`` drawn from ``rng`` (kept in file order;
    every row without), phi divided by its RMS or largest row norm per ``scale`` ("none": divisor
    1), and each row's prompt ``group`` from the file, else from an ``adpo features`` sidecar
    (:func:`sim.textsplit.feature_groups`; none for a hand-written file)."""
    from .textsplit import feature_groups

    st = os.stat(path)
    data = _load_file(os.path.abspath(path), st.st_mtime_ns, st.st_size)
    if data.group is None and not os.path.isdir(path):
        groups = feature_groups(path)
        data = data if groups is None else data.with_(group=np.asarray(groups, dtype=np.int64))
    if rows is not None:
        data = data.subset(np.sort(rng.choice(data.N, size=rows, replace=False)))
    divisor = 1.0
    if scale != "none":
        norms = np.linalg.norm(data.phi, axis=1)
        divisor = float(np.sqrt(np.mean(norms ** 2)) if scale == "rms" else norms.max())
        if not divisor > 0:
            raise ValueError(f"scale: phi of {path!r} is all zeros; use scale = 'none'")
        data = data.with_(phi=data.phi / divisor)
    return data, divisor


def _groups_info(data: PreferenceData) -> dict:
    """``info`` entry ``n_groups``: the number of distinct prompts (when rows have them)."""
    return {} if data.group is None else {"n_groups": int(np.unique(data.group).size)}


# ---------------------------------------------------------------------------- llm-truth
@dataclass(frozen=True)
class TruthConfig(_FileOptions, metaclass=RenamedOptionsMeta):
    """Options of the ``llm-truth`` environment (see :func:`truth_env`)."""

    features: str = _opt(help=".npz data file with real features (adpo features), or a pool "
                         "folder; its phi (and b, beta) are kept, its labels only fit theta")
    theta: str | None = _opt(None, ".npy file with a known theta (d,), in the units of the "
                             "scaled phi; default: fitted to the file's labels (see reference)")
    reference: Literal["recipe", "file"] | None = _opt(
        None, "recipe (default without theta): sec. 6.1 steps 2-4 with the file's labels, "
        "b_i = phi_i^T theta_0; file (default with theta): the file's b (the real pi_0 "
        "log-ratios), theta = the DPO MLE of the file's labels")
    rows: int | None = _rows_opt()
    scale: Literal["none", "rms", "unit"] = _scale_opt("unit")
    beta: float | None = _opt(None, "DPO scale beta > 0 (default: the file's)")
    theta_bar_ridge: float = _opt(1.0, "ridge of the fit of theta to the file's labels (sets "
                                  "||theta|| and hence the label noise)")
    fit_ridge: float = _fit_ridge_opt()
    radius: float | None = _radius_opt()

    def __post_init__(self) -> None:
        for key, suffix in (("features", ".npz"), ("theta", ".npy")):
            val = getattr(self, key)
            if val is None and key == "theta":
                continue
            if not isinstance(val, (str, os.PathLike)) or not str(val):
                raise ValueError(f"{key}: expected the path of a {suffix} file, got {val!r}")
            val = os.fspath(val)
            object.__setattr__(self, key, val)
            if key == "features" and os.path.isdir(val):
                continue
            if not val.endswith(suffix):
                raise ValueError(f"{key}: expected a {suffix} file, got {val!r}")
            if not os.path.isfile(val):
                raise ValueError(f"{key}: {val!r}: no such file")
        if self.reference not in (None, "recipe", "file"):
            raise ValueError(f"reference: must be 'recipe' or 'file', got {self.reference!r}")
        if self.theta is not None and self.reference == "recipe":
            raise ValueError("reference: 'recipe' draws theta from the file's labels; with a "
                             "given theta the reference is the file's b (drop reference)")
        self._check_file_options()
        if self.beta is not None:
            object.__setattr__(self, "beta", check_beta(self.beta))
        object.__setattr__(self, "theta_bar_ridge", positive_scalar(
            self.theta_bar_ridge, "theta_bar_ridge"))

    @property
    def source(self) -> str:
        return self.features


@register_env("llm-truth", config=TruthConfig, tags=("real-features", "theta_true"),
              help="real (LLM) features of a data file, labels redrawn from a known theta "
                   "(given, or fitted to the file's labels by the sec. 6.1 recipe)")
@renamed_keywords(fit_gamma="fit_ridge")
def truth_env(features: str, *, seed: Any, theta: str | None = None,
              reference: Literal["recipe", "file"] | None = None, rows: int | None = None,
              scale: Literal["none", "rms", "unit"] = "unit", beta: float | None = None,
              theta_bar_ridge: float = 1.0, fit_ridge: float = 1e-3,
              radius: float | None = None) -> PreferenceData:
    """Real feature geometry with a known generating theta: the logit errors of sec. 6.1 (max
    and mean |phi_i^T(theta_hat - theta)|) become measurable on real-LLM features.

    phi (N, d) are the file's (``rows`` of them drawn from ``seed``, kept in file order), divided
    by one scalar per ``scale`` (default "unit": ||phi_i|| <= 1, as the digits recipe). Then,
    with ``rng = seed``'s generator after the row draw:

    * ``theta`` given: theta_true = it, b = the file's; s_i ~ Ber(mu(beta (phi_i^T theta_true -
      b_i))) (eq. 12).
    * ``reference="recipe"`` (default without theta): the paper's sec. 6.1 steps 2-4
      (:func:`recipe_labels`) with the file's real labels in place of the all-ones labels of
      step 2 (the paper orients phi_i = positive - negative and labels all 1; a real file orients
      its rows at random and stores s, the same information): theta_bar is the ridge logistic
      fit of the real labels (``theta_bar_ridge``), s_i ~ Ber(mu(phi_i^T theta_bar)),
      theta_0 ~ N(theta_bar, Sigma_bar), b_i = phi_i^T theta_0, theta_true = theta_0 +
      theta_bar / beta (scaled by 1/beta as the recipe implies).
    * ``reference="file"``: the file's b (the real reference log-ratios), theta_true = the DPO
      MLE (eq. 5) of the file's real labels with that b and beta (ridge ``theta_bar_ridge``);
      s_i ~ Ber(mu(beta (phi_i^T theta_true - b_i))).

    theta_star is the DPO MLE on all N drawn labels (step 5; ridge ``fit_ridge``, ball
    ``radius``). ``info`` records the options, ``real_label_agreement`` (share of drawn labels
    equal to the file's); ``group`` holds the rows' prompts when the file is an ``adpo features``
    output with its sidecar (held-out splits are then disjoint by prompt).

    Returns PreferenceData with phi (N, d), b (N,), s (N,), theta_star (d,), theta_true (d,)
    and group (N,) or None.
    """
    cfg = TruthConfig(features=features, theta=theta, reference=reference, rows=rows,
                      scale=scale, beta=beta, theta_bar_ridge=theta_bar_ridge,
                      fit_ridge=fit_ridge, radius=radius)
    rng = as_rng(seed)
    data, divisor = _read_rows(cfg.features, cfg.rows, cfg.scale, rng)
    beta = data.beta if cfg.beta is None else cfg.beta
    phi, b = data.phi, data.b
    mode = cfg.reference or ("recipe" if cfg.theta is None else "file")
    real = np.empty(0, dtype=np.int8)  # the file's labels, which theta is fitted to
    if cfg.theta is None:
        if data.s is None:
            raise ValueError(f"features: {cfg.features!r} has no labels s to fit theta to; pass "
                             "theta (a .npy of shape (d,))")
        real = data.s
    if mode == "recipe":  # (a given theta with the recipe is refused by the config)
        r = recipe_labels(phi, real, beta, rng, theta_bar_ridge=cfg.theta_bar_ridge)
        s, b, theta_true = r.s, r.b, r.theta_true
    else:
        theta_true = _read_theta(cfg.theta, data.d) if cfg.theta is not None else fit_dpo(
            phi, b, beta, real, fit_ridge=cfg.theta_bar_ridge).theta
        s = (rng.random(data.N) < sigmoid(beta * (phi @ theta_true - b))).astype(np.int8)
    theta_star = fit_dpo(phi, b, beta, s, fit_ridge=cfg.fit_ridge, radius=cfg.radius).theta
    info = dict(kind="llm-truth", features=cfg.features, N=data.N, d=data.d, beta=beta,
                theta=cfg.theta, reference=mode, rows=cfg.rows, scale=cfg.scale,
                scale_divisor=divisor, theta_bar_ridge=cfg.theta_bar_ridge,
                fit_ridge=cfg.fit_ridge, radius=cfg.radius, label_mean=float(s.mean()),
                theta_true_norm=float(np.linalg.norm(theta_true)),
                real_label_agreement=None if data.s is None else float(np.mean(s == data.s)),
                **_groups_info(data))
    return PreferenceData(phi=phi, b=b, beta=beta, s=s, theta_star=theta_star,
                          theta_true=theta_true, group=data.group, info=info)


def _read_theta(path: str, d: int) -> np.ndarray:
    """A known theta (d,) from a .npy file (no pickles), finite, of the data's dimension."""
    try:
        theta = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise ValueError(f"theta: {path!r}: not a readable .npy array ({exc})") from None
    if theta.shape != (d,) or theta.dtype.kind not in "iuf":
        raise ValueError(f"theta: {path!r} must hold a real vector of shape ({d},) (the "
                         f"features' d), got {theta.dtype} {theta.shape}")
    if not np.all(np.isfinite(theta)):
        raise ValueError(f"theta: {path!r} holds NaN or infinite values")
    return theta.astype(np.float64)

# ---------------------------------------------------------------------------- rankings
@dataclass(frozen=True)
class RankingEnvConfig(metaclass=RenamedOptionsMeta):
    """Options of the ``ranking`` environment (see :func:`ranking_env`)."""

    M: int = field(metadata={"help": "number of prompts (ranking pool)"})
    K: int = field(default=4, metadata={"help": "responses per prompt, ranked (K >= 2)"})
    d: int = field(default=8, metadata={"help": "feature dimension"})
    beta: float = field(default=1.0, metadata={"help": "DPO scale beta > 0"})
    theta_norm: float = field(default=3.0, metadata={"help": "||theta_true||"})
    ref_norm: float = field(default=1.0, metadata={"help": "||theta_0|| of the reference"})
    fit_ridge: float = field(default=1e-3, metadata={"help": "ridge of the PL MLE theta_star"})

    def __post_init__(self) -> None:
        object.__setattr__(self, "M", positive_int(self.M, "M"))
        object.__setattr__(self, "K", positive_int(self.K, "K", minimum=2))
        object.__setattr__(self, "d", positive_int(self.d, "d"))
        object.__setattr__(self, "beta", check_beta(self.beta))
        for key in ("theta_norm", "ref_norm", "fit_ridge"):
            object.__setattr__(self, key, positive_scalar(getattr(self, key), key,
                                                          allow_zero=True))

    @property
    def N(self) -> int:
        """What a sweep's budgets count on a ranking pool: its M prompts."""
        return self.M


@register_env("ranking", config=RankingEnvConfig, tags=("synthetic", "theta_true", "ranking"),
              help="a ranking pool: N prompts with K responses each, one Plackett-Luce ranking "
                   "per prompt from a known theta_true (writes psi, rankings; sim.ranking)")
def ranking_kind(M: int, K: int = 4, d: int = 8, *, seed: Any, beta: float = 1.0,
                 theta_norm: float = 3.0, ref_norm: float = 1.0,
                 fit_ridge: float = 1e-3) -> RankingData:
    """:func:`sim.ranking.ranking_env` under the registry's option names."""
    cfg = RankingEnvConfig(M=M, K=K, d=d, beta=beta, theta_norm=theta_norm, ref_norm=ref_norm,
                           fit_ridge=fit_ridge)
    return ranking_env(cfg.M, cfg.K, cfg.d, beta=cfg.beta, seed=seed,
                       theta_norm=cfg.theta_norm, ref_norm=cfg.ref_norm,
                       fit_ridge=cfg.fit_ridge)


# ---------------------------------------------------------------------------- by name
def make_env(kind: str, *, seed: Any, **options: Any) -> PreferenceData:
    """The environment ``kind`` of :data:`sim.registry.ENVS`, drawn from ``seed``.

    ``options`` are validated by the kind's config dataclass first (unknown names are refused
    with the list of valid ones), then passed to its factory as keywords, with ``seed``.
    """
    try:
        entry = ENVS.get(kind)
    except ValueError as exc:
        raise ValueError(f"kind: {str(exc).split(': ', 1)[-1]}") from None
    cfg = entry.make_config(options)
    return entry.factory(seed=seed, **config_values(cfg))


def config_values(cfg: Any) -> dict:
    """The fields of a config dataclass instance as a dict (``{}`` for None), unconverted."""
    if cfg is None:
        return {}
    return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}
