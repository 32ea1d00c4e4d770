"""One experiment cell: (environment, method, seed) -> tidy metric rows at a grid of budgets.

Kinds (sim.runner.cell_kinds): a selector on an environment (:func:`run_cell`, and with the
stopping rule's statistic :func:`run_stop_cell`), a design solver on an environment's rows
(:func:`run_design_cell`), and a selector whose picks DPO-train a network
(:func:`run_dpo_train_cell`).

This is the unit of work of the sweep runner (:mod:`sim.runner`) and of the figure scripts.
The environment, and with it the labels, is a deterministic function of (env config, seed):
every method of a seed sees the same pre-drawn labels, so differences come from selection
alone (SMPyBandits' evaluator design).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from .data import PreferenceData
from .dpo import fit_dpo
from .envs import make_env
from .metrics import evaluate, max_design_variance
from .ranking import RankingData, fit_pl
from .ranking_select import ranking_logit_errors
from .selectors import LabelOracle, make_selector, method_options
from .splits import SPLIT_STREAM, Split, group_split, holdout_data, random_split
from .stopping import logit_sd_at
from .validation import positive_int, rng_for

#: Metrics recorded per budget (see sim.metrics.evaluate), plus wall time.
METRICS = ("max_logit_error", "mean_logit_error", "error_rate", "max_logit_error_beta",
           "mean_logit_error_beta", "theta_norm", "accuracy", "margin", "nll", "seconds")
#: Recorded too when the environment knows its generating theta_true (sim.metrics.evaluate).
TRUE_METRICS = ("max_logit_error_true", "mean_logit_error_true")
#: Facts of the environment draw (the pool's), the same at every n: the share of labels s_i = 1
#: and ||theta_star|| (and, with a holdout, the number of held-out rows ``heldout_N``).
ENV_FACTS = ("label_mean", "theta_star_norm")
#: With an environment's ``holdout``: the same metrics over the held-out rows, prefixed.
HELDOUT_PREFIX = "heldout_"


def _kappa_max(selector: Any, n: int) -> float | None:
    """max_{t <= n} kappa_t: Assumption 4's kappa as measured over the first n picks (the kappa
    Theorem 2's bound at n needs); None unless the selector records kappa (``record_kappa``)."""
    kappa = np.asarray(getattr(selector, "kappa_", ()), dtype=float)
    return float(kappa[:n].max()) if kappa.size else None


def _traces_theorem4(selector: Any) -> bool:
    """Whether a cell traces Theorem 4 along the run: the selector records kappa
    (``record_kappa``, Assumption 4's premise of Theorem 4) and the pool has a theta_star."""
    cfg = getattr(selector, "cfg", None)
    return bool(getattr(cfg, "record_kappa", False)) and selector.data.theta_star is not None


def _design_variance(selector: Any, n: int) -> float | None:
    """Theorem 4's left side after the first n picks, max_i phi_i^T Sigma_n^{-1} phi_i
    (:func:`sim.metrics.max_design_variance`, the selector's design ridge gamma)."""
    if not _traces_theorem4(selector):
        return None
    return max_design_variance(selector.data, selector.selected_[:n], selector.cfg.gamma)


def _design_variance_ceiling(selector: Any, n: int) -> float | None:
    """max_i ||phi_i||^2 / gamma: what max_design_variance can never exceed (Sigma_n >= gamma I),
    so a Theorem 4 bound at or above it checks nothing (theory.bounds.theorem4_ceiling)."""
    if not _traces_theorem4(selector):
        return None
    phi = selector.data.phi
    return float(np.einsum("ij,ij->i", phi, phi).max() / selector.cfg.gamma)


#: Metrics read from the selector after its first n picks: name -> (selector, n) -> value, or
#: None when the selector does not measure it (then no row is written).
SELECTOR_METRICS: dict[str, Callable[[Any, int], float | None]] = {
    "kappa_max": _kappa_max, "max_design_variance": _design_variance,
    "design_variance_ceiling": _design_variance_ceiling}


def _kappa_series(selector: Any) -> np.ndarray | None:
    """Assumption 4's kappa_t per pick t (the selector's ``kappa_``), None unless recorded."""
    kappa = np.asarray(getattr(selector, "kappa_", ()), dtype=float)
    return kappa if kappa.size else None


