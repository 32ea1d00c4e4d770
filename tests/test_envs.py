"""Environments: determinism, stated assumptions, and the label model (eq. 12)."""

import numpy as np
import pytest

from sim.dpo import dpo_gradient, sigmoid
from sim.envs import digits_env, gaussian_env, make_env


def test_gaussian_is_deterministic_and_seed_dependent():
    a, b = gaussian_env(300, 4, seed=5), gaussian_env(300, 4, seed=5)
    for k in ("phi", "b", "s", "theta_star", "theta_true"):
        np.testing.assert_array_equal(getattr(a, k), getattr(b, k))
    c = gaussian_env(300, 4, seed=6)
    assert not np.array_equal(a.s, c.s)
    g = np.random.default_rng(5)
    np.testing.assert_array_equal(gaussian_env(300, 4, seed=g).phi, a.phi)  # a Generator works


def test_gaussian_assumption2_holds():
    d = gaussian_env(2000, 8, seed=0, assumption2=True, theta_norm=1.0, ref_norm=1.0, beta=2.0)
    assert np.linalg.norm(d.phi, axis=1).max() <= 1 + 1e-12
    assert np.abs(d.b).max() <= 1 + 1e-12
    assert np.linalg.norm(d.theta_true) <= 1 + 1e-12
    assert np.linalg.norm(d.theta_star) <= 1 + 1e-9
    with pytest.raises(ValueError, match="theta_norm"):
        gaussian_env(10, 2, seed=0, assumption2=True, theta_norm=2.0)


def test_theta_star_is_the_mle_on_all_labels():
    d = gaussian_env(1000, 5, seed=1, beta=1.7, fit_ridge=1e-3)
    g = dpo_gradient(d.theta_star, d.phi, d.b, d.beta, d.s, 1e-3)
    assert np.abs(g).max() < 1e-8


def test_gaussian_labels_follow_eq12():
    """sum_i s_i vs sum_i mu_i: Hoeffding, P(|dev| >= t) <= 2 exp(-2 t^2 / N) = 1e-7 (<= 1e-6)."""
    d = gaussian_env(20000, 6, seed=2, beta=1.3)
    mu = sigmoid(d.beta * (d.phi @ d.theta_true - d.b))
    t = np.sqrt(d.N * np.log(2 / 1e-7) / 2)
    assert abs(d.s.sum() - mu.sum()) <= t
    # and the labels are informative in the direction predicted (stratify by mu)
    hi, lo = mu > 0.8, mu < 0.2
    assert d.s[hi].mean() > 0.7 and d.s[lo].mean() < 0.3


def test_digits_recipe():
    d = digits_env(3000, seed=0, beta=2.0)
    assert d.d == 64 and d.N == 3000
    assert np.linalg.norm(d.phi, axis=1).max() == pytest.approx(1.0)  # "unit" scaling
    # The DPO model is well specified: beta (phi theta_true - b) = phi theta_bar, so the label
    # probabilities are mu(phi theta_bar) — a binomial check at false-failure 1e-7.
    p = sigmoid(d.beta * (d.phi @ d.theta_true - d.b))
    t = np.sqrt(d.N * np.log(2 / 1e-7) / 2)
    assert abs(d.s.sum() - p.sum()) <= t
    assert d.info["positive_class"] in range(10)
    a, b = digits_env(500, seed=3), digits_env(500, seed=3)
    np.testing.assert_array_equal(a.s, b.s)
    pix = digits_env(500, seed=3, feature_scale="pixel")
    assert np.abs(pix.phi).max() <= 16 and np.abs(pix.phi).max() > 1


def test_make_env_errors():
    with pytest.raises(ValueError, match="kind"):
        make_env("cifar", N=10, seed=0)
    with pytest.raises(ValueError, match="d"):
        make_env("digits", N=10, d=5, seed=0)
    with pytest.raises(ValueError, match="seed"):
        gaussian_env(10, 2, seed=None)
    with pytest.raises(ValueError, match="beta"):
        gaussian_env(10, 2, seed=0, beta=0)
    with pytest.raises(ValueError, match="feature_scale"):
        digits_env(10, seed=0, feature_scale="zscore")


# ---------------------------------------------------------------------------- the file kind
def test_file_env_is_the_file_or_a_seeded_subset(tmp_path):
    src = gaussian_env(200, 4, seed=9)
    path = str(tmp_path / "g.npz")
    src.save(path)
    whole = make_env("file", seed=0, path=path)
    np.testing.assert_array_equal(whole.phi, src.phi)
    np.testing.assert_array_equal(whole.theta_star, src.theta_star)   # the file's own target
    np.testing.assert_array_equal(whole.theta_true, src.theta_true)
    a = make_env("file", seed=1, path=path, rows=50)
    b = make_env("file", seed=1, path=path, rows=50)
    c = make_env("file", seed=2, path=path, rows=50)
    np.testing.assert_array_equal(a.phi, b.phi)
    assert a.N == 50 and not np.array_equal(a.phi, c.phi)
    rows = [int(np.flatnonzero((src.phi == r).all(axis=1))[0]) for r in a.phi]
    assert rows == sorted(rows) and len(set(rows)) == 50              # a subset, file order
    ref = __import__("sim.dpo", fromlist=["fit_dpo"]).fit_dpo(a.phi, a.b, a.beta, a.s,
                                                             fit_ridge=1e-3).theta
    np.testing.assert_allclose(a.theta_star, ref, atol=1e-10)         # eq. 5 on the subset
    assert a.theta_true is None                                       # not the subset's target
    scaled = make_env("file", seed=0, path=path, scale="rms")
    assert np.isclose(np.sqrt(np.mean(np.sum(scaled.phi ** 2, axis=1))), 1.0)
    unit = make_env("file", seed=0, path=path, scale="unit")
    assert np.isclose(np.linalg.norm(unit.phi, axis=1).max(), 1.0)


def test_file_env_errors_name_the_option(tmp_path):
    path = str(tmp_path / "g.npz")
    gaussian_env(20, 2, seed=0).save(path)
    for opts, key in [({"path": str(tmp_path / "missing.npz")}, "path"),
                      ({"path": str(tmp_path / "g.txt")}, "path"),
                      ({"path": path, "rows": 21}, "rows"),
                      ({"path": path, "scale": "zscore"}, "scale"),
                      ({"path": path, "N": 5}, "N"),
                      ({}, "path")]:
        with pytest.raises(ValueError, match=f"^{key}"):
            make_env("file", seed=0, **opts)
