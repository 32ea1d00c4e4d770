"""Out-of-core preference pools: a folder of ``.npy`` arrays that can be memory-mapped.

Layout (format version 1)::

    POOL/
      header.json     {"format": "adpo-pool", "version": 1, "N": N, "d": d, "beta": beta,
                       "dtype": "float32" | "float64", "keys": ["phi", "b", ...]}
      phi.npy         (N, d) float32 or float64   feature differences phi_i (paper eq. 8-9)
      b.npy           (N,)   float64              reference log-ratios b_i
      s.npy           (N,)   int8                 optional labels in {0, 1}
      theta_star.npy  (d,)   float64              optional DPO MLE on all N labels (eq. 5)
      theta_true.npy  (d,)   float64              optional generating parameter (eq. 12)
      group.npy       (N,)   int64                optional prompt id of each row (sim.data)

The keys mean what they mean in the ``.npz`` format (:mod:`sim.data`). ``phi.npy`` is a plain
``.npy`` file, so ``numpy.load(..., mmap_mode="r")`` maps it without reading it; the blocked
greedy engines (numpy, :mod:`sim.design.greedy`, and torch, :mod:`sim.design.torch_greedy`)
stream it in row blocks. Every command that takes ``--data FILE.npz`` also takes a pool folder
(read into memory, validated like an ``.npz``); ``adpo design --solver greedy`` (exact argmax,
D-criterion, either backend) streams it instead.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import DTypeLike

from .data import NPZ_KEYS, REQUIRED_KEYS, PhiShape, PreferenceData
from .io import read_json
from .validation import DataError, as_vector

FORMAT, VERSION = "adpo-pool", 1
HEADER = "header.json"


def is_pool(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a pool folder (a directory holding ``header.json``)."""
    return os.path.isdir(path) and os.path.isfile(os.path.join(path, HEADER))


@dataclass(frozen=True)
class Pool(PhiShape):
    """An opened pool: ``phi`` is a read-only ``numpy.memmap`` (N, d); the small arrays are in
    memory (``s``, ``theta_star``, ``theta_true`` may be None)."""

    path: str
    phi: np.memmap
    b: np.ndarray
    beta: float
    s: np.ndarray | None
    theta_star: np.ndarray | None
    theta_true: np.ndarray | None
    header: dict
    group: np.ndarray | None = None


    def to_data(self) -> PreferenceData:
        """Everything in memory as a validated :class:`PreferenceData` (float64 phi)."""
        return PreferenceData(phi=np.asarray(self.phi, dtype=np.float64), b=self.b,
                              beta=self.beta, s=self.s, theta_star=self.theta_star,
                              theta_true=self.theta_true, group=self.group,
                              info={"pool": self.path})


class PoolWriter:
    """Write a pool folder row block by row block, atomically: the arrays go to a temporary
    sibling folder (``phi.npy`` as a writable memory map, so peak memory is one block, not
    N x d) that replaces ``path`` only when the ``with`` block ends without an exception (and is
    removed otherwise). Refuses to replace an existing path unless ``overwrite``.

    Usage::

        with PoolWriter(path, N, d, beta=1.0, dtype=np.float32) as w:
            w.phi[lo:hi] = block                   # (hi - lo, d)
            w.put("b", b)                          # (N,); also s, theta_star, theta_true
    """

    def __init__(self, path: str | os.PathLike[str], N: int, d: int, *, beta: float,
                 dtype: DTypeLike = np.float32,
                 overwrite: bool = False) -> None:
        self.path = os.fspath(path).rstrip("/") or "/"
        self.dt = np.dtype(dtype)
        if self.dt not in (np.float32, np.float64):
            raise ValueError(f"dtype: float32 or float64, got {self.dt}")
        if os.path.exists(self.path) and not overwrite:
            raise ValueError(f"path {self.path!r}: already exists; choose a new folder or pass "
                             f"overwrite=True")
        self.N, self.d, self.beta = int(N), int(d), float(beta)
        self.tmp = self.path + ".tmp-pool"
        self.keys = ["phi"]

    def __enter__(self) -> PoolWriter:
        shutil.rmtree(self.tmp, ignore_errors=True)
        os.makedirs(self.tmp)
        self.phi = np.lib.format.open_memmap(os.path.join(self.tmp, "phi.npy"), mode="w+",
                                             dtype=self.dt, shape=(self.N, self.d))
        return self

    def put(self, key: str, value: Any) -> None:
        """Store a small array (b, s, theta_star, theta_true, group) as ``key.npy``."""
        if key not in NPZ_KEYS or key in ("phi", "beta"):
            raise ValueError(f"key: one of {', '.join(k for k in NPZ_KEYS if k not in ('phi', 'beta'))}"
                             f", got {key!r}")
        np.save(os.path.join(self.tmp, f"{key}.npy"), np.asarray(value))
        self.keys.append(key)

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None:
            del self.phi
            shutil.rmtree(self.tmp, ignore_errors=True)
            return
        self.phi.flush()
        del self.phi
        header = {"format": FORMAT, "version": VERSION, "N": self.N, "d": self.d,
                  "beta": self.beta, "dtype": self.dt.name, "keys": self.keys}
        with open(os.path.join(self.tmp, HEADER), "w") as f:
            json.dump(header, f, indent=2)
        if os.path.exists(self.path):
            shutil.rmtree(self.path)
        os.replace(self.tmp, self.path)


