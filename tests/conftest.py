import os

# Single-threaded BLAS keeps timings of parallel tests sane on 2-core machines.
os.environ.setdefault("OMP_NUM_THREADS", "2")

import numpy as np
import pytest

from sim.data import PreferenceData
from sim.dpo import fit_dpo, sigmoid


@pytest.fixture
def small_data():
    """A labelled log-linear instance: N = 300, d = 5, beta = 1.5, offsets b != 0."""
    rng = np.random.default_rng(1234)
    n, d, beta = 300, 5, 1.5
    phi = rng.standard_normal((n, d)) / np.sqrt(d)
    theta = rng.standard_normal(d)
    b = 0.3 * rng.standard_normal(n)
    s = (rng.random(n) < sigmoid(beta * (phi @ theta - b))).astype(np.int8)
    theta_star = fit_dpo(phi, b, beta, s, fit_ridge=1e-3).theta
    return PreferenceData(phi=phi, b=b, beta=beta, s=s, theta_star=theta_star, theta_true=theta)
