"""GreeDi: distributed greedy D-optimal selection in two rounds (Mirzasoleiman, Karbasi, Sarkar
and Krause, "Distributed submodular maximization", NeurIPS 2013).

Round 1: the N rows are split into ``parts`` random blocks (seeded); each block runs the exact
greedy of :mod:`sim.design.greedy` for n picks (in parallel on Dask workers when a client is
given). Round 2: the exact greedy picks n rows from the union of the round-1 picks (at most
parts * n rows). Only the blocks' rows travel to the workers once (for a pool memory-mapped from
a ``.npy`` file, only its path: each worker reads its own rows), and only n indices per block
come back. For a monotone submodular f with f(empty) = 0 the paper's bound is
f(S_GreeDi) >= (1 - 1/e)^2 / min(parts, n) f(OPT); here f(S) = log det(gamma I + sum_S v v^T)
- d log gamma, and the benchmark reports the measured ratio to the single-machine greedy.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from ..validation import Seed, as_rng, positive_int
from .common import DesignResult, check_gamma, design_vectors

if TYPE_CHECKING:  # dask.distributed is optional (the ``dist`` extra)
    from distributed import Client

#: What :meth:`BlockScorer.step` reports: (scores (r,), global indices (r,), rows (r, d), tau).
Report = tuple[np.ndarray, np.ndarray, np.ndarray, float]


class _Result(Protocol):
    """A call's outcome: a Dask ``ActorFuture`` or :class:`_Here` (the in-process run)."""

    def result(self) -> Report:
        """The call's value."""


class _Block(Protocol):
    """A block as the driver calls it: a Dask actor of :class:`BlockScorer`, or :class:`_Local`."""

    def step(self, W: np.ndarray | None, picked: Sequence[int], h_inv: np.ndarray | None,
             top: int) -> _Result:
        """:meth:`BlockScorer.step`, its value behind ``result()``."""


#: Rows as they travel to a worker: the (m, d) float64 design vectors themselves, or, for a
#: pool memory-mapped from a ``.npy`` file, (path, row selector, sqrt(w) of those rows or None):
#: the worker reads its rows from the file itself (:func:`_load_rows`).
RowSource = np.ndarray | tuple[str, slice | np.ndarray, np.ndarray | None]


class _Rows:
    """The validated candidate rows on the driver: in memory (v_i = sqrt(w_i) V_i, float64), or
    a memory-mapped ``.npy`` file (never loaded whole: validated block by block, and each worker
    reads only its own rows)."""

    def __init__(self, V: ArrayLike, weights: ArrayLike | None) -> None:
        self.path: str | None = None
        self.w: np.ndarray | None = None
        self.V: np.ndarray
        if isinstance(V, np.memmap) and _whole_file(V):
            from .greedy import _stream_source
            self.V = V
            self.w, _ = _stream_source(V, weights, 2048)
            self.path = str(V.filename)
        else:
            self.V = design_vectors(V, weights)
        self.N, self.d = self.V.shape

    def source(self, sel: slice | np.ndarray) -> RowSource:
        """What to send a worker for the rows ``sel`` (a slice or sorted indices)."""
        if self.path is None:
            return self.V[sel]
        return (self.path, sel, None if self.w is None else np.sqrt(self.w[sel]))

    def rows(self, sel: slice | np.ndarray) -> np.ndarray:
        """The design vectors of rows ``sel`` (k, d) float64, here."""
        return _load_rows(self.source(sel))


def _whole_file(V: np.memmap) -> bool:
    """Whether ``V`` maps a whole ``.npy`` file (so a worker can map the same rows by path)."""
    if V.filename is None:
        return False
    try:
        f = np.load(V.filename, mmap_mode="r")
    except (OSError, ValueError, TypeError):
        return False
    return f.shape == V.shape and f.dtype == V.dtype and f.offset == V.offset


def _load_rows(src: RowSource) -> np.ndarray:
    """The float64 design vectors of a :data:`RowSource` (read from its file on a worker)."""
    if not isinstance(src, tuple):
        return np.ascontiguousarray(src, dtype=np.float64)
    path, sel, sw = src
    X = np.asarray(np.load(path, mmap_mode="r")[sel], dtype=np.float64)
    return X if sw is None else X * sw[:, None]


