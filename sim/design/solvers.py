"""The one table of design solvers: ``adpo design --solver NAME`` and the benchmarks read it.

Each entry is a function ``solve(V, weights, options) -> DesignResult`` registered in
:data:`SOLVERS` (a :class:`sim.registry.Registry`, so third-party solvers can join through the
entry-point group ``adpo.design_solvers``) with one of two tags:

* ``exact``: chooses n distinct rows (``options.n`` required);
* ``relaxed``: returns pi on the simplex with the Kiefer-Wolfowitz certificate (the CLI rounds
  it to n rows when ``options.n`` is given).

A solver tagged ``torch`` also runs on PyTorch (``options.backend`` / ``options.device``);
:func:`check_solver_backend` refuses ``--backend torch`` for the others in one line.

Every solver optimizes the D criterion (log det, paper eq. 10); a solver that also handles the
A or G criterion of :mod:`sim.design.criteria` carries the tag ``criterion-a`` / ``criterion-g``
and reads ``options.criterion`` (:func:`check_solver_criterion` refuses the other pairs).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from ..registry import Registry
from ..validation import as_rng, positive_int, positive_scalar
from .common import DesignResult

if TYPE_CHECKING:  # dask.distributed is optional (the ``dist`` extra)
    from distributed import Client

SOLVERS = Registry("design solver", "adpo.design_solvers")


@dataclass(frozen=True)
class SolveOptions:
    """Options shared by the solvers (each reads the ones it needs).

    n: rows to choose (exact solvers). gamma: ridge of H_0 = gamma I (exact solvers).
    candidates: greedy's "all" or a random subset size m. seed: random visiting orders and
    subsets. efficiency: the relaxed solvers' certificate target. dtype: float64 or float32
    (greedy's bulk refresh). backend / device: "numpy" or "torch"; "cpu" or "cuda" (the
    solvers tagged ``torch``: greedy, fw).
    rows_per_block: rows per block of greedy's bulk refresh (streamed when V is a memory-mapped
    pool); None: the engine's default (numpy 2048, torch 65536).
    scheduler: GreeDi's Dask scheduler, "local:K" or an address (None: 2 blocks, in process).
    criterion: "d" (log det), "a" (trace of H^{-1}) or "g" (largest target variance), for the
    solvers tagged ``criterion-a`` / ``criterion-g``; the targets of "g" are the unweighted rows.
    """

    n: int | None = None
    gamma: float = 1.0
    candidates: str | int = "all"
    seed: int = 0
    efficiency: float = 1 - 1e-6
    dtype: type = np.float64
    backend: str = "numpy"
    device: str = "cpu"
    rows_per_block: int | None = None
    scheduler: str | None = None
    criterion: str = "d"


def solver_names(tag: str | None = None) -> tuple[str, ...]:
    """Registered solver names (those carrying ``tag`` if given), in registration order."""
    return tuple(e.name for e in SOLVERS if tag is None or tag in e.tags)


#: The solve options a declared design (a ``[[methods]]`` table of a design sweep, sim.runner)
#: may set; ``n`` and ``seed`` come from the cell (its budget and its seed).
DECLARED_OPTIONS = tuple(f.name for f in dataclasses.fields(SolveOptions) if f.name not in ("n", "seed"))
_DTYPES = {"float64": np.float64, "float32": np.float32}


def solve_options(solver: str, options: Mapping[str, Any], **cell: Any) -> SolveOptions:
    """Validated :class:`SolveOptions` for ``solver`` from declared option values (TOML-typed:
    ``dtype`` is "float64" or "float32") plus the cell's own ``n`` / ``seed`` (``cell``).

    Unknown solvers and unknown options are refused with the valid ones listed; each value is
    checked before any work (one-line ValueError naming the option)."""
    entry = SOLVERS.get(solver)
    bad = [k for k in options if k not in DECLARED_OPTIONS]
    if bad:
        raise ValueError(f"{bad[0]}: not an option of design solver {entry.name!r}; its options "
                         f"are: {', '.join(DECLARED_OPTIONS)}")
    o = dict(options)
    if "dtype" in o:
        if o["dtype"] not in _DTYPES:
            raise ValueError(f"dtype: one of {', '.join(_DTYPES)}, got {o['dtype']!r}")
        o["dtype"] = _DTYPES[o["dtype"]]
    opts = SolveOptions(**o, **cell)
    positive_scalar(opts.gamma, "gamma")
    if opts.candidates != "all":
        positive_int(opts.candidates, "candidates")
    if not (isinstance(opts.efficiency, float) and 0 < opts.efficiency < 1):
        raise ValueError(f"efficiency: a float in (0, 1), got {opts.efficiency!r}")
    if opts.rows_per_block is not None:
        positive_int(opts.rows_per_block, "rows_per_block")
    if opts.scheduler is not None and "distributed" not in entry.tags:
        raise ValueError(f"scheduler: applies to the distributed solvers only "
                         f"({', '.join(solver_names('distributed'))})")
    check_solver_criterion(entry.name, opts.criterion)
    check_solver_backend(entry.name, opts.backend, opts.device)
    return opts


def check_solver_backend(solver: str, backend: str, device: str) -> None:
    """A one-line ValueError unless ``solver`` runs on ``backend`` / ``device``."""
    if backend not in ("numpy", "torch"):
        raise ValueError(f"backend: 'numpy' or 'torch', got {backend!r}")
    if backend != "numpy" and "torch" not in SOLVERS.get(solver).tags:
        raise ValueError(f"backend: --backend {backend} applies to --solver "
                         f"{' or '.join(solver_names('torch'))} only; use --backend numpy")
    if backend == "numpy" and device != "cpu":
        raise ValueError(f"device: --device {device} applies to --backend torch only")


def check_solver_criterion(solver: str, criterion: str) -> str:
    """The validated criterion, or a one-line ValueError naming the solvers that handle it."""
    from .criteria import check_criterion
    c = check_criterion(criterion)
    if c != "d" and f"criterion-{c}" not in SOLVERS.get(solver).tags:
        raise ValueError(f"criterion: --solver {solver} optimizes the D criterion only; for "
                         f"--criterion {c} use one of {', '.join(solver_names(f'criterion-{c}'))}")
    return c


def _exact_n(o: SolveOptions) -> int:
    """``o.n``, which the exact solvers need, or a one-line ValueError."""
    return positive_int(o.n, "n")


@SOLVERS.register("greedy", tags=("exact", "criterion-a", "criterion-g", "torch"),
                  style={"color": "#d62728", "marker": "s"},
                  help="greedy log det with rank-one updates (paper eq. 10); A/G: greedy on "
                  "that criterion (sim.design.criteria)")
def _greedy(V: ArrayLike, weights: ArrayLike | None, o: SolveOptions) -> DesignResult:
    from .greedy import greedy_select
    if o.criterion != "d":
        from .criteria import greedy_criterion
        if o.backend != "numpy" or o.candidates != "all" or o.dtype != np.float64:
            raise ValueError(f"criterion: the {o.criterion.upper()}-greedy runs the exact "
                             "float64 numpy argmax only; drop --backend/--candidates/--float32")
        return greedy_criterion(V, _exact_n(o), criterion=o.criterion, gamma=o.gamma,
                                weights=weights)
    if o.backend != "numpy" and o.candidates != "all":  # the incremental engine on torch
        from .torch_greedy import TorchProducts
        return greedy_select(V, _exact_n(o), gamma=o.gamma, weights=weights,
                             candidates=o.candidates, seed=o.seed,
                             products=TorchProducts(o.device))
    if o.backend != "numpy":
        from .torch_greedy import greedy_select_torch
        return greedy_select_torch(V, _exact_n(o), gamma=o.gamma, weights=weights,
                                   dtype=o.dtype, device=o.device,
                                   rows_per_block=o.rows_per_block or 65536)
    return greedy_select(V, _exact_n(o), gamma=o.gamma, weights=weights,
                         candidates=o.candidates, seed=o.seed, dtype=o.dtype,
                         rows_per_block=o.rows_per_block or 2048)


def _on_scheduler(run: Callable[[int, Client | None], DesignResult], o: SolveOptions
                  ) -> DesignResult:
    """run(parts, client) on o.scheduler's workers (one block each), or on 2 in-process blocks."""
    from .greedi import connect
    if o.scheduler is None:
        return run(2, None)
    client = connect(o.scheduler)
    try:
        return run(max(1, len(client.scheduler_info()["workers"])), client)
    finally:
        client.close()


