"""ADPO+ warm (sim.selectors.adpo_warm): APO's picks first, then ADPO+'s rule."""

from __future__ import annotations

import numpy as np

from sim.envs import gaussian_env
from sim.selectors import make_selector


def test_first_n0_picks_are_apo_and_the_rest_follow_adpo_plus_weights():
    data = gaussian_env(400, 4, seed=3, theta_norm=4.0)
    warm = make_selector("adpo+warm", data, seed=0, alpha=0.0, n0=10)
    picks = warm.select(40)
    assert np.array_equal(picks[:10], make_selector("apo", data, seed=0).select(10))
    assert warm.phases_ == [(1, "apo"), (11, "adpo+")]
    # reference for the second phase: greedy with ADPO+'s weights started from APO's H
    w = make_selector("adpo+", data, seed=0, alpha=0.0)
    w.select(1)
    wts = warm.weights()  # ADPO+'s weights at the all-pool theta_hat (alpha = 0)
    H = np.eye(4) + data.phi[picks[:10]].T @ data.phi[picks[:10]]
    chosen = list(picks[:10])
    for t in range(10, 40):
        q = wts * np.einsum("id,de,ie->i", data.phi, np.linalg.inv(H), data.phi)
        q[chosen] = -np.inf
        i = int(np.argmax(q))
        assert i == picks[t], t
        chosen.append(i)
        H += wts[i] * np.outer(data.phi[i], data.phi[i])
    # mutant: without the warm start the picks are ADPO+'s, which differ from the first pick on
    plus = make_selector("adpo+", data, seed=0, alpha=0.0).select(40)
    assert not np.array_equal(plus[:10], picks[:10])
