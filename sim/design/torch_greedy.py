"""The blocked greedy engine of :mod:`sim.design.greedy` on PyTorch (CPU or CUDA), and streamed
over row blocks of an out-of-core pool.

Same algorithm, same picks (paper eq. 10 with fixed weights; ties to the lowest index): the
scores s_i = v_i^T H^{-1} v_i are kept in float64; the bulk downdate s_i <- s_i - ||W_k v_i||^2
after a block of k picks runs as one matrix product in ``dtype`` (float32 doubles the speed and
halves the memory); inside a block only the active set A of the K largest scores is tracked,
re-scored exactly in float64 at the block start when the bulk is float32, and a pick is
accepted only if it beats tau, the largest block-start score outside A (by the relative margin
``F32_MARGIN`` in float32), because scores only shrink. All scores are recomputed exactly in
float64 whenever the top score shrank by ``REANCHOR`` since the last exact evaluation. See the
numpy engine's docstring for why each of these is needed; the constants are shared.

Where the per-pick work runs (``host_picks``). On the CPU (the default there) the engine IS the
numpy one, :class:`sim.design.greedy.BlockedGreedy` (two-level active sets, compaction,
streaming of a memory-mapped pool), with torch running its bulk products
(:class:`TorchProducts`: the refresh GEMMs and the exact re-scoring at a re-anchor) on the same
memory, so the two backends cannot drift apart. On CUDA a pick costs O(K d + d^2) in about a
dozen small operations (argmax over A, H^{-1} v, the Sherman-Morrison vector w, the downdate of
A's scores by (V_A w)^2) which run on the device as tensors (H^{-1} is a float64 tensor there),
so that nothing of size N or K crosses the bus; each pick synchronizes the host three times (the
argmax index, the test against tau, v^T H^{-1} v). ``host_picks=False`` runs that device code
path on the CPU (the tests run both).

The device path differs from the numpy engine in ways none of which changes a pick: picked rows
are masked (never compacted away, so a memory-mapped source is never copied); the active set is
one level (no sub-active set); and in float32, when no pick can be certified even with an active
set of ``max(active, 4096)`` rows (scores closer together than ``F32_MARGIN``, e.g. rows of
exactly equal norm at the start), all scores are recomputed exactly in float64 and the next block
certifies against the exact tau without the margin, instead of widening the active set towards
all N rows.

The incremental engine (:mod:`sim.design.incremental`: m random candidates per pick, or the
maintained scores of ``record_kappa``) runs on torch through :class:`TorchRowProducts` (from
``TorchProducts(device).rows(phi)``): the numpy engine with torch computing its candidate scores
and score downdates, on the CPU or with the rows on a CUDA device (float64 only, as numpy's).

Rows come from a :class:`RowSource`: an in-memory array (moved to the device once) or a
memory-mapped (N, d) array streamed in blocks of ``rows_per_block`` rows, so peak memory is
O(rows_per_block * d + N) instead of O(N d). On a CUDA device a memory-mapped pool is read
once, block by block, into device memory (host memory stays two blocks), as far as the free
device memory allows after the engine's working memory (:func:`device_rows`): streaming it at
every pass would move N d numbers over the bus per block of picks. The rows that do not fit are
still streamed, so a pool larger than the device's memory moves only its remainder at each
pass.

torch is imported lazily: ``import sim`` works without it.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike
from threadpoolctl import threadpool_limits

from ..validation import as_matrix, as_vector, positive_int
from .common import DesignResult, check_gamma, design_vectors
from .greedy import (F32_MARGIN, REANCHOR, BulkProducts, GreedyState, RankOneBuffer,
                     _float_dtype, greedy_select)
from .incremental import RowProducts

if TYPE_CHECKING:
    import torch
    from torch import Tensor

#: Rows per refresh GEMM on the host path: the (rows x k) product stays in the cache instead of
#: making a round trip through memory (the device path multiplies a whole row block at once).
HOST_REFRESH_ROWS = 2048


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise ValueError("backend: --backend torch needs PyTorch (pip install torch); "
                         "or use --backend numpy") from None
    return torch


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """torch's intra-op threads set to ``n`` inside the block, restored after it (the one
    helper for it: the torch products here, relaxed_rows.TorchRows, sim.llm_train's cells)."""
    torch = _torch()
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def from_numpy(torch: Any, X: np.ndarray, dtype: Any = None) -> Tensor:
    """A tensor on X's memory (a view when X is contiguous in ``dtype``); a read-only X (a
    pool) is fine: torch only reads it."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*not writable.*")
        return torch.from_numpy(np.ascontiguousarray(X, dtype=dtype))


def resolve_device(device: str) -> torch.device:
    """A torch.device for "cpu", "cuda" or "cuda:K", with a one-line error if unavailable."""
    torch = _torch()
    if not isinstance(device, str) or not (device == "cpu" or device.startswith("cuda")):
        raise ValueError(f"device: 'cpu' or 'cuda' (or 'cuda:K'), got {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device: {device!r} requested but no CUDA device is visible to torch; "
                         f"use --device cpu")
    return torch.device(device)


class RowSource:
    """The candidate rows v_i = sqrt(w_i) phi_i, served to the engine in row blocks.

    Args:
        phi: (N, d) array: in memory (moved to the device once, in the bulk dtype, plus a float64
            copy on the host when the bulk is float32), a ``numpy.memmap`` (streamed: only
            ``rows_per_block`` rows are materialized at a time) or a float tensor.
        weights: None or (N,) >= 0.
        dtype: bulk dtype (numpy float32 / float64). device: torch.device.
        stream: force streaming (default: when phi is a numpy.memmap). A memory-mapped phi not
            forced to stream is loaded onto a CUDA device once, block by block, as far as
            :func:`device_rows` allows: its first ``resident`` rows (all N: ``stream`` is
            False; none on the CPU) live in device memory and the rest are streamed.
    """

    def __init__(self, phi: Any, weights: ArrayLike | None, dtype: DTypeLike,
                 device: torch.device, *, stream: bool | None = None,
                 rows_per_block: int = 65536) -> None:
        torch = _torch()
        self.torch, self.device = torch, device
        self.dt = _float_dtype(dtype)
        self.tdt = torch.float32 if self.dt == np.float32 else torch.float64
        self.stream = isinstance(phi, np.memmap) if stream is None else bool(stream)
        self.rows_per_block = positive_int(rows_per_block, "rows_per_block")
        self._bulk: Tensor | None = None
        self._v64: np.ndarray | None = None
        self._src: Tensor | None = None
        self.load_seconds: float | None = None  # reading a memory-mapped pool onto the device
        self.resident = 0  # rows 0..resident-1 are in self._bulk (the rest: streamed)
        if torch.is_tensor(phi):
            # A tensor (e.g. generated on the GPU): the bulk is its values in the bulk dtype and
            # the exact rows are its own values in float64.
            if weights is not None:
                raise ValueError("weights: scale the tensor rows by sqrt(w) before calling")
            if phi.ndim != 2 or not phi.is_floating_point():
                raise ValueError(f"phi: a 2-D float tensor is required, got {tuple(phi.shape)}")
            self.stream = False
            self.N, self.d = phi.shape
            self._bulk = phi.to(device=device, dtype=self.tdt)
            self._src = phi.to(device)
            self.resident = self.N
        elif self.stream:
            if phi.ndim != 2 or phi.dtype.kind != "f":
                raise ValueError(f"phi: a 2-D float array is required, got {phi.dtype} "
                                 f"{phi.shape}")
            self.N, self.d = phi.shape
            self._phi = phi
            self._scale = None if weights is None else np.sqrt(design_weights(weights, self.N))
            self._scale_t = None if self._scale is None else torch.from_numpy(
                self._scale).to(device)
            self._bufs: list[Tensor] | None = None  # two host blocks of the streamed rows
            self._checked = False    # the streamed rows were checked for NaN/inf on one pass
            if stream is None:
                rows = device_rows(torch, device, self.N, self.d, self.dt.itemsize,
                                   self.rows_per_block)
                if rows:
                    self._resident(rows)
        else:
            V = design_vectors(phi, weights)                        # float64, validated
            self.N, self.d = V.shape
            with warnings.catch_warnings():  # read-only input: the engine never writes to it
                warnings.filterwarnings("ignore", message=".*not writable.*")
                self._bulk = torch.from_numpy(np.ascontiguousarray(V, dtype=self.dt)).to(device)
            self._v64 = V                                          # exact rows for re-scoring
            self.resident = self.N

    def _resident(self, rows: int) -> None:
        """Load the first ``rows`` memory-mapped rows (a multiple of ``rows_per_block``, or N)
        onto the device once (:meth:`_file_blocks`, checked for NaN or infinite values),
        instead of streaming them over the bus at every pass: that part of the bulk then lives
        in device memory. The exact float64 rows are the bulk's own values when the file holds
        the bulk dtype and no weights scale it (a float32 value is exact in float64), else they
        are read from the file when needed."""
        t0 = time.perf_counter()
        R = min(rows, self.N)
        self._bulk = self.torch.empty((R, self.d), dtype=self.tdt, device=self.device)
        for lo, hi, X in self._file_blocks(0, R, self.tdt, check=True):
            self._bulk[lo:hi] = X
        if self._scale is None and self._phi.dtype == self.dt:
            self._src = self._bulk
        self.resident = R
        self.stream = R < self.N
        self.load_seconds = time.perf_counter() - t0

    def blocks(self, dtype: torch.dtype | None = None
               ) -> Iterator[tuple[int, int, Tensor]]:
        """Yield (lo, hi, rows lo:hi as a (hi - lo, d) tensor on the device, bulk dtype or the
        given torch dtype): the resident rows (a prefix ending at a block boundary or at N),
        then the streamed ones (:meth:`_streamed`)."""
        step, bulk = self.rows_per_block, self._bulk
        for lo in range(0, self.resident if bulk is not None else 0, step):
            hi = min(lo + step, self.N)
            if bulk is not None and (dtype is None or dtype == self.tdt):
                yield lo, hi, bulk[lo:hi]
            else:
                yield lo, hi, self.exact(np.arange(lo, hi))
        if self.resident < self.N:
            yield from self._streamed(dtype or self.tdt)

    def _streamed(self, tdtype: torch.dtype) -> Iterator[tuple[int, int, Tensor]]:
        """The rows after the resident ones (:meth:`_file_blocks`), checked for NaN or infinite
        values on the first pass only: it raises at its end, before any pick uses them."""
        check = not self._checked
        yield from self._file_blocks(self.resident, self.N, tdtype, check=check)
        self._checked = True

    def _file_blocks(self, start: int, stop: int, tdtype: torch.dtype, *, check: bool
                     ) -> Iterator[tuple[int, int, Tensor]]:
        """Rows start:stop of the file on the device, one block of ``rows_per_block`` at a time:
        each block is copied from the file into one of two host buffers in the file's dtype
        (page-locked on CUDA, so its copy to the device runs while the next block is read; the
        buffers are reused by every pass), then cast to ``tdtype`` and scaled by sqrt(w) on the
        device: numpy's ``phi.astype(dt) * sqrt(w).astype(dt)``, as :meth:`_load` does in
        float64 on the host. With ``check``, the
        blocks are checked for NaN or infinite values on the device, and a ValueError is raised
        after the last one."""
        torch, cuda = self.torch, self.device.type == "cuda"
        step = min(self.rows_per_block, self.N)
        if self._bufs is None:
            fdt = torch.float32 if self._phi.dtype == np.float32 else torch.float64
            self._bufs = [torch.empty((step, self.d), dtype=fdt, pin_memory=cuda)
                          for _ in range(2)]
        done: list[Any] = [None, None]
        finite = torch.ones((), dtype=torch.bool, device=self.device)
        for b, lo in enumerate(range(start, stop, step)):
            hi, b = min(lo + step, stop), b % 2
            if done[b] is not None:
                done[b].synchronize()           # the buffer's last copy to the device is over
            buf = self._bufs[b][:hi - lo]
            np.copyto(buf.numpy(), self._phi[lo:hi], casting="same_kind")
            X = buf.to(self.device, non_blocking=cuda)
            if cuda:
                done[b] = torch.cuda.Event()
                done[b].record()
            X = X.to(tdtype)
            if self._scale_t is not None:
                X = X * self._scale_t[lo:hi, None].to(tdtype)
            elif X.data_ptr() == buf.data_ptr():  # the CPU device: never hand out the buffer
                X = X.clone()
            if check:
                finite &= torch.isfinite(X).all()
            yield lo, hi, X
        if check and not bool(finite):
            raise ValueError("phi: contains NaN or infinite values")

    def exact(self, idx: np.ndarray) -> Tensor:
        """Rows ``idx`` (sorted int array) in float64 on the device, (m, d)."""
        if self._v64 is not None:
            return self.torch.from_numpy(np.ascontiguousarray(self._v64[idx])).to(self.device)
        if self._src is None:
            return self._load(idx)
        idx = np.asarray(idx)
        cut = int(np.searchsorted(idx, self.resident))   # idx[:cut] are resident rows
        i = self.torch.from_numpy(idx[:cut]).to(self.device)
        X = self._src[i].to(self.torch.float64)
        return X if cut == idx.size else self.torch.cat(
            [X, self._load(idx[cut:])])

    def _load(self, idx: np.ndarray) -> Tensor:
        """Rows ``idx`` read from the file on the host, float64 and scaled by sqrt(w), on the
        device, (m, d)."""
        X = np.array(self._phi[idx], dtype=np.float64)   # a writable copy of these rows only
        if not np.isfinite(X).all():
            raise ValueError("phi: contains NaN or infinite values")
        if self._scale is not None:
            X *= self._scale[idx][:, None]
        return self.torch.from_numpy(np.ascontiguousarray(X)).to(self.device)


def device_rows(torch: Any, device: torch.device, N: int, d: int, itemsize: int,
                rows_per_block: int) -> int:
    """How many rows of a memory-mapped (N, d) pool to hold in ``device`` memory (the rest are
    streamed at every pass): 0 on the CPU, where loading them would undo the bounded host
    memory that streaming is for. On a CUDA device, as many whole blocks of ``rows_per_block``
    rows (bulk ``itemsize`` bytes per entry) as the free memory holds after
    :func:`working_bytes`, the engine's own peak; N when all of them fit."""
    if device.type != "cuda":
        return 0
    free, _ = torch.cuda.mem_get_info(device)
    room = (free - working_bytes(N, d, rows_per_block)) // (d * itemsize)
    return N if room >= N else max(int(room) // rows_per_block, 0) * rows_per_block


def working_bytes(N: int, d: int, rows_per_block: int) -> int:
    """The device path's working memory besides the resident bulk, in bytes: a re-anchor's
    float64 block (gathered from a float32 bulk, or streamed: copied in the file's dtype, then
    cast) and its two (block x d) products (5 blocks of float64 rows in all), the scores, keys
    and masks (32 bytes a row), the active set and H (at most 4096 + 2 d rows of d float64) and
    512 MiB for the allocator's slack and the CUDA context's growth."""
    return (5 * min(rows_per_block, N) * d * 8 + 32 * N + (4096 + 2 * d) * d * 8
            + 512 * 2**20)


def design_weights(weights: ArrayLike, N: int) -> np.ndarray:
    """The (N,) float64 design weights, validated (finite, >= 0)."""
    w = as_vector(weights, "weights", length=N)
    if (w < 0).any():
        raise ValueError(f"weights: must be >= 0; entry {int(np.flatnonzero(w < 0)[0])} is "
                         f"negative")
    return w


class _TorchState(RankOneBuffer):
    """H^{-1} (float64, device) with buffered rank-one updates and a Cholesky refresh from the
    exactly accumulated H every ``refresh`` additions: :class:`greedy.GreedyState` on tensors
    (the device path; the host path uses GreedyState itself); ``_add`` is the shared
    :class:`greedy.RankOneBuffer`'s."""

    def __init__(self, torch: Any, d: int, gamma: float, device: torch.device, flush: int = 64,
                 refresh: int = 4096) -> None:
        self.t, self.d, self.gamma = torch, d, gamma
        f64 = torch.float64
        self.h_inv = torch.eye(d, dtype=f64, device=device) / gamma
        self.H = gamma * torch.eye(d, dtype=f64, device=device)
        self._W = torch.empty((flush, d), dtype=f64, device=device)
        self._Vp = torch.empty((flush, d), dtype=f64, device=device)
        self._k, self._flush, self._refresh, self.n_added = 0, flush, refresh, 0
        self.logdet = d * float(np.log(gamma))

    def solve(self, v: Tensor) -> Tensor:
        """H^{-1} v, (d,) -> (d,)."""
        u = self.h_inv @ v
        if self._k:
            W = self._W[:self._k]
            u = u - W.T @ (W @ v)
        return u

    def scores(self, X: Tensor) -> Tensor:
        """v^T H^{-1} v for the float64 rows of X, (m, d) -> (m,)."""
        s = ((X @ self.h_inv) * X).sum(1)
        if self._k:
            C = X @ self._W[:self._k].T
            s -= (C * C).sum(1)
        return s

    def _fold(self) -> None:
        W, Vp = self._W[:self._k], self._Vp[:self._k]
        self.h_inv -= W.T @ W
        self.H += Vp.T @ Vp
        self._k = 0

    def _recompute(self) -> None:
        L = self.t.linalg.cholesky(self.H)
        h_inv = self.t.cholesky_inverse(L)
        self.h_inv = (h_inv + h_inv.T) / 2
        self.logdet = 2.0 * float(self.t.log(self.t.diagonal(L)).sum())


class TorchProducts(BulkProducts):
    """The engines' bulk products (:class:`sim.design.greedy.BulkProducts`) on torch.

    The blocked engine's (``rowsq``, ``quad``) run on torch's CPU kernels, on the numpy arrays'
    own memory (``torch.from_numpy`` is a view): the host path of :func:`greedy_select_torch`
    (on CUDA the blocked engine is the device path, not these). ``rows(phi)`` gives the
    incremental engine's (:class:`TorchRowProducts`) on ``device``.

    Args:
        device: "cpu", "cuda" or "cuda:K": where :meth:`rows` keeps the candidate rows.
    """

    name = "torch"
    parallel_rows = False  # torch threads inside each product

    def __init__(self, device: str = "cpu") -> None:
        self.torch = _torch()
        self.device = resolve_device(device)

    def rows(self, phi: np.ndarray) -> TorchRowProducts:
        return TorchRowProducts(phi, self.device)

    def _t(self, X: np.ndarray, dtype: Any = None) -> Tensor:
        return from_numpy(self.torch, X, dtype)

    def rowsq(self, X: np.ndarray, Wk: np.ndarray) -> np.ndarray:
        # (k x m) = W_k X^T, summed over k: MKL's float64 kernels run this layout up to twice
        # as fast as X W_k^T (k = 8..256, m = 2048..4096, one thread, AMD EPYC); float32 the other
        if Wk.dtype == np.float64:
            C = self._t(Wk) @ self._t(X, Wk.dtype).T
            return C.mul_(C).sum(0).numpy()
        C = self._t(X, Wk.dtype) @ self._t(Wk).T
        return C.mul_(C).sum(1).numpy()

    def quad(self, X: np.ndarray, h_inv: np.ndarray) -> np.ndarray:
        Xt = self._t(X, np.float64)
        return ((Xt @ self._t(h_inv)) * Xt).sum(1).numpy()


class TorchRowProducts(RowProducts):
    """The incremental engine's products (:class:`sim.design.incremental.RowProducts`) on torch:
    phi (N, d) is held as a float64 tensor on ``device`` (on the CPU a view of the numpy array,
    on CUDA a copy made once); H^{-1} (the state's folded part) goes to the device once per fold
    of the state (every ``flush`` picks), its pending rank-one rows at each call. The same code
    runs on either device: per call, the indices (k,) go in and the k scores come back; in the
    maintained mode, w (d,) goes in and the N downdates (phi_i^T w)^2 come back, since the
    engine's argmax and bounds live on the host (on CUDA that is 8 N bytes over the bus per
    pick).

    Args:
        phi: (N, d) float64 rows. device: torch.device (default CPU).
    """

    name = "torch"

    def __init__(self, phi: np.ndarray, device: Any = None) -> None:
        super().__init__(phi)
        self.torch = _torch()
        self.device = self.torch.device("cpu") if device is None else device
        self._phi = self._dev(phi)
        self._h: Tensor | None = None
        self._h_key: tuple[int, int] | None = None

    def _dev(self, X: np.ndarray) -> Tensor:
        return from_numpy(self.torch, X, np.float64).to(self.device)

    def scores(self, state: GreedyState, idx: np.ndarray) -> np.ndarray:
        # GreedyState.scores' arithmetic: x^T H^{-1} x over the folded H^{-1}, minus
        # ||W_p x||^2 over the pending rank-one rows W_p (k_p, d)
        key = (id(state._h_inv), state.n_added - state._k)  # changes at every fold/recompute
        with self._threads():
            if key != self._h_key:
                self._h, self._h_key = self._dev(state._h_inv), key
            i = self.torch.from_numpy(np.asarray(idx, dtype=np.int64)).to(self.device)
            X = self._phi[i]
            s = (X @ self._h).mul_(X).sum(1)
            if state._k:
                C = X @ self._dev(state._W[:state._k]).T
                s -= C.mul_(C).sum(1)
            return s.cpu().numpy()

    def downdate(self, q: np.ndarray, w: np.ndarray) -> None:
        with self._threads():
            c = self._phi @ self._dev(w)
            q -= c.mul_(c).cpu().numpy()

    def _threads(self) -> contextlib.AbstractContextManager:
        """On the CPU, torch's thread pool held to one thread: these products are small (k <= 4096
        rows) or memory-bound (the maintained GEMV), and waking the pool for them cost 25x at 2
        threads on a loaded 2-core machine (N = 3000, d = 16, m = 64: 8.1 s vs 0.33 s; the
        N = 2^14, d = 128 GEMV ran no faster at 2 threads). Nothing changes on CUDA."""
        return torch_threads(1) if self.device.type == "cpu" else contextlib.nullcontext()


def greedy_select_torch(V: Any, n: int, *, gamma: float = 1.0,
                        weights: ArrayLike | None = None, exclude: ArrayLike | None = None,
                        dtype: DTypeLike = np.float64, device: str = "cpu", active: int = 512,
                        block: int = 256, rows_per_block: int = 65536,
                        stream: bool | None = None,
                        host_picks: bool | None = None) -> DesignResult:
    """Greedy D-optimal selection of n distinct rows with the blocked engine on torch.

    Same contract and the same picks as ``greedy_select(V, n, method="blocked")`` (module
    docstring). ``V`` may be an (N, d) array, a float tensor or a ``numpy.memmap`` (streamed in
    blocks of ``rows_per_block`` rows; then peak memory is O(rows_per_block d + N)). ``device``:
    "cpu", "cuda" or "cuda:K". ``dtype``: float64, or float32 for the bulk refresh.
    ``host_picks``: on the CPU (the default there), the numpy engine
    (:class:`sim.design.greedy.BlockedGreedy`) itself with torch running its bulk products
    (:class:`TorchProducts`); False runs the device code path (per-pick work on tensors).

    Returns:
        DesignResult(solver="greedy") with ``indices`` (n,) in pick order, ``gains`` (n,),
        ``logdet``, ``info`` (backend, device, dtype, blocks, evaluations, reanchors).
    """
    torch = _torch()
    dev = resolve_device(device)
    host = dev.type == "cpu" if host_picks is None else bool(host_picks)
    if host and dev.type != "cpu":
        raise ValueError("host_picks: the per-pick work runs on the host only with device "
                         "'cpu'; leave host_picks unset")
    if host:
        return _host_select(torch, V, n, gamma=gamma, weights=weights, exclude=exclude,
                            dtype=dtype, active=active, block=block,
                            rows_per_block=rows_per_block, stream=stream)
    return _device_select(torch, dev, V, n, gamma=gamma, weights=weights, exclude=exclude,
                          dtype=dtype, active=active, block=block,
                          rows_per_block=rows_per_block, stream=stream)


def _host_select(torch: Any, V: Any, n: int, *, gamma: float, weights: ArrayLike | None,
                 exclude: ArrayLike | None, dtype: DTypeLike, active: int, block: int,
                 rows_per_block: int, stream: bool | None) -> DesignResult:
    """The CPU path: :func:`sim.design.greedy.greedy_select`'s blocked engine, its bulk
    products on torch, numpy's BLAS held to one thread for the per-pick work (so that its pool
    does not spin on the cores torch's intra-op pool needs for the bulk products)."""
    if torch.is_tensor(V):
        if weights is not None:
            raise ValueError("weights: scale the tensor rows by sqrt(w) before calling")
        V = V.detach().cpu().numpy()
    elif isinstance(V, np.memmap) and stream is False:
        V = np.asarray(V)
    rows = min(positive_int(rows_per_block, "rows_per_block"), HOST_REFRESH_ROWS)
    with threadpool_limits(1, user_api="blas"):
        res = greedy_select(V, n, gamma=gamma, weights=weights, exclude=exclude, dtype=dtype,
                            method="blocked", active=active, block=block,
                            rows_per_block=rows, products=TorchProducts())
    res.info.update(backend="torch", device="cpu", host_picks=True)
    return res


def _device_select(torch: Any, dev: Any, V: Any, n: int, *, gamma: float,
                   weights: ArrayLike | None, exclude: ArrayLike | None, dtype: DTypeLike,
                   active: int, block: int, rows_per_block: int,
                   stream: bool | None) -> DesignResult:
    """The device path (CUDA, or the CPU with host_picks=False): per-pick work on tensors."""
    t0 = time.perf_counter()
    gamma = check_gamma(gamma, allow_zero=False)
    if not isinstance(V, np.memmap) and not torch.is_tensor(V):
        V = as_matrix(V, "V")
    src = RowSource(V, weights, dtype, dev, stream=stream, rows_per_block=rows_per_block)
    d = src.d
    n = positive_int(n, "n", minimum=0)
    active, block = positive_int(active, "active"), positive_int(block, "block")
    from ..data import check_indices
    excl = check_indices([] if exclude is None else exclude, src.N, "exclude")
    n_alive = src.N - excl.size
    if n > n_alive:
        raise ValueError(f"n: cannot pick {n} distinct rows from {n_alive} eligible ones "
                         f"(N = {src.N}, {excl.size} excluded); lower n")
    exact_bulk = src.dt == np.float64
    margin = 0.0 if exact_bulk else F32_MARGIN
    f64 = torch.float64
    state = _TorchState(torch, d, gamma, dev)
    alive = torch.ones(src.N, dtype=torch.bool, device=dev)
    alive[torch.from_numpy(excl).to(dev)] = False
    sc = torch.empty(src.N, dtype=f64, device=dev)

    for lo, hi, X in src.blocks(f64):
        sc[lo:hi] = (X * X).sum(1) / gamma
    neg_inf = torch.tensor(-np.inf, dtype=f64, device=dev)
    picks: list[int] = []
    gains: list[float] = []
    W = torch.empty((block, d), dtype=f64, device=dev)
    evals, nblocks, reanchors = src.N, 0, 0
    max_active = max(active, 4096)
    anchor = float(torch.where(alive, sc, neg_inf).max())
    exact_sc = True   # sc holds exact float64 scores (no float32 downdate since the last pass)
    while len(picks) < n:
        key = torch.where(alive, sc, neg_inf)
        top = float(key.max())
        if top < anchor / REANCHOR or (not exact_sc and active > max_active):
            for lo, hi, X in src.blocks(f64):
                sc[lo:hi] = state.scores(X)
            evals += src.N
            reanchors += 1
            key = torch.where(alive, sc, neg_inf)
            anchor = top = float(key.max())
            exact_sc, active = True, min(active, max_active)
        K = min(active, n_alive)
        if K < src.N:
            vals, part = torch.topk(key, K + 1, sorted=True)
            A = torch.sort(part[:K]).values
            tau = float(vals[K])
        else:
            A, tau = torch.nonzero(alive).flatten(), -np.inf
        A_np = A.cpu().numpy()
        VA: Any = src.exact(A_np)
        if exact_bulk:
            sA = sc[A].clone()
        else:
            sA = state.scores(VA)
            evals += A_np.size
        slack = 0.0 if exact_sc else margin
        thresh = tau + slack * abs(tau) if np.isfinite(tau) else -np.inf
        nblocks += 1
        k = 0
        while k < block and len(picks) < n:
            j = int(sA.argmax())
            if not float(sA[j]) > thresh:
                break
            gain, w = state._add(VA[j])
            i = int(A_np[j])
            picks.append(i)
            gains.append(gain)
            alive[i] = False
            n_alive -= 1
            c = VA @ w
            c *= c
            sA -= c
            sA[j] = -np.inf
            W[k] = w
            k += 1
        evals += k * A_np.size
        if k == 0:
            if K == n_alive:
                raise RuntimeError("greedy: no certifiable pick among all rows")
            active = 2 * active
            continue
        if k < block // 4:
            active = min(2 * active, max_active)
        elif k > block // 2:
            active = max(active // 2, 128)
        Wk = W[:k].to(src.tdt)
        for lo, hi, X in src.blocks():
            C = X @ Wk.T
            C *= C
            sc[lo:hi] -= C.sum(1) if exact_bulk else C.sum(1).to(f64)
        exact_sc = exact_bulk
        evals += k * src.N
    info = {"method": "blocked", "backend": "torch", "device": str(dev), "dtype": src.dt.name,
            "blocks": nblocks, "evaluations": int(evals), "reanchors": reanchors,
            "streamed": src.stream, "resident_rows": src.resident,
            "load_seconds": src.load_seconds, "host_picks": False,
            "compactions": 0}
    return DesignResult(solver="greedy", indices=np.asarray(picks, dtype=np.int64),
                        logdet=float(state.logdet), support=n, iterations=n,
                        seconds=time.perf_counter() - t0,
                        gains=np.asarray(gains, dtype=np.float64), info=info)


def torch_engine(V: np.ndarray, eligible: np.ndarray, state: GreedyState,
                 q0: np.ndarray | None = None, *, n: int, device: str = "cpu",
                 dtype: DTypeLike = np.float64) -> Any:
    """The exact-argmax engine for a fixed-weight greedy selector on torch: on the CPU the numpy
    engine itself with torch's bulk products (resumable, no batches; what ``adpo select
    --backend torch`` gets through ``GreedySelector.products`` too), on CUDA :class:`TorchEngine`
    (``adpo select --backend torch --device cuda`` hooks it in as ``engine_factory``). Same
    signature as :class:`sim.design.greedy.BlockedGreedy`."""
    if resolve_device(device).type == "cpu":
        from .greedy import BlockedGreedy
        q = (np.einsum("ij,ij->i", V, V) / state.gamma) if q0 is None else q0
        return BlockedGreedy(V, eligible, state, q, dtype=dtype, products=TorchProducts())
    return TorchEngine(V, eligible, state, q0, n=n, device=device, dtype=dtype)


class TorchEngine:
    """The torch engine behind the resumable ``next() -> (i, gain, v)`` interface of
    :class:`sim.design.greedy.BlockedGreedy`, for the fixed-weight selectors (oracle, ADPO+, APO:
    ``adpo select --backend torch``; hooked in through ``GreedySelector.engine_factory``).

    The picks come from :func:`greedy_select_torch` in batches: ``n`` picks at the first call,
    then twice as many each time the batch runs out (the greedy sequence of m picks is a prefix of
    the one of 2m, so this changes no pick; at most twice the work when ``n`` is too small). Each
    served pick is also added to the selector's numpy ``state`` (O(d^2)), so the selector's
    ``logdet_``, gains and ``on_pick`` hooks are those of the numpy engine.

    Args:
        V: (N, d) rows v_i = sqrt(w_i) phi_i (unit weights). eligible: (N,) bool, rows that may
            be picked. state: the selector's :class:`sim.design.greedy.GreedyState` (empty).
        q0: unused (the torch engine computes its own start scores; same signature as
            BlockedGreedy). n: picks expected. device, dtype, rows_per_block: as
            :func:`greedy_select_torch`.
    """

    def __init__(self, V: np.ndarray, eligible: np.ndarray, state: GreedyState,
                 q0: np.ndarray | None = None, *, n: int, device: str = "cpu",
                 dtype: DTypeLike = np.float64, rows_per_block: int = 65536) -> None:
        if state.n_added:
            raise ValueError("backend: the torch engine starts from H_0 = gamma I; this "
                             "selector's design already holds rows (use --backend numpy)")
        self.V, self.state = V, state
        self.exclude = np.flatnonzero(~np.asarray(eligible, dtype=bool))
        self.n_eligible = int(V.shape[0] - self.exclude.size)
        self.batch = positive_int(n, "n")
        self.kw: dict[str, Any] = {"device": device, "dtype": dtype,
                                   "rows_per_block": rows_per_block}
        self.picks = np.empty(0, dtype=np.int64)
        self.served = 0
        self.n_evals = 0

    def next(self) -> tuple[int, float, np.ndarray]:
        """The next pick: (row index, gain log(1 + v^T H^{-1} v), v)."""
        if self.served == self.picks.size:
            m = min(max(self.batch, 2 * self.picks.size), self.n_eligible)
            if m <= self.picks.size:
                raise ValueError("n: no eligible rows left to pick")
            res = greedy_select_torch(self.V, m, gamma=self.state.gamma, exclude=self.exclude,
                                      **self.kw)
            assert res.indices is not None
            self.picks = res.indices
            self.n_evals += int(res.info.get("evaluations", 0))
        i = int(self.picks[self.served])
        self.served += 1
        v = np.asarray(self.V[i], dtype=np.float64)
        return i, self.state.add(v), v
