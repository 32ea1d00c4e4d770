"""GreeDi: distributed greedy D-optimal selection in two rounds (Mirzasoleiman, Karbasi, Sarkar
and Krause, "Distributed submodular maximization", NeurIPS 2013).

Round 1: the N rows are split into ``parts`` random blocks (seeded); each block runs the exact
greedy of :mod:`sim.design.greedy` for n picks (in parallel on Dask workers when a client is
given). Round 2: the exact greedy picks n rows from the union of the round-1 picks (at most
parts * n rows). Only the blocks' rows travel to the workers once, and only n indices per block
come back. For a monotone submodular f with f(empty) = 0 the paper's bound is
f(S_GreeDi) >= (1 - 1/e)^2 / min(parts, n) f(OPT); here f(S) = log det(gamma I + sum_S v v^T)
- d log gamma, and the benchmark reports the measured ratio to the single-machine greedy.
"""

from __future__ import annotations

import time

import numpy as np

from ..validation import as_rng, positive_int
from .common import DesignResult, check_gamma, design_vectors


def _block_greedy(V, n, gamma, dtype):
    from .greedy import greedy_select
    return greedy_select(V, min(n, V.shape[0]), gamma=gamma, dtype=dtype).indices


def greedi_select(V, n, *, parts: int = 2, gamma: float = 1.0, weights=None, seed=0,
                  dtype=np.float64, client=None) -> DesignResult:
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
    Vd = design_vectors(V, weights)
    N, d = Vd.shape
    gamma = check_gamma(gamma, allow_zero=False)
    n = positive_int(n, "n")
    parts = positive_int(parts, "parts")
    if n > N:
        raise ValueError(f"n: cannot pick {n} distinct rows from N = {N}; lower n")
    perm = as_rng(seed).permutation(N)
    blocks = [np.sort(b) for b in np.array_split(perm, parts) if b.size]
    if client is None:
        local = [_block_greedy(Vd[b], n, gamma, dtype) for b in blocks]
    else:
        futures = client.map(_block_greedy, [Vd[b] for b in blocks], n=n, gamma=gamma,
                             dtype=dtype, pure=False)
        local = client.gather(futures)
    t1 = time.perf_counter()
    union = np.sort(np.concatenate([b[i] for b, i in zip(blocks, local)]))
    res = greedy_select(Vd[union], n, gamma=gamma, dtype=dtype)
    return DesignResult(solver="greedi", indices=union[res.indices], logdet=res.logdet,
                        support=n, iterations=n, seconds=time.perf_counter() - t0,
                        gains=res.gains, info={"parts": len(blocks), "union": int(union.size),
                                               "round1_seconds": t1 - t0,
                                               "distributed": client is not None})


def connect(scheduler: str):
    """A ``distributed.Client`` for ``local:K`` (K single-threaded in-process workers: numpy
    releases the GIL in BLAS) or a scheduler address ``tcp://host:port``."""
    try:
        from distributed import Client
    except ImportError:
        raise ValueError("scheduler: needs dask.distributed (pip install 'adpo-testbed[dist]')") \
            from None
    if scheduler.startswith("local:"):
        k = local_workers(scheduler)
        return Client(n_workers=k, threads_per_worker=1, processes=False,
                      dashboard_address=None)
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
