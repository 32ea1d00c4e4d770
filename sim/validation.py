"""Shared input validation.

Every public entry point validates through these helpers so that a bad input always produces a
``ValueError`` that names the offending field and says how to fix it.
"""

from __future__ import annotations

import functools
import numbers
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ParamSpec, TypeVar

import numpy as np

#: Largest seed accepted: results tables store seeds as int64 (numpy's own seeds may be larger).
MAX_SEED = 2 ** 63 - 1
#: Largest accepted beta * max|phi| * sqrt(d) (a bound on beta * max_i ||phi_i||) and
#: beta * max_i |b_i|. Beyond it the Hessian beta^2 sum mu(1-mu) phi phi^T (Lemma 1) has entries
#: up to 1e24, so a ridge gamma <= 1 lies below float64 rounding (relative 2.2e-16) and is lost,
#: and past ~1e154 the squares overflow: fits and designs would return meaningless results
#: (measured: phi * 1e200 gave theta_hat = 0 with "converged": true).
MAX_LOGIT_SCALE = 1e12


#: Keywords renamed across the API (old -> new). ``gamma`` has one meaning, the design ridge
#: gamma of the paper (H_0 = gamma I, eq. 13's Sigma_t); the ridge of the DPO fits (eq. 6's
#: regularizer) is ``fit_ridge`` everywhere.
RENAMED_OPTIONS = {"fit_gamma": "fit_ridge"}

#: What :func:`as_rng` accepts: a non-negative int, a ``SeedSequence`` or a ``Generator``.
Seed = int | np.integer | np.random.SeedSequence | np.random.Generator

_P = ParamSpec("_P")
_R = TypeVar("_R")


def refuse_renamed(where: str, given: Iterable[str],
                   renamed: Mapping[str, str] = RENAMED_OPTIONS) -> None:
    """Raise a one-line ``TypeError`` if a keyword in ``given`` is an old name in ``renamed``."""
    for old in given:
        if old in renamed:
            raise TypeError(f"{where}: keyword {old!r} was renamed {renamed[old]!r} "
                            f"(gamma is only the design ridge); pass {renamed[old]}=...")


def renamed_keywords(**old_to_new: str) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """Decorator: calling the function with an old keyword raises a one-line ``TypeError``
    naming the new one, e.g. ``@renamed_keywords(gamma="fit_ridge")``."""
    def decorate(fn: Callable[_P, _R]) -> Callable[_P, _R]:
        @functools.wraps(fn)
        def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            if kwargs:
                refuse_renamed(fn.__name__, kwargs, old_to_new)
            return fn(*args, **kwargs)
        return wrapper
    return decorate


