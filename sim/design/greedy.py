"""Greedy D-optimal selection with rank-one updates (paper sec. 3, eq. 10 and Algorithm 2).

The greedy rule picks, among the eligible rows, the i maximizing

    log det(H + v_i v_i^T) = log det H + log(1 + v_i^T H^{-1} v_i)     (matrix determinant lemma)

so only the scores s_i = v_i^T H^{-1} v_i are needed. After picking v, with u = H^{-1} v and
w = u / sqrt(1 + v^T u),

    (H + v v^T)^{-1} = H^{-1} - w w^T                                  (Sherman-Morrison)
    s_i  <-  s_i - (w^T v_i)^2                                          (score downdate)

so every score only shrinks (log det is submodular in the chosen set). All engines keep H in ONE
state object, :class:`GreedyState` (H^{-1} by buffered Sherman-Morrison updates, log det H),
and share the linear algebra of :mod:`sim.linalg`:

* ``naive``: recompute all scores from a fresh Cholesky factor of H at every pick,
  O(N d^2) per pick. The reference the fast engines are tested against.
* ``maintained``: keep all N scores and downdate them after each pick, O(N d) per pick
  (a matrix-vector product over all rows). Needed for ``record_kappa``. It is the incremental
  engine (:class:`sim.design.incremental.IncrementalGreedy`) with ``track_all=True``.
* ``subset`` (``candidates=m``): the argmax over a fresh random subset of m eligible rows per
  pick (paper sec. 3.1), drawn by :class:`sim.design.candidates.CandidateSampler` — the stream
  the selectors use too — and scored by the incremental engine's lazy bounds.
* ``blocked`` (default for the full argmax, :class:`BlockedGreedy`): the downdates are delayed
  and applied to all rows in blocks of up to ``block`` picks as one matrix-matrix product (BLAS-3,
  ~5x the speed of the matrix-vector form here). Inside a block, only an *active set* A of the K
  rows with the largest scores is kept exact; the argmax over A is the global argmax as long as
  it exceeds tau, the largest block-start score outside A, because scores only shrink (the
  lazy-greedy argument of Minoux 1978). When it does not, the block ends and all scores are
  brought up to date. The same argument is applied once more inside A: only a sub-active set B
  of the best rows of A is downdated at every pick (O(|B| d)), and a pick from B is certified
  against tau2, the largest score in A outside B; when B's best falls below tau2, all of A is
  brought up to date by one (|A| x d) @ (d x k2) product for the k2 picks of that sub-block and
  a new B is chosen. A per-pick matrix-vector product over all of A (memory-bound, ~1 ms at
  |A| = 4096, d = 384) thus becomes a matrix product, and A can be large enough for long blocks.
  The engine is resumable (one pick per call), so the selectors run it too.

With fixed weights all of them give the same picks (ties go to the lowest index). The lazy
argument needs scores that only shrink. The blocked engine keeps the *unweighted* forms
q_i = V_i^T H^{-1} V_i and scores w_i q_i, so weights replaced between picks (ADPO's refits,
:meth:`BlockedGreedy.reweight`) only rescale exact q_i; the incremental engine keeps q_i as stale
upper bounds, which stay bounds whatever the new weights are.

``dtype=np.float32`` runs the blocked refresh in single precision (twice the BLAS speed). The
sub-active set B is then re-scored exactly in float64 whenever it is chosen, and a pick is
accepted only if it beats tau and tau2 by a relative margin (``F32_MARGIN``) that covers the
float32 error of the stale scores they come from; the benchmark checks the picks against the
float64 engines.

Downdating s_i <- s_i - (w^T v_i)^2 from s_i ~ ||v||^2 / gamma down to scores 10^4 times smaller
cancels digits: the absolute error stays ~ eps times the score at the last exact evaluation. The
blocked engine therefore recomputes every score exactly from H^{-1} (O(N d^2), a few times per
run) whenever the top score has shrunk by ``REANCHOR`` (float32 bulk; ``REANCHOR_F64`` for a
float64 one) since the last exact evaluation, which keeps the relative error of every stale
score below ~REANCHOR * eps * sqrt(d). (Without this,
float32 refreshes made a wrong pick after 27,664 of 32,768 picks at N = 2^16, d = 384, where two
scores differed by 1.9e-5 relative.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import os
import time

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from ..data import as_groups, check_indices
from ..linalg import chol_quad_forms, cholesky, inv_from_chol, logdet_chol
from ..validation import Seed, as_matrix, as_vector, positive_int
from .candidates import CandidateSampler
from .common import DesignResult, check_gamma, check_weights, design_vectors
from .groups import GroupCap

F32_MARGIN = 1e-3     # relative slack on tau when the stale scores were refreshed in float32
REANCHOR = 8.0        # recompute all scores exactly whenever the top score shrank by this factor
REANCHOR_F64 = 64.0   # the same with a float64 bulk (its stale scores carry ~eps64 * 64 * sqrt(d))
_REFRESH_ROWS = 2048  # rows per GEMM chunk in a refresh: its rows x block product stays in cache
_ACTIVE_ROWS = 1024   # rows per GEMM chunk when the active set is brought up to date
_RESCORE_ROWS = 256   # rows per (rows x d) @ (d x d) chunk of the float64 re-scoring of B


class BulkProducts:
    """The products of the blocked engine whose work grows with the number of rows: the bulk
    refresh ||W_k v_i||^2 over a row block, the active set's sub-block refresh (the same product
    on A) and the exact re-scoring v_i^T H^{-1} v_i at a re-anchor. numpy's BLAS here;
    :mod:`sim.design.torch_greedy` supplies torch's (``--backend torch`` on the CPU), so both
    backends run this one engine and differ only in who multiplies."""

    name = "numpy"
    parallel_rows = True  # map_rows may use Python threads (False: products thread themselves)

    def map_rows(self, fn: Callable[[int, int], None], total: int, chunk: int,
                 workers: int | None = None) -> None:
        """Call ``fn(lo, hi)`` for the row blocks [lo, hi) of [0, total), ``chunk`` rows each
        (the blocks are disjoint, so ``fn`` may write its slice of a shared array).

        The blocks run on ``workers`` Python threads (None: inside :func:`row_threads`, as
        many as BLAS had when it was entered; elsewhere as many as BLAS has now) with BLAS
        pinned to one thread meanwhile (numpy releases the GIL in its
        products). The work and every block's arithmetic are those of a plain loop; what
        changes is who waits: a multi-threaded GEMM on small operands synchronises its threads
        inside every call, which on a busy machine (another process on one of the 2 cores) made
        the blocked greedy 1.5-2.5x slower in A/B runs, while independent row blocks do not
        wait for each other (``bench_greedy`` measures the engine beside a busy core)."""
        starts = range(0, total, chunk)
        if workers is None:
            workers = _ROW_WORKERS.get() or blas_threads()
        workers = min(workers, len(starts)) if self.parallel_rows else 1
        if workers <= 1:
            for lo in starts:
                fn(lo, min(lo + chunk, total))
            return
        with _blas_controller().limit(limits=1, user_api="blas"):
            list(_pool(workers).map(lambda lo: fn(lo, min(lo + chunk, total)), starts))

    def rowsq(self, X: np.ndarray, Wk: np.ndarray) -> np.ndarray:
        """||W_k x_i||^2 for the rows of X (m, d), W_k (k, d) in X's dtype -> (m,)."""
        C = X @ Wk.T
        return np.einsum("ij,ij->i", C, C)

    def quad(self, X: np.ndarray, h_inv: np.ndarray) -> np.ndarray:
        """x_i^T H^{-1} x_i for the float64 rows of X (m, d) -> (m,)."""
        return np.einsum("ij,ij->i", X @ h_inv, X)

    def rows(self, phi: np.ndarray) -> Any:
        """The incremental engine's products over the rows phi (N, d) on this backend
        (:class:`sim.design.incremental.RowProducts`)."""
        from .incremental import RowProducts
        return RowProducts(phi)