def _checked(V: ArrayLike, n: int, parts: int, gamma: float, weights: ArrayLike | None
             ) -> tuple[_Rows, int, int, float]:
    """(the rows, n, parts, gamma) validated, or a one-line ValueError."""
    rows = _Rows(V, weights)
    n, parts = positive_int(n, "n"), positive_int(parts, "parts")
    if n > rows.N:
        raise ValueError(f"n: cannot pick {n} distinct rows from N = {rows.N}; lower n")
    return rows, n, parts, check_gamma(gamma, allow_zero=False)


def _block_greedy(src: RowSource, n: int, gamma: float, dtype: DTypeLike) -> np.ndarray:
    from .greedy import greedy_select
    V = _load_rows(src)
    idx = greedy_select(V, min(n, V.shape[0]), gamma=gamma, dtype=dtype).indices
    assert idx is not None  # an exact design always has indices
    return idx


def greedi_select(V: ArrayLike, n: int, *, parts: int = 2, gamma: float = 1.0,
                  weights: ArrayLike | None = None, seed: Seed = 0,
                  dtype: DTypeLike = np.float64, client: Client | None = None) -> DesignResult:
    """n rows by GreeDi (module docstring).

    Args:
        V: (N, d) rows. n: picks. parts: number of random blocks (>= 1; 1 is the plain greedy).
        gamma: ridge of H_0. weights: None or (N,) >= 0. seed: the random partition.
        dtype: greedy's bulk dtype. client: a ``distributed.Client`` (round 1 runs on its
            workers) or None (round 1 runs here, block after block: same picks).

    Returns:
        DesignResult(solver="greedi") with ``indices`` (n,) in round-2 pick order, ``logdet``,
        ``info`` (parts, union size, round seconds).
    """
    from .greedy import greedy_select
    t0 = time.perf_counter()
    rows, n, parts, gamma = _checked(V, n, parts, gamma, weights)
    perm = as_rng(seed).permutation(rows.N)
    blocks = [np.sort(b) for b in np.array_split(perm, parts) if b.size]
    if client is None:
        local = [_block_greedy(rows.source(b), n, gamma, dtype) for b in blocks]
    else:
        futures = client.map(_block_greedy, [rows.source(b) for b in blocks], n=n, gamma=gamma,
                             dtype=dtype, pure=False)
        local = client.gather(futures)
    t1 = time.perf_counter()
    union = np.sort(np.concatenate([b[i] for b, i in zip(blocks, local)]))
    res = greedy_select(rows.rows(union), n, gamma=gamma, dtype=dtype)
    return DesignResult(solver="greedi", indices=union[res.indices], logdet=res.logdet,
                        support=n, iterations=n, seconds=time.perf_counter() - t0,
                        gains=res.gains, info={"parts": len(blocks), "union": int(union.size),
                                               "round1_seconds": t1 - t0,
                                               "distributed": client is not None,
                                               "rows_read_by_workers": rows.path is not None})