@SOLVERS.register("greedi", tags=("exact", "distributed"),
                  help="GreeDi: greedy per block on Dask workers, then greedy on the union")
def _greedi(V: ArrayLike, weights: ArrayLike | None, o: SolveOptions) -> DesignResult:
    from .greedi import greedi_select
    n = _exact_n(o)
    return _on_scheduler(lambda parts, client: greedi_select(
        V, n, parts=parts, gamma=o.gamma, weights=weights, seed=o.seed, dtype=o.dtype,
        client=client), o)


@SOLVERS.register("greedi-exact", tags=("exact", "distributed"),
                  help="exact greedy with the rows kept on Dask workers (same picks as greedy)")
def _greedi_exact(V: ArrayLike, weights: ArrayLike | None, o: SolveOptions) -> DesignResult:
    from .greedi import greedi_exact_select
    n = _exact_n(o)
    return _on_scheduler(lambda parts, client: greedi_exact_select(
        V, n, parts=parts, gamma=o.gamma, weights=weights, client=client), o)


@SOLVERS.register("exchange", tags=("exact",), help="greedy, then Fedorov exchange",
                  style={"color": "#ff7f0e", "marker": "^"})
def _exchange(V: ArrayLike, weights: ArrayLike | None, o: SolveOptions) -> DesignResult:
    from .greedy import greedy_select
    from .rounding import exchange
    start = greedy_select(V, _exact_n(o), gamma=o.gamma, weights=weights)
    res = exchange(V, start.picks(), gamma=o.gamma, weights=weights)
    res.info["greedy_weighted_logdet"] = start.logdet
    return res


