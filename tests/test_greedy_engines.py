"""The greedy engines the selectors run on, against literal pseudocode (fresh solves, no
rank-one tricks), and the same-rows contract between the selectors and sim.design.greedy_select.
"""

import threading

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from sim.design import greedy_select
from sim.design.greedy import BlockedGreedy, BulkProducts, GreedyState, blas_threads
from sim.design.incremental import IncrementalGreedy
from sim.dpo import dpo_weights, fit_dpo
from sim.envs import gaussian_env
from sim.selectors import make_selector


def _scores(H, V):
    """v_i^T H^{-1} v_i by a fresh dense solve (the reference; no Cholesky, no updates)."""
    return np.einsum("ij,ji->i", V, np.linalg.solve(H, V.T))


@pytest.fixture(scope="module")
def env():
    return gaussian_env(400, 6, seed=11)


# ----------------------------------------------------------------- the engines, directly
def test_incremental_engine_with_changing_weights_and_subsets_is_the_literal_argmax():
    # Weights change every 5 picks (as after ADPO's refits) and each pick looks at a random
    # subset: the stale-bound argmax must be the exact argmax of w_i phi_i^T H^{-1} phi_i.
    rng = np.random.default_rng(0)
    N, d, gamma = 300, 5, 0.5
    phi = rng.standard_normal((N, d))
    eng = IncrementalGreedy(phi, GreedyState(d, gamma))
    H = gamma * np.eye(d)
    free = np.ones(N, dtype=bool)
    for t in range(60):
        if t % 5 == 0:
            w = rng.uniform(0.01, 1.0, N)
        cand = np.sort(rng.choice(np.flatnonzero(free), size=40, replace=False))
        i, score = eng.argmax(w, cand)
        ref = w[cand] * _scores(H, phi[cand])
        assert i == cand[int(np.argmax(ref))]
        assert score == pytest.approx(ref.max(), rel=1e-10)
        v = np.sqrt(w[i]) * phi[i]
        gain = eng.add(v)
        assert gain == pytest.approx(np.log1p(v @ np.linalg.solve(H, v)), rel=1e-10)
        H += np.outer(v, v)
        free[i] = False
    assert eng.logdet == pytest.approx(np.linalg.slogdet(H)[1], rel=1e-10)
    assert eng.n_evals < 60 * 40  # the lazy bounds saved work


@pytest.mark.parametrize("active, block, every, dtype", [(16, 4, 7, np.float64),
                                                        (4, 64, 5, np.float64),
                                                        (4, 64, 5, np.float32)])
def test_blocked_engine_reweighted_between_picks_is_the_literal_argmax(active, block, every,
                                                                      dtype):
    # ADPO between refits: the blocked engine with weights replaced every few picks, mostly
    # inside a block (new active set from the block-start bounds, pending picks applied to it
    # only). Small active sets and long blocks make the bound tau decide picks: without it,
    # or without the pending downdates on the new A, picks go wrong.
    rng = np.random.default_rng(1)
    N, d, gamma = 500, 6, 1.0
    phi = rng.standard_normal((N, d))
    w = rng.uniform(0.05, 1.0, N)
    q0 = np.einsum("ij,ij->i", phi, phi) / gamma
    eng = BlockedGreedy(phi, np.ones(N, dtype=bool), GreedyState(d, gamma), q0, weights=w,
                        active=active, block=block, dtype=dtype)
    H = gamma * np.eye(d)
    free = np.ones(N, dtype=bool)
    inside = 0
    for t in range(80):
        if t and t % every == 0:
            w = rng.uniform(0.05, 1.0, N)
            inside += eng._k > 0
            eng.reweight(w)
        ref = np.where(free, w * _scores(H, phi), -np.inf)
        i, gain, v = eng.next()
        assert i == int(np.argmax(ref)), t
        np.testing.assert_allclose(v, np.sqrt(w[i]) * phi[i])
        H += np.outer(v, v)
        free[i] = False
    assert eng.state.logdet == pytest.approx(np.linalg.slogdet(H)[1], rel=1e-10)
    assert inside >= 5  # the mid-block path ran