_CONTROLLER: Any = None
_POOLS: dict[tuple[int, int], ThreadPoolExecutor] = {}


def _blas_controller() -> Any:
    """threadpoolctl's controller of the loaded BLAS libraries (made once, on first use)."""
    global _CONTROLLER
    if _CONTROLLER is None:
        from threadpoolctl import ThreadpoolController
        _CONTROLLER = ThreadpoolController().select(user_api="blas")
    return _CONTROLLER


def blas_threads() -> int:
    """The number of BLAS threads in effect now (1 under ``threadpool_limits(1)``)."""
    return max([int(i.get("num_threads") or 1) for i in _blas_controller().info()] or [1])


_ROW_WORKERS: ContextVar[int] = ContextVar("adpo_row_workers", default=0)


@contextmanager
def row_threads() -> Iterator[int]:
    """Run the blocked engine's picks with one BLAS thread: BLAS is pinned to one thread
    inside, and :meth:`BulkProducts.map_rows` spreads the row-block products over as many
    Python threads as BLAS had on entry (yielded). The per-pick products (d x d and |B| x d)
    are too small to share between threads, and a multi-threaded BLAS call on them waits for
    its threads inside every call. Used by :func:`greedy_select` and by the greedy selectors'
    picks (not their fits of theta_hat, which keep BLAS's threads)."""
    workers = _ROW_WORKERS.get() or blas_threads()
    token = _ROW_WORKERS.set(workers)
    try:
        if workers <= 1:
            yield workers
        else:
            with _blas_controller().limit(limits=1, user_api="blas"):
                yield workers
    finally:
        _ROW_WORKERS.reset(token)


def _pool(workers: int) -> ThreadPoolExecutor:
    """A pool of ``workers`` threads for :meth:`BulkProducts.map_rows`, one per process: a
    process forked after the pool was made has none of its threads (an inherited pool would
    queue work that never runs), so the key holds the process id."""
    key = (os.getpid(), workers)
    if key not in _POOLS:
        _POOLS[key] = ThreadPoolExecutor(workers, thread_name_prefix="adpo-rows")
    return _POOLS[key]


def _float_dtype(dtype: DTypeLike) -> np.dtype:
    dt = np.dtype(dtype)
    if dt not in (np.float32, np.float64):
        raise ValueError(f"dtype: float32 or float64, got {dt}")
    return dt


