"""The torch DPO MLE (sim.dpo_torch) on CPU (and on CUDA where a GPU is present) against the
numpy solver (sim.dpo.fit_dpo) and the first-order optimality condition."""

import numpy as np
import pytest

from sim.dpo import ConvergenceError, dpo_gradient, fit_dpo
from sim.dpo_torch import fit_dpo_torch

from helpers import torch_devices

pytest.importorskip("torch")
DEVICES = torch_devices()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("ridge", [1e-3, 1.0])
def test_same_mle_as_numpy_and_zero_gradient(ridge, device):
    rng = np.random.default_rng(0)
    N, d, beta = 3000, 12, 0.7
    phi = rng.standard_normal((N, d))
    b = 0.1 * rng.standard_normal(N)
    theta = rng.standard_normal(d)
    s = (rng.random(N) < 1 / (1 + np.exp(-beta * (phi @ theta - b)))).astype(int)
    ref = fit_dpo(phi, b, beta, s, fit_ridge=ridge)
    out = fit_dpo_torch(phi, b, beta, s, fit_ridge=ridge, device=device)
    assert out.converged
    assert np.allclose(out.theta, ref.theta, rtol=1e-9, atol=1e-11)
    assert out.loss == pytest.approx(ref.loss, rel=1e-12)
    g = dpo_gradient(out.theta, phi, b, beta, s, ridge)
    assert np.abs(g).max() < 1e-8 * N


@pytest.mark.parametrize("device", DEVICES)
def test_separable_labels_without_ridge_are_refused(device):
    phi = np.array([[1.0], [2.0], [-1.0], [-2.0]])
    with pytest.raises(ConvergenceError, match="separable"):
        fit_dpo_torch(phi, np.zeros(4), 1.0, [1, 1, 0, 0], fit_ridge=0.0, device=device)
