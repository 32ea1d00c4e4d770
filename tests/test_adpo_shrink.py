"""ADPO+ shrink (sim.selectors.adpo_shrink): its two limits and its schedule."""

from __future__ import annotations

import numpy as np

from sim.envs import gaussian_env
from sim.selectors import make_selector


def _zero_ref(data):
    return data.with_(b=np.zeros(data.N))


def test_far_from_n0_it_is_apo_and_near_infinity_it_is_adpo_plus():
    data = _zero_ref(gaussian_env(500, 4, seed=3, theta_norm=4.0, beta=2.0))
    # b = 0 and n0 huge: theta_t ~ 0, so the weights are the constant beta^2/4 = 1: APO's design
    shrink = make_selector("adpo+shrink", data, seed=0, alpha=0.0, n0=10**9).select(40)
    assert np.array_equal(shrink, make_selector("apo", data, seed=0).select(40))
    # the shrinkage is what separates it from ADPO+: at n0 = 1 the weights are ADPO+'s within a
    # factor t/(t+1) of theta; the first picks differ from APO's (the mutant "no shrinkage at all"
    # would equal ADPO+ exactly, tested next)
    plus = make_selector("adpo+", data, seed=0, alpha=0.0).select(40)
    assert not np.array_equal(shrink, plus)


def test_lambda_schedule_and_refits_follow_pow2():
    data = gaussian_env(300, 4, seed=1)
    sel = make_selector("adpo+shrink", data, seed=0, n0=8)
    sel.select(33)
    ts = [t for t, _ in sel.lambdas_]
    assert ts == [1, 2, 4, 8, 16, 32]
    assert [lam for _, lam in sel.lambdas_] == [t / (t + 8) for t in ts]
    assert sel.n_refits_ == 1  # theta_hat is fitted once, only its scale changes