def connect(scheduler: str) -> Client:
    """A ``distributed.Client`` for ``local:K`` (K worker processes of one thread each, BLAS
    pinned to one thread in each: OMP/OPENBLAS/MKL_NUM_THREADS=1, so K workers use K cores) or
    a scheduler address ``tcp://host:port`` (its workers keep their own settings)."""
    try:
        from distributed import Client
    except ImportError:
        raise ValueError("scheduler: needs dask.distributed (pip install 'adpo-testbed[dist]')") \
            from None
    if scheduler.startswith("local:"):
        k = local_workers(scheduler)
        one = {v: "1" for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
        return Client(n_workers=k, threads_per_worker=1, processes=True,
                      dashboard_address=None, env=one)
    try:
        return Client(scheduler, timeout="20s")
    except (OSError, TimeoutError) as exc:
        raise ValueError(f"scheduler: cannot connect to {scheduler!r} ({exc}); give local:K or "
                         f"the address of a running dask scheduler") from None


def local_workers(scheduler: str) -> int:
    """K of ``local:K`` (a positive int), or a one-line ValueError."""
    try:
        k = int(scheduler[len("local:"):])
    except ValueError:
        raise ValueError(f"scheduler: expected local:K with an integer K, got {scheduler!r}") \
            from None
    return positive_int(k, "scheduler workers")


# --------------------------------------------------------------------------- exact variant
class BlockScorer:
    """One worker's block of rows and their greedy scores (the exact distributed greedy).

    Holds V_b (m, d) float64 (rows ``offset .. offset + m - 1`` of the pool; given, or read by
    the worker from a memory-mapped ``.npy`` file, :data:`RowSource`) and the scores
    s_i = v_i^T H^{-1} v_i of its rows, downdated by the Sherman-Morrison vectors the driver
    broadcasts. Picked rows score -inf. Runs as a Dask actor (the rows never leave the worker) or
    in process.
    """

    def __init__(self, V: RowSource, offset: int, gamma: float) -> None:
        self.V = _load_rows(V)            # read here, on the worker, when V names a file
        self.offset = int(offset)
        self.s = np.einsum("ij,ij->i", self.V, self.V) / gamma
        self.picked = np.zeros(self.s.size, dtype=bool)

    def step(self, W: np.ndarray | None, picked: Sequence[int], h_inv: np.ndarray | None,
             top: int) -> Report:
        """Apply the k picks of the last round, then report this block's best rows.

        Args:
            W: (k, d) Sherman-Morrison vectors w_j of the last round's picks (H^{-1} lost
                w_j w_j^T each), or None. picked: their global indices (those in this block are
                masked). h_inv: (d, d) H^{-1} to recompute every score exactly (re-anchor), or
                None. top: rows to report.

        Returns:
            (scores (r,), global indices (r,), rows (r, d), tau): the r = min(top, live) best
            live rows ordered by score descending then index ascending, and tau, the largest
            score of a live row not reported (-inf if none): an upper bound on every unreported
            row's score until the next step, because scores only shrink.
        """
        if h_inv is not None:
            self.s = np.einsum("ij,ij->i", self.V @ h_inv, self.V)
        elif W is not None and len(W):
            C = self.V @ np.asarray(W).T
            self.s -= np.einsum("ij,ij->i", C, C)
        for g in picked:
            if self.offset <= g < self.offset + self.s.size:
                self.picked[g - self.offset] = True
        self.s[self.picked] = -np.inf
        live = np.flatnonzero(np.isfinite(self.s))
        r = min(top, live.size)
        if r == 0:
            return np.empty(0), np.empty(0, np.int64), np.empty((0, self.V.shape[1])), -np.inf
        cand = live[np.argpartition(-self.s[live], r - 1)[:r]] if r < live.size else live
        cand = cand[np.lexsort((cand, -self.s[cand]))]
        rest = self.s.copy()
        rest[cand] = -np.inf
        tau = float(rest.max()) if live.size > r else -np.inf
        return self.s[cand].copy(), cand + self.offset, self.V[cand].copy(), tau


class _Here:
    """A finished 'future' for the in-process run (same interface as a Dask ActorFuture)."""

    def __init__(self, value: Report) -> None:
        self.value = value

    def result(self) -> Report:
        return self.value


class _Local:
    """A :class:`BlockScorer` in this process, called as its Dask actor is (``step`` returns a
    finished future)."""

    def __init__(self, scorer: BlockScorer) -> None:
        self.scorer = scorer

    def step(self, W: np.ndarray | None, picked: Sequence[int], h_inv: np.ndarray | None,
             top: int) -> _Here:
        return _Here(self.scorer.step(W, picked, h_inv, top))


def greedi_exact_select(V: ArrayLike, n: int, *, parts: int = 2, gamma: float = 1.0,
                        weights: ArrayLike | None = None, top: int = 16,
                        client: Client | None = None) -> DesignResult:
    """n rows by the exact greedy of paper eq. 10, with the rows kept on Dask workers.

    The N rows are split into ``parts`` contiguous blocks, each held by a :class:`BlockScorer`
    (a Dask actor when ``client`` is given). The driver keeps H^{-1} (one
    :class:`sim.design.greedy.GreedyState`). Each round trip, every block reports its ``top``
    best rows (scores, indices, vectors) and tau_b, the best score it did not report. The driver
    then picks lazily (Minoux's argument, as the blocked engine's active set): the best reported
    row (score descending, index ascending) is the global argmax if it is the round's first pick
    or if its score, downdated by the round's earlier picks, exceeds tau = max_b tau_b, since
    unreported scores only shrink; picks continue until one cannot be certified or the reported
    rows run out. Then the k Sherman-Morrison vectors w_j of the round (k x d numbers) are
    broadcast and every block downdates its scores s_i -= sum_j (w_j^T v_i)^2 and masks the picks.
    All scores are recomputed exactly from H^{-1} (broadcast, d x d) whenever the top score has
    shrunk by ``REANCHOR`` since the last exact evaluation (as the blocked engine does).

    Cost: at most n round trips (one per pick when no lookahead pick certifies), at least
    n / (parts * top); each moves parts * top * (d + 2) numbers up and k * d down.
    Same picks as :func:`sim.design.greedy.greedy_select` with ``dtype=float64`` (tested).

    Args:
        V: (N, d) rows. n: picks. parts: number of blocks (one actor each; the workers of the
            client in turn). gamma: ridge of H_0 = gamma I. weights: None or (N,) >= 0.
        top: rows each block reports per round trip (>= 1). client: a ``distributed.Client``
            or None (blocks in process: same picks).

    Returns:
        DesignResult(solver="greedi-exact") with ``indices`` (n,) in pick order, ``gains``,
        ``logdet`` of H_n, ``info`` (parts, round trips, re-anchors, distributed).
    """
    from .greedy import REANCHOR, GreedyState
    t0 = time.perf_counter()
    rows, n, parts, gamma = _checked(V, n, parts, gamma, weights)
    N, d = rows.N, rows.d
    top = positive_int(top, "top")
    bounds = np.linspace(0, N, min(parts, N) + 1).astype(int)
    blocks: list[_Block]
    if client is None:
        blocks = [_Local(BlockScorer(rows.source(slice(a, b)), a, gamma))
                  for a, b in zip(bounds[:-1], bounds[1:])]
    else:
        workers = list(client.scheduler_info()["workers"])
        futs = [client.submit(BlockScorer, rows.source(slice(a, b)), a, gamma, actor=True,
                              pure=False, workers=[workers[j % len(workers)]])
                for j, (a, b) in enumerate(zip(bounds[:-1], bounds[1:]))]
        blocks = [f.result() for f in futs]   # Dask actors: step() returns an ActorFuture

    state = GreedyState(d, gamma)
    picks: list[int] = []
    gains: list[float] = []
    W: list[np.ndarray] = []
    anchor = np.inf           # top score at the last exact evaluation
    h_inv: np.ndarray | None = None
    exact = True              # this round's reports are exact scores (first round, re-anchor)
    trips = reanchors = 0
    while len(picks) < n:
        done = picks[len(picks) - len(W):]
        futures = [b.step(np.array(W) if W else None, done, h_inv, top) for b in blocks]
        reports = [f.result() for f in futures]
        trips += 1
        h_inv, W = None, []
        s = np.concatenate([r[0] for r in reports])
        idx = np.concatenate([r[1] for r in reports])
        R = np.concatenate([r[2] for r in reports])
        tau = max(r[3] for r in reports)
        if exact:
            anchor, exact = float(s.max(initial=-np.inf)), False
        order_live = np.ones(s.size, dtype=bool)
        while len(picks) < n and order_live.any():
            live = np.flatnonzero(order_live)
            j = live[np.lexsort((idx[live], -s[live]))[0]]
            if W and not s[j] > tau:
                break                         # not certified: refresh the blocks first
            gain, w = state._add(R[j])
            picks.append(int(idx[j]))
            gains.append(gain)
            W.append(w)
            order_live[j] = False
            s -= (R @ w) ** 2
        if len(picks) < n and float(s[order_live].max(initial=tau)) < anchor / REANCHOR:
            h_inv = state.h_inv.copy()        # the next step re-scores every row exactly
            reanchors += 1
            exact = True
    return DesignResult(solver="greedi-exact", indices=np.asarray(picks, dtype=np.int64),
                        logdet=float(state.logdet), support=n, iterations=n,
                        seconds=time.perf_counter() - t0, gains=np.asarray(gains),
                        info={"parts": len(blocks), "round_trips": trips, "top": top,
                              "reanchors": reanchors, "distributed": client is not None,
                              "rows_read_by_workers": rows.path is not None})
