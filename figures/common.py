"""Shared plumbing of the figure scripts: configuration, cells, caching, styling, bands, sidecars.

Every figure script ``fig_<name>.py`` reads ``figures/fig_<name>.toml``, whose sections
``[tiny]``, ``[default]`` and ``[paper]`` give the sizes, and writes ``<out_dir>/<name>.png``,
``.pdf`` and a ``.json`` sidecar stating the environment, seeds, scale and the numbers the figure
shows. Two kinds of figures share this code:

* **Selection figures** (methods x environments x seeds x budgets) declare their cells in the
  runner's TOML schema (``sim.runner``): the top level of the TOML holds the keys shared by every
  scale (e.g. ``[[methods]]``), each scale section the rest (``seeds``, ``n_min``/``n_max`` or
  ``budgets``, ``[[<scale>.env]]``), and a ``[figure]`` table the plot options. The merged
  section is validated by ``sim.runner.parse_sweep`` (unknown keys refused, every env and method
  checked) and the ``[figure]`` keys against the script's declared options
  (:func:`load_sweep_config`); cells run and are cached by the runner (:func:`run_sweep`).
* **Theory and design figures** compute their own arrays: :func:`load_config` merges the
  scale section over the top level (``keys=`` refuses unknown and missing keys) and
  :func:`cached` keys their results by config and code fingerprint.

Every cache key comes from ``sim.fingerprint.cache_key``; every file is written atomically;
every method's colour and marker come from :func:`method_style`.
"""

from __future__ import annotations

import json
import os
import pathlib
import tomllib

import numpy as np
import pandas as pd
import scipy.stats

from sim.io import OutputGroup, atomic_savez

HERE = pathlib.Path(__file__).parent
THEORY_DIR = HERE.parent / "theory"
CACHE_ROOT = pathlib.Path("results") / "figures"
SCALES = ("tiny", "default", "paper")

#: What theta_hat saw, stated wherever the method appears in a legend (issue 10: ADPO+ fits
#: theta_hat on the logged labels of the whole pool, which define theta_star in simulations).
SEEN = {"adpo+": "θ̂ on all logged labels of the pool",
        "adpo+fair": "θ̂ on an independent label draw"}
METRIC_LABELS = {"max_logit_error": "max logit error", "mean_logit_error": "mean logit error",
                 "error_rate": "error rate", "accuracy": "accuracy", "margin": "margin",
                 "nll": "negative log-likelihood"}
HELDOUT = "heldout_"  # sim.experiment.HELDOUT_PREFIX: the metric over pairs never selectable
METRIC_LABELS.update({HELDOUT + k: f"held-out {v}" for k, v in list(METRIC_LABELS.items())})


def _read_toml(name: str, scale: str) -> dict:
    if scale not in SCALES:
        raise ValueError(f"scale: one of {SCALES}, got {scale!r}")
    path = HERE / f"fig_{name}.toml"
    try:
        with open(path, "rb") as f:
            cfg = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"figures/fig_{name}.toml: not readable TOML ({exc})") from None
    if not isinstance(cfg.get(scale), dict):
        raise ValueError(f"scale: figures/fig_{name}.toml has no [{scale}] section")
    return cfg


def load_config(name: str, scale: str, keys=None) -> dict:
    """The ``[scale]`` section of ``figures/fig_<name>.toml`` merged over its top level.

    With ``keys`` (the names the script reads), unknown and missing keys raise ValueError."""
    cfg = _read_toml(name, scale)
    base = {k: v for k, v in cfg.items() if k not in SCALES}
    base.update(cfg[scale])
    if keys is not None:
        where = f"figures/fig_{name}.toml [{scale}]"
        bad = sorted(set(base) - set(keys))
        if bad:
            raise ValueError(f"{where}: unknown key(s) {bad}; allowed: {sorted(keys)}")
        missing = sorted(set(keys) - set(base))
        if missing:
            raise ValueError(f"{where}: missing key(s) {missing}")
    base["scale"] = scale
    return base


