"""A plug-in for adpo-testbed in one file: a selection method and an environment kind.

Installed with its pyproject.toml (entry points ``adpo.methods`` / ``adpo.envs``), it makes
``adpo select --method largest-norm``, ``adpo env --kind ring`` and sweeps use them with no
edit to the testbed; ``sim.testing.check_selector("largest-norm")`` checks its contracts.
"""

from dataclasses import dataclass, field

import numpy as np

from sim.data import PreferenceData
from sim.dpo import fit_dpo, sigmoid
from sim.registry import register_env, register_method
from sim.selectors.base import Options, Selector
from sim.validation import as_rng, positive_int, positive_scalar


@dataclass(frozen=True)
class LargestNormConfig(Options):
    """Options of ``largest-norm``, validated in ``__post_init__``."""

    power: float = field(default=1.0, metadata={"help": "score = ||phi_i|| ** power, > 0"})

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "power", positive_scalar(self.power, "power"))


@register_method("largest-norm", config=LargestNormConfig, tags=("offline",),
                 help="the unselected pair with the largest ||phi_i|| (ties: lowest index)")
class LargestNorm(Selector):
    """Picks rows by decreasing ||phi_i||; uses no labels and no randomness."""

    name = "largest-norm"
    Config = LargestNormConfig

    def _refit(self, t: int) -> None:
        score = np.linalg.norm(self.data.phi, axis=1) ** self.cfg.power
        self._order = np.lexsort((np.arange(self.data.N), -score))

    def _pick_one(self) -> tuple[int, np.ndarray]:
        i = int(next(j for j in self._order if self._available[j]))
        return i, self.data.phi[i]


@dataclass(frozen=True)
class RingConfig:
    """Options of the ``ring`` environment."""

    N: int = field(default=200, metadata={"help": "number of pairs"})
    radius_theta: float = field(default=2.0, metadata={"help": "||theta_true||"})
    beta: float = field(default=1.0, metadata={"help": "DPO scale beta > 0"})

    def __post_init__(self) -> None:
        object.__setattr__(self, "N", positive_int(self.N, "N"))
        object.__setattr__(self, "radius_theta", positive_scalar(self.radius_theta,
                                                                 "radius_theta"))
        object.__setattr__(self, "beta", positive_scalar(self.beta, "beta"))


@register_env("ring", config=RingConfig, help="unit-circle features in d = 2, labels eq. 12")
def ring_env(*, seed, N: int = 200, radius_theta: float = 2.0, beta: float = 1.0
             ) -> PreferenceData:
    """phi_i on the unit circle, b_i = 0, s_i ~ Ber(mu(beta phi_i^T theta_true))."""
    rng = as_rng(seed)
    angle = rng.uniform(0, 2 * np.pi, N)
    phi = np.column_stack([np.cos(angle), np.sin(angle)])
    theta_true = np.array([radius_theta, 0.0])
    b = np.zeros(N)
    s = (rng.random(N) < sigmoid(beta * phi @ theta_true)).astype(np.int8)
    theta_star = fit_dpo(phi, b, beta, s, fit_ridge=1e-3).theta
    return PreferenceData(phi=phi, b=b, beta=beta, s=s, theta_star=theta_star,
                          theta_true=theta_true, info={"kind": "ring", "fit_ridge": 1e-3})