class RankOneBuffer:
    """The Sherman-Morrison bookkeeping shared by :class:`GreedyState` and the torch engine's
    state: ``_add(v)`` computes u = H^{-1} v, the gain log(1 + v^T u) and w = u / sqrt(1 + v^T u)
    (so (H + v v^T)^{-1} = H^{-1} - w w^T), buffers w and v in ``_W`` / ``_Vp`` (``_flush`` rows,
    ``_k`` used) and, when the buffer is full, calls ``_fold()`` and, every ``_refresh``
    additions, ``_recompute()``. Subclasses provide ``solve``, ``_fold``, ``_recompute`` and
    ``_cast`` (v in the dtype of H^{-1}), on numpy arrays or torch tensors alike."""

    _W: Any
    _Vp: Any
    _k: int
    _flush: int
    _refresh: int
    logdet: float
    n_added: int

    def solve(self, v: Any) -> Any:
        raise NotImplementedError

    def _fold(self) -> None:
        raise NotImplementedError

    def _recompute(self) -> None:
        raise NotImplementedError

    def _cast(self, v: Any) -> Any:
        return v

    def _add(self, v: Any) -> tuple[float, Any]:
        """H <- H + v v^T without checks: (gain log(1 + v^T H^{-1} v), w) with
        (H + v v^T)^{-1} = H^{-1} - w w^T."""
        u = self.solve(self._cast(v))
        s = max(float(v @ u), 0.0)  # v^T H^{-1} v >= 0; clip rounding below 0 for v ~ 0
        w = u / np.sqrt(1.0 + s)
        self._W[self._k] = w
        self._Vp[self._k] = v
        self._k += 1
        gain = float(np.log1p(s))
        self.logdet += gain
        self.n_added += 1
        if self._k == self._flush:
            self._fold()
            if self.n_added % self._refresh < self._flush:
                self._recompute()
        return gain, w


class GreedyState(RankOneBuffer):
    """H = gamma I + sum of added v v^T, kept through H^{-1} (Sherman-Morrison), and log det H.

    The rank-one terms w w^T of ``H^{-1} <- H^{-1} - w w^T`` are buffered and folded into the
    stored matrix ``flush`` at a time by one symmetric rank-k BLAS update, so :meth:`add` costs
    O(d^2) (one product with H^{-1}) plus O(k d). Every ``refresh`` additions H^{-1} and log det H
    are recomputed from a Cholesky factor of H itself, so rounding cannot accumulate over tens of
    thousands of updates. Never forms an N x N or N x d x d array.

    Args:
        d: dimension. gamma: ridge of H_0 = gamma I (> 0). dtype: of H^{-1} and the scores.
    """

    def __init__(self, d: int, gamma: float, dtype: DTypeLike = np.float64, *, flush: int = 64,
                 refresh: int = 4096) -> None:
        self.d = positive_int(d, "d")
        self.gamma = check_gamma(gamma, allow_zero=False)
        self.dtype = _float_dtype(dtype)
        self._flush = positive_int(flush, "flush")
        self._refresh = positive_int(refresh, "refresh")
        self._h_inv = np.eye(self.d, dtype=self.dtype) / self.gamma  # excluding pending terms
        self._H = self.gamma * np.eye(self.d)                         # float64, exact sums
        self._W = np.empty((self._flush, self.d), dtype=self.dtype)   # pending w rows
        self._Vp = np.empty((self._flush, self.d))                    # pending v rows (for H)
        self._k = 0
        self.logdet = self.d * float(np.log(self.gamma))
        self.n_added = 0

    # -------------------------------------------------------------- queries
    @property
    def h_inv(self) -> np.ndarray:
        """H^{-1}, (d, d) (folds the pending rank-one terms in first)."""
        self._fold()
        return self._h_inv

    def solve(self, v: np.ndarray) -> np.ndarray:
        """H^{-1} v for v (d,) or (d, m)."""
        u = self._h_inv @ v
        if self._k:
            W = self._W[:self._k]
            u = u - W.T @ (W @ v)
        return u

    def scores(self, V: ArrayLike) -> np.ndarray:
        """v_i^T H^{-1} v_i for the rows of V, (m, d) -> (m,). O(m d^2)."""
        V = as_matrix(V, "V", n_cols=self.d, dtype=self.dtype)
        s = np.einsum("ij,ij->i", V @ self._h_inv, V)
        if self._k:
            C = V @ self._W[:self._k].T
            s -= np.einsum("ij,ij->i", C, C)
        return s

    # -------------------------------------------------------------- updates
    def add(self, v: ArrayLike) -> float:
        """H <- H + v v^T for v (d,); returns the gain log(1 + v^T H^{-1} v) = delta log det H."""
        v = as_vector(v, "v", length=self.d)
        return self._add(v)[0]

    def _cast(self, v: np.ndarray) -> np.ndarray:
        return v.astype(self.dtype, copy=False)

    def _fold(self) -> None:
        if not self._k:
            return
        W, Vp = self._W[:self._k], self._Vp[:self._k]
        # One GEMM for k rank-one terms (in place; W^T W is symmetric up to rounding, and the
        # periodic recompute from H re-symmetrises).
        self._h_inv -= W.T @ W
        self._H += Vp.T @ Vp
        self._k = 0

    def _recompute(self) -> None:
        # H^{-1} from a Cholesky factor of the exactly accumulated H: resets Sherman-Morrison drift.
        L = cholesky(self._H, "H")
        self._h_inv = np.ascontiguousarray(inv_from_chol(L), dtype=self.dtype)
        self.logdet = logdet_chol(L)


