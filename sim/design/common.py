"""Shared pieces of the D-optimal design package: input checks, the result type, the information
matrix and the Kiefer-Wolfowitz efficiency certificate.

Notation (paper sec. 2-3): candidate vectors v_i (rows of ``V``, shape (N, d)); with per-candidate
weights w_i >= 0 the design uses sqrt(w_i) v_i, so that v v^T carries the Lemma 1 weight.

* Exact (integer) design: a set S of n distinct rows, scored by log det(gamma I + sum_{i in S}
  v_i v_i^T).
* Approximate (relaxed) design: pi on the simplex, M(pi) = sum_i pi_i v_i v_i^T, scored by
  log det M(pi). By the Kiefer-Wolfowitz equivalence theorem pi* is optimal iff
  max_i v_i^T M(pi*)^{-1} v_i = d, and for any pi

      (det M(pi) / det M(pi*))^{1/d} >= d / max_i v_i^T M(pi)^{-1} v_i  =: efficiency(pi),

  the certificate every relaxed solver reports and stops on (R's OptimalDesign does the same).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from numpy.typing import ArrayLike

import numpy as np

from ..linalg import chol_quad_forms, cholesky, logdet_chol, subset_logdet, weighted_gram
from ..validation import as_matrix, as_vector, positive_scalar

__all__ = ["DesignResult", "check_gamma", "check_pi", "chol", "design_vectors",
           "efficiency_certificate", "information_matrix", "logdet_chol", "require_full_rank",
           "subset_logdet", "variances"]


@dataclass
class DesignResult:
    """What every design routine returns.

    Attributes:
        solver: name of the routine.
        indices: (n,) int64 chosen rows in selection order (exact designs), else None.
        pi: (N,) float64 relaxed design on the simplex (approximate designs), else None.
        logdet: log det(gamma I + sum_S v v^T) for exact designs, log det M(pi) for relaxed ones.
        efficiency: Kiefer-Wolfowitz lower bound d / max_i v_i^T M^{-1} v_i on the D-efficiency of
            a relaxed design (nan for exact designs, where it is not defined).
        support: number of distinct rows used (len(indices) or #{pi_i > 0}).
        iterations: solver iterations (picks for greedy).
        seconds: wall time of the solve.
        gains: (n,) log(1 + v^T H^{-1} v) of each greedy pick (their sum + d log gamma = logdet).
        kappa: (n,) Assumption 4's ratio max_{i in [N]} v_i^T H_{t-1}^{-1} v_i / (picked score),
            when requested.
        converged: whether the stopping rule was met.
        info: extra solver facts (JSON-serialisable).
    """

    solver: str
    indices: np.ndarray | None = None
    pi: np.ndarray | None = None
    logdet: float = float("nan")
    efficiency: float = float("nan")
    support: int = 0
    iterations: int = 0
    seconds: float = 0.0
    gains: np.ndarray | None = None
    kappa: np.ndarray | None = None
    converged: bool = True
    info: dict[str, Any] = field(default_factory=dict)

    def picks(self, name: str = "result") -> np.ndarray:
        """``indices`` (n,) of an exact design, or a one-line ValueError naming ``name`` when
        this is a relaxed design (``pi`` only, no rows chosen)."""
        if self.indices is None:
            raise ValueError(f"{name}: the {self.solver!r} result is a relaxed design with no "
                             f"chosen rows; pass an exact design's result (e.g. greedy's)")
        return self.indices

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (arrays as lists, nan as None)."""
        def clean(x: np.ndarray | float | None) -> list[Any] | float | None:
            if x is None:
                return None
            if isinstance(x, np.ndarray):
                return x.tolist()
            if isinstance(x, float) and not math.isfinite(x):
                return None
            return x
        out: dict[str, Any] = {"solver": self.solver, "logdet": clean(float(self.logdet)),
               "efficiency": clean(float(self.efficiency)), "support": int(self.support),
               "iterations": int(self.iterations), "seconds": float(self.seconds),
               "converged": bool(self.converged)}
        if self.indices is not None:
            out["indices"] = clean(np.asarray(self.indices, dtype=np.int64))
        if self.pi is not None:
            out["pi"] = clean(self.pi)
        if self.gains is not None:
            out["gains"] = clean(self.gains)
        if self.kappa is not None:
            out["kappa"] = clean(self.kappa)
        out["info"] = self.info
        return out


# --------------------------------------------------------------------------- input checks
def design_vectors(V: ArrayLike, weights: ArrayLike | None = None, *,
                   name: str = "V") -> np.ndarray:
    """Validated (N, d) float64 design vectors sqrt(w_i) v_i.

    ``weights``: None (all ones) or (N,) finite and >= 0. A zero weight makes its row the zero
    vector: it adds nothing to any information matrix, so greedy picks it only once every
    other eligible row scores 0 too, and no relaxed optimum puts mass on it.
    """
    V = as_matrix(V, name)
    if weights is None:
        return V
    return V * np.sqrt(check_weights(weights, V.shape[0]))[:, None]


def check_weights(weights: ArrayLike, N: int) -> np.ndarray:
    """Validated per-row weights (N,): finite and >= 0, or ``ValueError`` naming the entry."""
    w = as_vector(weights, "weights", length=N)
    if (w < 0).any():
        i = int(np.flatnonzero(w < 0)[0])
        raise ValueError(f"weights: must be >= 0 (they are variances, e.g. beta^2 mu (1 - mu)); "
                         f"entry {i} is {w[i]}")
    return w


def check_gamma(gamma: float, *, allow_zero: bool) -> float:
    """The ridge gamma of H_0 = gamma I (> 0, or >= 0 where a full-rank design makes 0 valid)."""
    return positive_scalar(gamma, "gamma", allow_zero=allow_zero)


def require_full_rank(V: np.ndarray, what: str = "the relaxed design") -> None:
    """Raise ``ValueError`` naming ``V`` when its rows do not span R^d.

    M(pi) = sum pi_i v_i v_i^T is then singular for every pi (log det = -inf), so no relaxed
    design exists; with a ridge gamma > 0 the greedy/exchange designs remain well defined.
    """
    n, d = V.shape
    if n < d:
        raise ValueError(f"V: {n} rows cannot span d = {d} dimensions, so {what} is singular; "
                         f"add candidates, reduce the features, or use greedy with gamma > 0")
    ev = np.linalg.eigvalsh(weighted_gram(V, np.ones(n)))
    tol = max(ev[-1], np.finfo(float).tiny) * d * 1e3 * np.finfo(float).eps
    rank = int((ev > tol).sum())
    if rank < d:
        raise ValueError(f"V: rows span only {rank} of d = {d} dimensions (rank-deficient), so "
                         f"{what} is singular; project V onto its row space or use greedy with "
                         f"gamma > 0")


# --------------------------------------------------------------------------- linear algebra
def information_matrix(V: np.ndarray, pi: np.ndarray) -> np.ndarray:
    """M(pi) = sum_i pi_i v_i v_i^T, (d, d), by blocked BLAS syrk over the support of pi."""
    sup = np.flatnonzero(pi > 0)
    return weighted_gram(V[sup], pi[sup])


chol = cholesky                # lower Cholesky factor or a one-line ValueError (sim.linalg)
variances = chol_quad_forms    # v_i^T (L L^T)^{-1} v_i for the rows of V (sim.linalg)


def efficiency_certificate(V: ArrayLike, pi: ArrayLike) -> float:
    """Kiefer-Wolfowitz bound d / max_i v_i^T M(pi)^{-1} v_i <= (det M(pi)/det M*)^{1/d}.

    V: (N, d) design vectors; pi: (N,) non-negative weights (normalised here). Returns a number
    in (0, 1]; equal to 1 exactly at a D-optimal pi.
    """
    V = as_matrix(V, "V")
    pi = check_pi(pi, V.shape[0])
    L = chol(information_matrix(V, pi), "M(pi)")
    return V.shape[1] / float(variances(V, L).max())


def check_pi(pi: ArrayLike, N: int) -> np.ndarray:
    """A relaxed design: (N,) finite, >= 0, positive sum; returned normalised to sum 1."""
    p = as_vector(pi, "pi", length=N)
    if (p < 0).any():
        raise ValueError(f"pi: design weights must be >= 0; entry {int(np.argmin(p))} is "
                         f"{p.min()}")
    tot = p.sum()
    if tot <= 0:
        raise ValueError("pi: all weights are zero; a design needs positive mass")
    return p / tot