def load_sweep_config(name: str, scale: str, options: dict, resolve=None):
    """(sweep, figure options) of a selection figure's TOML at ``scale``.

    The sweep keys (top level merged with the scale section, minus ``[figure]``) are validated
    and expanded by ``sim.runner.parse_sweep``; the ``[figure]`` table (top level, then the scale
    section's ``[<scale>.figure]``) may hold only the keys of ``options``, whose values are the
    defaults. ``resolve(figure options) -> {"@name": value}``, when given, runs before the sweep
    is parsed, and each env option (or option of an env's sub-table) whose value is one of its
    keys gets that value (e.g. the path of a data file the figure computes first). Returns ``(sim.runner.Sweep, dict)``.
    """
    from sim.runner import parse_sweep

    cfg = _read_toml(name, scale)
    where = f"figures/fig_{name}.toml"
    opts = _figure_options(cfg, scale, options, where)
    sweep_cfg = {k: v for k, v in cfg.items() if k not in SCALES and k != "figure"}
    sweep_cfg.update({k: v for k, v in cfg[scale].items() if k != "figure"})
    sweep_cfg.setdefault("name", name)
    if resolve is not None:
        subs = resolve(opts)
        envs = sweep_cfg.get("env")
        for e in envs if isinstance(envs, list) else [envs]:
            if isinstance(e, dict):
                _substitute(e, subs)
    try:
        sweep = parse_sweep(sweep_cfg)
    except ValueError as exc:
        raise ValueError(f"{where} [{scale}]: {exc}") from None
    return sweep, opts


def _substitute(table: dict, subs: dict) -> None:
    """Replace, in place, each string value of ``table`` or of its sub-tables (e.g. a
    ``dpo_train`` env's ``train``) that is a key of ``subs`` by its value."""
    for k, v in table.items():
        if isinstance(v, dict):
            _substitute(v, subs)
        elif isinstance(v, str) and v in subs:
            table[k] = subs[v]


def load_panel_sweeps(name: str, scale: str, panels, options: dict):
    """({panel: sweep}, figure options) of a figure whose panels are separate sweeps.

    Besides ``[figure]`` (as in :func:`load_sweep_config`), the TOML's top level and each scale
    section hold keys shared by every panel (e.g. ``seeds``) and one table per panel
    (``[ranking]``, ``[[ranking.methods]]``, ``[tiny.ranking]``, ``[[tiny.ranking.env]]``). A
    panel's sweep is, key by key, the top level's shared keys, overridden by its top-level table,
    then by the scale's shared keys, then by the scale's table for the panel; each is validated
    by ``sim.runner.parse_sweep`` (unknown keys refused, every env and method checked) and named
    ``<name>-<panel>``. Returns ``({panel: sim.runner.Sweep}, dict)``.
    """
    from sim.runner import parse_sweep

    cfg = _read_toml(name, scale)
    where = f"figures/fig_{name}.toml"
    opts = _figure_options(cfg, scale, options, where)
    top = {k: v for k, v in cfg.items() if k not in SCALES}
    sweeps = {}
    for panel in panels:
        sweep_cfg: dict = {"name": f"{name}-{panel}"}
        for section in (top, cfg[scale]):
            sweep_cfg.update({k: v for k, v in section.items()
                              if k not in panels and k != "figure"})
            part = section.get(panel, {})
            if not isinstance(part, dict):
                raise ValueError(f"{where} [{scale}]: {panel}: expected a table of sweep keys")
            sweep_cfg.update(part)
        try:
            sweeps[panel] = parse_sweep(sweep_cfg)
        except ValueError as exc:
            raise ValueError(f"{where} [{scale}] {panel}: {exc}") from None
    return sweeps, opts


def _figure_options(cfg: dict, scale: str, options: dict, where: str) -> dict:
    """``options`` (the defaults) updated by the TOML's ``[figure]`` and ``[<scale>.figure]``;
    an unknown key raises ValueError naming the allowed ones."""
    opts = dict(options)
    for part in (cfg.get("figure", {}), cfg[scale].get("figure", {})):
        bad = sorted(set(part) - set(options))
        if bad:
            raise ValueError(f"{where} [figure]: unknown key(s) {bad}; allowed: "
                             f"{sorted(options)}")
        opts.update(part)
    return opts


def method_style(label: str, registry=None) -> tuple[str, str]:
    """(colour, marker) of a method label such as 'adpo+' or 'adpo(n_candidates=256)', from the
    ``style`` its registration declares (``registry``: ``sim.registry.METHODS`` by default, or
    the design solvers' ``sim.design.solvers.SOLVERS``): the one place every figure gets its
    palette from (black dots for a method without a style, or an unknown name)."""
    if registry is None:
        from sim.registry import METHODS as registry
    name = method_name(label)
    style = registry.get(name).style if name in registry else {}
    return style.get("color", "black"), style.get("marker", ".")


def sweep_styles(sweep) -> dict[str, tuple[str, str]]:
    """{method label: (colour, marker)} of every method of a sweep, from the registration of
    its ``name`` whatever its label says (design sweeps: the solver table's styles)."""
    from sim.experiment import label

    registry = None
    if sweep.cell == "design":
        from sim.design.solvers import SOLVERS as registry
    return {label(m, "name"): method_style(m["name"], registry) for m in sweep.methods}