#: Per-round series read from the selector after the last budget: name -> selector -> (t,)
#: values of rounds 1..t, or None when it does not record them. A method table asks for them
#: by name (``series = ["kappa_t"]``); each is written as rows with ``n`` = the round
#: (1..max(budgets)): a per-round curve without a fit per round.
SELECTOR_SERIES: dict[str, Callable[[Any], np.ndarray | None]] = {"kappa_t": _kappa_series}


def series_names(value: Any, where: str = "method.series") -> list[str]:
    """The validated ``series`` of a method table: a list of distinct SELECTOR_SERIES names."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{where}: expected a list of names, e.g. [\"kappa_t\"]; got {value!r}")
    bad = [v for v in value if v not in SELECTOR_SERIES]
    if bad or len(set(value)) != len(value):
        raise ValueError(f"{where}: {bad[0] if bad else 'duplicates'!r} - list each series "
                         f"once, from: {', '.join(SELECTOR_SERIES)}")
    return list(value)


#: Metrics of theta_hat_n computed only in the cells that ask for them (``run_cell``'s
#: ``fit_metrics``; each costs more than the paper's metrics): name -> (pool data, labelled rows
#: idx (n,), theta_hat_n (d,)) -> value. ``max_logit_sd``: the stopping rule's statistic
#: max_i beta sqrt(phi_i^T H^{-1} phi_i), H = gamma I + grad^2 L(theta_hat_n; S_n), gamma = 1
#: (:mod:`sim.stopping`; O(N d^2) per budget).
FIT_METRICS: dict[str, Callable[[PreferenceData, np.ndarray, np.ndarray], float]] = {
    "max_logit_sd": lambda data, idx, theta: logit_sd_at(data, idx, theta)}

#: Stream tag of a cell's selector: ``rng_for(seed, SELECTOR_STREAM)``.
SELECTOR_STREAM = 0x5E1EC7
#: Stream tag of the fresh labels of repeated picks (designs with replacement).
LABEL_STREAM = 0x1ABE1


def label(cfg: dict, key: str) -> str:
    """A readable label: cfg['label'] if given, else key=value pairs in canonical order."""
    if "label" in cfg:
        return str(cfg["label"])
    name = cfg.get("kind", cfg.get("name", "?"))
    rest = {k: v for k, v in sorted(cfg.items()) if k not in ("kind", "name", "label")}
    return name if not rest else f"{name}({', '.join(f'{k}={v}' for k, v in rest.items())})"


def build_env(env: dict, seed: int) -> PreferenceData:
    """The environment of a cell: ``make_env(kind, seed=seed, **rest)``, where the table's own
    ``seed``, when given, replaces the cell's (one fixed draw for every cell; only cell kinds
    with ``sim.runner.CellKind.env_seed`` accept the key in a sweep)."""
    env = dict(env)
    env.pop("label", None)
    env.pop("holdout", None)
    seed = env.pop("seed", seed)
    kind = env.pop("kind", None)
    if kind is None:
        from .registry import ENVS
        raise ValueError(f"env.kind: missing; choose one of {', '.join(ENVS.names())}")
    return make_env(kind, seed=seed, **env)


def run_cell(env: dict, method: dict, seed: int, budgets: Iterable[int], *,
             data: PreferenceData | RankingData | None = None,
             fit_metrics: Iterable[str] = ()) -> list[dict]:
    """Run one method on one environment draw up to max(budgets); tidy rows per budget.

    Args:
        env: {"kind": a kind of sim.registry.ENVS, **its options, "label": optional,
            "holdout": optional fraction in (0, 1) or count}. With ``holdout``, that part of the
            N rows, drawn afresh for each seed (:mod:`sim.splits`; whole prompts when the
            rows have a prompt ``group``, so held-out prompts are unseen prompts), is never available for
            selection; theta_star is refitted on the rest (the pool), the paper's metrics are
            over the pool and the same metrics over the held-out rows are recorded as
            ``heldout_<metric>`` (logit errors and error rate against the pool's theta_star;
            accuracy, margin, NLL with the held-out labels).
        method: {"name": a sim.selectors method, **selector kwargs, "label": optional,
            "series": optional list of SELECTOR_SERIES names, "fit": optional bool (default
            true; false: no theta_hat_n is fitted, so only the environment facts, ``seconds``
            and the selector's own metrics and series are recorded: for cells read only for
            what the selector measures, e.g. kappa)}. Its
            ``fit_ridge``/``radius`` default to the environment's, so theta_hat_n and theta_star
            are fitted alike. ``replace = true`` (designs with replacement): a pair may be
            picked again; its first label is the logged s_i, each repeat a fresh draw
            (:meth:`sim.data.PreferenceData.draw_labels`, stream ``LABEL_STREAM`` of the seed),
            the method sees exactly these labels and theta_hat_n is fitted on all n of them
            (a pair picked r times counts r times); budgets may then exceed N.
        seed: seeds the environment (and labels) and, independently, the selector.
        budgets: increasing sample sizes n at which theta_hat_n is fitted and evaluated.
        data: a pre-built environment (skips ``build_env``; it must equal build_env(env, seed)).
        fit_metrics: names in FIT_METRICS to record at every budget as well.

    A ranking pool (env kind ``ranking``, :class:`sim.ranking.RankingData`) takes the ranking
    methods (``rank-*``): n is the number of ranked prompts, theta_hat_n the Plackett-Luce MLE
    on their logged rankings (ridge ``fit_ridge``), and the metrics the K-wise eq. 7 over every
    response pair of every prompt (:func:`sim.ranking_select.ranking_logit_errors`):
    ``max_logit_error``, ``mean_logit_error``, ``theta_star_norm`` and ``seconds``.

    Returns: rows {"env", "method", "seed", "n", "metric", "value"}; metrics in METRICS (and
    ENV_FACTS, ``heldout_*`` with a holdout, and the SELECTOR_METRICS the selector measures:
    with ``record_kappa = true``, ``kappa_max`` and, given a theta_star, Theorem 4's
    ``max_design_variance`` and its ``design_variance_ceiling``; and ``fit_metrics``), where
    ``seconds`` is the cumulative selection wall time up to n. The SELECTOR_SERIES named by the
    method's ``series`` add one row per round t (``n`` = t, every t <= max(budgets)): ``kappa_t``
    (needs ``record_kappa = true``).
    """
    seed = int(seed)
    budgets = sorted({positive_int(n, "budgets") for n in budgets})
    fit_metrics = list(fit_metrics)
    bad = sorted(set(fit_metrics) - set(FIT_METRICS))
    if bad:
        raise ValueError(f"fit_metrics: unknown {bad}; choose from {sorted(FIT_METRICS)}")
    if data is None:
        data = build_env(env, seed)
    if isinstance(data, RankingData):
        if env.get("holdout") is not None or fit_metrics:
            raise ValueError("env.holdout / fit_metrics: not available on a ranking pool")
        return _ranking_rows(data, env, method, seed, budgets)
    test = None
    if env.get("holdout") is not None:
        data, test = holdout_data(data, holdout_split(data, env["holdout"], seed))
    replace = bool(method.get("replace", False))
    if replace and data.theta_true is None:
        raise ValueError("method.replace: repeated picks need fresh labels drawn from "
                         "theta_true, which this environment lacks")
    if budgets[-1] > data.N and not replace:
        raise ValueError(f"budgets: largest budget {budgets[-1]} exceeds the {data.N} rows "
                         "available for selection")
    if data.s is None:
        raise ValueError("s: the environment has no labels to fit on")
    method = dict(method)
    wanted = series_names(method.pop("series", []))
    fit = fit_flag(method.pop("fit", True))
    if not fit and fit_metrics:
        raise ValueError(f"fit_metrics: {fit_metrics} are metrics of theta_hat_n, which a "
                         "method with fit = false does not fit; drop one of them")
    selector, (fit_ridge, radius), (e_label, m_label) = _cell_selector(data, env, method, seed)
    facts = {"label_mean": float(np.mean(data.s))}
    if data.theta_star is not None:
        facts["theta_star_norm"] = float(np.linalg.norm(data.theta_star))
    if test is not None:
        facts[HELDOUT_PREFIX + "N"] = test.N
    label_rng = rng_for(seed, LABEL_STREAM)
    # One oracle labels every pick once: the method's own calls (online methods), then the
    # picks it did not ask labels for; without replacement it reveals exactly data.s[idx].
    oracle = LabelOracle(data.s, draw=(lambda r: data.draw_labels(r, label_rng)) if replace
                         else None)
    rows: list[dict] = []
    chosen: list[int] = []
    elapsed, theta = 0.0, None
    for n in budgets:
        t0 = time.perf_counter()
        chosen.extend(selector.select(n - len(chosen), labels=oracle).tolist())
        elapsed += time.perf_counter() - t0
        idx = np.asarray(chosen)
        if len(oracle.revealed) < idx.size:
            oracle(idx[len(oracle.revealed):])
        metrics: dict[str, float] = {}
        if fit:
            s = np.asarray(oracle.labels, dtype=np.int8)
            theta = fit_dpo(data.phi[idx], data.b[idx], data.beta, s, fit_ridge=fit_ridge,
                            radius=radius, theta0=theta).theta
            metrics.update(evaluate(data, theta))
            if test is not None:
                metrics.update({HELDOUT_PREFIX + k: v for k, v in evaluate(test, theta).items()})
        metrics.update(facts, seconds=elapsed)
        if fit_metrics:  # then fit is true (checked above)
            assert theta is not None
            metrics.update({k: FIT_METRICS[k](data, idx, theta) for k in fit_metrics})
        rows.extend(_rows(e_label, m_label, seed, n, metrics, selector))
    for key in wanted:
        values = SELECTOR_SERIES[key](selector)
        if values is None:
            raise ValueError(f"method.series: {method.get('name')!r} did not record {key!r} "
                             "(kappa_t needs record_kappa = true)")
        rows.extend({"env": e_label, "method": m_label, "seed": seed, "n": t, "metric": key,
                     "value": float(v)} for t, v in enumerate(values[:budgets[-1]], start=1))
    return rows


def holdout_split(data: PreferenceData, holdout: Any, seed: int) -> Split:
    """The split of an environment's ``holdout`` for the cell ``seed`` (:mod:`sim.splits`, from
    ``SeedSequence([seed, SPLIT_STREAM])``): whole prompts when the rows have a ``group``."""
    split_seed = np.random.SeedSequence([seed, SPLIT_STREAM])
    return (random_split(data.N, holdout, split_seed) if data.group is None
            else group_split(data.group, holdout, split_seed))


def fit_flag(value: Any, where: str = "method.fit") -> bool:
    """The validated ``fit`` key of a method table: true (default) or false."""
    if not isinstance(value, bool):
        raise ValueError(f"{where}: expected true or false, got {value!r}")
    return value


def run_stop_cell(env: dict, method: dict, seed: int, budgets: Iterable[int], *,
                  data: PreferenceData | None = None) -> list[dict]:
    """:func:`run_cell` that also records ``max_logit_sd`` at every budget: the stopping rule's
    trace (:func:`sim.stopping.select_until` checks at the same n with the same picks stops at
    the first n whose value is below its target). The runner's cell kind ``stop``
    (a sweep's ``cell = "stop"``), so its cells are cached apart."""
    return run_cell(env, method, seed, budgets, data=data, fit_metrics=("max_logit_sd",))


def _cell_selector(data: PreferenceData | RankingData, env: dict, method: dict,
                   seed: int, *, selector_seed: int | None = None
                   ) -> tuple[Any, tuple[float, float | None], tuple[str, str]]:
    """(selector, (fit_ridge, radius) of the evaluation fits, (env label, method label)).

    The method's ``fit_ridge``/``radius`` default to the environment's; the selector is seeded
    by ``rng_for(seed, SELECTOR_STREAM)``, independent of the environment's stream, or by
    ``selector_seed`` when given."""
    method = dict(method)
    m_label, e_label = label(method, "name"), label(env, "kind")
    method.pop("label", None)
    name = method.pop("name", None)
    if name is None:
        raise ValueError("method.name: missing; e.g. 'adpo+' or 'uniform'")
    fit_ridge = method.setdefault("fit_ridge", data.info.get("fit_ridge", 1e-3))
    radius = method.setdefault("radius", data.info.get("radius"))
    sel_rng = rng_for(seed, SELECTOR_STREAM) if selector_seed is None else selector_seed
    # fit_ridge/radius also serve the evaluation fits; the selector gets them only if it takes
    # them (uniform, APO, ... fit nothing); other unknown options are still refused.
    given = {k: v for k, v in method.items() if k not in ("fit_ridge", "radius")}
    selector = make_selector(name, data, seed=sel_rng, **given,  # type: ignore[arg-type]
                             **method_options(name, {"fit_ridge": fit_ridge, "radius": radius}))
    return selector, (fit_ridge, radius), (e_label, m_label)


def _rows(e_label: str, m_label: str, seed: int, n: int, metrics: dict,
          selector: Any) -> list[dict]:
    """The tidy rows of one budget: ``metrics`` plus the SELECTOR_METRICS the selector measures."""
    for key, read in SELECTOR_METRICS.items():
        value = read(selector, n)
        if value is not None:
            metrics[key] = value
    return [{"env": e_label, "method": m_label, "seed": seed, "n": n, "metric": k,
             "value": float(v)} for k, v in metrics.items()]


def _ranking_rows(data: RankingData, env: dict, method: dict, seed: int,
                  budgets: list[int]) -> list[dict]:
    """run_cell on a ranking pool (see there): prompts picked by a ``rank-*`` method, each told
    its logged ranking as it is picked; the PL MLE on the first n (no warm start)."""
    if budgets[-1] > data.M:
        raise ValueError(f"budgets: largest budget {budgets[-1]} exceeds the {data.M} prompts "
                         "of the ranking pool")
    if data.rankings is None or data.theta_star is None:
        raise ValueError("data: a ranking cell needs logged rankings and theta_star")
    selector, (fit_ridge, _), (e_label, m_label) = _cell_selector(data, env, method, seed)
    rows: list[dict] = []
    chosen: list[int] = []
    elapsed = 0.0
    for n in budgets:
        t0 = time.perf_counter()
        chosen.extend(selector.select(n - len(chosen), rankings=data.rankings).tolist())
        elapsed += time.perf_counter() - t0
        idx = np.asarray(chosen)
        theta = fit_pl(data.psi[idx], data.b[idx], data.beta, data.rankings[idx],
                       fit_ridge=fit_ridge).theta
        mx, mean = ranking_logit_errors(data, theta, data.theta_star)
        metrics = {"max_logit_error": mx, "mean_logit_error": mean,
                   "theta_star_norm": float(np.linalg.norm(data.theta_star)), "seconds": elapsed}
        rows.extend(_rows(e_label, m_label, seed, n, metrics, selector))
    return rows


# --------------------------------------------------------------------------- design cells
#: Stream tag of a design cell's solver seed (random subsets, visiting orders).
DESIGN_STREAM = 0xDE5165
#: Keys of a design ``[[methods]]`` table besides the solver's options
#: (``sim.design.solvers.DECLARED_OPTIONS``).
DESIGN_KEYS = ("name", "label", "round", "repeats", "max_N", "max_d")
#: Metrics a design cell records at each budget n (those that apply; see run_design_cell).
DESIGN_METRICS = ("logdet", "relaxed_logdet", "certificate", "seconds")


def design_config(method: dict, where: str = "method") -> tuple[Any, Any, dict]:
    """(solver entry, validated SolveOptions, cell keys) of a design ``[[methods]]`` table:
    ``name`` a solver of ``sim.design.solvers.SOLVERS``, its options, and the cell's keys
    ``round`` (bool, relaxed solvers), ``repeats`` (int >= 3), ``max_N`` / ``max_d`` (ints >= 1).
    Unknown solvers and options are refused with the valid ones listed (ValueError naming
    ``where.key``)."""
    from .design.solvers import SOLVERS, solve_options

    entry = SOLVERS.entry_at(method.get("name"), f"{where}.name")
    keys = {k: method[k] for k in DESIGN_KEYS[2:] if k in method}
    try:
        options = solve_options(entry.name, {k: v for k, v in method.items()
                                             if k not in DESIGN_KEYS})
        if "round" in keys:
            if not isinstance(keys["round"], bool):
                raise ValueError(f"round: true or false, got {keys['round']!r}")
            if keys["round"] and "relaxed" not in entry.tags:
                raise ValueError(f"round: rounds a relaxed design; {entry.name!r} is exact")
        if "repeats" in keys:
            keys["repeats"] = positive_int(keys["repeats"], "repeats", minimum=3)
        for k in ("max_N", "max_d"):
            if k in keys:
                keys[k] = positive_int(keys[k], k)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where} ({entry.name}).{exc}") from None
    return entry, options, keys