class RenamedOptionsMeta(type):
    """Metaclass of config dataclasses: a keyword of :data:`RENAMED_OPTIONS` given to the
    constructor raises a one-line ``TypeError`` naming the new name."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        if kwargs:
            refuse_renamed(cls.__name__, kwargs)
        return super().__call__(*args, **kwargs)


class DataError(ValueError):
    """The contents of an input file (or array) cannot be used; the CLI exits with code 3."""


class ResourceError(RuntimeError):
    """A run would exceed a stated memory or time limit; the CLI exits with code 4."""


def check_resources(nbytes: float, what: str, *, limit: float | None = None,
                    force: bool = False) -> None:
    """Refuse a run whose estimated memory ``nbytes`` exceeds ``limit`` unless ``force``.

    The default limit is half the physical memory, or ``$ADPO_MEMORY_LIMIT_GB`` (GiB) when set
    (e.g. on a shared machine); ``what`` says what was estimated and how."""
    if force:
        return
    where = "half this machine's memory"
    if limit is None:
        limit = physical_memory() / 2
        env = os.environ.get("ADPO_MEMORY_LIMIT_GB")
        if env:
            limit = positive_scalar(env, "ADPO_MEMORY_LIMIT_GB") * 2 ** 30
            where = "$ADPO_MEMORY_LIMIT_GB"
    if nbytes > limit:
        raise ResourceError(f"{what} needs about {_gib(nbytes)} of memory, over the limit of "
                            f"{_gib(limit)} ({where}); reduce the size, or pass --force to try "
                            f"anyway")


def physical_memory() -> float:
    """Bytes of physical memory (a conservative 8 GiB when the platform does not say)."""
    try:
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 8.0 * 2 ** 30


def _gib(nbytes: float) -> str:
    return f"{nbytes / 2 ** 30:.3g} GiB"


def check_beta(beta: Any, name: str = "beta") -> float:
    """A DPO scale beta in (0, MAX_LOGIT_SCALE]: larger ones overflow beta^2 (Lemma 1's weights)."""
    beta = positive_scalar(beta, name)
    if beta > MAX_LOGIT_SCALE:
        raise ValueError(f"{name}: {beta:g} is over {MAX_LOGIT_SCALE:.0e}: the logits beta (phi^T "
                         f"theta - b) and the weights beta^2 mu (1 - mu) would overflow float64; "
                         f"use a smaller beta (rescale phi instead)")
    return beta


def check_logit_scale(phi: np.ndarray, b: np.ndarray, beta: float, name: str = "phi") -> None:
    """Refuse features whose logits would overflow or lose all precision (DataError)."""
    if phi.size == 0:
        return
    scale = float(beta) * float(np.max(np.abs(phi))) * np.sqrt(phi.shape[1])
    bscale = float(beta) * float(np.max(np.abs(b))) if b.size else 0.0
    worst, field = max((scale, name), (bscale, "b"))
    if not worst <= MAX_LOGIT_SCALE:
        raise DataError(f"{field}: beta * max |{field}| (times sqrt(d) for phi) is {worst:.3g}, "
                        f"over {MAX_LOGIT_SCALE:.0e}: the logits beta (phi^T theta - b) would "
                        f"overflow or lose all precision in float64; rescale the features (e.g. "
                        f"to unit norm) or lower beta")


def _refuse_nonreal(x: Any, name: str) -> None:
    """Complex input would be cast to its real part silently (a ComplexWarning): refuse it."""
    dtype = x.dtype if isinstance(x, np.ndarray) else np.asarray(x).dtype
    if dtype.kind == "c":
        raise DataError(f"{name}: complex values (dtype {dtype}); features and log-ratios must be "
                        f"real numbers; store the real part explicitly if that is what you mean")


def _as_real_array(x: Any, name: str, dtype: Any) -> np.ndarray:
    """``x`` as an array of ``dtype`` (any shape; finiteness not checked), or a ``DataError`` /
    ``ValueError`` naming ``name`` for complex or non-numeric input."""
    _refuse_nonreal(x, name)
    try:
        return np.asarray(x, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: cannot convert to a float array ({exc}); pass numbers") from None


def as_matrix(x: Any, name: str, *, n_rows: int | None = None, n_cols: int | None = None,
              dtype: Any = np.float64) -> np.ndarray:
    """Return ``x`` as a finite 2-D float array, or raise ``ValueError`` naming ``name``."""
    a = _as_real_array(x, name, dtype)
    if a.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array (N x d), got shape {a.shape}; "
                         f"reshape it to rows of feature vectors")
    if n_rows is not None and a.shape[0] != n_rows:
        raise ValueError(f"{name}: expected {n_rows} rows, got {a.shape[0]}")
    if n_cols is not None and a.shape[1] != n_cols:
        raise ValueError(f"{name}: expected {n_cols} columns, got {a.shape[1]}")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"{name}: empty array of shape {a.shape}; pass at least one row and column")
    _check_finite(a, name)
    return a


def as_vector(x: Any, name: str, *, length: int | None = None,
              dtype: Any = np.float64) -> np.ndarray:
    """Return ``x`` as a finite 1-D float array, or raise ``ValueError`` naming ``name``."""
    a = _as_real_array(x, name, dtype)
    if a.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array, got shape {a.shape}")
    if length is not None and a.shape[0] != length:
        raise ValueError(f"{name}: expected length {length}, got {a.shape[0]}")
    _check_finite(a, name)
    return a