def _literal_adpo(data, n, *, gamma, fit_ridge, m=None, seed=0):
    """Algorithm 1 with alpha = 0, written from the pseudocode: refit theta_hat at t = 1, 2, 4,
    ... on the told labels (theta_hat_0 = 0), w = Lemma 1's weights, argmax over the unselected
    rows (or a random subset of m, the shared stream) of w_i phi_i^T H^{-1} phi_i by a fresh
    solve, H += w_i phi_i phi_i^T with the weight frozen at pick time."""
    rng = np.random.default_rng(seed)
    H = gamma * np.eye(data.d)
    picks: list[int] = []
    for t in range(1, n + 1):
        if t == 1 or (t & (t - 1)) == 0:
            theta = (np.zeros(data.d) if not picks else
                     fit_dpo(data.phi[picks], data.b[picks], data.beta, data.s[picks],
                             fit_ridge=fit_ridge).theta)
            w = dpo_weights(data.phi, data.b, data.beta, theta)
        free = np.setdiff1d(np.arange(data.N), picks)
        cand = free if m is None else np.sort(rng.choice(free, size=m, replace=False))
        i = int(cand[int(np.argmax(w[cand] * _scores(H, data.phi[cand])))])
        H += w[i] * np.outer(data.phi[i], data.phi[i])
        picks.append(i)
    return picks


@pytest.mark.parametrize("kw", [{}, {"record_kappa": True}, {"n_candidates": 24}])
def test_adpo_is_literal_algorithm_1(env, kw):
    # full argmax (blocked engine, reweighted at refits), record_kappa (incremental, all rows
    # exact) and the random subset (incremental, stale bounds across refits)
    ref = _literal_adpo(env, 70, gamma=1.0, fit_ridge=1e-3, m=kw.get("n_candidates"), seed=5)
    got = make_selector("adpo", env, alpha=0.0, seed=5, **kw).select(70)
    assert got.tolist() == ref


# ----------------------------------------------------------------- selectors == greedy_select
@pytest.mark.parametrize("candidates", ["all", 16])
def test_fixed_weight_selectors_pick_what_greedy_select_picks(env, candidates):
    m = None if candidates == "all" else candidates
    w_star = dpo_weights(env.phi, env.b, env.beta, env.theta_star)
    ref = greedy_select(env.phi, 120, gamma=1.0, weights=w_star, candidates=candidates, seed=7)
    oracle = make_selector("oracle", env, n_candidates=m, seed=7)
    assert oracle.select(120).tolist() == ref.indices.tolist()
    assert oracle.logdet_ == pytest.approx(ref.logdet, rel=1e-12)
    # the same arithmetic, not only the same argmax: the engine sees sqrt(w_i) phi_i as
    # greedy_select does, so every gain agrees to the last bit
    assert oracle.gains_ == ref.gains.tolist()
    # ADPO+ at its theta_hat (the MLE on all logged labels), alpha = 0: Algorithm 2 is greedy
    plus = make_selector("adpo+", env, alpha=0.0, n_candidates=m, seed=7)
    got = plus.select(120)
    w_hat = dpo_weights(env.phi, env.b, env.beta, plus.theta_)
    ref = greedy_select(env.phi, 120, gamma=1.0, weights=w_hat, candidates=candidates, seed=7)
    assert got.tolist() == ref.indices.tolist()
    ref = greedy_select(env.phi, 120, gamma=0.5, candidates=candidates, seed=7)
    assert make_selector("apo", env, gamma=0.5, n_candidates=m, seed=7).select(120).tolist() \
        == ref.indices.tolist()


def test_float32_rescores_each_row_of_a_once_and_b_restarts_small():
    # Unit-norm rows: scores lie within float32's margin (1e-3) of each other, so the
    # sub-active set B widens within a block. Each row of A is re-scored exactly in float64 once
    # per block (then downdated in float64), and B starts the next block at most 1024 rows.
    # Measured: 79,251 rows re-scored; re-scoring B's rows at every sub-block start: 123,072;
    # B never shrinking back (it stayed all of A, 4x the float32 run time at N = 2^15): 221,504.
    rng = np.random.default_rng(0)
    V = rng.standard_normal((8000, 64))
    V /= np.linalg.norm(V, axis=1, keepdims=True)
    out = greedy_select(V, 2000, dtype=np.float32)
    assert np.array_equal(out.indices, greedy_select(V, 2000).indices)
    assert out.info["rescored"] < 100_000, out.info["rescored"]


