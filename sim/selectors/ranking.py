"""The ranking selectors (:mod:`sim.ranking_select`) in the method registry.

They choose which *prompts* of a ranking pool (:class:`sim.ranking.RankingData`, K responses
per prompt, ``adpo env --kind ranking``) to have ranked; each is registered as ``rank-<rule>``
with the tag ``ranking``, so ``adpo select`` runs them on ranking pools and refuses them on
pairwise data (and the pairwise methods on ranking pools), in one line each. The rules (the
K-wise Algorithms 1 and 2, greedy log det over rank-(K-1) information blocks):

==============  ================================================================
rank-adpo       online: theta_hat refitted (PL MLE) on the rankings told at t = 2, 4, 8, ...
rank-adpo+      offline: theta_hat = the PL MLE on ALL logged rankings
rank-oracle     information at data.theta_star
rank-d-opt      information at theta = 0 (a label-free design)
rank-uniform    uniformly random prompts
==============  ================================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..ranking_select import RANKING_METHODS, RankingSelector
from ..registry import register_method
from ..validation import positive_int
from .base import Options, Seed

_HELP = {"adpo": "K-wise ADPO: greedy log det over ranked K-tuples, PL theta_hat refitted on "
                 "the rankings told (t = 2, 4, 8, ...)",
         "adpo+": "K-wise ADPO+: PL theta_hat fitted once on ALL logged rankings, then greedy "
                  "log det over K-tuples",
         "oracle": "greedy log det over K-tuples with the PL information at theta_star",
         "d-opt": "greedy log det over K-tuples at theta = 0 (label-free)",
         "uniform": "uniformly random prompts of a ranking pool"}
#: Plot styles: the pairwise counterpart's colour, a diamond ("d") marker for a ranking pool.
_STYLE = {"adpo": ("#ff7f0e", "ADPO"), "adpo+": ("#d62728", "ADPO+"),
          "oracle": ("#9467bd", "Oracle"), "d-opt": ("#8c564b", "D-optimal (label-free)"),
          "uniform": ("#7f7f7f", "Uniform")}
_TAGS = {"adpo": ("online",), "adpo+": ("offline", "reads-logged-labels"),
         "oracle": ("offline", "needs-theta-star"), "d-opt": ("offline",), "uniform": ("offline",)}


@dataclass(frozen=True)
class RankingOptions(Options):
    """``gamma`` (H_0 = gamma I), ``fit_ridge`` (ridge of the PL fits), ``n_mc`` (Monte Carlo
    rankings per prompt for the expected information when K > 6)."""

    gamma: float = field(default=1.0, metadata={"help": "design ridge: H_0 = gamma I"})
    fit_ridge: float = field(default=1e-3, metadata={"help": "ridge of the theta_hat fits"})
    n_mc: int = field(default=256, metadata={
        "help": "ranking methods: Monte Carlo rankings per prompt for the information, K > 6"})

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "n_mc", positive_int(self.n_mc, "n_mc"))


def _register(rule: str) -> None:
    def factory(data: Any, *, seed: Seed = 0, **options: Any) -> RankingSelector:
        from ..registry import METHODS
        cfg = METHODS.get(f"rank-{rule}").make_config(options)  # unknown names: ValueError
        return RankingSelector(data, rule, seed=seed, gamma=cfg.gamma, fit_ridge=cfg.fit_ridge,
                               n_mc=cfg.n_mc)

    factory.__qualname__ = factory.__name__ = f"rank_{rule.replace('+', '_plus')}"
    color, label = _STYLE[rule]
    register_method(f"rank-{rule}", config=RankingOptions, help=_HELP[rule],
                    tags=("ranking",) + _TAGS[rule],
                    style={"color": color, "marker": "d", "label": f"{label} (rankings)"})(factory)


for _rule in RANKING_METHODS:
    _register(_rule)


def check_method_data(entry: Any, data: Any) -> None:
    """One-line ValueError unless the method's data kind (tag ``ranking`` or not) is the data's.

    ``entry``: a :data:`sim.registry.METHODS` entry; ``data``: PreferenceData or RankingData.
    """
    from ..ranking import RankingData
    from ..registry import METHODS
    if ("ranking" in entry.tags) == isinstance(data, RankingData):
        return
    if isinstance(data, RankingData):
        names = ", ".join(e.name for e in METHODS if "ranking" in e.tags)
        raise ValueError(f"method: {entry.name!r} selects pairs; this file is a ranking pool "
                         f"(psi, rankings): use a ranking method ({names})")
    raise ValueError(f"method: {entry.name!r} selects prompts of a ranking pool; this file holds "
                     "pairs (phi): use a pairwise method (`adpo methods`)")