def log_log_panel(ax, *, xlabel: str, ylabel: str, title: str) -> None:
    """The theory figures' single panel: log-log axes, a 7-pt ``title`` (it states the setting,
    so it is long) and a 6-pt legend of the lines already drawn on ``ax``."""
    ax.set(xscale="log", yscale="log", xlabel=xlabel, ylabel=ylabel, title=title)
    ax.title.set_fontsize(7)
    ax.legend(fontsize=6)


def style():
    import matplotlib

    matplotlib.use("Agg")
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="paper")


def cpu_threads() -> int:
    """Threads a figure may use for its own (torch) work: 1 when ``python -m figures`` runs it
    beside other figures (``ADPO_FIGURE_THREADS``), else the machine's 2."""
    return int(os.environ.get("ADPO_FIGURE_THREADS", "2"))


def cache_dir(name: str) -> pathlib.Path:
    return CACHE_ROOT / name


def figure_code(name: str) -> str:
    """Fingerprint of the code behind a figure's own cache: every ``.py`` of ``sim/`` and
    ``theory/`` and the script ``figures/fig_<name>.py`` (sim.fingerprint explains the choice)."""
    from sim.fingerprint import SIM_DIR, code_fingerprint

    return code_fingerprint(HERE / f"fig_{name}.py", packages=(SIM_DIR, THEORY_DIR))


def cached(name: str, cfg: dict, compute, version: int = 1) -> dict:
    """``compute()`` -> dict of arrays, cached as ``results/figures/<name>/<key>.npz``.

    For figures whose expensive part is not a grid of runner cells. The key is
    :func:`sim.fingerprint.cache_key` of ``cfg`` and :func:`figure_code`, so a change to the
    library, to ``theory`` or to the figure script recomputes it (``version`` is kept for
    scripts that still pass it; the code fingerprint makes bumping it unnecessary). Files are
    read with allow_pickle=False.
    """
    from sim.fingerprint import cache_key

    key = cache_key({"figure": name, "config": cfg, "version": version},
                    code=figure_code(name))[:16]
    path = cache_dir(name) / f"{key}.npz"
    if path.exists():
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    out = {k: np.asarray(v) for k, v in compute().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_savez(path, **out)
    return out


def mean_band(values: np.ndarray, level: float = 0.95):
    """Mean and the half-width of a t-interval over seeds (0 with one seed)."""
    values = np.asarray(values, dtype=float)
    m = values.mean()
    if len(values) < 2:
        return m, 0.0
    return m, scipy.stats.t.ppf(0.5 + level / 2, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))


def summarize(df: pd.DataFrame, by=("env", "method", "n", "metric")) -> pd.DataFrame:
    """Mean, 95% half-width and seed count per group of a tidy results table."""
    rows = []
    for key, g in df.groupby(list(by), sort=True):
        m, h = mean_band(g["value"].to_numpy())
        rows.append((*key, m, h, len(g)))
    return pd.DataFrame(rows, columns=[*by, "mean", "half", "seeds"])


def method_name(label: str) -> str:
    """The selector name behind a method label like 'adpo(n_candidates=256)' or 'adpo+ a=0'."""
    return label.split("(")[0].split(" ")[0]


def legend(label: str) -> str:
    """A method label with what its theta_hat saw (SEEN), e.g. 'adpo+ [θ̂ on all ...]'."""
    seen = SEEN.get(method_name(label))
    return f"{label} [{seen}]" if seen else label


def curves(summary: pd.DataFrame, metrics, *, by="env") -> dict:
    """Sidecar form of a summary: {env: {method: {metric: {"n": [...], "mean": [...],
    "half_95": [...]}}}} for the given metrics (claims are computed from these)."""
    out: dict = {}
    sub = summary[summary.metric.isin(list(metrics))]
    for (grp, meth, metric), g in sub.groupby([by, "method", "metric"], sort=False):
        out.setdefault(grp, {}).setdefault(meth, {})[metric] = {
            "n": g.n.tolist(), "mean": g["mean"].tolist(), "half_95": g.half.tolist()}
    return out


