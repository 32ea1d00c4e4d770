"""The uniform baseline: a uniformly random subset, in random order."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..registry import register_method
from .base import PoolOptions, Selector


@dataclass(frozen=True)
class UniformConfig(PoolOptions):
    """Uniform sampling: only the pool options ``replace`` (then uniform with replacement) and
    ``max_per_prompt`` (the seed is not an option)."""


@register_method("uniform", config=UniformConfig, aliases=("random",),
                 help="a uniformly random subset", tags=("offline",),
                 style={"color": "#7f7f7f", "marker": "D", "label": "Uniform"})
class Uniform(Selector):
    """A uniformly random subset, in random order (one draw among the unselected rows per pick;
    with ``replace=True`` among all rows)."""

    name = "uniform"
    Config = UniformConfig

    def _pick_one(self) -> tuple[int, np.ndarray]:
        i = int(self.rng.choice(self._eligible()))
        return i, self.data.phi[i]
