"""Preference data: the one container every part of the testbed reads.

A :class:`PreferenceData` holds, for N candidate pairs (x_i, y_i1, y_i2):

============  ===========  ==========================================================
key           shape        meaning
============  ===========  ==========================================================
phi           (N, d)       feature differences phi_i = phi(x_i, y_i1) - phi(x_i, y_i2)
b             (N,)         reference log-ratio b_i = log pi_0(y_i1|x_i) - log pi_0(y_i2|x_i)
beta          ()           DPO scale beta > 0
s             (N,)         optional labels in {0, 1}; 1 means y_i1 is preferred
theta_star    (d,)         optional target: the DPO MLE on all N labels (paper eq. 5)
theta_true    (d,)         optional generating parameter of the labels (eq. 12)
group         (N,)         optional prompt id of each row (int >= 0): rows sharing a prompt
                           (the ``prompts`` environment's K(K-1)/2 pairs of one prompt)
============  ===========  ==========================================================

With ``theta_true``, :meth:`PreferenceData.draw_labels` draws fresh labels for any rows (the
repeated labels of designs with replacement), from a caller's generator.

The same keys are the ``.npz`` file format (:meth:`save` / :meth:`load`); files are read with
``allow_pickle=False``. Labels are stored with the data so every method in a comparison sees
the same draws.
"""

from __future__ import annotations

import os
import zipfile
import zlib
from dataclasses import dataclass, field, replace
from typing import Any, Self

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import expit

from .io import atomic_savez
from .validation import (
    DataError,
    as_labels,
    as_matrix,
    as_vector,
    check_beta,
    check_logit_scale,
)

NPZ_KEYS = ("phi", "b", "beta", "s", "theta_star", "theta_true", "group")
REQUIRED_KEYS = ("phi", "b", "beta")


class PhiShape:
    """``N`` and ``d``, the shape of ``phi`` (N, d), for every container of preference rows."""

    phi: np.ndarray

    @property
    def N(self) -> int:  # noqa: N802 (the paper's symbol)
        return self.phi.shape[0]

    @property
    def d(self) -> int:
        return self.phi.shape[1]


@dataclass(frozen=True, eq=False, kw_only=True)
class KnownParameters:
    """What a data container may know beyond its rows, shared by pairs (:class:`PreferenceData`)
    and rankings (:class:`sim.ranking.RankingData`): ``theta_star`` (d,) the MLE on all the labels
    (eq. 5), ``theta_true`` (d,) the generating parameter (eq. 12), both optional, and ``info``,
    free-form facts about the environment. Keyword-only fields."""

    theta_star: np.ndarray | None = None
    theta_true: np.ndarray | None = None
    info: dict = field(default_factory=dict, compare=False)

    def _check_parameters(self, d: int) -> None:
        """Validate (in place, on the frozen instance) the parameters present as finite (d,)."""
        for key in ("theta_star", "theta_true"):
            val = getattr(self, key)
            if val is not None:
                object.__setattr__(self, key, as_vector(val, key, length=d))

    def with_(self, **changes: Any) -> Self:
        """A validated copy with some fields replaced."""
        return replace(self, **changes)