@pytest.mark.parametrize("seed", [0, 1])
def test_float32_near_ties_are_decided_in_float64(seed):
    # Pairs of rows v and (1 + 3e-7) v: the scaled copy has the larger score by 6e-7 relative,
    # below float32's resolution of the refreshed scores. The float64 re-scoring of B decides
    # each pair as the float64 engine does; an engine that trusts the float32-refreshed scores
    # inside A (re-scoring skipped) picks otherwise within the first 40 picks (seeds 0-2).
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((500, 16)) * rng.uniform(0.5, 1.5, (500, 1))
    V = np.vstack([base, base * (1 + 3e-7)])
    out = greedy_select(V, 400, dtype=np.float32)
    assert np.array_equal(out.indices, greedy_select(V, 400).indices)
    assert out.info["rescored"] > 0


@pytest.mark.parametrize("seed", [0, 1])
def test_float32_reweighted_mid_block_decides_near_ties_in_float64(seed):
    # The near-tie pairs above, under weights replaced inside blocks (equal within a pair): the
    # new active set's scores come from the float32 bulk, so they must be re-scored in float64
    # before they decide a pick. Trusting them (marking them exact) picks otherwise.
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((500, 16)) * rng.uniform(0.5, 1.5, (500, 1))
    V = np.vstack([base, base * (1 + 3e-7)])
    q0 = np.einsum("ij,ij->i", V, V)
    engines = [BlockedGreedy(V, np.ones(1000, dtype=bool), GreedyState(16, 1.0), q0,
                             weights=np.ones(1000), dtype=dt, active=32, block=64)
               for dt in (np.float32, np.float64)]
    picks: list[list[int]] = [[], []]
    inside = 0
    for t in range(300):
        if t % 9 == 5:
            w = np.tile(rng.uniform(0.2, 1.0, 500), 2)
            inside += engines[0]._k > 0
            for eng in engines:
                eng.reweight(w)
        for eng, p in zip(engines, picks):
            p.append(eng.next()[0])
    assert picks[0] == picks[1]
    assert inside >= 10  # the mid-block path ran


# ------------------------------------------------------------------ row blocks on threads
class _SpyProducts(BulkProducts):
    """numpy's products, recording every row block they are given and who ran it."""

    def __init__(self, mutant: str | None = None) -> None:
        self.mutant, self.calls, self.lock = mutant, [], threading.Lock()

    def map_rows(self, fn, total, chunk, workers=None):
        if self.mutant == "drop_tail":  # the last partial block forgotten
            total -= total % chunk
        return super().map_rows(fn, total, chunk, workers)

    def rowsq(self, X, Wk):
        with self.lock:
            self.calls.append((threading.current_thread().name, blas_threads(), X.shape[0]))
        return super().rowsq(X, Wk)


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_map_rows_tiles_the_rows_once_on_the_workers_with_one_blas_thread(workers):
    seen, lock = [], threading.Lock()

    def fn(lo, hi):
        with lock:
            seen.append((lo, hi, threading.current_thread().name, blas_threads()))
    with threadpool_limits(2, user_api="blas"):
        BulkProducts().map_rows(fn, 10_001, 1000, workers)
        after = blas_threads()
    assert sorted((lo, hi) for lo, hi, _, _ in seen) == [
        (lo, min(lo + 1000, 10_001)) for lo in range(0, 10_001, 1000)]
    names = {name for _, _, name, _ in seen}
    if workers == 1:  # in the caller, BLAS as it was
        assert names == {threading.current_thread().name} and {t for *_, t in seen} == {2}
    else:             # on the pool, one BLAS thread each, restored afterwards
        assert all(n.startswith("adpo-rows") for n in names) and {t for *_, t in seen} == {1}
    assert after == 2


def test_blocked_greedy_runs_its_row_blocks_on_blas_threads_and_picks_the_same():
    """greedy_select pins BLAS to one thread for the run and spreads the row-block products
    over as many Python threads as BLAS had; the picks and gains do not depend on it. The
    mutant that forgets a partial row block (stale scores for the last rows) picks otherwise."""
    V = np.random.default_rng(3).standard_normal((5000, 24))
    runs = {}
    for threads, mutant in [(1, None), (2, None), (2, "drop_tail")]:
        spy = _SpyProducts(mutant)
        with threadpool_limits(threads, user_api="blas"):
            r = greedy_select(V, 600, rows_per_block=700, products=spy)
        runs[threads, mutant] = r
        assert {t for _, t, _ in spy.calls} == {1}  # one BLAS thread inside every product
        pooled = {name.startswith("adpo-rows") for name, _, rows in spy.calls if rows == 700}
        assert pooled == {threads == 2}  # the bulk refresh's row blocks: on the pool or not
    ref = greedy_select(V, 600, method="naive")
    for key in [(1, None), (2, None)]:
        np.testing.assert_array_equal(runs[key].indices, ref.indices)
        np.testing.assert_allclose(runs[key].gains, ref.gains, rtol=1e-10)
    assert not np.array_equal(runs[2, "drop_tail"].indices, ref.indices)