# --------------------------------------------------------------------------- batch selection
def greedy_select(V: ArrayLike, n: int, *, gamma: float = 1.0, weights: ArrayLike | None = None,
                  candidates: str | int = "all", seed: Seed | None = None,
                  exclude: ArrayLike | None = None, dtype: DTypeLike = np.float64,
                  record_kappa: bool = False, method: str = "auto", active: int = 512,
                  block: int = 256, initial: ArrayLike | None = None, replace: bool = False,
                  group: ArrayLike | None = None, max_per_prompt: int | None = None,
                  rows_per_block: int = _REFRESH_ROWS, sub_active: int = 128,
                  products: BulkProducts | None = None) -> DesignResult:
    """Greedy D-optimal selection of n rows (paper eq. 10; Algorithm 2 with fixed weights).

    Maximizes log det(gamma I + sum_{i in S} v_i v_i^T) one pick at a time, v_i = sqrt(w_i) V_i.

    Args:
        V: (N, d) candidate vectors. n: number of picks (<= eligible rows).
        gamma: ridge of H_0 = gamma I, > 0 (it keeps the first d picks' scores finite; for
            rank-deficient V it is what makes the design well defined).
        weights: None or (N,) >= 0 per-candidate weights.
        candidates: "all" (exact argmax over the eligible rows) or an int m: at each pick the
            argmax over a fresh uniform random subset of m eligible rows (the paper's m = 256).
        seed: int or numpy Generator; required when candidates is an int.
        exclude: indices that may not be picked (e.g. already labelled).
        initial: indices already in the design: H_0 = gamma I + sum_{initial} v v^T; they are
            not picked again (use it to extend a design, e.g. after rounding).
        dtype: float64, or float32 for the blocked engine's bulk refresh (see module docstring);
            the other engines run in float64 whatever it is (``info['dtype']`` says which ran).
        record_kappa: also return kappa (n,): max over ALL i in [N] (picked and excluded rows
            included) of v_i^T H_{t-1}^{-1} v_i, divided by the picked row's score (Assumption 4).
            Uses the ``maintained`` engine (O(N d) per pick).
        method: "auto", "blocked", "maintained" or "naive" (full argmax only).
        active, block, sub_active: active-set size K, maximum block length and initial size of
            the sub-active set of the blocked engine (they change its speed, not its picks).
        replace: designs with replacement: a picked row stays eligible, and picking it again
            (a repeated label, each a fresh Bernoulli draw) gains log(1 + v^T H^{-1} v) with the
            current H, the same determinant lemma; ``indices`` may then repeat.
        group, max_per_prompt: (N,) int prompt id per row and the largest number of picks per
            prompt (e.g. 1: at most one query per prompt); after each pick that fills a prompt,
            all its rows are excluded (:class:`sim.design.groups.GroupCap`). Ties, engines and
            the gains are otherwise unchanged.
        rows_per_block: rows per matrix product in the bulk refresh. When ``V`` is a
            ``numpy.memmap`` (a pool's ``phi.npy``, :mod:`sim.store`) and the engine is the
            blocked one, V is never copied or converted as a whole: it is validated, scored and
            refreshed in blocks of this many rows (weights, if any, are applied to the scores),
            so the memory beyond the mapped file is O(N + rows_per_block (d + block) + K d).
        products: who runs the engines' bulk products (:class:`BulkProducts`; None: numpy):
            the blocked engine's, and through ``products.rows`` the incremental engine's
            (``candidates=m``, ``record_kappa``). The torch backend passes its own.

    Returns:
        DesignResult with ``indices`` (n,) in pick order, ``gains`` (n,), ``logdet`` of H_n,
        ``kappa`` if requested, ``info['evaluations']`` (rows scored exactly).
    """
    t0 = time.perf_counter()
    stream = (isinstance(V, np.memmap) and candidates == "all" and not record_kappa
              and method in ("auto", "blocked"))
    rows_per_block = positive_int(rows_per_block, "rows_per_block")
    Vd: np.ndarray
    w_eng: np.ndarray | None = None
    s_norm: np.ndarray | None = None
    if isinstance(V, np.memmap) and stream:  # a pool: never copied; validated in row blocks
        Vd = V
        w_eng, s_norm = _stream_source(V, weights, rows_per_block)
    else:
        Vd = design_vectors(V, weights)
    N, d = Vd.shape
    gamma = check_gamma(gamma, allow_zero=False)
    dt = _float_dtype(dtype)
    n = positive_int(n, "n", minimum=0)
    excl = check_indices([] if exclude is None else exclude, N, "exclude")
    init = check_indices([] if initial is None else initial, N, "initial")
    if not isinstance(replace, (bool, np.bool_)):
        raise ValueError(f"replace: expected true or false, got {replace!r}")
    cap = GroupCap(None if group is None else as_groups(group, N), max_per_prompt)
    eligible = np.ones(N, dtype=bool)
    eligible[excl] = False
    if not replace:
        eligible[init] = False
    n_elig = int(eligible.sum())
    room = cap.capacity(eligible, bool(replace))
    if (n > n_elig and not replace) or (n_elig == 0 and n > 0) or (room is not None
                                                                    and n > room):
        raise ValueError(f"n: cannot pick {n} {'rows' if replace else 'distinct rows'} from "
                         f"{n_elig} eligible ones (N = {N}, {excl.size} excluded"
                         f"{'' if room is None else f', at most {room} within max_per_prompt'}"
                         "); lower n")
    if isinstance(candidates, str):
        if candidates != "all":
            raise ValueError(f"candidates: 'all' or a positive int m, got {candidates!r}")
        m = None
    else:
        m = positive_int(candidates, "candidates")
    if method not in ("auto", "blocked", "maintained", "naive"):
        raise ValueError(f"method: auto, blocked, maintained or naive, got {method!r}")
    if m is not None and method not in ("auto",):
        raise ValueError("method: only 'auto' applies with a random candidate subset")
    if method == "auto":
        method = "subset" if m is not None else ("maintained" if record_kappa else "blocked")
    if record_kappa and method == "blocked":
        raise ValueError("record_kappa: needs the exact scores of all rows at every pick; use "
                         "method='maintained' (or 'auto')")

    state = GreedyState(d, gamma)
    logdet: float | None = None  # set here only when the engine does not extend ``state``
    for i in init:
        state._add(_row(Vd, w_eng, i))
    # Scores at the start: ||v||^2 / gamma, or from H_0^{-1} when an initial design is given
    # (unweighted q_i when the engine applies the weights itself, as for a streamed pool).
    if init.size:
        s0 = np.concatenate([state.scores(Vd[lo:lo + rows_per_block])
                             for lo in range(0, N, rows_per_block)])
    else:
        s0 = (np.einsum("ij,ij->i", Vd, Vd) if s_norm is None else s_norm) / gamma
    info = {"method": method, "candidates": "all" if m is None else m,
            "dtype": dt.name if method == "blocked" else "float64",  # the others: float64 only
            "replace": bool(replace), "max_per_prompt": cap.cap, "streamed": stream}
    if method in ("subset", "maintained"):
        sampler = CandidateSampler(m, seed)
        picks, gains, kappa, evals = _incremental(Vd, eligible, n, sampler, state, record_kappa,
                                                  s0, replace, cap, products)
    elif method == "naive":
        H0 = gamma * np.eye(d) + Vd[init].T @ Vd[init]
        picks, gains, kappa, evals = _naive(Vd, eligible, n, H0, record_kappa, replace, cap)
        logdet = state.logdet + float(np.sum(gains))
    else:
        # The whole run with one BLAS thread, the row-block products on as many Python
        # threads as BLAS had (row_threads).
        with row_threads():
            eng = BlockedGreedy(Vd, eligible, state, s0, weights=w_eng, dtype=dt,
                                active=positive_int(active, "active"),
                                block=positive_int(block, "block"), replace=bool(replace),
                                rows_per_block=rows_per_block, copy=not stream,
                                sub_active=sub_active, products=products)
            picks, gains = [], []
            for _ in range(n):
                i, gain, _v = eng.next()
                picks.append(i)
                gains.append(gain)
                eng.exclude(cap.picked(i))
        kappa, evals = None, eng.n_evals
        info.update(blocks=eng.n_blocks, reanchors=eng.n_reanchors,
                    compactions=eng.n_compactions, rescored=eng.n_rescored,
                    products=eng.products.name)
    info["evaluations"] = int(evals)
    gains = np.asarray(gains, dtype=np.float64)
    logdet = state.logdet if logdet is None else logdet
    return DesignResult(solver="greedy", indices=np.asarray(picks, dtype=np.int64),
                        logdet=float(logdet), support=n, iterations=n,
                        seconds=time.perf_counter() - t0, gains=gains,
                        kappa=None if kappa is None else np.asarray(kappa), info=info)