@SOLVERS.register("brute", tags=("exact",), help="exhaustive search (tiny instances)",
                  style={"color": "black", "marker": "o"})
def _brute(V: ArrayLike, weights: ArrayLike | None, o: SolveOptions) -> DesignResult:
    from .brute import brute_force_design
    return brute_force_design(V, _exact_n(o), gamma=o.gamma, weights=weights)


@SOLVERS.register("fw", tags=("relaxed", "torch"), style={"color": "#1f77b4", "marker": "D"},
                  help="Frank-Wolfe, pairwise steps, working set (numpy or torch)")
def _fw(V: ArrayLike, weights: ArrayLike | None, o: SolveOptions) -> DesignResult:
    from .relaxed import fw_design
    return fw_design(V, weights=weights, efficiency=o.efficiency, backend=o.backend,
                     device=o.device)


@SOLVERS.register("rex", tags=("relaxed",), help="randomized exchange (Harman et al. 2020)")
def _rex(V: ArrayLike, weights: ArrayLike | None, o: SolveOptions) -> DesignResult:
    from .rex import rex_design
    return rex_design(V, weights=weights, efficiency=o.efficiency, seed=o.seed)


@SOLVERS.register("multiplicative", tags=("relaxed", "criterion-a", "criterion-g"),
                  help="pi_i <- pi_i g_i / d; A: Yu's pi_i (v^T M^-2 v)^1/2; G: minimax "
                  "multiplicative with its certificate (sim.design.criteria.g_design)")
def _multiplicative(V: ArrayLike, weights: ArrayLike | None, o: SolveOptions) -> DesignResult:
    from .relaxed import multiplicative_design
    if o.criterion == "a":
        from .criteria import a_design
        return a_design(V, weights=weights, efficiency=o.efficiency)
    if o.criterion == "g":
        from .criteria import g_design
        return g_design(V, weights=weights, efficiency=o.efficiency)
    return multiplicative_design(V, weights=weights, efficiency=o.efficiency)


@SOLVERS.register("cvxpy", tags=("relaxed", "criterion-a", "criterion-g"),
                  style={"color": "#2ca02c", "marker": "v"},
                  help="cvxpy/Clarabel (small instances)")
def _cvxpy(V: ArrayLike, weights: ArrayLike | None, o: SolveOptions) -> DesignResult:
    from .relaxed import cvxpy_design
    if o.criterion != "d":
        from .criteria import cvxpy_criterion_design
        return cvxpy_criterion_design(V, o.criterion, weights=weights)
    return cvxpy_design(V, weights=weights)


@SOLVERS.register("random", tags=("exact",), style={"color": "#7f7f7f", "marker": "x"},
                  help="n distinct rows uniformly at random (the baseline; seeded)")
def _random(V: ArrayLike, weights: ArrayLike | None, o: SolveOptions) -> DesignResult:
    from .common import subset_logdet
    V = np.asarray(V, dtype=np.float64)
    n = _exact_n(o)
    if n > len(V):
        raise ValueError(f"n: {n} rows asked of a pool of {len(V)}")
    idx = as_rng(o.seed).choice(len(V), n, replace=False).astype(np.int64)
    W = V if weights is None else np.sqrt(np.asarray(weights, dtype=np.float64))[:, None] * V
    return DesignResult("random", indices=idx, logdet=subset_logdet(W, idx, o.gamma), support=n)