def _forked_map_rows(out):
    q = np.zeros(9)

    def fn(lo, hi):
        q[lo:hi] = lo
    BulkProducts().map_rows(fn, 9, 2, workers=2)
    out.put(q.tolist())


def test_map_rows_in_a_process_forked_after_the_pool_was_made():
    """A forked child inherits the parent's pool object but none of its threads; it must make
    its own (mutant: the pool keyed by worker count alone hangs here, caught by the timeout)."""
    import multiprocessing as mp
    BulkProducts().map_rows(lambda lo, hi: None, 9, 2, workers=2)  # the parent's pool exists
    ctx = mp.get_context("fork")
    out = ctx.Queue()
    child = ctx.Process(target=_forked_map_rows, args=(out,))
    child.start()
    child.join(timeout=20)
    hung = child.is_alive()
    if hung:
        child.kill()
    assert not hung and out.get(timeout=5) == [0, 0, 2, 2, 4, 4, 6, 6, 8]


def test_greedy_selectors_pick_with_one_blas_thread_and_fit_with_all():
    """A selector on the blocked engine runs its picks inside row_threads (one BLAS thread,
    the bulk refresh's row blocks on the pool) and its theta_hat fits with BLAS's threads.
    Mutant: no pin around the picks (Selector._picking) -> products see 2 BLAS threads."""
    data = gaussian_env(6000, 12, seed=4)
    sel = make_selector("adpo+", data, seed=0)
    spy = _SpyProducts()
    sel.products = spy
    fit_threads = []
    fit = sel._fit
    sel._fit = lambda idx, s: (fit_threads.append(blas_threads()), fit(idx, s))[1]
    with threadpool_limits(2, user_api="blas"):
        picks = sel.select(700)
        assert blas_threads() == 2
    assert {t for _, t, _ in spy.calls} == {1} and fit_threads and set(fit_threads) == {2}
    assert any(name.startswith("adpo-rows") for name, _, _ in spy.calls)
    with threadpool_limits(1, user_api="blas"):
        ref = make_selector("adpo+", data, seed=0).select(700)
    np.testing.assert_array_equal(picks, ref)


# ----------------------------------------------------------------- compaction in place
@pytest.mark.parametrize("mask", ["random", "all", "none", "last", "first_chunk_full"])
def test_compact_rows_in_place_is_numpys_boolean_index(mask):
    # sim.design.greedy._compact_rows moves the kept rows to the front of the engine's own copy
    # (a fresh array per compaction cost its page faults): the same rows in the same order as
    # X[keep], whatever the mask, with chunks that do not divide N
    from sim.design.greedy import _compact_rows
    rng = np.random.default_rng(3)
    X = rng.standard_normal((1000, 7))
    keep = {"random": rng.random(1000) < 0.6, "all": np.ones(1000, bool),
            "none": np.zeros(1000, bool), "last": np.arange(1000) == 999,
            "first_chunk_full": np.arange(1000) < 300}[mask]
    want = X[keep].copy()
    m = _compact_rows(X, keep, chunk=128)
    assert m == keep.sum()
    np.testing.assert_array_equal(X[:m], want)


def test_blocked_engine_compacts_its_own_copy_and_never_the_callers_rows():
    # every compaction after the first runs in place on the engine's copy; the caller's V
    # (here the bulk operand itself: float64, all rows eligible) is never written
    rng = np.random.default_rng(4)
    V = rng.standard_normal((3000, 6))
    before = V.copy()
    V.setflags(write=False)   # a write to V would raise
    ref = greedy_select(V, 2000, method="naive")
    out = greedy_select(V, 2000, method="blocked")
    assert out.info["compactions"] >= 3
    np.testing.assert_array_equal(out.indices, ref.indices)
    V.setflags(write=True)
    np.testing.assert_array_equal(V, before)
