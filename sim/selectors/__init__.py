"""Active selection of preference pairs: ADPO, ADPO+ and the baselines behind ONE protocol.

Every method is a :class:`Selector` (``ask``/``tell``/``select``, :mod:`.base`) registered in
:data:`sim.registry.METHODS` with its own options dataclass, plot style and tags; the registry
is the single list of methods (``adpo methods`` prints it). One file per family:

==============  ===============  =====================================================
file            methods          rule
==============  ===============  =====================================================
greedy.py       adpo             Algorithm 1: greedy log det, weights from theta_hat refitted
                                 on the labels seen so far, optimistic weights of eq. 13
                adpo+            Algorithm 2: theta_hat fitted once on all N logged labels
                oracle           greedy log det with weights at data.theta_star
                apo              APO (Das et al. 2024): argmax phi^T V^{-1} phi, no weights
apo_logistic.py apo-logistic     APO with a logistic Hessian re-weighted at each refit
scores.py       pmc              PMC (Muldrew et al. 2024): largest |beta (phi^T theta_hat - b)|
                uncertainty      largest mu(1 - mu), the logit nearest zero
dope.py         dope             sample distinct rows from the relaxed D-optimal design
uniform.py      uniform          a uniformly random subset
adpo_fair.py    adpo+fair        ADPO+ with theta_hat on an independent label draw (or a
                                 disjoint logged split), not on the labels defining theta_star
==============  ===============  =====================================================

A new method is one new file here (imported automatically) or in a plug-in package (through
the ``adpo.methods`` entry-point group): a :class:`Selector` subclass with a frozen options dataclass, decorated by
:func:`sim.registry.register_method`. A new greedy rule subclasses
:class:`~sim.selectors.greedy.GreedySelector` and writes only ``weights()``.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping
from typing import Any

from ..data import PreferenceData
from ..registry import METHODS
from .base import LabelOracle, Options, Seed, Selector, refit_schedule
from .greedy import ADPO, APO, ADPOPlus, GreedySelector, Oracle

# Every module of this package is imported, so its @register_method decorators run: a new
# built-in method is one new file here. Registration order is listing order (``adpo methods``,
# CLI choices): the paper's families first, then any other file alphabetically.
_FIRST = ("greedy", "apo_logistic", "scores", "dope", "uniform")
for _mod in _FIRST + tuple(sorted(m.name for m in pkgutil.iter_modules(__path__)
                                  if m.name not in _FIRST + ("base",))):
    importlib.import_module(f"{__name__}.{_mod}")

__all__ = ["ADPO", "APO", "ADPOPlus", "GreedySelector", "LabelOracle", "Options", "Oracle",
           "Selector", "make_selector", "method_names", "method_options", "refit_schedule"]


def make_selector(name: str, data: PreferenceData, *, seed: Seed = 0, **options: Any) -> Selector:
    """Construct the registered method ``name`` (or an alias) on ``data``.

    ``seed``: int or ``numpy.random.Generator`` of the method's random choices; ``options``: the
    method's own options (its config dataclass, ``adpo methods``). An unknown method or option
    raises a one-line ``ValueError`` listing the valid ones.
    """
    return METHODS.get(name).factory(data, seed=seed, **options)


def method_names(tag: str | None = None) -> tuple[str, ...]:
    """Registered method names (those carrying ``tag`` when given), in registration order."""
    return tuple(e.name for e in METHODS if tag is None or tag in e.tags)


def method_options(name: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of ``options`` that method ``name`` takes (for callers that hold one set of
    options for several methods, e.g. a figure's shared alpha/gamma); the others are dropped."""
    valid = set(METHODS.get(name).option_names())
    return {k: v for k, v in options.items() if k in valid}
