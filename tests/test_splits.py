"""sim.splits: disjoint, covering, deterministic splits of the right size; group-disjointness."""

import numpy as np
import pytest

from sim.envs import gaussian_env
from sim.dpo import fit_dpo
from sim.splits import group_split, holdout_data, n_heldout, random_split


def _check_partition(sp, n):
    assert sp.train.dtype == np.int64 and sp.test.dtype == np.int64
    assert np.all(np.diff(sp.train) > 0) and np.all(np.diff(sp.test) > 0)  # sorted, distinct
    assert np.intersect1d(sp.train, sp.test).size == 0
    assert np.array_equal(np.union1d(sp.train, sp.test), np.arange(n))


@pytest.mark.parametrize("holdout, k", [(0.25, 25), (0.001, 1), (0.999, 99), (10, 10), (99, 99)])
def test_random_split_sizes_and_partition(holdout, k):
    sp = random_split(100, holdout, seed=3)
    _check_partition(sp, 100)
    assert sp.test.size == k == n_heldout(100, holdout)


def test_random_split_deterministic_and_redrawn_per_seed():
    a, b = random_split(1000, 0.2, seed=7), random_split(1000, 0.2, seed=7)
    assert np.array_equal(a.test, b.test) and np.array_equal(a.train, b.train)
    c = random_split(1000, 0.2, seed=np.random.SeedSequence([7, 1]))
    assert not np.array_equal(a.test, c.test)
    # uniform: every row is held out about equally often over seeds (binomial(400, 0.2) per row,
    # mean 80, sd 8; 1000 rows: max |z| < 6 fails with prob < 1e-6; a split that always holds
    # out the first rows has z = 22)
    counts = np.zeros(1000)
    for s in range(400):
        counts[random_split(1000, 0.2, seed=s).test] += 1
    assert np.max(np.abs(counts - 80) / 8) < 6


@pytest.mark.parametrize("holdout", [0.0, 1.0, -0.1, 0, 100, True, "0.2", None])
def test_bad_holdout_is_refused(holdout):
    with pytest.raises(ValueError, match="holdout"):
        random_split(100, holdout, seed=0)


def test_group_split_keeps_groups_together_and_sizes():
    rng = np.random.default_rng(0)
    groups = [f"prompt {g}" for g in rng.integers(0, 40, size=300)]
    sizes = np.bincount([int(g.split()[1]) for g in groups])
    for seed in range(20):
        sp = group_split(groups, 0.25, seed=seed)
        _check_partition(sp, 300)
        tr, te = {groups[i] for i in sp.train}, {groups[i] for i in sp.test}
        assert not tr & te  # no prompt on both sides
        assert 75 <= sp.test.size < 75 + sizes.max()  # at least the target, < one group over
    a, b = group_split(groups, 0.25, seed=5), group_split(groups, 0.25, seed=5)
    assert np.array_equal(a.test, b.test)
    assert not np.array_equal(a.test, group_split(groups, 0.25, seed=6).test)


def test_group_split_singletons_equal_random_sized_split_and_needs_two_groups():
    sp = group_split(list(range(50)), 10, seed=1)  # every row its own group: exact size
    assert sp.test.size == 10
    for seed in range(8):  # never empties the train part, whichever group is drawn first
        sp = group_split(["a"] * 30 + ["b"], 0.9, seed=seed)
        _check_partition(sp, 31)
        assert sp.train.size >= 1
    with pytest.raises(ValueError, match="groups"):
        group_split(["a"] * 10, 0.5, seed=0)


def test_holdout_data_refits_target_on_the_pool():
    data = gaussian_env(400, 4, seed=0)
    sp = random_split(data.N, 0.25, seed=0)
    pool, test = holdout_data(data, sp)
    assert pool.N == 300 and test.N == 100
    assert np.array_equal(pool.phi, data.phi[sp.train]) and np.array_equal(test.s, data.s[sp.test])
    ref = fit_dpo(pool.phi, pool.b, pool.beta, pool.s, fit_ridge=1e-3).theta  # cold start
    np.testing.assert_allclose(pool.theta_star, ref, atol=1e-8)
    assert np.array_equal(test.theta_star, pool.theta_star)
    assert not np.allclose(pool.theta_star, data.theta_star)  # the held-out labels are not in it
    assert np.array_equal(pool.theta_true, data.theta_true)
    with pytest.raises(ValueError, match="split"):
        holdout_data(data, random_split(10, 0.5, seed=0))


def test_run_cell_holdout_never_selects_heldout_rows_and_scores_them():
    """Budget = the whole pool with uniform selection: theta_hat is then the pool's MLE exactly
    (in-sample max logit error ~ 0) only if no held-out row was selectable; the held-out metrics
    are those of that fit on the split drawn from (seed, SPLIT_STREAM)."""
    from sim.experiment import build_env, run_cell
    from sim.metrics import accuracy, neg_log_likelihood
    from sim.splits import SPLIT_STREAM

    env = {"kind": "gaussian", "N": 200, "d": 3, "holdout": 0.3}
    rows = run_cell(env, {"name": "uniform"}, seed=4, budgets=[20, 140])
    got = {r["metric"]: r["value"] for r in rows if r["n"] == 140}
    assert got["max_logit_error"] < 1e-6
    data = build_env(env, 4)
    sp = random_split(200, 0.3, np.random.SeedSequence([4, SPLIT_STREAM]))
    pool, test = holdout_data(data, sp)
    args = (test.phi, test.b, test.beta, pool.theta_star, test.s)
    assert got["heldout_max_logit_error"] < 1e-6
    assert got["heldout_accuracy"] == pytest.approx(accuracy(*args))
    assert got["heldout_nll"] == pytest.approx(neg_log_likelihood(*args))
    small = {r["metric"]: r["value"] for r in rows if r["n"] == 20}
    assert small["heldout_max_logit_error"] > 0.01  # informative: a 20-pair fit is off
    with pytest.raises(ValueError, match="budgets"):
        run_cell(env, {"name": "uniform"}, seed=4, budgets=[141])


def test_sweep_validation_refuses_a_bad_holdout():
    from sim.runner import make_sweep

    with pytest.raises(ValueError, match="holdout"):
        make_sweep({"kind": "gaussian", "N": 64, "d": 2, "holdout": 1.5}, ["uniform"], seeds=1,
                   budgets=[8])