def save_pool(path: str | os.PathLike[str], data: PreferenceData, *, dtype: DTypeLike = np.float32,
              overwrite: bool = False) -> None:
    """Write ``data`` as a pool folder (``phi`` in ``dtype``) through :class:`PoolWriter`:
    the folder appears complete or not at all."""
    with PoolWriter(path, data.N, data.d, beta=data.beta, dtype=dtype,
                    overwrite=overwrite) as w:
        w.phi[:] = data.phi
        for key in ("b", "s", "theta_star", "theta_true", "group"):
            val = getattr(data, key)
            if val is not None:
                w.put(key, val)


def open_pool(path: str | os.PathLike[str]) -> Pool:
    """Open a pool folder: ``phi`` memory-mapped read-only, the rest read and validated.

    Raises ``DataError`` (a ValueError; one line, naming the file and the fix) for a missing or malformed
    header, an unknown format version, missing required arrays, or shapes that disagree.
    """
    path = os.fspath(path)
    header = read_json(os.path.join(path, HEADER), "pool header (write pools with "
                       "sim.store.save_pool)")
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise DataError(f"data folder {path!r}: {HEADER} is not an {FORMAT!r} header")
    if header.get("version") != VERSION:
        raise DataError(f"data folder {path!r}: format version {header.get('version')!r} is "
                         f"not supported (this reader knows version {VERSION})")
    keys = header.get("keys", [])
    missing = [k for k in REQUIRED_KEYS if k != "beta" and k not in keys]
    unknown = sorted(set(keys) - set(NPZ_KEYS))
    if missing or unknown:
        raise DataError(f"data folder {path!r}: keys {keys} lack {missing} or hold unknown "
                         f"{unknown}; allowed: {list(NPZ_KEYS)}")

    def read(key: str, mmap: Literal["r"] | None = None) -> Any:
        try:
            return np.load(os.path.join(path, f"{key}.npy"), mmap_mode=mmap, allow_pickle=False)
        except FileNotFoundError:
            raise DataError(f"data folder {path!r}: {key}.npy listed in {HEADER} is "
                             f"missing") from None
        except (OSError, ValueError) as exc:
            raise DataError(f"data folder {path!r}: {key}.npy is not a readable .npy "
                             f"array ({exc})") from None

    phi = read("phi", "r")
    if phi.ndim != 2 or phi.dtype not in (np.float32, np.float64):
        raise DataError(f"data folder {path!r}: phi.npy must be a 2-D float32/float64 array, "
                         f"got {phi.dtype} {phi.shape}")
    N, d = phi.shape
    if (header.get("N"), header.get("d")) != (N, d):
        raise DataError(f"data folder {path!r}: header says N = {header.get('N')}, d = "
                         f"{header.get('d')} but phi.npy is {phi.shape}")
    small = {k: read(k) for k in ("b", "s", "theta_star", "theta_true", "group") if k in keys}
    # b, s and beta go through the same validation as an .npz (shapes, finiteness, labels), on
    # an (N, 1) stand-in for phi; the d-vectors are checked against d here.
    thetas = {k: small.pop(k, None) for k in ("theta_star", "theta_true")}
    probe = PreferenceData(phi=np.zeros((N, 1)), beta=header.get("beta", 1.0), **small)
    thetas = {k: None if v is None else as_vector(v, k, length=d) for k, v in thetas.items()}
    return Pool(path=path, phi=phi, b=probe.b, beta=probe.beta, s=probe.s, header=header,
                group=probe.group, **thetas)
