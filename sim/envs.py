"""Environments: preference data with known parameters, each drawn from a seed.

* :func:`gaussian_env` — a log-linear environment with a known generating parameter; labels
  follow eq. 12, s_i ~ Bernoulli(mu(beta (phi_i^T theta_true - b_i))).
* :func:`digits_env` — the paper's section 6.1 recipe on scikit-learn's handwritten digits
  (1797 images, 10 classes, 64 features), the offline stand-in for CIFAR + ResNet-50.

Both draw labels once and store them with the data, and both return theta_star = the DPO MLE
on all N labelled pairs (paper eq. 5 and sec. 6.1 step 5), fitted with the same ridge
``fit_gamma`` (and ball ``radius``) that the methods later use on their subsets.
"""

from __future__ import annotations

import functools

import numpy as np
import scipy.linalg

from .data import PreferenceData
from .dpo import fit_dpo, sigmoid, dpo_hessian
from .validation import as_rng, positive_int, positive_scalar

ENV_KINDS = ("gaussian", "digits")


def _unit(rng, d):
    v = rng.standard_normal(d)
    return v / np.linalg.norm(v)


def gaussian_env(N: int, d: int, *, beta: float = 1.0, seed, theta_norm: float = 3.0,
                 ref_norm: float = 1.0, assumption2: bool = False, fit_gamma: float = 1e-3,
                 radius: float | None = None) -> PreferenceData:
    """A Gaussian log-linear environment with known theta_true.

    phi_i ~ N(0, I_d / d) (so ||phi_i|| is about 1); theta_true = theta_norm * u, theta_0 =
    ref_norm * u' for independent uniform directions u, u'; the reference bias is that of a
    log-linear reference policy, b_i = phi_i^T theta_0; labels s_i ~ Ber(mu(beta(phi_i^T
    theta_true - b_i))) (eq. 12). theta_star is the DPO MLE on all N (ridge ``fit_gamma``).

    ``assumption2=True`` enforces Assumption 2: rows are shrunk to ||phi_i|| <= 1, theta_norm
    and ref_norm must be <= 1 (so |b_i| <= 1), and theta_star is fitted in the unit ball
    (``radius`` defaults to 1).

    Returns PreferenceData with phi (N, d), b (N,), s (N,), theta_true (d,), theta_star (d,).
    """
    N, d = positive_int(N, "N"), positive_int(d, "d")
    beta = positive_scalar(beta, "beta")
    theta_norm = positive_scalar(theta_norm, "theta_norm", allow_zero=True)
    ref_norm = positive_scalar(ref_norm, "ref_norm", allow_zero=True)
    rng = as_rng(seed)
    if assumption2:
        if theta_norm > 1 or ref_norm > 1:
            raise ValueError("theta_norm/ref_norm: Assumption 2 needs ||theta|| <= 1 and |b_i| <= 1;"
                             f" got theta_norm={theta_norm}, ref_norm={ref_norm} — pass values <= 1"
                             " or assumption2=False")
        radius = 1.0 if radius is None else radius
    phi = rng.standard_normal((N, d)) / np.sqrt(d)
    if assumption2:
        phi /= np.maximum(1.0, np.linalg.norm(phi, axis=1))[:, None]
    theta_true = theta_norm * _unit(rng, d)
    theta_0 = ref_norm * _unit(rng, d)
    b = phi @ theta_0
    s = (rng.random(N) < sigmoid(beta * (phi @ theta_true - b))).astype(np.int8)
    theta_star = fit_dpo(phi, b, beta, s, gamma=fit_gamma, radius=radius).theta
    info = dict(kind="gaussian", N=N, d=d, beta=beta, theta_norm=theta_norm, ref_norm=ref_norm,
                assumption2=assumption2, fit_gamma=fit_gamma, radius=radius)
    return PreferenceData(phi=phi, b=b, beta=beta, s=s, theta_star=theta_star,
                          theta_true=theta_true, info=info)