def design_measured(method: dict) -> bool:
    """Whether a design method's rows are measurements (``repeats``: a timing)."""
    return method.get("repeats") is not None


def run_design_cell(env: dict, method: dict, seed: int, budgets: Iterable[int], *,
                    data: PreferenceData | None = None) -> list[dict]:
    """One design solver on the rows of one environment draw, at each budget n.

    Args:
        env: an environment table as in :func:`run_cell` (no ``holdout``); its phi (N, d) are
            the pool V, unweighted.
        method: {"name": a solver of sim.design.solvers.SOLVERS, **its options, "label",
            "round", "repeats", "max_N", "max_d"} (:func:`design_config`). The solver's seed
            is drawn from ``rng_for(seed, DESIGN_STREAM)``, independent of the env's stream.
        seed: seeds the environment and, independently, the solver.
        budgets: the design sizes n (<= N).
        data: a pre-built environment (skips ``build_env``).

    Rows (metric at n), paper eq. 10's log det:
        exact solvers, solved afresh for each n: ``logdet`` = log det(gamma I + sum_{i in S} v_i
        v_i^T) of its n picks S (gamma its option);
        relaxed solvers, solved once: ``relaxed_logdet`` = log det M(pi) and ``certificate`` =
        its Kiefer-Wolfowitz bound d / max_i v_i^T M(pi)^{-1} v_i (the same at every n), and
        with ``round = true`` ``logdet`` of the efficient rounding of pi to n rows
        (sim.design.rounding.round_design, then exchange);
        with ``repeats``: ``seconds`` = the solve's wall time by the timing rule
        (sim.timing.median_time: a warm-up, then the median of ``repeats``; the design is the
        last call's). Without it no time is recorded: the store keeps results, not timings.
        No rows at all when the pool has more than ``max_N`` rows or ``max_d`` columns.
        D-efficiency against the relaxed optimum: :func:`d_efficiency`.
    """
    from .design.rounding import round_design
    from .linalg import subset_logdet
    from .timing import median_time

    seed = int(seed)
    budgets = sorted({positive_int(n, "budgets") for n in budgets})
    entry, options, keys = design_config(method)
    if env.get("holdout") is not None:
        raise ValueError("env.holdout: a design cell uses every row; drop holdout")
    if data is None:
        data = build_env(env, seed)
    V = np.asarray(data.phi, dtype=np.float64)
    N, d = V.shape
    if N > keys.get("max_N", N) or d > keys.get("max_d", d):
        return []
    if budgets[-1] > N:
        raise ValueError(f"budgets: largest budget {budgets[-1]} exceeds the {N} rows")
    solver_seed = int(rng_for(seed, DESIGN_STREAM).integers(2**63 - 1))
    repeats = keys.get("repeats")

    def solve(n: int | None) -> tuple[Any, dict]:
        opts = dataclasses.replace(options, n=n, seed=solver_seed)
        if repeats is None:
            return entry.factory(V, None, opts), {}
        t = median_time(entry.factory, V, None, opts, repeat=repeats)
        return t.result, {"seconds": t.seconds}

    per_n: list[tuple[int, dict]] = []
    if "relaxed" in entry.tags:
        res, timing = solve(None)
        for n in budgets:
            m = {"relaxed_logdet": res.logdet, "certificate": res.efficiency, **timing}
            if keys.get("round"):
                rounded = round_design(V, res.pi, n, gamma=options.gamma).picks()
                m["logdet"] = subset_logdet(V, rounded, options.gamma)
            per_n.append((n, m))
    else:
        for n in budgets:
            res, timing = solve(n)
            per_n.append((n, {"logdet": subset_logdet(V, res.picks(), options.gamma),
                              **timing}))
    e_label, m_label = label(env, "kind"), label(method, "name")
    return [{"env": e_label, "method": m_label, "seed": seed, "n": n, "metric": k,
             "value": float(v)} for n, m in per_n for k, v in m.items()]


