"""REX (sim.design.rex): step-by-step agreement with a literal port of R's od_D_REX loop (a dense
solve per exchange), agreement with Frank-Wolfe and cvxpy, the Kiefer-Wolfowitz conditions at its
optimum, and mutants (a wrong exchange step, no leading batch, the block engine's Gram or M
update dropped, a stale Cholesky factor, one support order per leading row, R's version 0) that
fail."""

import inspect
import math
import types

import numpy as np
import pytest

import sim.design.rex as rex
from sim.design import cvxpy_design, fw_design, rex_design
from sim.design.common import chol, information_matrix, variances
from sim.validation import as_rng


def reference_rex(V, pi, rng, L, nullify=True):
    """One iteration of R's od_D_REX (OptimalDesign 1.0.3), literally: M solved afresh for every
    pair, M updated additively; with this module's documented differences (weights below 1e-14
    zeroed and pi renormalized after the pass) and its draws of the random orders (a permutation
    of the sorted leading batch, then one of the support). The variances that choose the batch
    and the LBE are computed as rex_design computes them: the LBE's k = argmin over the support
    is a near-tie by construction (the previous pass's last exchange equalizes two variances), so
    any other rounding may pick the other row."""
    pi = pi.copy()
    N, d = V.shape
    M = V.T @ (pi[:, None] * V)
    g = variances(V, chol(information_matrix(V, pi)))
    supp = np.flatnonzero(pi > 0)
    lead = np.sort(np.argpartition(-g, L - 1)[:L]) if L < N else np.arange(N)
    lx, kx = rng.permutation(lead), rng.permutation(supp)

    def exchange(k, l, only_nullifying, clip_l=True):
        nonlocal M
        X = V[[k, l]]
        cv = X @ np.linalg.solve(M, X.T)
        alpha = 0.5 * (cv[1, 1] - cv[0, 0]) / (cv[0, 0] * cv[1, 1] - cv[0, 1] ** 2 + 1e-24)
        alpha = min(pi[k], max(-pi[l], alpha) if clip_l else alpha)
        wk, wl = pi[k] - alpha, pi[l] + alpha
        if not only_nullifying or wk < 1e-14 or wl < 1e-14:
            pi[k], pi[l] = wk, wl
            M = M + alpha * (np.outer(V[l], V[l]) - np.outer(V[k], V[k]))

    kb, lb = supp[np.argmin(g[supp])], int(np.argmax(g))
    exchange(kb, lb, False, clip_l=False)          # the LBE: alpha = min(w[kb], alpha)
    only = nullify and pi[kb] < 1e-14
    for l in lx:
        for k in kx:
            exchange(k, l, only)
    pi[pi < 1e-14] = 0.0
    return pi / pi.sum()


def _versus_reference(rex_design, iterations=3, seed=7, batch=4):
    """max |pi - pi_ref| after each of 1..iterations REX iterations, where pi_ref is the literal
    R iteration from rex_design's own previous pi (same random draws). batch=4 is R's gamma
    (L = 4 d = 20 rows); "auto" takes L = min(N, 4 d, max(ceil(d / 2), ceil(N / K))) for the
    K support rows of each iteration (rex.leading_batch), here written out independently."""
    V = _instance()
    N, d = V.shape
    pi = np.full(N, 1 / N)              # a full support: every pass has ~20 x 70 pairs
    rng = as_rng(seed)
    errs = []
    for it in range(1, iterations + 1):
        r = rex_design(V, pi0=np.full(N, 1 / N), efficiency=1 - 1e-14, max_iter=it, seed=seed,
                       batch=batch)
        assert not r.converged and r.iterations == it
        K = int((pi > 0).sum())
        L = 4 * d if batch == 4 else min(N, 4 * d, max(math.ceil(d / 2), math.ceil(N / K)))
        assert r.info["leading"][-1] == L
        errs.append(float(np.abs(r.pi - reference_rex(V, pi, rng, L=L)).max()))
        pi = r.pi
    return errs, r