def _stream_source(V: np.memmap, weights: ArrayLike | None,
                   rows: int) -> tuple[np.ndarray | None, np.ndarray]:
    """Validate a memory-mapped (N, d) V in row blocks, without loading it: returns the
    validated weights (N,) or None, and the squared norms ||V_i||^2 (N,) float64."""
    if V.ndim != 2 or 0 in V.shape or V.dtype.kind != "f":
        raise ValueError(f"V: expected a non-empty 2-D float array (N x d), got shape {V.shape} "
                         f"and dtype {V.dtype}")
    N = V.shape[0]
    norms = np.empty(N)
    for lo in range(0, N, rows):
        X = np.asarray(V[lo:lo + rows], dtype=np.float64)
        norms[lo:lo + rows] = np.einsum("ij,ij->i", X, X)
    bad = np.flatnonzero(~np.isfinite(norms))  # a NaN or inf anywhere in a row makes it non-finite
    if bad.size:
        raise ValueError(f"V: row {int(bad[0])} holds a NaN or infinite value; clean the pool")
    return None if weights is None else check_weights(weights, N), norms


def _top(key: np.ndarray, K: int) -> tuple[np.ndarray, float]:
    """(the positions of the K largest entries of key (N,), ascending; the (K+1)-th largest
    entry, -inf when K = N): an active set and the bound tau on every score outside it."""
    if K < key.size:
        part = np.argpartition(-key, K)
        return np.sort(part[:K]), float(key[part[K]])
    return np.arange(key.size), -np.inf


def _compact_rows(X: np.ndarray, keep: np.ndarray, chunk: int = _REFRESH_ROWS) -> int:
    """Move the rows X[keep] (X (N, d), keep (N,) bool) to the front of X in place, in order;
    returns their count. A fresh (N, d) array would cost its page faults (~0.2 s at 65536 x 384
    float64 here, five times the copy itself). A row only moves towards the front and each
    chunk's kept rows are gathered into a temporary before any is written, so no row is
    overwritten before it has been read."""
    dst = 0
    for lo in range(0, keep.size, chunk):
        idx = np.flatnonzero(keep[lo:lo + chunk]) + lo
        if dst != lo or idx.size != min(chunk, keep.size - lo):   # (else: already in place)
            X[dst:dst + idx.size] = X[idx]
        dst += idx.size
    return dst


def _row(V: np.ndarray, w: np.ndarray | None, i: int) -> np.ndarray:
    """The design vector sqrt(w_i) V_i (d,) float64 of one row."""
    v = np.asarray(V[i], dtype=np.float64)
    return v if w is None else np.sqrt(w[i]) * v


def naive_greedy(V: ArrayLike, n: int, *, gamma: float = 1.0, weights: ArrayLike | None = None,
                 exclude: ArrayLike | None = None) -> DesignResult:
    """Reference greedy: every pick recomputes all scores ||L^{-1} v_i||^2 from a fresh Cholesky
    factor L of H (no Sherman-Morrison, no stored scores), O(N d^2) per pick."""
    return greedy_select(V, n, gamma=gamma, weights=weights, exclude=exclude, method="naive")


