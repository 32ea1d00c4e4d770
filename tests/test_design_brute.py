"""Exhaustive search (sim.design.brute) against a plain loop over subsets."""

import itertools

import numpy as np
import pytest

from sim.design import brute_force_design


def test_brute_force_matches_a_plain_loop():
    rng = np.random.default_rng(0)
    for _ in range(4):
        V = rng.standard_normal((9, 3))
        w = rng.uniform(0, 2, 9)
        Vw = V * np.sqrt(w)[:, None]
        for n in (1, 2, 4):
            res = brute_force_design(V, n, gamma=0.3, weights=w)
            vals = {S: np.linalg.slogdet(0.3 * np.eye(3) + Vw[list(S)].T @ Vw[list(S)])[1]
                    for S in itertools.combinations(range(9), n)}
            best = max(vals, key=vals.get)
            assert tuple(res.indices.tolist()) == best
            assert res.logdet == pytest.approx(vals[best], rel=1e-12)
            assert res.info["subsets"] == len(vals)


def test_gamma_zero_needs_spanning_subsets_and_size_guard():
    rng = np.random.default_rng(1)
    V = rng.standard_normal((6, 3))
    assert brute_force_design(V, 3, gamma=0.0).logdet > -np.inf
    with pytest.raises(ValueError, match="singular"):
        brute_force_design(V, 2, gamma=0.0)
    with pytest.raises(ValueError, match="max_subsets"):
        brute_force_design(rng.standard_normal((40, 3)), 10)