def _mutant(old, new):
    """sim.design.rex with one line of its source replaced (a mutant of the block engine), run
    by Python (its kernels not compiled: the compiled kernels are this same source)."""
    src = inspect.getsource(rex)
    assert src.count(old) == 1, old
    mod = types.ModuleType("rex_mutant")
    mod.__dict__["__package__"] = "sim.design"
    exec(compile(src.replace(old, new), "rex_mutant", "exec"), mod.__dict__)
    mod._KERNEL = mod._block_kernel
    return mod


def _instance(seed=4, N=70, d=5):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((N, d)) * rng.uniform(0.3, 2.0, (N, 1))


def _python_kernel(monkeypatch):
    """Run the exchange kernel's source in Python, not compiled."""
    rex._kernel()                    # compiled first (else the patch would be overwritten)
    monkeypatch.setattr(rex, "_KERNEL", rex._block_kernel)


@pytest.mark.parametrize("kernel", ["compiled", "python"])
@pytest.mark.parametrize("block", [3, 128])
def test_block_engine_equals_the_literal_r_loop(monkeypatch, block, kernel):
    monkeypatch.setattr(rex, "BLOCK", block)  # 3: many blocks per leading row, l inside some
    if kernel == "python":
        _python_kernel(monkeypatch)
    errs, r = _versus_reference(rex_design)
    assert max(errs) <= 1e-12, errs
    assert r.info["exchanges"] > 200


def test_auto_batch_equals_the_literal_r_loop_with_its_leading_batch():
    """The default batch="auto" changes only L, iteration by iteration (here 3 rows from the
    uniform start's 70 support rows, not R's 20): the rest is still R's iteration, to 1e-12."""
    errs, r = _versus_reference(rex_design, batch="auto")
    assert max(errs) <= 1e-12, errs
    assert r.info["leading"][0] == 3 and max(r.info["leading"]) < 20


@pytest.mark.parametrize("N,d,K,L", [
    (10**6, 32, 308, 128),       # N / K large: R's 4 d rows
    (10**4, 256, 256, 128),      # N / K = 39.06: d / 2
    (10**4, 128, 128, 79),       # N / K = 78.1: ceil(N / K) between d / 2 and 4 d
    (10**4, 128, 1611, 64),      # the optimum's support: d / 2
    (300, 100, 30, 50),          # ceil(d / 2) = 50 > N / K = 10
    (40, 7, 7, 6),               # ceil(N / K) = 6 > ceil(d / 2) = 4
    (1000, 7, 900, 4),           # ceil(d / 2) = 4
])
def test_auto_leading_batch_rule(N, d, K, L):
    assert rex.leading_batch("auto", N, d, K) == L
    assert rex.leading_batch(4, N, d, K) == min(N, 4 * d)      # R's gamma = 4, whatever K


def test_auto_batch_needs_fewer_exchanges_than_rs_gamma_4_on_a_large_support():
    """N = 2000, d = 32: the optimum's support holds 186 rows, so R's L = 128 leading rows make
    up to 128 x 186 exchanges a pass; "auto" (L = 63, then 16 to 27 here) reaches the same
    certificate and log det with a third of them (measured: 50,464 against 159,134; 21 passes
    against 11). Mutants: "auto" = R's 4 d rows, or floored at d / 4, or with K = N: red."""
    V = np.random.default_rng(8).standard_normal((2000, 32))
    r4 = rex_design(V, efficiency=1 - 1e-8, seed=0, batch=4)
    ra = rex_design(V, efficiency=1 - 1e-8, seed=0)
    assert r4.converged and ra.converged
    assert abs(r4.logdet - ra.logdet) <= 1e-7 * abs(r4.logdet)
    assert ra.info["exchanges"] < 0.5 * r4.info["exchanges"], (ra.info, r4.info)