def d_efficiency(logdet: Any, relaxed_logdet: Any, n: Any, d: int) -> np.ndarray:
    """D-efficiency (det sum_S v v^T / det(n M*))^(1/d) of an n-row design against the relaxed
    optimum M* (log dets as run_design_cell records them): 1 bounds every exact design."""
    return np.exp((np.asarray(logdet) - d * np.log(n) - np.asarray(relaxed_logdet)) / d)


# --------------------------------------------------------------------------- DPO training cells
#: Keys of a ``dpo_train`` cell's ``env.train`` table: the training-cache file
#: (:func:`sim.llm_train.save_cache`, whose pairs are the env file's rows) and the DPO training
#: settings (as in :class:`sim.llm_train.TrainConfig`).
TRAIN_KEYS = ("cache", "steps", "lr", "batch_size")
#: What a ``dpo_train`` cell scores, each for the trained network (``net_``) and the log-linear
#: fit (``loglinear_``) on the held-out pairs (:func:`sim.llm_train.margin_metrics`).
PAIR_METRICS = ("accuracy", "margin", "nll", "reward_agreement")


def dpo_train_config(env: dict, where: str = "env") -> dict:
    """The validated ``train`` table of a ``dpo_train`` cell's environment (keys TRAIN_KEYS,
    all required), after checking that the environment is a whole ``file`` env with a
    ``holdout``. ``ValueError`` naming ``where.key``."""
    from .llm_train import TrainConfig

    if env.get("kind") != "file" or env.get("rows") is not None:
        raise ValueError(f"{where}.kind: a dpo_train cell needs a 'file' env of every row (its "
                         f"rows are the training cache's pairs), got kind {env.get('kind')!r}"
                         + (" with rows" if env.get("rows") is not None else ""))
    if env.get("holdout") is None:
        raise ValueError(f"{where}.holdout: missing; a dpo_train cell scores held-out pairs, "
                         "e.g. holdout = 0.3")
    train = env.get("train")
    if not isinstance(train, dict):
        raise ValueError(f"{where}.train: missing; add a table with keys {', '.join(TRAIN_KEYS)}")
    bad = sorted(set(train) - set(TRAIN_KEYS))
    missing = [k for k in TRAIN_KEYS if k not in train]
    if bad or missing:
        raise ValueError(f"{where}.train.{(bad or missing)[0]}: "
                         f"{'unknown key' if bad else 'missing'}; the keys are "
                         f"{', '.join(TRAIN_KEYS)}")
    cache = train["cache"]
    if not isinstance(cache, str) or not cache.endswith(".npz") or not os.path.isfile(cache):
        raise ValueError(f"{where}.train.cache: expected an existing training-cache .npz "
                         f"(sim.llm_train.save_cache), got {cache!r}")
    try:
        TrainConfig(steps=train["steps"], lr=train["lr"],
                    batch_size=train["batch_size"]).validate()
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}.train.{exc}") from None
    return dict(train)


