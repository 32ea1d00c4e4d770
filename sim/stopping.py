"""A stopping rule for labelling: stop once the largest predicted logit uncertainty is small.

Instead of a fixed budget n, a labelling team asks for labels until the model is sure enough
about every pair's DPO logit. After the labels S_t the MLE theta_hat_t (eq. 6 with ridge
``fit_ridge``) has the asymptotic covariance H_t^{-1}, H_t = gamma I + grad^2 L(theta_hat_t; S_t)
(Lemma 1), so the logit beta phi_i^T theta_hat_t of pair i has the predicted standard deviation

    sd_i(t) = beta sqrt(phi_i^T H_t^{-1} phi_i),

and the rule stops at the first check where max_{i in [N]} sd_i(t) < target. The paper's
metric (eq. 7) is the maximum logit error, so the rule targets it directly; ``z`` sd is a
pointwise confidence half-width, not a uniform one (the peer rule, ActiveQuery, thresholds a
single margin instead).

The rule depends only on the labelled set, so it wraps any selector (``ask``/``tell``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .data import PreferenceData
from .design.common import chol, variances
from .dpo import dpo_hessian, fit_dpo
from .validation import positive_int, positive_scalar


def max_logit_sd(data: PreferenceData, idx: np.ndarray, s: np.ndarray, *,
                 gamma: float = 1.0, fit_ridge: float = 1e-3) -> float:
    """max_i beta sqrt(phi_i^T H^{-1} phi_i) after labels ``s`` on rows ``idx`` (see module):
    theta_hat is the MLE on them (eq. 6, ridge ``fit_ridge``), then :func:`logit_sd_at`."""
    idx = np.asarray(idx, dtype=np.int64)
    theta = (fit_dpo(data.phi[idx], data.b[idx], data.beta, s, fit_ridge=fit_ridge).theta
             if idx.size else None)
    return logit_sd_at(data, idx, theta, gamma=gamma)


def logit_sd_at(data: PreferenceData, idx: np.ndarray, theta: np.ndarray | None, *,
                gamma: float = 1.0) -> float:
    """max_{i in [N]} beta sqrt(phi_i^T H^{-1} phi_i), H = gamma I + grad^2 L(theta; rows idx)
    (Lemma 1's Hessian at the given theta_hat (d,); ``idx`` (n,) the labelled rows, repeats
    counted; H = gamma I when ``idx`` is empty): the rule's statistic for a theta_hat fitted
    elsewhere (sim.experiment's ``max_logit_sd`` metric)."""
    idx = np.asarray(idx, dtype=np.int64)
    if idx.size and theta is None:
        raise ValueError("theta: the Hessian of labelled rows needs the fitted theta_hat")
    if idx.size:
        H = dpo_hessian(np.asarray(theta), data.phi[idx], data.b[idx], data.beta, ridge=gamma)
    else:
        H = gamma * np.eye(data.d)
    return data.beta * float(np.sqrt(variances(data.phi, chol(H, "H")).max()))


@dataclass(frozen=True)
class StopResult:
    """``indices`` (n,) labelled rows in order; ``stopped`` whether the target was met (else
    the budget ran out); ``trace``: (n_t, max sd) at every check; ``target`` the threshold."""

    indices: np.ndarray
    stopped: bool
    trace: list[tuple[int, float]]
    target: float = float("nan")

    def to_json(self, budget: int, check_every: int) -> dict:
        """The record ``adpo select --stop-below`` writes under ``stop``."""
        return {"below": self.target, "stopped": self.stopped, "reason": self.reason,
                "n": int(self.indices.size), "budget": int(budget), "check_every": check_every,
                "trace": [[int(n), float(sd)] for n, sd in self.trace]}

    @property
    def reason(self) -> str:
        """Why labelling stopped, in one line (the target met, or the budget used up)."""
        n, sd = self.trace[-1]
        if self.stopped:
            return (f"target met: max predicted logit sd {sd:.4g} < {self.target:g} after "
                    f"n = {n} labels")
        return (f"budget: n = {n} labels used, max predicted logit sd still {sd:.4g} >= "
                f"{self.target:g}")


def select_until(selector: object, labels: object, target: float, max_n: int, *,
                 check_every: int = 1, gamma: float = 1.0,
                 fit_ridge: float = 1e-3) -> StopResult:
    """Ask ``selector`` for rows and reveal ``labels(idx)`` until max_i sd_i < ``target``.

    ``selector`` has ``ask(k)``/``tell(idx, labels)``, ``data`` (a PreferenceData) and
    optionally ``batch_size`` (rows asked before their labels; default 1): rows are asked in
    the selector's own batches, so the picks are those of ``selector.select(max_n)`` up to the
    stop. The rule is checked at the first batch end at or after every ``check_every`` labels
    (each check fits theta_hat: O(n d^2 + N d^2)), and after the last label. Stops with
    ``stopped=False`` after ``max_n`` labels if the target is never met (the budget is the cap).
    """
    target = positive_scalar(target, "stop_below")
    max_n = positive_int(max_n, "max_n")
    check_every = positive_int(check_every, "check_every")
    batch = positive_int(getattr(selector, "batch_size", 1), "batch_size")
    data = selector.data  # type: ignore[attr-defined]
    got: list[int] = []
    lab: list[int] = []
    trace: list[tuple[int, float]] = []
    next_check = check_every
    while len(got) < max_n:
        idx = selector.ask(min(batch, max_n - len(got)))  # type: ignore[attr-defined]
        y = np.asarray(labels(idx))  # type: ignore[operator]
        selector.tell(idx, y)  # type: ignore[attr-defined]
        got.extend(idx.tolist())
        lab.extend(y.tolist())
        if len(got) < next_check and len(got) < max_n:
            continue
        next_check = (len(got) // check_every + 1) * check_every
        sd = max_logit_sd(data, np.asarray(got), np.asarray(lab, dtype=np.int8), gamma=gamma,
                          fit_ridge=fit_ridge)
        trace.append((len(got), sd))
        if sd < target:
            return StopResult(np.asarray(got, dtype=np.int64), True, trace, target)
    return StopResult(np.asarray(got, dtype=np.int64), False, trace, target)