def as_labels(x: Any, name: str = "s", *, length: int | None = None) -> np.ndarray:
    """Return binary labels in {0, 1} as an int8 vector, or raise ``ValueError``."""
    a = np.asarray(x)
    if a.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array of labels, got shape {a.shape}")
    if length is not None and a.shape[0] != length:
        raise ValueError(f"{name}: expected {length} labels, got {a.shape[0]}")
    if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
        raise ValueError(f"{name}: contains NaN or inf; labels must be 0 or 1")
    if a.dtype.kind not in "biuf":
        raise ValueError(f"{name}: labels must be numeric 0/1, got dtype {a.dtype}")
    bad = ~np.isin(a, (0, 1))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name}: labels must be in {{0, 1}} (1 = first response preferred); "
                         f"entry {i} is {a[i]!r}")
    return a.astype(np.int8)


def positive_scalar(x: Any, name: str, *, allow_zero: bool = False) -> float:
    """Return a finite positive (or non-negative) float, or raise ``ValueError``."""
    if isinstance(x, bool) or not isinstance(x, (numbers.Real, np.floating, np.integer)):
        try:
            x = float(x)
        except (TypeError, ValueError):
            raise ValueError(f"{name}: expected a number, got {x!r}") from None
    x = float(x)
    if not np.isfinite(x):
        raise ValueError(f"{name}: must be finite, got {x}")
    if allow_zero and x < 0:
        raise ValueError(f"{name}: must be >= 0, got {x}")
    if not allow_zero and x <= 0:
        raise ValueError(f"{name}: must be > 0, got {x}")
    return x


def positive_int(x: Any, name: str, *, minimum: int = 1) -> int:
    """Return an int >= ``minimum``, or raise ``ValueError``."""
    if isinstance(x, bool) or not isinstance(x, (numbers.Integral, np.integer)):
        if isinstance(x, (float, np.floating)) and float(x).is_integer():
            x = int(x)
        else:
            raise ValueError(f"{name}: expected an integer, got {x!r}")
    x = int(x)
    if x < minimum:
        raise ValueError(f"{name}: must be >= {minimum}, got {x}")
    return x


def as_rng(seed: Any) -> np.random.Generator:
    """A ``numpy.random.Generator`` from a seed, a ``SeedSequence`` or a ``Generator``.

    ``None`` is refused: every random component of the testbed must be reproducible.
    """
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None:
        raise ValueError("seed: a seed (int) or numpy.random.Generator is required; runs must be "
                         "reproducible, so pass e.g. seed=0")
    if isinstance(seed, np.random.SeedSequence):
        return np.random.default_rng(seed)
    if isinstance(seed, bool) or not isinstance(seed, (numbers.Integral, np.integer)):
        raise ValueError(f"seed: expected a non-negative int or a numpy.random.Generator, got {seed!r}")
    seed = int(seed)
    if seed < 0:
        raise ValueError(f"seed: must be non-negative, got {seed}")
    if seed > MAX_SEED:
        raise ValueError(f"seed: {seed} is over 2^63 - 1, the largest seed results tables can "
                         f"store (int64); use a smaller seed")
    return np.random.default_rng(int(seed))


def rng_for(seed: Any, *keys) -> np.random.Generator:
    """An independent stream for (seed, *keys) (SeedSequence), e.g. per trial of a study."""
    if isinstance(seed, np.random.Generator):
        return as_rng(seed)
    return np.random.default_rng(np.random.SeedSequence([int(seed), *map(int, keys)]))


def _check_finite(a: np.ndarray, name: str) -> None:
    # Fast path: a NaN or inf anywhere makes the sum non-finite (the full scan runs only then,
    # e.g. also when a huge finite sum overflows).
    if a.size and np.isfinite(a.sum(dtype=np.float64)):
        return
    if not np.all(np.isfinite(a)):
        bad = np.argwhere(~np.isfinite(a))[0]
        where = tuple(int(i) for i in bad)
        raise ValueError(f"{name}: contains NaN or inf (first at index {where}); "
                         f"clean or drop those rows")