def dpo_train_method(method: dict, where: str = "method") -> dict:
    """``method`` unless it asks for what a ``dpo_train`` cell does not record (a selector
    ``series``) or do (``replace``: picks are trained on with their logged labels)."""
    for k in ("series", "replace"):
        if k in method:
            raise ValueError(f"{where}.{k}: not available in dpo_train cells; drop it")
    return method


def run_dpo_train_cell(env: dict, method: dict, seed: int,
                       budgets: Iterable[int]) -> list[dict]:
    """Select with the log-linear features, then DPO-train the network on each budget's picks
    and judge both on held-out pairs (the runner's cell kind ``dpo_train``; paper sec. 6.2's
    "an LLM policy is then optimized on S_n with DPO").

    Args:
        env: a ``file`` env (:func:`sim.envs.file_env`, every row) with a ``holdout`` and a
            ``train`` table (:func:`dpo_train_config`): ``cache``, a training-cache file whose
            pair i is the file's row i oriented as (chosen, rejected) by the row's label, and
            ``steps``, ``lr``, ``batch_size`` of the DPO training.
        method: a ``[[methods]]`` table as in :func:`run_cell` (no ``series``, no ``replace``).
        seed: draws the held-out prompts (:func:`holdout_split`), seeds the selector (the seed
            itself, not ``rng_for(seed, SELECTOR_STREAM)``: the stream the llm_dpo figure's
            numbers were drawn with) and the training batches (``TrainConfig.seed``).
        budgets: the training-set sizes n; the method selects max(budgets) pairs of the pool
            at once and each n takes the first n picks.

    For each n: (i) the log-linear DPO fit (eq. 9; the method's ``fit_ridge``/``radius``, by
    default the env's, no warm start) on the first n picks, whose held-out logit of (chosen -
    rejected) is ``beta (phi^T theta - b)`` signed by the label; (ii) the network's top blocks
    trained afresh on the same n pairs (:func:`sim.llm_train.train_and_score`, ``steps`` AdamW
    steps of ``batch_size`` pairs, lr ``lr``, beta the file's), whose held-out margins are its
    implicit rewards. The network and the cache are loaded once per process
    (:func:`sim.llm_train.open_cache`); training runs on the cache's device and torch threads.

    Returns rows {"env", "method", "seed", "n", "metric", "value"}: ``net_<m>`` and
    ``loglinear_<m>`` for m in PAIR_METRICS (``reward_agreement`` when the cache has the
    generating rewards), ``corr`` and ``slope`` (Pearson correlation and least-squares slope of
    the network margins on the log-linear logits; NaN when either is constant),
    ``train_loss_first``/``train_loss_last``, ``n_pool`` and ``n_heldout``.
    """
    from .design.torch_greedy import torch_threads
    from .llm_train import TrainConfig, margin_metrics, open_cache, train_and_score

    seed = int(seed)
    budgets = sorted({positive_int(n, "budgets") for n in budgets})
    train = dpo_train_config(env)
    method = dpo_train_method(method)
    lm, cache, info = open_cache(train["cache"])
    data = build_env({k: v for k, v in env.items() if k != "train"}, seed)
    if data.N != cache.n_pairs or data.s is None:
        raise ValueError(f"env.train.cache: {cache.n_pairs} pairs, but the env file has "
                         f"{data.N} rows{'' if data.s is not None else ' and no labels'}; "
                         "use the cache written with that file")
    split = holdout_split(data, env["holdout"], seed)
    pool, test = holdout_data(data, split)
    if budgets[-1] > pool.N:
        raise ValueError(f"budgets: largest budget {budgets[-1]} exceeds the {pool.N} pairs "
                         "of the pool")
    selector, (fit_ridge, radius), (e_label, m_label) = _cell_selector(
        pool, env, method, seed, selector_seed=seed)
    picks = split.train[selector.select(budgets[-1])]
    sign = np.where(test.s == 1, 1.0, -1.0)  # +1 where the row's y_1 is the chosen response
    true_diff = None if info.reward is None else \
        (info.reward[0::2] - info.reward[1::2])[split.test]
    cfg = TrainConfig(model=info.model, beta=data.beta, lr=train["lr"], steps=train["steps"],
                      batch_size=train["batch_size"], seed=seed)
    rows: list[dict] = []
    with torch_threads(info.threads):
        for n in budgets:
            idx = picks[:n]
            theta = fit_dpo(data.phi[idx], data.b[idx], data.beta, data.s[idx],
                            fit_ridge=fit_ridge, radius=radius).theta
            z = sign * data.beta * (test.phi @ theta - test.b)  # log-linear (chosen - rejected)
            losses, m = train_and_score(lm, cache, idx, split.test, cfg)
            metrics: dict[str, float] = {}
            for who, margins in (("net", m), ("loglinear", z)):
                scored = margin_metrics(margins, true_diff)
                metrics.update({f"{who}_{k}": scored[k] for k in PAIR_METRICS if k in scored})
            varies = np.std(m) > 0 and np.std(z) > 0
            metrics["corr"] = float(np.corrcoef(z, m)[0, 1]) if varies else float("nan")
            metrics["slope"] = float(np.polyfit(z, m, 1)[0]) if np.std(z) > 0 else float("nan")
            metrics.update(train_loss_first=losses[0], train_loss_last=losses[-1],
                           n_pool=pool.N, n_heldout=test.N)
            rows.extend(_rows(e_label, m_label, seed, n, metrics, selector))
    return rows
