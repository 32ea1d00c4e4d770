"""Instances on which the theory checks are informative (their bounds below the trivial ceiling).

A check of an upper bound can only fail where the bound is smaller than what the measured
quantity could reach anyway. For Theorem 4 that ceiling is max_i ||phi_i||^2 / gamma
(:func:`theory.bounds.theorem4_ceiling`), and on isotropic features every reasonable design
(uniform included) ends far below the bound, so a check there cannot tell a greedy design
from one that ignores the design. :func:`needle_instance` is the instance that can: most rows
lie in a few "common" directions and a handful of rows ("needles") span each remaining
direction. The greedy log-det design picks the needles early; uniform picks miss some, and for
those rows phi^T Sigma_n^{-1} phi stays near 1/gamma, above the bound.
"""

from __future__ import annotations

import numpy as np

from sim.data import PreferenceData
from sim.validation import Seed, as_rng, positive_int, positive_scalar


def needle_instance(N: int, d: int, *, common: int = 2, needles: int = 8, beta: float = 1.0,
                    seed: Seed = 0) -> PreferenceData:
    """N rows in R^d under Assumption 2: ``needles`` rows along each of the d - common rare
    axes e_{common}, ..., e_{d-1} (unit norm, random sign), the rest uniform on the unit sphere
    of the first ``common`` coordinates. b = 0 and theta_star = theta_true = a random unit
    vector, so every Lemma 1 weight lies in [c_min, c_max]. No labels (the design does not
    need them). Returns PreferenceData with phi (N, d), b (N,), theta_star (d,).
    """
    N, d = positive_int(N, "N"), positive_int(d, "d")
    common, needles = positive_int(common, "common"), positive_int(needles, "needles")
    beta = positive_scalar(beta, "beta")
    n_rare = (d - common) * needles
    if common >= d or n_rare >= N:
        raise ValueError(f"common/needles: need common < d and (d - common) * needles < N; got "
                         f"common={common}, needles={needles}, d={d}, N={N}")
    rng = as_rng(seed)
    phi = np.zeros((N, d))
    x = rng.standard_normal((N - n_rare, common))
    phi[: N - n_rare, :common] = x / np.linalg.norm(x, axis=1, keepdims=True)
    axes = np.repeat(np.arange(common, d), needles)
    phi[np.arange(N - n_rare, N), axes] = rng.choice([-1.0, 1.0], size=n_rare)
    phi = phi[rng.permutation(N)]
    theta = rng.standard_normal(d)
    theta /= np.linalg.norm(theta)
    return PreferenceData(phi=phi, b=np.zeros(N), beta=beta, theta_star=theta, theta_true=theta,
                          info={"kind": "needle", "common": common, "needles": needles})
