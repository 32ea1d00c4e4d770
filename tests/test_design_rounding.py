"""From relaxed designs to n labels (sim.design.rounding): efficient rounding, distinct rounding,
sampling, and Fedorov exchange."""

import itertools

import numpy as np
import pytest

from sim.design import (brute_force_design, efficient_rounding, exchange, fw_design,
                        greedy_select, round_design, sample_design, subset_logdet)


def test_efficient_rounding_counts():
    # Pukelsheim-Rieder: start ceil((n - k/2) pi), then fix the total; worked by hand:
    # pi = (.5, .3, .2), n = 10, k = 3: ceil(8.5 * pi) = (5, 3, 2) -> sum 10, done.
    np.testing.assert_array_equal(efficient_rounding([0.5, 0.3, 0.2], 10), [5, 3, 2])
    # n = 4: ceil(2.5 * pi) = (2, 1, 1) -> sum 4.
    np.testing.assert_array_equal(efficient_rounding([0.5, 0.3, 0.2], 4), [2, 1, 1])
    # n = 2: ceil(0.5 * pi) = (1, 1, 1) -> remove where (n_i - 1)/pi_i is largest: i = 2 (0/.2 ties
    # 0/.3 ... all zero: the first maximum, i = 0) -> (0, 1, 1)
    np.testing.assert_array_equal(efficient_rounding([0.5, 0.3, 0.2], 2), [0, 1, 1])
    rng = np.random.default_rng(0)
    for _ in range(50):
        p = rng.exponential(size=20) * (rng.uniform(size=20) < 0.6)
        if p.sum() == 0:
            continue
        n = int(rng.integers(1, 60))
        c = efficient_rounding(p, n)
        assert c.sum() == n and (c >= 0).all() and (c[p == 0] == 0).all()
        # apportionment property: counts are within 1 of the quota-based target
        q = n * p / p.sum()
        assert np.all(np.abs(c - q) <= (p > 0).sum() / 2 + 1)


def test_round_design_gives_n_distinct_rows_and_beats_or_ties_plain_rounding():
    rng = np.random.default_rng(1)
    V = rng.standard_normal((400, 6))
    fw = fw_design(V, efficiency=1 - 1e-8)
    for n in (5, fw.support, 3 * fw.support):
        r = round_design(V, fw.pi, n, gamma=0.5)
        assert r.indices.size == n and np.unique(r.indices).size == n
        assert r.logdet == pytest.approx(subset_logdet(V, r.indices, 0.5), rel=1e-12)
        plain = round_design(V, fw.pi, n, gamma=0.5, improve=False)
        assert r.logdet >= plain.logdet - 1e-9
    with pytest.raises(ValueError, match="n"):
        round_design(V, fw.pi, 401)


def test_sampling_with_replacement_matches_pi():
    # counts ~ Multinomial(n, pi); each |count - n pi_i| <= 6 sd fails with prob < 2e-9 per cell,
    # so the test's false-failure probability is < 1e-8 (and the seed is fixed).
    pi = np.array([0.1, 0.2, 0.3, 0.4])
    n = 20_000
    r = sample_design(pi, n, seed=3)
    c = np.bincount(r.indices, minlength=4)
    sd = np.sqrt(n * pi * (1 - pi))
    assert np.all(np.abs(c - n * pi) <= 6 * sd)
    np.testing.assert_array_equal(r.indices, sample_design(pi, n, seed=3).indices)
    d = sample_design(pi, 4, seed=0, replace=False)
    assert sorted(d.indices.tolist()) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="n"):
        sample_design(pi, 5, seed=0, replace=False)
    with pytest.raises(ValueError, match="seed"):
        sample_design(pi, 5, seed=None)
    V = np.random.default_rng(2).standard_normal((4, 2))
    s = sample_design(pi, 10, seed=1, V=V, gamma=0.3)
    H = 0.3 * np.eye(2) + V[s.indices].T @ V[s.indices]
    assert s.logdet == pytest.approx(np.linalg.slogdet(H)[1], rel=1e-12)


def test_exchange_improves_to_a_local_optimum_checked_by_all_single_swaps():
    rng = np.random.default_rng(4)
    for seed in range(5):
        V = rng.standard_normal((25, 3))
        start = rng.choice(25, size=6, replace=False)
        r = exchange(V, start, gamma=0.2)
        assert r.converged
        assert r.logdet >= subset_logdet(V, start, 0.2) - 1e-12
        S = set(r.indices.tolist())
        for i, j in itertools.product(sorted(S), sorted(set(range(25)) - S)):
            assert subset_logdet(V, sorted(S - {i} | {j}), 0.2) <= r.logdet + 1e-9
        b = brute_force_design(V, 6, gamma=0.2)
        assert r.logdet <= b.logdet + 1e-10


def test_exchange_after_greedy_and_gamma_zero():
    rng = np.random.default_rng(5)
    V = rng.standard_normal((60, 4))
    g = greedy_select(V, 10, gamma=1e-3)
    e = exchange(V, g.indices, gamma=0.0)
    assert e.logdet >= subset_logdet(V, g.indices, 0.0) - 1e-12
    with pytest.raises(ValueError, match="singular"):
        exchange(V, [0, 1], gamma=0.0)  # 2 rows cannot span R^4
    with pytest.raises(ValueError, match="indices"):
        exchange(V, [0, 0, 1], gamma=1.0)