# --------------------------------------------------------------------------- engines
def _argmax_masked(scores: np.ndarray, eligible: np.ndarray) -> int:
    return int(np.argmax(np.where(eligible, scores, -np.inf)))


def _naive(V: np.ndarray, eligible: np.ndarray, n: int, H0: np.ndarray, record_kappa: bool,
           replace: bool = False, cap: Any = None):
    N, d = V.shape
    elig = eligible.copy()
    H = H0.copy()
    picks, gains, kappa = [], [], []
    for _ in range(n):
        s = chol_quad_forms(V, cholesky(H))
        i = _argmax_masked(s, elig)
        if record_kappa:
            kappa.append(s.max() / s[i])
        picks.append(i)
        gains.append(float(np.log1p(s[i])))
        elig[i] = bool(replace)
        if cap is not None:
            elig[cap.picked(i)] = False
        H += np.outer(V[i], V[i])
    return picks, gains, (kappa if record_kappa else None), n * N


def _incremental(V: np.ndarray, eligible: np.ndarray, n: int, sampler: Any, state: Any,
                 record_kappa: bool, s0: np.ndarray, replace: bool = False, cap: Any = None,
                 products: BulkProducts | None = None):
    """The maintained-scores (``sampler`` exhaustive, ``record_kappa``) and random-subset modes:
    both are :class:`~sim.design.incremental.IncrementalGreedy` with unit weights."""
    from .incremental import IncrementalGreedy
    eng = IncrementalGreedy(V, state, q0=s0, track_all=record_kappa, products=products)
    elig = eligible.copy()
    picks, gains, kappa = [], [], []
    for _ in range(n):
        i, score = eng.argmax(None, sampler(np.flatnonzero(elig)))
        if record_kappa:
            kappa.append(eng.kappa(None, score))
        gains.append(eng.add(V[i]))
        picks.append(i)
        elig[i] = bool(replace)
        if cap is not None:
            elig[cap.picked(i)] = False
    evals = eng.n_evals + (V.shape[0] * n if record_kappa else 0)
    return picks, gains, (kappa if record_kappa else None), evals


