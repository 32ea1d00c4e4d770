"""Dimension reduction before greedy (sim.design.reduce): exact cases, the measured cost, and a
mis-scaled projection that the original-space score exposes."""

import numpy as np
import pytest

from sim.design import greedy_select, subset_logdet
from sim.design.reduce import projection, reduced_greedy


def _low_rank(N, d, r, seed):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((N, r)) @ rng.standard_normal((r, d)) / np.sqrt(r)


def test_pca_at_the_rank_is_exact():
    V = _low_rank(2000, 60, 8, 0)             # rank 8: PCA with k = 8 loses nothing
    r = reduced_greedy(V, 25, 8, method="pca", gamma=0.5)
    ex = greedy_select(V, 25, gamma=0.5)
    # log det(gamma I_d + S) = (d - 8) log gamma + log det(gamma I_8 + S_8): same set, same value
    assert r.info["overlap"] == 1.0 and np.array_equal(r.indices, ex.indices)
    assert r.logdet == pytest.approx(ex.logdet, rel=1e-10)
    assert r.logdet == pytest.approx(subset_logdet(V, r.indices, 0.5), rel=1e-12)


def test_gaussian_projection_costs_something_and_is_measured_in_the_original_space():
    V = np.random.default_rng(1).standard_normal((1500, 120))
    r = reduced_greedy(V, 30, 30, method="gaussian", seed=3)
    assert 0.9 < r.info["logdet_ratio"] <= 1.0 + 1e-9     # greedy is not optimal, but close
    assert r.logdet == pytest.approx(subset_logdet(V, r.indices, 1.0), rel=1e-12)
    assert r.info["overlap"] < 1.0                        # it does change the picks here
    # the Johnson-Lindenstrauss scale: entries N(0, 1/k), so norms are preserved on average
    R = projection(V, 30, "gaussian", seed=3)
    assert R.std() * np.sqrt(30) == pytest.approx(1, abs=0.03)
    ratio = np.linalg.norm(V @ R, axis=1) ** 2 / np.linalg.norm(V, axis=1) ** 2
    assert ratio.mean() == pytest.approx(1, abs=0.05)


def test_bad_inputs():
    V = np.random.default_rng(0).standard_normal((50, 5))
    with pytest.raises(ValueError, match="k:"):
        projection(V, 6)
    with pytest.raises(ValueError, match="method"):
        projection(V, 3, "hadamard")


def test_fwht_is_the_orthonormal_hadamard_matrix_and_the_srht_rotation_is_orthogonal():
    from scipy.linalg import hadamard

    from sim.design.reduce import fwht, srht_transform
    X = np.random.default_rng(0).standard_normal((7, 16))
    assert np.allclose(fwht(X), X @ hadamard(16) / 4.0, atol=1e-12)   # independent reference
    T, p = srht_transform(5, seed=1)                  # d = 5 padded to p = 8
    assert p == 8 and T.shape == (5, 8)
    assert np.allclose(T @ T.T, np.eye(5), atol=1e-12)  # rows of an orthogonal D H_8
    full, _ = srht_transform(8, seed=1)
    assert np.allclose(full.T @ full, np.eye(8), atol=1e-12)
    with pytest.raises(ValueError, match="power of 2"):
        fwht(np.ones((2, 6)))


def test_srht_keeps_norms_and_costs_what_the_gaussian_projection_costs():
    V = np.random.default_rng(1).standard_normal((1500, 120))
    R = projection(V, 30, "srht", seed=3)
    ratio = np.einsum("ij,ij->i", V @ R, V @ R) / np.einsum("ij,ij->i", V, V)
    assert abs(ratio.mean() - 1.0) < 0.1              # E ||R^T v||^2 = ||v||^2 (p/k = 128/30)
    ex = greedy_select(V, 30)
    s = reduced_greedy(V, 30, 30, method="srht", seed=3, exact=ex).info["logdet_ratio"]
    g = reduced_greedy(V, 30, 30, method="gaussian", seed=3, exact=ex).info["logdet_ratio"]
    print(s, g)
    assert 0.9 < s <= 1.0 + 1e-9 and abs(s - g) < 0.03


def test_a_relaxed_exact_result_is_refused_before_the_selection():
    """Found by mypy (``DesignResult.indices`` is Optional): ``exact=`` a relaxed design ended,
    after the whole reduced selection, in AttributeError 'NoneType' has no attribute 'tolist'."""
    from sim.design import DesignResult
    V = np.random.default_rng(2).standard_normal((200, 12))
    relaxed = DesignResult(solver="multiplicative", pi=np.full(200, 1 / 200))  # pi, no indices
    with pytest.raises(ValueError, match="^exact: the 'multiplicative' result is a relaxed"):
        reduced_greedy(V, 10, 6, exact=relaxed)
    r = reduced_greedy(V, 10, 6, exact=greedy_select(V, 10))
    assert r.indices.size == 10