@dataclass(frozen=True, eq=False)
class PreferenceData(KnownParameters, PhiShape):
    """Validated preference data; see the module docstring for the fields and shapes."""

    phi: np.ndarray
    b: np.ndarray
    beta: float = 1.0
    s: np.ndarray | None = None
    group: np.ndarray | None = None

    def __post_init__(self):
        phi = as_matrix(self.phi, "phi")
        n, d = phi.shape
        object.__setattr__(self, "phi", phi)
        object.__setattr__(self, "b", as_vector(self.b, "b", length=n))
        object.__setattr__(self, "beta", check_beta(self.beta))
        check_logit_scale(phi, self.b, self.beta)
        if self.s is not None:
            object.__setattr__(self, "s", as_labels(self.s, "s", length=n))
        self._check_parameters(d)
        if self.group is not None:
            object.__setattr__(self, "group", as_groups(self.group, n))
        for a in (self.phi, self.b, self.s, self.theta_star, self.theta_true, self.group):
            if a is not None:
                a.setflags(write=False)


    @property
    def has_labels(self) -> bool:
        return self.s is not None

    def subset(self, indices: ArrayLike) -> "PreferenceData":
        """The rows ``indices`` (targets are kept: they refer to the full data)."""
        idx = check_indices(indices, self.N)
        return replace(self, phi=self.phi[idx], b=self.b[idx],
                       s=None if self.s is None else self.s[idx],
                       group=None if self.group is None else self.group[idx])

    def draw_labels(self, rows: ArrayLike, rng: np.random.Generator) -> np.ndarray:
        """Fresh labels for ``rows`` (k,), repeats allowed: s_r ~ Bernoulli(mu(beta (phi_r^T
        theta_true - b_r))) (eq. 12), independent of every earlier draw, from ``rng`` (a
        ``numpy.random.Generator``; never the global state). Returns (k,) int8.

        Needs ``theta_true`` (the synthetic environments store it); real data cannot be
        relabelled and raises ``ValueError``.
        """
        if self.theta_true is None:
            raise ValueError("theta_true: fresh labels are drawn from the generating parameter, "
                             "which this data lacks (real data cannot be relabelled); use an "
                             "environment with theta_true or designs without replacement")
        if not isinstance(rng, np.random.Generator):
            raise ValueError(f"rng: expected a numpy.random.Generator, got {type(rng).__name__}")
        idx = np.asarray(rows, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= self.N):
            raise ValueError(f"rows: indices must lie in [0, {self.N})")
        z = self.beta * (self.phi[idx] @ self.theta_true - self.b[idx])
        return (rng.random(idx.size) < expit(z)).astype(np.int8)

    # ------------------------------------------------------------------ .npz I/O
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the documented keys (absent optional fields are omitted) atomically."""
        arrays: dict[str, Any] = {"phi": self.phi, "b": self.b, "beta": np.float64(self.beta)}
        for key in ("s", "theta_star", "theta_true", "group"):
            if getattr(self, key) is not None:
                arrays[key] = getattr(self, key)
        path = os.fspath(path)
        if not path.endswith(".npz"):
            raise ValueError(f"path: data files must end in .npz, got {path!r}")
        atomic_savez(path, **arrays)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "PreferenceData":
        """Read a ``.npz`` written by :meth:`save` (or by hand with the documented keys), or an
        out-of-core pool folder (:mod:`sim.store`), into memory."""
        path = os.fspath(path)
        if os.path.isdir(path):
            from .store import open_pool
            return open_pool(path).to_data()
        try:
            with open(path, "rb") as fh:
                magic = fh.read(4)
        except FileNotFoundError:
            raise DataError(f"data file {path!r}: no such file") from None
        except OSError as exc:
            raise DataError(f"data file {path!r}: cannot be opened ({exc})") from None
        if magic != b"PK\x03\x04":  # np.load would otherwise try to unpickle other files
            raise DataError(f"data file {path!r}: not a readable .npz file (not a zip archive); "
                             f"write it with PreferenceData.save or numpy.savez")
        try:
            with np.load(path, allow_pickle=False) as f:
                arrays = {k: f[k] for k in f.files}
        except FileNotFoundError:
            raise DataError(f"data file {path!r}: no such file") from None
        except (OSError, zipfile.BadZipFile, zlib.error, EOFError, KeyError,
                NotImplementedError, RuntimeError) as exc:
            raise DataError(f"data file {path!r}: not a readable .npz file ({exc})") from None
        except ValueError as exc:  # object arrays need pickle: refused
            raise DataError(f"data file {path!r}: cannot be read without pickle ({exc}); "
                             f"store plain numeric arrays") from None
        missing = [k for k in REQUIRED_KEYS if k not in arrays]
        if missing:
            raise DataError(f"data file {path!r}: missing key(s) {missing}; required keys are "
                             f"{list(REQUIRED_KEYS)}, optional {list(NPZ_KEYS[3:])}")
        unknown = sorted(set(arrays) - set(NPZ_KEYS))
        if unknown:
            raise DataError(f"data file {path!r}: unknown key(s) {unknown}; allowed keys are "
                             f"{list(NPZ_KEYS)}")
        beta = np.asarray(arrays.pop("beta"))
        if beta.size != 1:
            raise DataError(f"data file {path!r}: beta must be a scalar, got shape {beta.shape}")
        if beta.dtype.kind not in "iuf":
            raise DataError(f"data file {path!r}: beta must be a real number, got dtype "
                            f"{beta.dtype}")
        try:
            return cls(beta=float(beta.reshape(())), **arrays)
        except ValueError as exc:  # name the file: the field alone does not say which input
            raise DataError(f"data file {path!r}: {exc}") from None


def as_groups(group: ArrayLike, n: int) -> np.ndarray:
    """Validated prompt ids: an (n,) array of integers >= 0 (int64), or ``ValueError``."""
    g = np.asarray(group)
    if g.shape != (n,):
        raise ValueError(f"group: expected one prompt id per row, shape ({n},), got {g.shape}")
    if g.size and g.dtype.kind not in "iu":
        raise ValueError(f"group: prompt ids must be integers, got dtype {g.dtype}")
    g = g.astype(np.int64)
    if g.size and g.min() < 0:
        raise ValueError(f"group: prompt ids must be >= 0, got {int(g.min())}")
    return g


def check_indices(indices: ArrayLike, n_total: int, name: str = "indices", *,
                  repeats: bool = False) -> np.ndarray:
    """Distinct in-range integer indices as an int64 array, or ``ValueError``."""
    idx = np.asarray(indices)
    if idx.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D list of row indices, got shape {idx.shape}")
    if idx.size and idx.dtype.kind not in "iu":
        if idx.dtype.kind == "f" and np.all(np.isfinite(idx)) and np.all(idx == np.round(idx)):
            idx = idx.astype(np.int64)
        else:
            raise ValueError(f"{name}: indices must be integers, got dtype {idx.dtype}")
    idx = idx.astype(np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= n_total):
        raise ValueError(f"{name}: indices must lie in [0, {n_total}); got range "
                         f"[{idx.min()}, {idx.max()}]")
    if not repeats and np.unique(idx).size != idx.size:
        raise ValueError(f"{name}: duplicate indices; each pair can be selected at most once "
                         "(designs with replacement: replace=True)")
    return idx


def read_subset(path: str | os.PathLike[str], n_total: int, *, field: str = "subset") -> np.ndarray:
    """Row indices from a subset JSON file: a list of indices, or an object with ``indices``
    (what ``adpo select``, ``adpo design`` with ``--n`` and ``adpo sweep`` cells write).

    Raises DataError naming the file and, for an object without ``indices``, the command that
    writes them (a relaxed design ``{"pi": ...}`` has indices only when rounded with ``--n``).
    """
    import json

    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            obj = json.load(f)
    except FileNotFoundError:
        raise DataError(f"{field} {path!r}: no such file") from None
    except (OSError, ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise DataError(f"{field} {path!r}: not readable JSON ({exc})") from None
    if isinstance(obj, dict):
        if "indices" not in obj:
            hint = (" (a relaxed design: rerun `adpo design` with --n to round it to rows)"
                    if "pi" in obj else "")
            raise DataError(f"{field} {path!r}: no 'indices' key (has {sorted(obj)[:8]}){hint}; "
                            f"write one with `adpo select --out` or `adpo design --n N --out`")
        obj = obj["indices"]
    if not isinstance(obj, list) or not all(isinstance(i, int) and not isinstance(i, bool)
                                            for i in obj):
        raise DataError(f"{field} {path!r}: expected a list of integer row indices or an object "
                        f"with key 'indices'")
    try:
        idx = check_indices(obj, n_total, field)
    except (ValueError, OverflowError) as exc:
        raise DataError(f"{field} {path!r}: {exc}") from None
    if idx.size == 0:
        raise DataError(f"{field} {path!r}: empty; select at least one row")
    return idx