class BlockedGreedy:
    """The blocked lazy engine (module docstring), one exact argmax pick at a time.

    Resumable, so the selectors drive it pick by pick (ask/tell) and :func:`greedy_select` runs
    it n times; both get the same picks. Scores are w_i q_i with q_i = V_i^T H^{-1} V_i kept
    (downdated in blocks) for the eligible rows and fixed weights w (None: all ones), which
    :meth:`reweight` may replace between picks (ADPO between two refits, Algorithm 1 line 5).

    Args:
        V: (N, d) candidate vectors. eligible: (N,) bool rows that may be picked.
        state: the :class:`GreedyState` of H to extend (picks are added to it).
        q0: (N,) exact V_i^T H^{-1} V_i for the current state.
        weights: None or (N,) >= 0. dtype: float64 or float32 (bulk refresh precision).
        active, block: active-set size K and maximum block length.
        sub_active: initial size of the sub-active set B inside A (adapted as K is).
        replace: a picked row stays eligible (designs with replacement): its score is
            downdated like every other row's, q_i <- q_i - (w^T V_i)^2, which is exactly its
            score for a repeated pick.
        rows_per_block: rows per matrix product of the bulk refresh.
        products: :class:`BulkProducts` (None: numpy's) for the refreshes and re-anchors.
        copy: keep a compacted copy of the eligible rows in ``dtype`` (default; picked rows
            are dropped from it as the run goes). ``False`` reads V in place (e.g. a
            ``numpy.memmap`` of a pool, never loaded as a whole): every row stays in the
            bulk and ineligible ones are masked.
    """

    def __init__(self, V: np.ndarray, eligible: np.ndarray, state: GreedyState, q0: np.ndarray,
                 *, weights: np.ndarray | None = None, dtype: DTypeLike = np.float64,
                 active: int = 512, block: int = 256, replace: bool = False,
                 rows_per_block: int = _REFRESH_ROWS, copy: bool = True,
                 sub_active: int = 128, products: BulkProducts | None = None) -> None:
        self.V, self.state, self.w = V, state, weights
        self.products = BulkProducts() if products is None else products
        self.replace = bool(replace)
        self.dt = _float_dtype(dtype)
        self._exact_bulk = self.dt == np.float64
        self._margin = 0.0 if self._exact_bulk else F32_MARGIN
        self._reanchor = REANCHOR_F64 if self._exact_bulk else REANCHOR
        self._chunk = rows_per_block
        self._copy = bool(copy)
        if self._copy:
            self.rows = np.flatnonzero(eligible)
            # bulk operand (maybe float32); V itself while every row is eligible and already
            # in that dtype (read only: the first compaction copies it, later ones compact the
            # engine's own copy in place)
            self.Vr = (V if self.rows.size == V.shape[0] and V.dtype == self.dt
                       and V.flags.c_contiguous else V[self.rows].astype(self.dt))
            self.alive = np.ones(self.rows.size, dtype=bool)
        else:
            self.rows = np.arange(V.shape[0])
            self.Vr = V                                          # read in place, block by block
            self.alive = np.asarray(eligible, dtype=bool).copy()
        self._n_rows0 = self.rows.size
        self.q = np.asarray(q0[self.rows], dtype=np.float64)    # float64 unweighted scores
        self.n_alive = int(self.alive.sum())
        self.active, self.block = active, block
        self._max_active = max(active, 4096)
        self._W = np.empty((block, V.shape[1]))
        self._k = 0
        self._A: np.ndarray | None = None  # active set of the block (None: between blocks)
        self._B: np.ndarray | None = None  # its sub-active set (None: between sub-blocks)
        self._active2 = positive_int(sub_active, "sub_active")
        self._anchor: float | None = None
        self.n_evals, self.n_blocks = self.rows.size, 0
        self.n_reanchors = self.n_compactions = 0
        self.n_rescored = 0  # rows of A re-scored exactly in float64 (float32 bulk)

    def _key(self, idx: np.ndarray | None = None) -> np.ndarray:
        q = self.q if idx is None else self.q[idx]
        if self.w is None:
            return q.copy() if idx is not None else q
        return self.w[self.rows if idx is None else self.rows[idx]] * q

    def reweight(self, weights: np.ndarray | None) -> None:
        """Replace the weights (N,) (between two picks); the next pick is exact under them.

        The stored q_i are unweighted, so no score is recomputed: between blocks only w
        changes; inside a block the block goes on under a new active set
        (:meth:`_reselect_active`) and its pending downdates reach the bulk at the block's end,
        in one product with the picks that follow."""
        self.w = weights
        self._anchor = None
        if self._A is not None:
            self._reselect_active()

    def _start_block(self) -> None:
        if self._copy and self.n_alive < 0.9 * self.rows.size:  # compact: drop picked rows
            if self.Vr is self.V:   # the caller's rows: copied, never written
                self.Vr = self.Vr[self.alive]
            else:
                self.Vr = self.Vr[:_compact_rows(self.Vr, self.alive)]
            self.rows, self.q = self.rows[self.alive], self.q[self.alive]
            self.alive = np.ones(self.rows.size, dtype=bool)
            self.n_compactions += 1
        key = np.where(self.alive, self._key(), -np.inf)
        top = float(key.max())
        if self._anchor is None:
            self._anchor = top
        if top < self._anchor / self._reanchor:
            # The downdated scores carry an absolute rounding error ~ eps * (score at the last
            # exact evaluation); once scores have shrunk by REANCHOR that error is REANCHOR
            # times larger relative to them, so recompute all of them exactly (O(N d^2)).
            h_inv = self.state.h_inv  # (folds the pending rank-one terms first)

            def exact(lo: int, hi: int) -> None:
                X = self.V[self.rows[lo:hi]] if self._copy else self.V[lo:hi]
                self.q[lo:hi] = self.products.quad(np.asarray(X, dtype=np.float64), h_inv)
            self.products.map_rows(exact, self.rows.size, self._chunk)
            self.n_evals += self.rows.size
            self.n_reanchors += 1
            key = np.where(self.alive, self._key(), -np.inf)
            self._anchor = top = float(key.max())
        self._k = 0
        self._set_active(key)
        self.n_blocks += 1

    def _above(self, tau: float) -> float:
        """What a pick must beat to outscore every row bounded by tau: tau itself with exact
        (float64) scores, tau plus the float32 margin otherwise; -inf when nothing is left."""
        return tau + self._margin * abs(tau) if np.isfinite(tau) else -np.inf

    def _start_sub(self) -> bool:
        """Choose B, the K2 best rows of A, with exact scores, and tau2, what a pick from B must
        beat to outscore every row of A outside B; False when every row of A has been picked
        (the block is over). With a float32 bulk, A's scores start within ``F32_MARGIN`` of
        exact; a row of A is re-scored exactly in float64 the first time it enters B and stays
        exact (``_exA``: its later downdates are float64 products), so only the rows never
        re-scored carry the margin into tau2. (Applying the margin to all of A made B grow to
        all of A wherever scores lie within 1e-3 of each other, e.g. unit-norm rows.)"""
        sA, ex = self._sA, self._exA
        B, _ = _top(sA, min(self._active2, sA.size))
        if not np.isfinite(sA[B]).any():  # every row of A was picked
            return False
        self._B, self._VB = B, self._VA[B]
        self._wB = None if self._wA is None else self._wA[B]
        sB = sA[B]                           # a copy (fancy indexing)
        new = np.flatnonzero(~ex[B] & np.isfinite(sB))
        if new.size:  # float32 bulk: exact float64 scores of B's rows not yet re-scored
            VBn, s = self._VB[new], np.empty(new.size)

            def exact(lo: int, hi: int) -> None:
                s[lo:hi] = self.state.scores(VBn[lo:hi])
            self.products.map_rows(exact, new.size, _RESCORE_ROWS)
            sB[new] = s if self._wB is None else s * self._wB[new]
            self.n_evals += new.size
            self.n_rescored += new.size
        self._sB = sB
        rest = np.ones(sA.size, dtype=bool)
        rest[B] = False
        self._thresh2 = max(sA[rest & ex].max(initial=-np.inf),
                            self._above(float(sA[rest & ~ex].max(initial=-np.inf))))
        self._k2 = self._k
        return True

    def _end_sub(self) -> None:
        """Bring the scores of all of A up to date with the picks of the sub-block (one
        matrix product, K x d x k2) and adapt K2 as K is adapted."""
        B, k0, k = self._B, self._k2, self._k
        self._B = None
        if k > k0:
            c = self._rowsq_active(self._W[k0:k])
            if self._wA is not None:
                c *= self._wA
            self._sA -= c
            self.n_evals += (k - k0) * self._sA.size
        self._sA[B] = self._sB                 # exact (and -inf for rows picked meanwhile)
        self._exA[B] = True
        if k == k0:  # the best of B cannot beat tau2: widen B
            self._active2 *= 2
        elif k - k0 < 8:
            self._active2 = min(2 * self._active2, 1024)
        elif k - k0 > 64:
            self._active2 = max(self._active2 // 2, 64)

    def _rowsq_active(self, Wk: np.ndarray) -> np.ndarray:
        """||W_k v_i||^2 (K,) for the rows of the active set A, W_k (k, d)."""
        c = np.empty(self._VA.shape[0])

        def part(lo: int, hi: int) -> None:
            c[lo:hi] = self.products.rowsq(self._VA[lo:hi], Wk)
        self.products.map_rows(part, c.size, _ACTIVE_ROWS)
        return c

    def _end_block(self) -> None:
        if self._A is None:
            return
        k = self._k
        self._A = self._B = None
        self.n_evals += k * self._active2
        # B widened within the block (it could not certify against tau2) starts the next block
        # at most at the cap again: otherwise B would stay all of A, as no sub-block ends to
        # shrink it.
        self._active2 = min(self._active2, 1024)
        if k == 0:  # cannot certify the argmax inside A: widen the active set and retry
            if self._K == self.n_alive:  # only NaN scores could get here; V is validated finite
                raise RuntimeError("greedy: no certifiable pick among all rows")
            self.active = 2 * self.active
            return
        # Adapt K: blocks ending early make the bulk refresh BLAS-2-bound (widen A, up to a cap:
        # in the first ~d picks every score falls fast and no active set helps); blocks that
        # reach the cap mean A is larger than needed, and A costs O(K d) per pick (shrink it).
        if k < self.block // 4:
            self.active = min(2 * self.active, self._max_active)
        elif k > self.block // 2:
            self.active = max(self.active // 2, 128)
        Wk = self._W[:k].astype(self.dt)

        def refresh(lo: int, hi: int) -> None:
            self.q[lo:hi] -= self.products.rowsq(self.Vr[lo:hi], Wk)
        self.products.map_rows(refresh, self.rows.size, self._chunk)
        self.n_evals += k * self.rows.size
        self._k = 0

    def next(self) -> tuple[int, float, np.ndarray]:
        """The next greedy pick: (row index, gain log(1 + v^T H^{-1} v), v added to H)."""
        if self.n_alive == 0:
            raise ValueError("n: no eligible rows left to pick")
        while True:
            if self._A is None:
                self._start_block()
            if self._k >= self.block or (self._B is None and not self._start_sub()):
                self._end_block()
                continue
            sB = self._sB
            j = int(np.argmax(sB))
            if not (sB[j] > self._thresh and sB[j] > self._thresh2):
                if sB[j] > self._thresh:  # beaten only by tau2: refresh A, choose a new B
                    self._end_sub()
                else:
                    self._end_block()
                continue
            VB = self._VB
            v = VB[j] if self._wB is None else np.sqrt(self._wB[j]) * VB[j]
            gain, w = self.state._add(v)
            assert self._A is not None and self._B is not None
            i_loc = int(self._A[self._B[j]])
            c = VB @ w
            np.multiply(c, c, out=c)  # in place: the same products, no temporaries
            if self._wB is not None:
                c *= self._wB
            sB -= c
            if not self.replace:
                self.alive[i_loc] = False
                self.n_alive -= 1
                sB[j] = -np.inf
            self._W[self._k] = w
            self._k += 1
            return int(self.rows[i_loc]), gain, v

    def exclude(self, rows: np.ndarray) -> None:
        """Make the rows (global indices, (k,)) ineligible from the next pick on (e.g. a
        prompt that reached ``max_per_prompt``). Ends the current block first, so the active set
        and its threshold are rebuilt over the remaining rows."""
        if len(rows) == 0 or self.rows.size == 0:
            return
        self._end_block()
        rows = np.asarray(rows, dtype=np.int64)
        loc = np.minimum(np.searchsorted(self.rows, rows), self.rows.size - 1)
        hit = loc[self.rows[loc] == rows]          # rows still held by the engine
        hit = hit[self.alive[hit]]
        self.alive[hit] = False
        self.n_alive -= hit.size

    def _reselect_active(self) -> None:
        """A new active set A and bound tau under the current weights, inside a block (after
        :meth:`reweight`). The bulk q_i date from the block's start and only shrink as picks are
        added, so w_i q_i bounds every current score (the lazy argument of the module
        docstring); the bulk keeps its pending downdates for the block's end."""
        self._set_active(np.where(self.alive, self._key(), -np.inf))
        self.n_evals += self._k * self._K

    def _set_active(self, key: np.ndarray) -> None:
        """A = the K rows of largest ``key`` (N,) (w_i q_i, -inf for rows not alive) and tau, the
        (K+1)-th, with A's scores brought up to date with the block's ``_k`` pending picks by
        one (K x d) @ (d x k) product (none at a block's start). With a float32 bulk A's scores
        are within F32_MARGIN of exact (``_exA`` False): B re-scores them in float64."""
        K = min(self.active, self.n_alive)
        A, tau = _top(key, K)  # K = key.size only when every row is alive
        self._A, self._K, self._B = A, K, None
        self._VA = np.asarray(self.V[self.rows[A]], dtype=np.float64)
        self._wA = None if self.w is None else self.w[self.rows[A]]
        q = self.q[A]
        if self._k:
            q = q - self._rowsq_active(self._W[:self._k])
        self._sA = q if self._wA is None else self._wA * q
        self._exA = np.full(K, self._exact_bulk)
        self._thresh = self._above(tau)