def test_the_kernel_is_compiled_when_numba_is_installed():
    """The extra 'fast' (installed by make test) compiles the kernel; without numba the same
    source runs in Python (the test above runs both)."""
    assert rex_design(_instance(), seed=0).info["exchanges"] > 0
    try:
        import numba  # noqa: F401
    except ImportError:
        assert not rex.COMPILED and rex._kernel() is rex._block_kernel
    else:
        assert rex.COMPILED and rex._kernel().py_func is rex._block_kernel
        assert rex._kernel().signatures and rex.exchange_step.signatures


def test_the_kernel_compiles_where_numba_cannot_cache(monkeypatch):
    """A read-only tree without a writable user cache: numba refuses cache=True ("no locator
    available"); REX then compiles without a cache instead of failing."""
    numba = pytest.importorskip("numba")       # installed by make test (the extra 'fast')
    real = numba.njit

    def njit(*args, **kw):
        if kw.get("cache"):
            raise RuntimeError("cannot cache function 'f': no locator available for file 'x'")
        return real(*args, **kw)
    monkeypatch.setattr(numba, "njit", njit)
    monkeypatch.setattr(rex, "exchange_step", getattr(rex.exchange_step, "py_func",
                                                      rex.exchange_step))
    monkeypatch.setattr(rex, "_KERNEL", None)
    kernel = rex._kernel()
    assert kernel.py_func is rex._block_kernel and not kernel._cache_hits
    errs, _ = _versus_reference(rex_design, iterations=1)
    assert kernel.signatures and max(errs) <= 1e-12


@pytest.mark.parametrize("old,new", [
    ("G[p, r] -= u * wk[r] + v * wl[r]", "pass"),               # stale Gram within a block
    ("for r in range(j + 1, p + 1):", "for r in range(j + 1, p):"),   # diagonal not updated
    ("wl[p] = G[q, p]", "wl[p] = G[p, q]"),                      # l's column from the stale upper
    ("v = s01 * wk[p] + s11 * wl[p]", "v = -s01 * wk[p] + s11 * wl[p]"),  # S not symmetric
    ("blas.dsyrk(sign, Z, beta=1.0", "blas.dsyrk(0.0, Z, beta=1.0"),   # M not updated
    ("if r.size:", "if r.size and sign > 0:"),                   # M never loses mass
    ("                C = None\n", "\n"),                          # a stale Cholesky factor
    ("                cache.clear()\n", "\n"),                     # stale Y, Gram across factors
    ("                yl = None\n", "\n"),                         # a stale C^{-1} v_l
    ("        yl = None\n        for s", "        for s"),         # the previous l's C^{-1} v_l
    ("lx, kx = rng.permutation(lead), rng.permutation(supp)",    # R draws kx once per iteration
     "lx, kx = rng.permutation(lead), rng.permutation(rng.permutation(supp))"),
    ("only_null = nullify and pi[k0] < NULL", "only_null = False"),  # version 0, not R's 1
])
def test_block_engine_mutants_depart_from_the_literal_r_loop(monkeypatch, old, new):
    mut = _mutant(old, new)
    monkeypatch.setattr(mut, "BLOCK", 3)
    errs, _ = _versus_reference(mut.rex_design)
    assert max(errs) > 1e-4, errs


def _g(V, pi):
    """g_i = v_i^T M(pi)^{-1} v_i by a dense solve (independent of the solvers' factorizations)."""
    M = V.T @ (pi[:, None] * V)
    return np.einsum("ij,ij->i", V, np.linalg.solve(M, V.T).T)


@pytest.mark.parametrize("seed,N,d,block", [(0, 40, 3, 128), (1, 150, 7, 128), (2, 400, 10, 128),
                                           (2, 400, 10, 4)])