def plot_curves(ax, summary: pd.DataFrame, metric: str, *, logy: bool = True, labels=None,
                styles=None):
    """Mean with 95% bands against n (log2 axis), one line per method label.

    ``labels``: {method label: legend text}; ``styles``: {method label: (colour, marker)} (e.g.
    :func:`sweep_styles`) or {method label: matplotlib line keywords (``color``, ``marker``,
    ``ls``, ...)} over the method's registered style (:func:`method_style`), for panels that
    vary one method's options."""
    sub = summary[summary.metric == metric]
    for label, g in sub.groupby("method", sort=False):
        style = (styles or {}).get(label)
        color, marker = (style if isinstance(style, tuple) else method_style(label))
        kw = {"marker": marker, "ms": 3.5, "lw": 1.2, "color": color,
              **(style if isinstance(style, dict) else {})}
        ax.plot(g.n, g["mean"], label=(labels or {}).get(label, legend(label)), **kw)
        ax.fill_between(g.n, np.maximum(g["mean"] - g.half, 1e-12) if logy else g["mean"] - g.half,
                        g["mean"] + g.half, color=kw["color"], alpha=0.15, lw=0)
    ax.set_xscale("log", base=2)
    if logy and len(sub):
        ax.set_yscale("log")
        # Axis limits from the means, so a wide band (few seeds) cannot flatten the curves.
        lo, hi = sub["mean"][sub["mean"] > 0].min(), (sub["mean"] + sub.half).max()
        ax.set_ylim(lo / 2, hi * 1.5)
    ax.set_xlabel("n (labelled pairs)")
    ax.set_ylabel(METRIC_LABELS.get(metric, metric))


def n_to_reach(summary: pd.DataFrame, env: str, method: str, metric: str, target: float):
    """Smallest budget n at which ``method``'s mean ``metric`` is <= target (None if never)."""
    g = summary[(summary.env == env) & (summary.method == method) & (summary.metric == metric)]
    hit = g[g["mean"] <= target].n
    return int(hit.min()) if len(hit) else None


def env_facts(df: pd.DataFrame, facts=("label_mean", "theta_star_norm")) -> dict:
    """Per environment, each fact of the environment draw per seed (sorted by seed):
    {env: {fact: [value of seed 0, seed 1, ...]}} (facts are the same for every method and n)."""
    sub = df[df.metric.isin(list(facts))].drop_duplicates(["env", "seed", "metric"])
    return {env: {m: g.sort_values("seed")["value"].tolist() for m, g in ge.groupby("metric")}
            for env, ge in sub.groupby("env", sort=False)}


def save(fig, out_dir, name: str, sidecar: dict) -> list[pathlib.Path]:
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{name}.png", out / f"{name}.pdf", out / f"{name}.json"]
    with OutputGroup() as group:  # the three files change together or not at all
        with group.open(paths[0], "wb") as f:
            fig.savefig(f, format="png", dpi=150, bbox_inches="tight")
        with group.open(paths[1], "wb") as f:
            fig.savefig(f, format="pdf", bbox_inches="tight")
        group.text(paths[2], json.dumps(sidecar, indent=2, default=_jsonable) + "\n")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return paths


def _jsonable(x):
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    if isinstance(x, (np.ndarray, np.bool_)):
        return x.tolist()
    raise TypeError(type(x))


#: The ``[figure]`` options of the selection figures (defaults; see load_sweep_config).
SELECTION_OPTIONS = {"metrics": ["max_logit_error", "mean_logit_error", "error_rate"]}


def run_sweep(name: str, sweep=None, *, envs=None, methods=None, seeds=None, budgets=None,
              jobs: int = 1) -> pd.DataFrame:
    """Tidy results of every cell of ``sweep`` via the resumable runner.

    ``sweep`` comes from :func:`load_sweep_config` (or :func:`load_panel_sweeps`); scripts that
    do not declare their cells in TOML yet pass ``envs``, ``methods``, ``seeds`` and ``budgets``
    (``sim.runner.make_sweep``).

    Finished cells are cached under ``results/figures/<name>/cells/`` keyed by their full
    configuration and the code fingerprint (sim.runner), so a rerun of ``make figures`` only
    computes what changed.
    """
    from sim import runner

    if sweep is None:
        sweep = runner.make_sweep(list(envs), list(methods), [int(s) for s in seeds],
                                  budgets=[int(b) for b in budgets], name=name)
    return runner.run_sweep(sweep, cache_dir(name), jobs=jobs).table


def sweep_budgets(sweep) -> list[int]:
    """The budget grid of a sweep whose environments share one (ValueError otherwise)."""
    grids = set(sweep.budgets)
    if len(grids) != 1:
        raise ValueError(f"budgets: the environments of {sweep.name!r} have different budget "
                         f"grids {sorted(grids)}; give them the same n_max")
    return list(grids.pop())
