"""Dope (Mukherjee et al. 2024): sample from the relaxed D-optimal design."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from ..data import PreferenceData
from ..dpo import dpo_weights
from ..registry import register_method
from ..validation import positive_scalar
from .base import PoolOptions, Seed, Selector


class DesignExhaustedWarning(UserWarning):
    """Dope ran out of rows in the support of its design and continued uniformly."""


@dataclass(frozen=True)
class DopeConfig(PoolOptions):
    """Dope's options.

    weights: "none" (the design over phi_i) or "theta_star" (over sqrt(w_i) phi_i with Lemma 1's
        weights at data.theta_star).
    design_tol: the relaxed design stops at Kiefer-Wolfowitz efficiency >= 1 - design_tol.
    on_exhausted: what to do once every row in the support of pi is selected (n > support):
        "uniform" (default) continues with uniform draws among the unselected rows, warns
        (:class:`DesignExhaustedWarning`) and records the switch in ``exhausted_at_``;
        "error" raises ``ValueError``.
    """

    weights: Literal["none", "theta_star"] = field(default="none", metadata={
        "help": "design over phi ('none') or over sqrt(w) phi at theta_star ('theta_star')"})
    design_tol: float = field(default=1e-4, metadata={
        "help": "stop the relaxed design at efficiency >= 1 - design_tol"})
    on_exhausted: Literal["uniform", "error"] = field(default="uniform", metadata={
        "help": "once the design's support is used up: continue uniformly (warns, records "
                "exhausted_at_) or raise"})

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.weights not in ("none", "theta_star"):
            raise ValueError(f"weights: 'none' or 'theta_star', got {self.weights!r}")
        tol = positive_scalar(self.design_tol, "design_tol")
        if not tol < 1:
            raise ValueError(f"design_tol: must be in (0, 1), got {tol}")
        object.__setattr__(self, "design_tol", tol)
        if self.on_exhausted not in ("uniform", "error"):
            raise ValueError(f"on_exhausted: 'uniform' or 'error', got {self.on_exhausted!r}")


@register_method("dope", config=DopeConfig,
                 help="sample distinct rows from the relaxed D-optimal design (Mukherjee et al. "
                 "2024); uniform once its support is used up (on_exhausted)", tags=("offline",),
                 style={"color": "#e377c2", "marker": "X", "label": "Dope"})
class Dope(Selector):
    """Design-then-sample: the relaxed D-optimal design pi over sqrt(w_i) phi_i (weights 1, or
    the Lemma 1 weights at ``theta_star`` with ``weights="theta_star"``), then n distinct rows
    by successive sampling from pi (Mukherjee et al. 2024 sample with replacement, which
    ``replace=True`` gives, each repeat with a fresh label; by default each pair is labelled at
    most once, so repeats are redrawn).

    Attributes after use: ``pi_`` (N,) the design, ``exhausted_at_`` the number of picks made
    from pi before its support ran out (None while it has not).
    """

    name = "dope"
    Config = DopeConfig

    def __init__(self, data: PreferenceData, *, seed: Seed = 0, **options: Any) -> None:
        super().__init__(data, seed=seed, **options)
        self.pi_: np.ndarray | None = None
        self.exhausted_at_: int | None = None

    def _refit(self, t: int) -> None:
        from ..design.relaxed import fw_design  # Frank-Wolfe with pairwise steps
        d = self.data
        if self.cfg.weights == "theta_star":
            if d.theta_star is None:
                raise ValueError("theta_star: weights='theta_star' needs data.theta_star")
            w = dpo_weights(d.phi, d.b, d.beta, d.theta_star)
        else:
            w = np.ones(d.N)
        res = fw_design(d.phi * np.sqrt(w)[:, None], efficiency=1 - self.cfg.design_tol)
        self.pi_ = np.asarray(res.pi, dtype=np.float64)

    def _pick_one(self) -> tuple[int, np.ndarray]:
        assert self.pi_ is not None  # computed by the first refit, before the first pick
        p = self.pi_ * self._available
        if p.sum() <= 0:  # the design's support is exhausted
            if self.cfg.on_exhausted == "error":
                raise ValueError(f"n: the design's support ({int((self.pi_ > 0).sum())} rows) is "
                                 f"used up after {len(self.selected_)} picks; lower n or pass "
                                 "on_exhausted='uniform'")
            if self.exhausted_at_ is None:
                self.exhausted_at_ = len(self.selected_)
                warnings.warn(f"dope: the design's support is used up after "
                              f"{self.exhausted_at_} picks; the remaining picks are uniform "
                              "(exhausted_at_ records this; on_exhausted='error' refuses)",
                              DesignExhaustedWarning, stacklevel=4)
            p = self._available.astype(float)
        i = int(self.rng.choice(self.data.N, p=p / p.sum()))
        return i, self.data.phi[i]