def digits_env(N: int, *, beta: float = 1.0, seed, feature_scale: str = "unit",
               theta_bar_ridge: float = 1.0, fit_gamma: float = 1e-3,
               radius: float | None = None, positive_class: int | None = None) -> PreferenceData:
    """The paper's sec. 6.1 recipe on scikit-learn's digits (d = 64).

    1. A random positive class c; phi_i = x_pos - x_neg for a random image of class c and a
       random image of another class (both drawn with replacement).
    2. theta_bar = the ridge-regularized logistic fit with every phi_i labelled 1 (without a ridge
       this fit is unbounded); Sigma_bar = its inverse Hessian (Laplace approximation).
    3. s_i ~ Ber(mu(phi_i^T theta_bar)) — no beta and no b, as in the paper.
    4. theta_0 ~ N(theta_bar, Sigma_bar); b_i = phi_i^T theta_0.
    5. theta_star = the DPO MLE on all N (ridge ``fit_gamma``, ball ``radius``).
    The labels then follow the DPO model exactly with theta_true = theta_0 + theta_bar / beta,
    which is stored as ``theta_true``.

    Choices the paper leaves open, exposed as parameters:
      feature_scale: "pixel" uses raw pixel differences in [-16, 16]; "unit" (default) divides
        all phi by max_i ||phi_i|| so that ||phi_i|| <= 1 (Assumption 2's scale for phi).
      theta_bar_ridge: the ridge of step 2 (a sum-loss ridge, as in scikit-learn with C = 1/ridge);
        it sets ||theta_bar|| and hence how noisy the labels are.
      fit_gamma, radius: the ridge / ball of the DPO fits (theta_star and every method's fit).
    """
    N = positive_int(N, "N")
    beta = positive_scalar(beta, "beta")
    theta_bar_ridge = positive_scalar(theta_bar_ridge, "theta_bar_ridge")
    if feature_scale not in ("pixel", "unit"):
        raise ValueError(f"feature_scale: must be 'pixel' or 'unit', got {feature_scale!r}")
    rng = as_rng(seed)
    x, y = _digits()
    c = int(rng.integers(10)) if positive_class is None else int(positive_class)
    if not 0 <= c <= 9:
        raise ValueError(f"positive_class: must be a digit 0..9, got {positive_class}")
    pos, neg = np.flatnonzero(y == c), np.flatnonzero(y != c)
    phi = x[rng.choice(pos, N)] - x[rng.choice(neg, N)]
    if feature_scale == "unit":
        phi = phi / np.linalg.norm(phi, axis=1).max()
    d = phi.shape[1]
    ones = np.ones(N, dtype=np.int8)
    theta_bar = fit_dpo(phi, np.zeros(N), 1.0, ones, gamma=theta_bar_ridge).theta
    # Laplace: Sigma_bar = H^{-1} with H = LL^T, so theta_bar + L^{-T} z has covariance H^{-1}.
    h = dpo_hessian(theta_bar, phi, np.zeros(N), 1.0, gamma=theta_bar_ridge)
    chol = scipy.linalg.cholesky(h, lower=True)
    s = (rng.random(N) < sigmoid(phi @ theta_bar)).astype(np.int8)
    theta_0 = theta_bar + scipy.linalg.solve_triangular(chol.T, rng.standard_normal(d), lower=False)
    b = phi @ theta_0
    theta_star = fit_dpo(phi, b, beta, s, gamma=fit_gamma, radius=radius).theta
    info = dict(kind="digits", N=N, d=d, beta=beta, positive_class=c, feature_scale=feature_scale,
                theta_bar_ridge=theta_bar_ridge, fit_gamma=fit_gamma, radius=radius,
                positive_label_rate=float(s.mean()), theta_bar_norm=float(np.linalg.norm(theta_bar)))
    return PreferenceData(phi=phi, b=b, beta=beta, s=s, theta_star=theta_star,
                          theta_true=theta_0 + theta_bar / beta, info=info)


@functools.lru_cache(maxsize=1)
def _digits():
    """scikit-learn's bundled digits (1797 x 64, pixel values 0..16), read once per process."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x.setflags(write=False)
    return x, y


def make_env(kind: str, **kwargs) -> PreferenceData:
    """Dispatch by name: ``make_env("gaussian", N=..., d=..., seed=...)``."""
    if kind == "gaussian":
        return gaussian_env(**kwargs)
    if kind == "digits":
        kwargs.pop("d", None) if kwargs.get("d") in (None, 64) else _bad_d(kwargs["d"])
        return digits_env(**kwargs)
    raise ValueError(f"kind: unknown environment {kind!r}; choose one of {ENV_KINDS}")


def _bad_d(d):
    raise ValueError(f"d: the digits environment has d = 64 features, got d={d}; omit d")
