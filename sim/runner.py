"""Sweeps: many (environment, method, seed) cells, resumable, on a local pool or a Dask cluster.

One **cell** is ``cell_fn(env, method, seed, budgets) -> rows`` (default
:func:`sim.experiment.run_cell`): one method run on one environment draw up to ``max(budgets)``,
returning tidy rows ``{"env", "method", "seed", "n", "metric", "value"}`` (paper sec. 5.1
metrics at every budget n). A **sweep** is the product envs x methods x seeds.

Sweep files (TOML)
------------------
::

    name = "digits-paper"          # optional, informative
    description = "..."            # optional, informative
    seeds = [0, 1, 2]              # a list; or {start = 0, count = 10}; or 10 (= 0..9)
    budgets = "pow2:4:14"          # 2^4 .. 2^14; or an explicit list [16, 32, 100];
                                   # or "every:16" (16, 32, ... and N: every 16 labels;
                                   # "every:16:1024": up to 1024);
                                   # omitted: powers of two from n_min to n_max
    n_min = 16                     # only without `budgets` (default 16)
    n_max = 8192                   # only without `budgets` (default: largest 2^k <= N/2)

    [env]                          # sim.envs.make_env(kind, seed=..., **rest); kinds and
    kind = "digits"                # their options: sim.registry.ENVS (`adpo envs`)
    N = 16384
    beta = 1.0
    label = "digits"               # optional table label (default: kind(key=value, ...))

    [grid]                         # optional: env parameters to sweep (cartesian product)
    beta = [1.0, 2.0, 5.0]

    # several environments: an array of tables [[env]] instead of [env] (each expanded by the
    # grid, each with its own budgets when n_max is omitted, or with its own `budgets = [...]`
    # key, which overrides the top level's for that environment)

    [[methods]]                    # sim.selectors.make_selector(name, data, **rest); methods
                                   # and their options: sim.registry.METHODS (`adpo methods`)
    name = "adpo+"
    n_candidates = 256
    grid = {alpha = [0.0, 3.0]}    # optional: method parameters to sweep
    [[methods]]
    name = "uniform"
    [[methods]]                    # designs with replacement: a pair may be picked again,
    name = "apo"                   # each repeat a fresh label (sim.experiment.run_cell);
    replace = true                 # with only such methods, budgets may exceed N
    max_per_prompt = 1             # at most one pick per prompt (data with a 'group' key,
                                   # e.g. [env] kind = "prompts")
    [[methods]]
    name = "adpo"
    record_kappa = true            # per-budget kappa_max and Theorem 4 metrics
    series = ["kappa_t"]           # optional: per-round rows (n = round) of the series the
                                   # selector records (sim.experiment.SELECTOR_SERIES)
    fit = false                    # optional: no theta_hat_n fits at the budgets (only the
                                   # selector's metrics and series, seconds, env facts)

Design sweeps (``cell = "design"`` at the top level; default ``"select"``): each cell runs a
design solver of the one solver table (``sim.design.solvers.SOLVERS``) on the rows phi of one
environment draw, at each budget n (:func:`sim.experiment.run_design_cell`)::

    cell = "design"
    [[methods]]
    name = "greedy"                # a solver; its options: sim.design.solvers.DECLARED_OPTIONS
    gamma = 1e-9                   # (n and the solver's seed come from the cell)
    repeats = 3                    # optional: a timing (warm-up, then the median of 3); such
                                   # cells rerun on every run and are never read from the store
    [[methods]]
    name = "fw"
    efficiency = 0.999999
    round = true                   # relaxed solvers: also round to n rows at each budget
    max_N = 1000                   # optional: no rows on pools with more rows (or max_d columns)

Cell kinds defined outside ``sim`` register themselves (:func:`register_cell_kind`) and are
found through the entry-point group ``adpo.cells``, like a plug-in's methods: this project's
``coverage`` (``theory.coverage.run_coverage_cell``: one trial of Theorem 3's coverage per
cell, the trial being the cell's seed; with an ``[env] seed`` every trial sees the same
features and draws fresh labels)::

    cell = "coverage"
    seeds = 50                     # trials
    budgets = [1000]
    [env]
    kind = "gaussian"
    seed = 0                       # the features, drawn once for every trial (only kinds
                                   # with CellKind.env_seed take an env seed)
    N = 2000
    d = 2
    assumption2 = true
    [[methods]]
    name = "adpo"
    gamma = 1.0                    # Theorem 3's ridge of Sigma_n (and ADPO's design ridge)
    n_candidates = 256

Training sweeps (``cell = "dpo_train"``): each cell selects with a method on a ``file``
environment, then DPO-trains a network's top block on each budget's picks and judges the network
and the log-linear fit on the held-out pairs (:func:`sim.experiment.run_dpo_train_cell`). The
environment adds a ``train`` table: the training cache of the file's pairs (the network's frozen
activations, :func:`sim.llm_train.save_cache`) and the training settings, all in the cell's key::

    cell = "dpo_train"
    [env]
    kind = "file"
    path = "features.npz"          # the log-linear rows; pair i of the cache is row i
    holdout = 0.3                  # required: the cells score held-out pairs
    [env.train]
    cache = "train-cache.npz"
    steps = 40
    lr = 3e-4
    batch_size = 8

The network and the cache are loaded once per process (``jobs=1``: once), so a cell never
reloads them; training runs on the device and torch threads the cache was computed with.

A ranking pool (``[env] kind = "ranking"``: K responses per prompt, one Plackett-Luce ranking
each) takes the ranking methods (``rank-adpo``, ``rank-uniform``, ...; N is its number of
prompts M, a budget counts ranked prompts); a sweep mixing ranking and pairwise entries is
refused.

Unknown keys, duplicate cells, budgets above an environment's N, and bad values (checked by
each registry entry's config dataclass, before anything is built) raise ``ValueError`` naming
the key. Labels must be unique: a grid appends ``[key=value]`` to an explicit ``label``. Values are
taken literally: ``beta = 1`` and ``beta = 1.0`` are different configurations (keys and labels).

Store and resume
----------------
A cell's key is :func:`sim.fingerprint.cache_key` of its full configuration (env dict, method
dict, seed, sorted budgets, the cell function's ``module:qualname``) and of the code that computes
it: the fingerprint of every ``.py`` file of the ``sim`` package plus, for a cell function
outside ``sim``, every file of its package (e.g. ``theory/``; its module file alone when it is in
no package; :func:`sim.fingerprint.package_source`). Editing a selector
(or any library file) therefore gives every cell a new key and the next run recomputes it; editing
a figure script does not. Finished
cells live in ``OUT/cells/<key>.json`` (config + rows), written by the coordinating process
only, through a temp file in the same directory and ``os.replace``: a file either exists
complete or not at all, so Ctrl-C or a kill loses no finished cell and leaves no half-written
result. A rerun skips every cell whose file exists. ``OUT/sweep.json`` records the expanded
sweep and ``OUT/results.csv`` (and ``results.parquet`` when pyarrow is importable) holds the
tidy table of the sweep's cells, in sweep order, assembled from the cell files.
Cells of older code stay in ``OUT/cells`` unused (delete them to reclaim the space). Run one
sweep per OUT directory at a time.

Execution
---------
``jobs=1``: in this process (BLAS may use every core). ``jobs>1``: a joblib/loky process pool
with BLAS pinned to one thread per worker (``inner_max_num_threads=1``, which sets
OMP/OPENBLAS/MKL_NUM_THREADS=1 in the workers, plus ``threadpool_limits(1)`` around each cell):
on 2-core machines, oversubscribed BLAS made numpy 10-20x slower. ``scheduler="tcp://..."``:
the cells go to that Dask cluster (``distributed.Client``), pinned the same way; the workers need
this package importable, and the results come back here to be stored.
Tables of the same sweep are identical whatever the backend, except the wall-time metric
``seconds``.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
import os
import pathlib
import sys
import time
import tomllib
from collections.abc import Iterable
from typing import Any, Callable

import pandas as pd

from .fingerprint import cache_key, code_fingerprint, package_source
from .io import OutputGroup, atomic_write_bytes, atomic_write_text  # noqa: F401  (public here)
from .registry import Registry
from .validation import MAX_SEED, DataError

COLUMNS = ("env", "method", "seed", "n", "metric", "value")
CELL_FORMAT = "adpo-cell/1"
TOP_KEYS = ("name", "description", "cell", "seeds", "budgets", "n_min", "n_max", "env", "grid",
            "methods")
DEFAULT_N_MIN = 16
#: A cell function: (env dict, method dict, seed, budgets) -> tidy rows.
CellFn = Callable[..., list[dict]]
MAX_SEEDS = 100_000


# --------------------------------------------------------------------------- the sweep
@dataclasses.dataclass(frozen=True)
class Cell:
    """One unit of work: ``cell_fn(env, method, seed, budgets)``."""

    env: dict
    method: dict
    seed: int
    budgets: tuple

    def config(self) -> dict:
        return {"env": self.env, "method": self.method, "seed": self.seed,
                "budgets": list(self.budgets)}

    def key(self, cell_fn: CellFn | None = None, code: str | None = None) -> str:
        """:func:`sim.fingerprint.cache_key` of the configuration, the cell function's name and
        ``code`` (default: :func:`cell_code` of the cell function)."""
        cell_fn = cell_fn or default_cell_fn()
        return cache_key(dict(self.config(), cell_fn=fn_id(cell_fn)),
                         code=code if code is not None else cell_code(cell_fn))


@dataclasses.dataclass(frozen=True)
class Sweep:
    """An expanded sweep: every env config x method config x seed, each with its budgets."""

    name: str
    envs: tuple
    methods: tuple
    seeds: tuple
    budgets: tuple  # one sorted tuple of budgets per env config
    #: What the config check could not verify (see :func:`check_configs`); kept in sweep.json.
    check_warnings: tuple = ()
    #: The kind of its cells (a key of :func:`cell_kinds`): "select", "stop", "design",
    #: "dpo_train" or a registered kind such as "coverage".
    cell: str = "select"

    def cells(self) -> list[Cell]:
        """Cells in sweep order: env-major, then method, then seed."""
        return [Cell(e, m, s, b) for e, b in zip(self.envs, self.budgets)
                for m in self.methods for s in self.seeds]

    def keys(self, cell_fn: CellFn | None = None) -> list[str]:
        """The store key of every cell, in sweep order, for ``cell_fn`` (default: the cell
        function of the sweep's kind)."""
        cell_fn = cell_fn or cell_kind(self.cell).fn
        code = cell_code(cell_fn)
        return [c.key(cell_fn, code) for c in self.cells()]


def default_cell_fn() -> Callable:
    from .experiment import run_cell

    return run_cell


@dataclasses.dataclass(frozen=True)
class CellKind:
    """A kind of cell (a sweep's ``cell`` key): its cell function ``fn``, the check of one
    ``[[methods]]`` table ``check_method(method, where) -> config`` (ValueError naming the key),
    ``measured(method)``: whether the method's rows are measurements (wall times), which
    the store never serves back, so those cells rerun on every run, in this process, one at a
    time (a stored timing would be passed off as a result of this run and this machine);
    ``env_seed``: whether an ``[env]`` table may fix its draw with a ``seed`` key (one draw for
    every cell, e.g. the fixed features of Theorem 3's coverage trials; its cell function reads
    the key, sim.experiment.build_env honours it; other kinds refuse the key: their cell seed
    is the environment's draw); ``env_keys``/``check_env``: what else the kind adds to an
    ``[env]`` table (``dpo_train``: its ``train`` table)."""

    fn: CellFn
    check_method: Callable[[dict, str], Any]
    measured: Callable[[dict], bool]
    env_seed: bool = False
    #: Keys of an ``[env]`` table that the cell kind reads besides the env kind's options, and
    #: their check ``check_env(env, where)`` (ValueError naming the key).
    env_keys: tuple[str, ...] = ()
    check_env: Callable[[dict, str], Any] | None = None


def never(method: dict) -> bool:
    """``CellKind.measured`` of a kind whose rows are never measurements."""
    return False


def _builtin_kinds() -> dict[str, CellKind]:
    from .experiment import (design_config, design_measured, dpo_train_config, run_cell,
                             run_design_cell, run_dpo_train_cell, run_stop_cell)

    return {"select": CellKind(run_cell, method_config, never),
            "design": CellKind(run_design_cell, design_config, design_measured),
            "stop": CellKind(run_stop_cell, method_config, never),
            "dpo_train": CellKind(run_dpo_train_cell, _train_method_config, never,
                                  env_keys=("train",), check_env=dpo_train_config)}


#: Cell kinds registered from outside ``sim`` (a registry entry's ``factory`` is the
#: :class:`CellKind`): by :func:`register_cell_kind` at the import of the registering module,
#: found through the entry-point group ``adpo.cells`` (e.g. this project's ``theory.coverage``,
#: which ``sim`` must not import).
CELL_KINDS = Registry("cell kind", "adpo.cells")


def register_cell_kind(name: str, kind: CellKind, help: str = "") -> CellKind:
    """Register ``kind`` as the cell kind ``name`` (a sweep's ``cell = "name"``); a module
    outside ``sim`` calls this at import and declares itself in the entry-point group
    ``adpo.cells`` so that sweeps find it without importing it first. Returns ``kind``."""
    if name in _builtin_kinds():
        raise ValueError(f"cell kind {name!r} is built in; choose another name")
    return CELL_KINDS.register(name, help=help or f"cells run by {fn_id(kind.fn)}")(kind)


def cell_kinds() -> dict[str, CellKind]:
    """Every kind of cell: ``select`` (a selector on an environment, sim.experiment.run_cell,
    the default), ``stop`` (run_cell plus the stopping rule's statistic at every budget,
    sim.experiment.run_stop_cell), ``design`` (a design solver of sim.design.solvers.SOLVERS on
    an environment's rows, sim.experiment.run_design_cell), ``dpo_train`` (a selector's picks
    DPO-train a network, sim.experiment.run_dpo_train_cell; its env's ``train`` table), then the
    registered ones
    (:data:`CELL_KINDS`, e.g. ``coverage``: Theorem 3's coverage, theory.coverage)."""
    kinds = _builtin_kinds()
    for e in CELL_KINDS:
        if not isinstance(e.factory, CellKind):
            raise TypeError(f"cell kind {e.name!r}: registered a {type(e.factory).__name__}, "
                            "not a sim.runner.CellKind; use register_cell_kind")
        kinds[e.name] = e.factory
    return kinds


def cell_kind(name: Any) -> CellKind:
    """The :class:`CellKind` called ``name``, or a one-line ValueError listing the kinds (the
    registered kinds' modules are imported only for a name that is not built in)."""
    kinds = _builtin_kinds()
    if name not in kinds:
        kinds = cell_kinds()
    if name not in kinds:
        raise ValueError(f"cell: one of {', '.join(kinds)}, got {name!r}")
    return kinds[name]


def cell_code(cell_fn: CellFn) -> str:
    """Fingerprint of the code a cell runs: the ``sim`` package and, for a cell function
    defined outside it, the whole package it belongs to (e.g. ``theory/`` for a theory cell,
    whose modules it imports; :func:`sim.fingerprint.package_source`)."""
    return code_fingerprint(package_source(cell_fn))


def fn_id(fn: Any) -> str:
    """``module:qualname`` of a cell function (of its class for a callable object; note that
    a functools.partial is identified by that name alone, not by its bound arguments)."""
    name = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    return f"{getattr(fn, '__module__', None) or type(fn).__module__}:{name}"


def load_sweep(path: str | os.PathLike[str], *, check: bool = True) -> Sweep:
    """Read and expand a TOML sweep file (schema in the module docstring)."""
    try:
        with open(path, "rb") as f:
            cfg = tomllib.load(f)
    except FileNotFoundError:
        raise DataError(f"config {str(path)!r}: no such file") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise DataError(f"config {str(path)!r}: not readable TOML ({exc})") from None
    cfg.setdefault("name", pathlib.Path(path).stem)
    return parse_sweep(cfg, check=check)


def make_sweep(env: Any, methods: Any, seeds: Any, budgets: Any = None, *, grid: Any = None,
               name: str = "sweep", n_min: int | None = None, n_max: int | None = None,
               check: bool = True, cell: str = "select") -> Sweep:
    """The Python form of a sweep file: ``env`` is one dict or a list of dicts (several
    environments), ``methods`` a list of dicts (or names), the rest as in the TOML schema."""
    envs = [env] if isinstance(env, dict) else list(env)
    if not isinstance(methods, list):
        raise ValueError("methods: missing; add at least one [[methods]] table with a name")
    methods = [{"name": m} if isinstance(m, str) else m for m in methods]
    cfg = {"name": name, "cell": cell, "seeds": seeds, "methods": methods}
    for k, v in (("budgets", budgets), ("grid", grid), ("n_min", n_min), ("n_max", n_max)):
        if v is not None:
            cfg[k] = v
    parts = [parse_sweep(dict(cfg, env=e), check=check) for e in envs]
    return _check_unique(Sweep(name, tuple(e for p in parts for e in p.envs), parts[0].methods,
                               parts[0].seeds, tuple(b for p in parts for b in p.budgets),
                               tuple(w for p in parts for w in p.check_warnings), cell))


def parse_sweep(cfg: dict, *, check: bool = True) -> Sweep:
    """Expand a sweep given as a dict (the parsed TOML); ValueError names any bad key."""
    if not isinstance(cfg, dict):
        raise ValueError("config: expected a table of keys")
    _no_unknown(cfg, TOP_KEYS, "config")
    name = str(cfg.get("name", "sweep"))
    cell = cfg.get("cell", "select")
    cell_kind(cell)
    seeds = parse_seeds(cfg.get("seeds"))
    env = cfg.get("env")
    if isinstance(env, list) and env and all(isinstance(e, dict) for e in env):
        return make_sweep(env, cfg.get("methods"), cfg.get("seeds"), cfg.get("budgets"),
                          grid=cfg.get("grid"), name=name, n_min=cfg.get("n_min"),
                          n_max=cfg.get("n_max"), check=check, cell=cell)
    if not isinstance(env, dict):
        raise ValueError("env: missing [env] table (or [[env]] tables); e.g. [env] kind = "
                         "\"gaussian\", N = 4096, d = 32")
    env = dict(env)
    own_budgets = env.pop("budgets", None)  # an environment's own grid overrides the top level's
    envs = _expand(env, cfg.get("grid", {}), "grid")
    methods = expand_methods(cfg.get("methods"))
    if "budgets" in cfg and ("n_min" in cfg or "n_max" in cfg):
        raise ValueError("n_min/n_max: only used without 'budgets'; drop one of them")
    # Designs with replacement may ask for more labels than pairs: only then is N no limit.
    over = bool(methods) and all(m.get("replace") is True for m in methods)
    budgets = tuple(parse_budgets(own_budgets if own_budgets is not None else cfg.get("budgets"),
                                  _env_n(e, i, cell), n_min=cfg.get("n_min"),
                                  n_max=cfg.get("n_max"), replace=over)
                    for i, e in enumerate(envs))
    sweep = _check_unique(Sweep(name, tuple(envs), tuple(methods), tuple(seeds), budgets,
                                cell=cell))
    if check:
        sweep = dataclasses.replace(sweep, check_warnings=tuple(check_configs(sweep)))
    return sweep


def expand_methods(raw: Any) -> list[dict]:
    """The ``[[methods]]`` tables of a sweep, each expanded by its ``grid`` (no validation of
    the options: :func:`check_configs` does that)."""
    if not isinstance(raw, list) or not raw:
        raise ValueError("methods: missing; add at least one [[methods]] table with a name")
    methods = []
    for i, m in enumerate(raw):
        if not isinstance(m, dict) or "name" not in m:
            raise ValueError(f"methods[{i}]: expected a table with a 'name' key")
        m = dict(m)
        methods.extend(_expand(m, m.pop("grid", {}), f"methods[{i}].grid"))
    return methods


def _check_unique(sweep: Sweep) -> Sweep:
    """Refuse duplicate configurations and duplicate labels (their rows would mix)."""
    from .experiment import label

    for what, items, key in (("env", sweep.envs, "kind"), ("methods", sweep.methods, "name")):
        seen: dict[str, str] = {}
        for i, c in enumerate(items):
            canon = json.dumps(c, sort_keys=True)
            lab = label(c, key)
            if canon in seen.values():
                raise ValueError(f"{what}: configuration {i} duplicates another: {c}")
            if lab in seen:
                raise ValueError(f"{what}: label {lab!r} used twice; give each a distinct 'label'")
            seen[lab] = canon
    return sweep


def parse_seeds(spec: Any) -> list[int]:
    """A list of distinct non-negative ints, ``{start, count}``, or a count (0..count-1)."""
    if spec is None:
        raise ValueError("seeds: missing; e.g. seeds = [0, 1, 2] or seeds = {start = 0, count = 10}")
    if isinstance(spec, dict):
        _no_unknown(spec, ("start", "count"), "seeds")
        start, count = spec.get("start", 0), spec.get("count")
        if not _is_int(start) or start < 0 or not _is_int(count) or count < 1:  # type: ignore[operator]
            raise ValueError(f"seeds: {{start, count}} need integers start >= 0 and count >= 1, "
                             f"got {spec}")
        _check_seed_range(int(start), int(count))  # type: ignore[arg-type]
        return list(range(start, start + count))
    if _is_int(spec):
        if spec < 1:
            raise ValueError(f"seeds: a count must be >= 1, got {spec}")
        _check_seed_range(0, spec)
        return list(range(spec))
    if not isinstance(spec, (list, tuple)) or not spec:
        raise ValueError(f"seeds: expected a non-empty list of integers, got {spec!r}")
    for s in spec:
        if not _is_int(s) or s < 0:
            raise ValueError(f"seeds: each seed must be an integer >= 0, got {s!r}")
    if len(set(spec)) != len(spec):
        raise ValueError(f"seeds: duplicates in {list(spec)}; list each seed once")
    _check_seed_range(max(spec), 1)
    return [int(s) for s in spec]


def pow2_budgets(n_min: int, n_max: int) -> list[int]:
    """Powers of two from n_min to n_max inclusive (n_min rounded up, n_max down): the one
    budget-grid helper of the project."""
    lo, hi = _pos_int(n_min, "n_min"), _pos_int(n_max, "n_max")
    out = [1 << k for k in range(hi.bit_length()) if lo <= 1 << k <= hi]
    if not out:
        raise ValueError(f"n_min/n_max: no power of two in [{lo}, {hi}]; widen the range")
    return out


def _check_seed_range(start: int, count: int) -> None:
    """Refuse before building the list: too many seeds, or seeds int64 tables cannot hold."""
    if count > MAX_SEEDS:
        raise ValueError(f"seeds: {count} seeds is over the limit of {MAX_SEEDS} per sweep (the "
                         f"cell list alone would not fit in memory); split the sweep")
    if start + count - 1 > MAX_SEED:
        raise ValueError(f"seeds: {start + count - 1} is over 2^63 - 1, the largest seed the "
                         f"results table stores (int64); use smaller seeds")


def parse_budgets(spec: Any, N: int, *, n_min: int | None = None,
                  n_max: int | None = None, replace: bool = False) -> tuple:
    """Sorted distinct budgets <= N (any size with ``replace``: designs with replacement) from
    a list, ``"pow2:LO:HI"`` (2^LO..2^HI), ``"every:K"`` or ``"every:K:MAX"`` (K, 2K, ... up
    to MAX, default N, and MAX itself: the checks of sim.stopping.select_until every K labels
    with max_n = MAX) or None (powers of two from n_min, default 16, to n_max, default the
    largest 2^k <= N/2)."""
    if isinstance(spec, str) and spec.startswith("every:"):
        parts = [p.strip() for p in spec.split(":")[1:]]
        if len(parts) not in (1, 2) or not all(p.isdigit() and int(p) >= 1 for p in parts):
            raise ValueError(f"budgets: expected 'every:K' or 'every:K:MAX' with integers "
                             f"K, MAX >= 1, got {spec!r}")
        step, top = int(parts[0]), int(parts[1]) if len(parts) == 2 else N
        spec = sorted({*range(step, top + 1, step), top})
    if spec is None or spec == "pow2":
        hi = _pos_int(n_max, "n_max") if n_max is not None else 1 << (max(N // 2, 1).bit_length() - 1)
        out = pow2_budgets(n_min if n_min is not None else min(DEFAULT_N_MIN, hi), hi)
    elif isinstance(spec, str):
        parts = spec.split(":")
        if len(parts) != 3 or parts[0] != "pow2" or not all(p.strip().isdigit() for p in parts[1:]):
            raise ValueError(f"budgets: expected 'pow2:LO:HI' (2^LO..2^HI), 'every:K' or a "
                             f"list, got {spec!r}")
        lo, hi = int(parts[1]), int(parts[2])
        if lo > hi:
            raise ValueError(f"budgets: 'pow2:{lo}:{hi}' is empty; LO must be <= HI")
        out = pow2_budgets(1 << lo, 1 << hi)
    elif isinstance(spec, (list, tuple)) and spec:
        out = [_pos_int(b, "budgets") for b in spec]
        if len(set(out)) != len(out):
            raise ValueError(f"budgets: duplicates in {list(spec)}")
    else:
        raise ValueError(f"budgets: expected 'pow2:LO:HI', 'every:K' or a non-empty list, "
                         f"got {spec!r}")
    out = sorted(out)
    if out[-1] > N and not replace:
        raise ValueError(f"budgets: largest budget {out[-1]} exceeds the environment's N = {N}; "
                         "lower the budgets, raise N, or give every method replace = true")
    return tuple(out)


def check_configs(sweep: Sweep) -> list[str]:
    """Validate every env and method config against its registry entry, without building
    anything: unknown kinds/methods and unknown options are refused with the valid ones listed,
    and each value is checked by the entry's config dataclass (:mod:`sim.registry`); a
    ``holdout`` is checked against the environment's N. Returns notes for ``sweep.json``
    (none: every config is checked in full, nothing is built at a proxy size)."""
    kind = cell_kind(sweep.cell)
    for i, env in enumerate(sweep.envs):
        env_config(env, env_seed=kind.env_seed, extra=kind.env_keys)
        if kind.check_env is not None:
            kind.check_env(env, "env")
        if env.get("holdout") is not None:
            from .splits import n_heldout

            n_heldout(_env_n(env, i, sweep.cell), env["holdout"])
    for i, m in enumerate(sweep.methods):
        kind.check_method(m, f"methods[{i}]")
    if kind.check_method in (method_config, _train_method_config):  # selectors: pools and
        _check_kinds(sweep)                                          # methods of one kind
    return []


def env_config(env: dict, where: str = "env", *, env_seed: bool = False,
               extra: Iterable[str] = ()) -> Any:
    """The validated config dataclass of an ``[env]`` table (keys ``kind``, ``label``,
    ``holdout``, the env kind's options, the cell kind's ``extra`` keys and, with ``env_seed``
    (cell kinds that take it, :class:`CellKind`), ``seed``); ``ValueError`` names ``where.key``."""
    from .registry import ENVS

    entry = _entry(ENVS, env.get("kind"), f"{where}.kind")
    own = ("kind", "label", "holdout", *extra) + (("seed",) if env_seed else ())
    if env_seed and "seed" in env and (not _is_int(env["seed"])
                                       or not 0 <= env["seed"] <= MAX_SEED):
        raise ValueError(f"{where}.seed: expected an integer in [0, 2^63 - 1] (the draw every "
                         f"cell of this environment uses), got {env['seed']!r}")
    options = {k: v for k, v in env.items() if k not in own}
    try:
        return entry.make_config(options)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}.{exc}") from None


def method_config(method: dict, where: str = "method") -> Any:
    """The validated config dataclass of a ``[[methods]]`` table (``name``, ``label``, the
    run_cell keys ``series`` and ``fit`` and the method's options); ``ValueError`` names ``where.key``."""
    from .registry import METHODS

    from .experiment import fit_flag, series_names

    entry = _entry(METHODS, method.get("name"), f"{where}.name")
    series_names(method.get("series", []), f"{where}.series")
    fit_flag(method.get("fit", True), f"{where}.fit")
    options = {k: v for k, v in method.items() if k not in ("name", "label", "series", "fit")}
    try:
        return entry.make_config(options)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where} ({entry.name}).{exc}") from None


def _train_method_config(method: dict, where: str = "method") -> Any:
    """:func:`method_config` of a ``dpo_train`` cell's method, which records no selector
    ``series`` and picks without replacement (sim.experiment.dpo_train_method)."""
    from .experiment import dpo_train_method

    return method_config(dpo_train_method(method, where), where)


def _entry(registry: Any, name: Any, where: str) -> Any:
    entry = registry.entry_at(name, where)
    return entry


def _check_kinds(sweep: Sweep) -> None:
    """Ranking methods (tag ``ranking``) run on ranking pools only, pairwise methods on pairs:
    a sweep mixing the two kinds is refused, naming the first mismatched pair."""
    from .registry import ENVS, METHODS

    for i, env in enumerate(sweep.envs):
        ranking = "ranking" in ENVS.get(str(env["kind"])).tags
        for j, m in enumerate(sweep.methods):
            entry = METHODS.get(str(m["name"]))
            if ("ranking" in entry.tags) != ranking:
                raise ValueError(
                    f"methods[{j}].name: {entry.name!r} selects "
                    f"{'prompts of a ranking pool' if not ranking else 'pairs'} but env[{i}] "
                    f"(kind {env['kind']!r}) is {'a ranking pool' if ranking else 'pairwise'}; "
                    f"use {'a rank-* method' if ranking else 'a pairwise method'} or another "
                    "env (one sweep per kind of pool)")


def _expand(base: dict, grid: Any, where: str) -> list[dict]:
    """The cartesian product of ``grid`` (key -> list of values) over ``base``."""
    if not isinstance(grid, dict):
        raise ValueError(f"{where}: expected a table of key = [values]")
    for k, v in grid.items():
        if not isinstance(v, list) or not v:
            raise ValueError(f"{where}.{k}: expected a non-empty list of values, got {v!r}")
        if k in ("kind", "name", "label", "grid"):
            raise ValueError(f"{where}.{k}: cannot be swept; list separate entries instead")
        if k in base:
            raise ValueError(f"{where}.{k}: also set as a fixed value; keep it in one place")
    out = []
    for combo in itertools.product(*grid.values()):
        cfg = dict(base, **dict(zip(grid, combo)))
        if "label" in base and grid:
            cfg["label"] = f"{base['label']}[{', '.join(f'{k}={v}' for k, v in zip(grid, combo))}]"
        out.append(cfg)
    return out


def _env_n(env: dict, i: int, cell: str = "select") -> int:
    """The number of pairs N of an env table of a sweep of ``cell`` kind: its config's ``N`` (a
    field, or a property such as the ``file`` kind's row count)."""
    kind = cell_kind(cell)
    n = getattr(env_config(env, env_seed=kind.env_seed, extra=kind.env_keys), "N", None)
    if n is None:
        raise ValueError(f"env.kind: environment {env.get('kind')!r} does not state its N (its "
                         "config has no N field or property); budgets need it")
    return _pos_int(n, "env.N")


def _no_unknown(cfg: dict, allowed: Iterable[str], where: str) -> None:
    bad = sorted(set(cfg) - set(allowed))
    if bad:
        raise ValueError(f"{where}: unknown key(s) {', '.join(map(repr, bad))}; allowed: "
                         f"{', '.join(sorted(allowed))}")


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _pos_int(x: Any, name: str) -> int:
    if not _is_int(x) or x < 1:
        raise ValueError(f"{name}: expected an integer >= 1, got {x!r}")
    return int(x)


# --------------------------------------------------------------------------- the store
class CellStore:
    """Finished cells under ``root/cells/<key>.json``, written atomically."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = pathlib.Path(root)
        self.dir = self.root / "cells"

    def path(self, key: str) -> pathlib.Path:
        return self.dir / f"{key}.json"

    def finished(self, key: str) -> bool:
        return self.path(key).is_file()

    def load(self, key: str) -> dict:
        try:
            with open(self.path(key)) as f:
                rec = json.load(f)
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"cell file {str(self.path(key))!r}: unreadable ({exc}); delete it "
                             "and rerun") from None
        if not isinstance(rec, dict) or rec.get("format") != CELL_FORMAT or rec.get("key") != key:
            raise ValueError(f"cell file {str(self.path(key))!r}: not an {CELL_FORMAT} record of "
                             "this key; delete it and rerun")
        return rec

    def save(self, key: str, cell: Cell, cell_fn: CellFn, rows: list, seconds: float,
             code: str | None = None) -> None:
        rec = {"format": CELL_FORMAT, "key": key, "cell_fn": fn_id(cell_fn), "code": code,
               **cell.config(),
               "seconds": seconds, "rows": rows}
        self.dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.path(key), json.dumps(rec, sort_keys=True))

    def remove_temp(self) -> int:
        """Delete temp files left by a process killed mid-write (none after a clean exit)."""
        n = 0
        for p in self.dir.glob(".*.tmp") if self.dir.is_dir() else ():
            p.unlink(missing_ok=True)
            n += 1
        return n


# --------------------------------------------------------------------------- running
@dataclasses.dataclass
class SweepResult:
    """What :func:`run_sweep` did: the tidy ``table`` and where it was written."""

    table: pd.DataFrame
    n_cells: int
    n_ran: int
    n_skipped: int
    paths: list
    seconds: float


def run_sweep(sweep: Sweep, out: str | os.PathLike[str], *, jobs: int = 1,
              scheduler: str | None = None, cell_fn: Callable | None = None, progress: bool | None = None) -> SweepResult:
    """Run every unfinished cell of ``sweep``, store each as it finishes, assemble the table.

    Args:
        sweep: from :func:`load_sweep` or :func:`make_sweep`.
        out: results directory (created); finished cells found there are skipped.
        jobs: local worker processes (1 = in this process). Ignored with ``scheduler``.
        scheduler: a Dask scheduler address (``tcp://host:port``); None runs locally.
        cell_fn: ``(env, method, seed, budgets) -> rows`` (default sim.experiment.run_cell); it
            must be importable by the workers when jobs > 1 or with a scheduler.
        progress: show a tqdm bar (None: only when stderr is a terminal).

    An exception in a cell (or Ctrl-C) stops the sweep after storing every cell finished so far;
    the exception propagates with a note naming the cell.

    Returns: SweepResult; the table has columns env, method, seed (int), n (int), metric, value.
    """
    kind = cell_kind(sweep.cell)
    cell_fn = cell_fn or kind.fn
    jobs = _pos_int(jobs, "jobs")
    t0 = time.perf_counter()
    store = CellStore(out)
    store.dir.mkdir(parents=True, exist_ok=True)
    store.remove_temp()
    cells = sweep.cells()
    code = cell_code(cell_fn)
    keys = sweep.keys(cell_fn)
    atomic_write_text(store.root / "sweep.json", json.dumps(
        {"name": sweep.name, "cell": sweep.cell, "cell_fn": fn_id(cell_fn), "code": code,
         "check_warnings": list(sweep.check_warnings),
         "cells": [dict(key=k, **c.config()) for k, c in zip(keys, cells)]}, indent=1))
    # Measurements (kind.measured) are never served from the store: they rerun here, after
    # the other cells, one at a time, so no worker shares the cores with a timed solve.
    fresh = [i for i, c in enumerate(cells) if kind.measured(c.method)]
    todo = [i for i, k in enumerate(keys) if not store.finished(k) and i not in fresh]
    bar = _bar(len(cells), len(cells) - len(todo) - len(fresh), progress, sweep.name)
    try:
        if scheduler:
            results = _run_dask(scheduler, cell_fn, cells, todo)
        elif jobs > 1 and len(todo) > 1:
            results = _run_pool(jobs, cell_fn, cells, todo)
        else:
            results = _run_here(cell_fn, cells, todo)
        for i, rows, seconds in itertools.chain(results, _run_here(cell_fn, cells, fresh)):
            store.save(keys[i], cells[i], cell_fn, _check_rows(rows, cells[i]), seconds, code)
            bar.update(1)
    finally:
        bar.close()
    table = assemble(store, keys)
    paths = write_table(table, store.root)
    return SweepResult(table, len(cells), len(todo) + len(fresh),
                       len(cells) - len(todo) - len(fresh), paths,
                       time.perf_counter() - t0)


def assemble(store: CellStore, keys: Any) -> pd.DataFrame:
    """The tidy table of the given cells, in the given order (all must be finished)."""
    rows = [r for k in keys for r in store.load(k)["rows"]]
    df = pd.DataFrame(rows, columns=list(COLUMNS))
    return df.astype({"seed": "int64", "n": "int64", "value": "float64"})


def write_table(table: pd.DataFrame, root: str | os.PathLike[str]) -> list[pathlib.Path]:
    """``root/results.csv`` (and ``results.parquet`` when pyarrow is importable), atomically."""
    root = pathlib.Path(root)
    paths = [root / "results.csv"]
    try:
        import pyarrow  # noqa: F401
        paths.append(root / "results.parquet")
    except ImportError:
        pass
    with OutputGroup() as group:  # both tables change together or not at all
        # float_format repr-equivalent: the CSV round-trips every value exactly.
        group.text(paths[0], table.to_csv(index=False, float_format="%.17g"))
        if len(paths) > 1:
            with group.open(paths[1], "wb") as f:
                table.to_parquet(f, index=False)
    return paths


def read_table(root: str | os.PathLike[str]) -> pd.DataFrame:
    """Read ``root/results.csv`` back with the table's dtypes."""
    return pd.read_csv(pathlib.Path(root) / "results.csv",
                       dtype={"env": str, "method": str, "seed": "int64", "n": "int64",
                              "metric": str, "value": "float64"}, keep_default_na=False,
                       na_values=["NaN", "nan"])


def _check_rows(rows: list[dict], cell: Cell) -> list:
    if not isinstance(rows, list) or not all(isinstance(r, dict) and set(COLUMNS) <= set(r)
                                             for r in rows):
        raise ValueError(f"cell_fn: must return a list of dicts with keys {COLUMNS}; got "
                         f"{type(rows).__name__} for cell {cell.config()}")
    return [{k: r[k] for k in COLUMNS} for r in rows]


def _timed(cell_fn: CellFn, env: Any, method: dict, seed: Any,
           budgets: Iterable[int]) -> tuple[list[dict], float]:
    t0 = time.perf_counter()
    try:  # copies: the configs are shared between cells, and a cell may mutate its arguments
        rows = cell_fn(copy.deepcopy(env), copy.deepcopy(method), seed, list(budgets))
    except Exception as exc:  # the note survives pickling back from a worker
        exc.add_note(f"in sweep cell: env={env} method={method} seed={seed}")
        raise
    return rows, time.perf_counter() - t0


def _pinned(i: int, cell_fn: CellFn, env: Any, method: dict, seed: Any,
            budgets: Iterable[int]) -> tuple:
    """Run in a worker: BLAS on one thread, so that workers do not oversubscribe the cores."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        return (i, *_timed(cell_fn, env, method, seed, budgets))


def _run_here(cell_fn: CellFn, cells: list, todo: list[int]):
    for i in todo:
        c = cells[i]
        yield (i, *_timed(cell_fn, c.env, c.method, c.seed, c.budgets))


def _run_pool(jobs: int, cell_fn: CellFn, cells: list, todo: list[int]):
    from joblib import Parallel, delayed, parallel_config

    with parallel_config(backend="loky", n_jobs=jobs, inner_max_num_threads=1):
        gen = Parallel(return_as="generator_unordered")(
            delayed(_pinned)(i, cell_fn, cells[i].env, cells[i].method, cells[i].seed,
                             cells[i].budgets) for i in todo)
        yield from gen


def _run_dask(address: str, cell_fn: CellFn, cells: list, todo: list[int]):
    from distributed import Client, as_completed

    try:
        client = Client(address, timeout="20s")
    except (OSError, TimeoutError) as exc:
        raise ValueError(f"scheduler: cannot connect to {address!r} ({exc}); check the address "
                         "of a running dask scheduler") from None
    futures = {}
    try:
        for i in todo:
            c = cells[i]
            f = client.submit(_pinned, i, cell_fn, c.env, c.method, c.seed, c.budgets,
                              pure=False, key=f"adpo-cell-{c.key(cell_fn)}")
            futures[f] = i
        for f in as_completed(futures):
            yield f.result()
    finally:
        for f in futures:
            f.cancel()
        client.close()


class _NoBar:
    def update(self, n: int):
        pass

    def close(self):
        pass


def _bar(total: int, done: int, progress: bool | None, name: str):
    if progress is None:
        progress = sys.stderr.isatty()
    if not progress:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, initial=done, desc=name, unit="cell", file=sys.stderr,
                dynamic_ncols=True)