def test_rex_agrees_with_fw_and_cvxpy(monkeypatch, seed, N, d, block):
    monkeypatch.setattr(rex, "BLOCK", block)   # 4: many blocks per leading row
    rng = np.random.default_rng(seed)
    V = rng.standard_normal((N, d)) * rng.uniform(0.2, 2.0, (N, 1))
    r = rex_design(V, efficiency=1 - 1e-9, seed=seed)
    fw = fw_design(V, efficiency=1 - 1e-9)
    cv = cvxpy_design(V, tol_gap_rel=1e-12, tol_gap_abs=1e-12, tol_feas=1e-12)
    assert r.converged and r.solver == "rex"
    assert r.efficiency >= 1 - 1e-9
    for other in (fw, cv):
        assert abs(r.logdet - other.logdet) <= 1e-6 * max(1.0, abs(other.logdet)), other.solver
    # reported numbers are those of the returned pi, recomputed independently here
    assert r.logdet == pytest.approx(np.linalg.slogdet(V.T @ (r.pi[:, None] * V))[1], abs=1e-10)
    assert r.efficiency == pytest.approx(d / _g(V, r.pi).max(), rel=1e-9)
    assert r.pi.min() >= 0 and r.pi.sum() == pytest.approx(1, abs=1e-12)


def test_kiefer_wolfowitz_equivalence_at_the_rex_optimum():
    V = np.random.default_rng(3).standard_normal((300, 6))
    r = rex_design(V, efficiency=1 - 1e-11, seed=0)
    g = _g(V, r.pi)
    assert g.max() == pytest.approx(6, rel=1e-10)            # max_i g_i = d at the optimum
    assert np.all(np.abs(g[r.pi > 1e-6] - 6) < 1e-6)         # g_i = d on the support
    assert r.info["exchanges"] > 0


def test_same_seed_same_design_and_certificate_target_is_met():
    V = np.random.default_rng(5).standard_normal((200, 6))
    a = rex_design(V, efficiency=1 - 1e-7, seed=11)
    b = rex_design(V, efficiency=1 - 1e-7, seed=11)
    assert np.array_equal(a.pi, b.pi)
    loose = rex_design(V, efficiency=0.99, seed=11)
    assert loose.efficiency >= 0.99 and loose.iterations <= a.iterations


def test_wrong_exchange_step_fails_to_certify(monkeypatch):
    V = np.random.default_rng(1).standard_normal((150, 7))
    assert rex_design(V, efficiency=1 - 1e-9, max_iter=30).converged
    _python_kernel(monkeypatch)                  # the kernel that reads exchange_step per call
    assert rex_design(V, efficiency=1 - 1e-9, max_iter=30).converged
    right = rex.exchange_step
    monkeypatch.setattr(rex, "exchange_step", lambda gk, gl, gkl: 2 * right(gk, gl, gkl))
    bad = rex_design(V, efficiency=1 - 1e-9, max_iter=30)
    assert not bad.converged and bad.efficiency < 1 - 1e-4


def test_without_the_leading_batch_it_fails_to_certify_in_the_same_budget():
    V = np.random.default_rng(1).standard_normal((150, 7))
    assert rex_design(V, efficiency=1 - 1e-9, max_iter=20).converged       # 8 iterations here
    # batch -> 0 leaves L = 1 (the argmax only): Boehning's vertex exchange, ~60 iterations
    assert not rex_design(V, efficiency=1 - 1e-9, max_iter=20, batch=1e-9).converged


def test_bad_inputs():
    V = np.random.default_rng(0).standard_normal((30, 4))
    with pytest.raises(ValueError, match="efficiency"):
        rex_design(V, efficiency=1.0)
    with pytest.raises(ValueError, match="batch"):
        rex_design(V, batch=0)
    with pytest.raises(ValueError, match="rank"):
        rex_design(np.c_[V, V[:, :1]])


def test_max_seconds_stops_once_past_the_time_and_reports_it():
    V = np.random.default_rng(2).standard_normal((300, 8))
    assert rex_design(V, efficiency=1 - 1e-9).converged
    r = rex_design(V, efficiency=1 - 1e-9, max_seconds=1e-9)   # R's t.max; the start is longer
    assert not r.converged and r.iterations == 0 and r.efficiency < 1 - 1e-9
    with pytest.raises(ValueError, match="max_seconds"):
        rex_design(V, max_seconds=0)
