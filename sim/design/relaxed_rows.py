"""The candidate rows of a relaxed design and their variances, on numpy or torch (CPU / CUDA).

Frank-Wolfe (:mod:`sim.design.relaxed`) keeps its small state on the host in float64: pi, the
(d, d) matrix M(pi)^{-1} and its Sherman-Morrison updates. What touches all m rows goes through
an object of this module:

* ``scan(L)``: the variances g_i = v_i^T M^{-1} v_i = ||L^{-1} v_i||^2 of every row from the
  Cholesky factor L of M (the Kiefer-Wolfowitz certificate d / max g and the working-set
  violators), by blocks of ``BLOCK`` rows times W = L^{-T}: one matrix product per block and no
  (m, d) temporary. ``scan(L, exact=True)`` always runs in float64 (the certificate a solver
  reports); otherwise in the bulk dtype (float32 halves the memory and the time of the scans).
* ``refresh(L)``, ``update(U, c, scale)``, ``top()``, ``values(idx)``: the variances kept on
  the backend through a run of steps, g <- (g + sum_c c_c (V U_c)^2) / scale (the rank-one and
  rank-two updates of the step, see :mod:`sim.design.relaxed`), the argmax (ties: lowest index,
  as numpy's and torch's argmax both document) and a few entries back on the host.
* ``host_rows(idx)``: rows as float64 numpy (the information matrix of the support, the
  Sherman-Morrison vectors).

:class:`NumpyRows` and :class:`TorchRows` hold the same rows; the step logic is shared, so the
two backends differ only by the order of floating-point sums (tests compare them to 1e-9).
torch is imported lazily: ``import sim`` works without it.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import scipy.linalg

BLOCK = 65536          # rows per block of a scan: a (BLOCK, d) temporary at most
BACKENDS = ("numpy", "torch")


def _inv_lower_t(L: np.ndarray) -> np.ndarray:
    """W = L^{-T} (d, d) for lower-triangular L, so that ||L^{-1} v||^2 = ||v^T W||^2."""
    return scipy.linalg.solve_triangular(L, np.eye(L.shape[0]), lower=True,
                                         check_finite=False).T.copy()


class NumpyRows:
    """Rows V (m, d) in memory (float64, or float32 for the bulk scans) and their variances.

    V is used as given (no copy); ``host_rows`` returns float64 rows.
    """

    backend = "numpy"

    def __init__(self, V: np.ndarray) -> None:
        self.V = V
        self.shape = V.shape
        self.g = np.empty(0)

    def take(self, idx: np.ndarray) -> NumpyRows:
        """The rows idx as a float64 backend of their own (a working set)."""
        return NumpyRows(self.host_rows(idx))

    def host_rows(self, idx: Any) -> np.ndarray:
        return np.asarray(self.V[idx], dtype=np.float64)

    def scan(self, L: np.ndarray, exact: bool = False) -> np.ndarray:
        """(m,) float64 variances ||L^{-1} v_i||^2 (module docstring)."""
        return self._scan(L, exact)

    def _scan(self, L: np.ndarray, exact: bool) -> np.ndarray:
        dt = np.float64 if exact else self.V.dtype
        W = _inv_lower_t(L).astype(dt)
        out = np.empty(self.shape[0])
        for lo in range(0, self.shape[0], BLOCK):
            Z = np.asarray(self.V[lo:lo + BLOCK], dtype=dt) @ W
            out[lo:lo + BLOCK] = np.einsum("ij,ij->i", Z, Z)
        return out

    def refresh(self, L: np.ndarray) -> None:
        self.g = self._scan(L, True)

    def update(self, U: np.ndarray, c: tuple[float, ...], scale: float) -> None:
        """g <- (g + sum_c c_c (V U[:, c])^2) / scale, U (d, k)."""
        C = self.V @ U
        C *= C
        self.g += C @ np.asarray(c)
        if scale != 1.0:
            self.g /= scale

    def single_thread(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()

    def top(self) -> tuple[int, float]:
        j = int(np.argmax(self.g))
        return j, float(self.g[j])

    def values(self, idx: np.ndarray) -> np.ndarray:
        return self.g[idx]


class TorchRows:
    """The same rows as a torch tensor on ``device`` (moved once; on the CPU a float64 array is
    shared, not copied), float64 or float32 in the bulk; the variances in float64 there."""

    backend = "torch"

    def __init__(self, V: np.ndarray, device: str = "cpu", *, _tensor: Any = None) -> None:
        from .torch_greedy import _torch, resolve_device
        self.torch = torch = _torch()
        self.device = resolve_device(device) if _tensor is None else _tensor.device
        self.V = V                                   # host rows (float64 numpy)
        self.shape = V.shape
        self.X = self._t(V, None) if _tensor is None else _tensor
        self.g = torch.empty(0, dtype=torch.float64, device=self.device)

    def take(self, idx: np.ndarray) -> TorchRows:
        rows = self.host_rows(idx)
        t = self._t(rows, None)
        return TorchRows(rows, _tensor=t)

    def host_rows(self, idx: Any) -> np.ndarray:
        return np.asarray(self.V[idx], dtype=np.float64)

    def _t(self, a: np.ndarray, dtype: Any) -> Any:
        """a on the device (in ``dtype``; None: a's own), through torch_greedy.from_numpy (a
        read-only array, e.g. rows of a loaded .npz or a pool, is read without a warning)."""
        from .torch_greedy import from_numpy
        return from_numpy(self.torch, a).to(device=self.device, dtype=dtype)

    def _scan(self, L: np.ndarray, exact: bool) -> Any:
        torch = self.torch
        dt = torch.float64 if exact else self.X.dtype
        W = self._t(_inv_lower_t(L), dt)
        out = torch.empty(self.shape[0], dtype=torch.float64, device=self.device)
        for lo in range(0, self.shape[0], BLOCK):
            Z = self.X[lo:lo + BLOCK].to(dt) @ W
            out[lo:lo + BLOCK] = (Z * Z).sum(1, dtype=torch.float64)
        return out

    def scan(self, L: np.ndarray, exact: bool = False) -> np.ndarray:
        return self._scan(L, exact).cpu().numpy()

    def refresh(self, L: np.ndarray) -> None:
        self.g = self._scan(L, True)

    def update(self, U: np.ndarray, c: tuple[float, ...], scale: float) -> None:
        C = self.X @ self._t(U, self.X.dtype)
        C *= C
        self.g += C.to(self.torch.float64) @ self._t(np.asarray(c), self.torch.float64)
        if scale != 1.0:
            self.g /= scale

    def single_thread(self) -> contextlib.AbstractContextManager:
        """torch's CPU thread pool limited to one thread inside the block."""
        from .torch_greedy import torch_threads
        return torch_threads(1)

    def top(self) -> tuple[int, float]:
        v, j = self.torch.max(self.g, 0)
        return int(j), float(v)

    def values(self, idx: np.ndarray) -> np.ndarray:
        return self.g[self._t(idx, None)].cpu().numpy()


def check_backend(backend: str, device: str) -> None:
    """A one-line ValueError for an unknown backend, a device without torch, or no CUDA."""
    if backend not in BACKENDS:
        raise ValueError(f"backend: 'numpy' or 'torch', got {backend!r}")
    if backend == "numpy":
        if device != "cpu":
            raise ValueError(f"device: {device!r} needs --backend torch; the numpy backend runs "
                             "on the CPU")
        return
    from .torch_greedy import resolve_device
    resolve_device(device)


def make_rows(V: np.ndarray, backend: str = "numpy",
              device: str = "cpu") -> NumpyRows | TorchRows:
    """The rows V (N, d) on ``backend`` ("numpy" or "torch") and ``device`` ("cpu", "cuda")."""
    check_backend(backend, device)
    return NumpyRows(V) if backend == "numpy" else TorchRows(V, device)
