"""Which pair to compare (issue 14, item 2): the ``prompts`` pool and ``max_per_prompt``.

The ``prompts`` kind passes the environment conformance suite in tests/test_conformance.py.
References: the ranking environment's own arrays (the pool's rows are their differences),
exhaustive search over the feasible (prompt, pair) sets of tiny pools, a Hoeffding bound on the
Bradley-Terry labels, and mutants that ignore the exclusion mask.
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adpo.cli import main
from sim.data import PreferenceData
from sim.design.greedy import BlockedGreedy, greedy_select
from sim.design.groups import GroupCap
from sim.dpo import sigmoid
from sim.envs import make_env, prompt_pairs
from sim.ranking import ranking_env
from sim.selectors import make_selector, method_names

ENGINES = ("naive", "maintained", "blocked")


def test_rows_are_the_ranking_model_pair_differences() -> None:
    """Independent reference: the ranking environment drawn from the same seed stream."""
    data = make_env("prompts", seed=3, M=7, K=4, d=3)
    rk = ranking_env(7, 4, 3, seed=np.random.default_rng(3))
    table = prompt_pairs(7, 4)
    assert data.N == 7 * 6 and table.shape == (42, 3)
    for r, (g, i, j) in enumerate(table):
        assert i < j and data.group[r] == g
        np.testing.assert_allclose(data.phi[r], rk.psi[g, i] - rk.psi[g, j], atol=0)
        assert data.b[r] == pytest.approx(rk.b[g, i] - rk.b[g, j], abs=1e-15)
    np.testing.assert_array_equal(data.theta_true, rk.theta_true)
    assert len({tuple(x) for x in table}) == 42  # every pair of every prompt, once


def test_labels_follow_bradley_terry_at_theta_true() -> None:
    """T = sum_r (s_r - p_r) sign(z_r): each term lies in an interval of width 1, so Hoeffding
    gives P(|T| >= t) <= 2 exp(-2 t^2 / N) = 1e-6 at the threshold below (false failure
    <= 1e-6). A mutant drawing labels at -theta_true has E[T] = -sum |2 p_r - 1| = -2480
    here (-0.41 N, 12x the threshold t = 209) with sd <= sqrt(N) / 2 = 39: power ~ 1 (the
    mutant's draw is checked below)."""
    data = make_env("prompts", seed=0, M=1000, K=4, d=8)
    z = data.beta * (data.phi @ data.theta_true - data.b)
    p = sigmoid(z)
    N = data.N
    t = np.sqrt(N * np.log(2e6) / 2)
    stat = float(np.sum((data.s - p) * np.sign(z)))
    assert abs(stat) < t
    flipped = (np.random.default_rng(1).random(N) < sigmoid(-z)).astype(float)
    assert abs(np.sum((flipped - p) * np.sign(z))) > 5 * t  # the mutant is rejected


def test_group_key_round_trips_through_npz_and_pool_folders(tmp_path) -> None:
    from sim.store import save_pool

    data = make_env("prompts", seed=0, M=5, K=3, d=2)
    data.save(tmp_path / "p.npz")
    save_pool(tmp_path / "pool", data)
    for back in (PreferenceData.load(tmp_path / "p.npz"), PreferenceData.load(tmp_path / "pool")):
        np.testing.assert_array_equal(back.group, data.group)
    np.testing.assert_array_equal(back.subset([4, 0]).group, data.group[[4, 0]])
    with pytest.raises(ValueError, match="group: prompt ids must be >= 0"):
        data.with_(group=-data.group - 1)


# ------------------------------------------------------------------ exhaustive references
def _feasible(rows, group, cap) -> bool:
    return np.bincount(group[list(rows)]).max() <= cap if len(rows) else True


def _logdet(V, rows, gamma) -> float:
    X = V[list(rows)]
    return float(np.linalg.slogdet(gamma * np.eye(V.shape[1]) + X.T @ X)[1])


def _check_step_optimal(V, group, cap, picks, gamma) -> None:
    """Every pick maximizes log det over the feasible one-row extensions (brute force)."""
    for t, i in enumerate(picks):
        prev = list(picks[:t])
        cand = [j for j in range(V.shape[0]) if j not in prev
                and _feasible(prev + [j], group, cap)]
        vals = np.array([_logdet(V, prev + [j], gamma) for j in cand])
        assert i in cand, f"pick {t} (row {i}) breaks the cap or repeats a row"
        assert _logdet(V, prev + [i], gamma) >= vals.max() - 1e-9


def _needle_pool() -> tuple[np.ndarray, np.ndarray]:
    """M = 3 prompts x K = 3 (9 rows, d = 2): prompt 0 holds the two best, orthogonal pairs, so
    the unconstrained greedy takes both and the capped one must not."""
    V = np.array([[3.0, 0.0], [0.0, 2.8], [0.1, 0.1],
                  [1.0, 0.9], [0.5, -0.2], [0.2, 0.3],
                  [-0.8, 1.1], [0.3, 0.3], [0.1, -0.4]])
    return V, np.repeat(np.arange(3), 3)


@pytest.mark.parametrize("engine", ENGINES)
def test_capped_greedy_is_step_optimal_against_exhaustive_search(engine: str) -> None:
    V, group = _needle_pool()
    free = greedy_select(V, 3, gamma=0.5, method=engine).indices
    assert np.bincount(group[free]).max() == 2  # the cap binds on this pool
    res = greedy_select(V, 3, gamma=0.5, method=engine, group=group, max_per_prompt=1,
                        active=2, block=2)
    _check_step_optimal(V, group, 1, res.indices.tolist(), 0.5)
    # the first pick is the exhaustive optimum over single (prompt, pair) choices; for
    # n = 2..3 greedy's (feasible) prefix never beats the exhaustive feasible optimum
    for n in (1, 2, 3):
        best = max(_logdet(V, S, 0.5) for S in itertools.combinations(range(9), n)
                   if _feasible(S, group, 1))
        got = _logdet(V, res.indices[:n], 0.5)
        assert got <= best + 1e-9
        if n == 1:
            assert got == pytest.approx(best)
    assert res.logdet == pytest.approx(_logdet(V, res.indices, 0.5))


@pytest.mark.parametrize("seed", range(4))
def test_capped_greedy_step_optimal_on_random_tiny_pools(seed: int) -> None:
    data = make_env("prompts", seed=seed, M=3, K=3, d=2)
    w = np.random.default_rng(seed).random(data.N)
    V = data.phi * np.sqrt(w)[:, None]
    for cap, n in ((1, 3), (2, 5)):
        picks = [greedy_select(data.phi, n, weights=w, group=data.group, max_per_prompt=cap,
                               method=m).indices.tolist() for m in ENGINES]
        assert picks[0] == picks[1] == picks[2]
        _check_step_optimal(V, data.group, cap, picks[0], 1.0)


# ------------------------------------------------------------------ the cap is never broken
@settings(max_examples=25, deadline=None, derandomize=True, database=None)
@given(M=st.integers(2, 6), K=st.integers(2, 4), cap=st.integers(1, 3),
       engine=st.sampled_from(ENGINES + ("subset",)), replace=st.booleans(),
       seed=st.integers(0, 2**16))
def test_cap_never_violated_by_greedy_select(M, K, cap, engine, replace, seed) -> None:
    _cap_property(M, K, cap, engine, replace, seed)


def _cap_property(M, K, cap, engine, replace, seed) -> None:
    rng = np.random.default_rng(seed)
    P = K * (K - 1) // 2
    group = np.repeat(np.arange(M), P)
    V = rng.standard_normal((M * P, 3))
    room = M * (cap if replace else min(cap, P))
    kw = dict(candidates=2, seed=seed) if engine == "subset" else dict(method=engine,
                                                                     active=2, block=3)
    res = greedy_select(V, room, group=group, max_per_prompt=cap, replace=replace, **kw)
    assert np.bincount(group[res.indices], minlength=M).max() <= cap
    assert replace or len(set(res.indices.tolist())) == room
    with pytest.raises(ValueError, match="max_per_prompt"):
        greedy_select(V, room + 1, group=group, max_per_prompt=cap, replace=replace, **kw)


@pytest.mark.parametrize("name", [n for n in method_names() if n not in method_names("ranking")])
def test_every_selector_honours_max_per_prompt(name: str) -> None:
    data = make_env("prompts", seed=1, M=15, K=4, d=3)
    sel = make_selector(name, data, seed=0, max_per_prompt=1)
    idx = sel.select(15)
    assert np.bincount(data.group[idx]).max() == 1
    with pytest.raises(ValueError, match="max_per_prompt = 1"):
        sel.select(1)


def test_max_per_prompt_needs_a_group_key() -> None:
    data = make_env("gaussian", seed=0, N=20, d=2)
    with pytest.raises(ValueError, match="max_per_prompt: the data has no 'group' key"):
        make_selector("apo", data, max_per_prompt=1)


# ------------------------------------------------------------------ mutants
def test_mutant_ignoring_the_mask_is_caught(monkeypatch) -> None:
    """GroupCap.picked returning nothing (the mask never set) breaks the brute-force check and
    the property; BlockedGreedy.exclude as a no-op breaks the blocked engine and the greedy
    selectors (their engine keeps its own mask)."""
    V, group = _needle_pool()
    with monkeypatch.context() as mp:
        mp.setattr(GroupCap, "picked", lambda self, i: np.empty(0, dtype=np.int64))
        res = greedy_select(V, 3, gamma=0.5, group=group, max_per_prompt=1)
        with pytest.raises(AssertionError, match="breaks the cap"):
            _check_step_optimal(V, group, 1, res.indices.tolist(), 0.5)
    with monkeypatch.context() as mp:
        mp.setattr(BlockedGreedy, "exclude", lambda self, rows: None)
        res = greedy_select(V, 3, gamma=0.5, method="blocked", group=group, max_per_prompt=1)
        assert np.bincount(group[res.indices]).max() == 2
        data = PreferenceData(phi=V, b=np.zeros(9), group=group)
        idx = make_selector("apo", data, max_per_prompt=1, gamma=0.5).select(3)
        assert np.bincount(group[idx]).max() == 2


# ------------------------------------------------------------------ CLI
def test_cli_env_prompts_and_select_max_per_prompt(tmp_path, capsys) -> None:
    p, out = tmp_path / "p.npz", tmp_path / "s.json"
    assert main(["env", "--kind", "prompts", "--M", "20", "--K", "3", "--d", "3",
                 "--seed", "0", "--out", str(p)]) == 0
    assert main(["select", "--data", str(p), "--method", "apo", "--n", "20",
                 "--max-per-prompt", "1", "--out", str(out)]) == 0
    idx = json.loads(out.read_text())["indices"]
    assert sorted(i // 3 for i in idx) == list(range(20))
    assert main(["select", "--data", str(p), "--method", "apo", "--n", "21",
                 "--max-per-prompt", "1"]) != 0
    assert "21 exceeds the 20 possible picks" in capsys.readouterr().err
