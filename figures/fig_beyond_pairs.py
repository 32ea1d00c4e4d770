"""Beyond one pair at a time: rankings of K responses, D/A/G criteria, pools, the stopping rule.

Every panel is a sweep in the runner's schema, declared in ``fig_beyond_pairs.toml`` (one table
per panel, sizes per scale; :func:`figures.common.load_panel_sweeps`), run by
:func:`sim.experiment.run_cell` through the runner's cell cache; curves are means over seeds with
95% t-bands (:func:`figures.common.plot_curves`) in each method's registered colour.

Left: K-wise Plackett–Luce rankings (env kind ``ranking``, sim.ranking): which prompts to have
ranked — ADPO, ADPO+ (theta_hat on all logged rankings of the pool), the oracle (theta_star), a
label-free D-optimal design at theta = 0 ("d-opt") and Uniform (the ``rank-*`` methods); max
logit error over every response pair of every prompt (eq. 7's K-wise form) of the PL MLE on the
chosen prompts.
Middle: pairwise Gaussian environment, the oracle's greedy design (Lemma 1 weights at
theta_star) under the D, A and G criteria (sim.design.criteria; G's targets are the unweighted
phi, so it minimizes the largest predicted logit variance), against Uniform: max logit error of
the MLE.
Right: which pair to compare and repeated labels — the ``prompts`` environment (every pair of K
responses of M prompts, sim.envs.prompts_env), APO, ADPO+ and Uniform with no constraint, at
most one pair per prompt (``max_per_prompt = 1``), and with replacement (``replace``: a repeat
is a fresh label from theta_true); max logit error of the MLE.
Table in the sidecar: labels needed before the largest predicted logit sd falls below a target
(sim.stopping), for APO, ADPO and Uniform: the stop panel's cells (``cell = "stop"``,
:func:`sim.experiment.run_stop_cell`) record the rule's statistic ``max_logit_sd`` after every
K labels up to N, and the rule stops at the first of these n where it is below the target
(:func:`stop_n`; NaN where it never is, by the cap: the stop panel's largest budget).
"""

from __future__ import annotations

import pathlib

import numpy as np
import pandas as pd

from figures import common

NAME = "beyond_pairs"
PANELS = ("ranking", "criteria", "stop", "pools")
#: The ``[figure]`` options (defaults): the stopping rule's targets on max_i sd_i.
OPTIONS = {"stop_targets": [1.0]}
METRIC = "max_logit_error"
RANK_PREFIX = "rank-"  # the ranking methods' registry prefix, dropped from the sidecar's keys
#: Line styles of the criteria panel (one method, the oracle, under three criteria).
CRITERION_STYLES = {"d": {"color": "C0", "marker": "o"}, "a": {"color": "C1", "marker": "s"},
                    "g": {"color": "C2", "marker": "^"}}
#: Line styles of the pools panel's variants (the colour is the method's).
VARIANT_LINES = {"unlimited": "-", "one per prompt": "--", "with replacement": ":"}


def labels(sweep) -> list[str]:
    return [m["label"] for m in sweep.methods]


def per_seed(df: pd.DataFrame, label: str, metric: str = METRIC) -> np.ndarray:
    """(seeds, budgets) values of ``metric`` for a method label, seeds and budgets ascending."""
    sub = df[(df.method == label) & (df.metric == metric)]
    return sub.pivot(index="seed", columns="n", values="value").to_numpy()


def stop_n(df: pd.DataFrame, label: str, targets) -> np.ndarray:
    """(seeds, targets): the first budget n whose ``max_logit_sd`` is below each target (the
    rule of sim.stopping.select_until checked at the cells' budgets), NaN where none is."""
    sd = df[(df.method == label) & (df.metric == "max_logit_sd")]
    out = []
    for _, g in sd.sort_values(["seed", "n"]).groupby("seed", sort=True):
        n, v = g.n.to_numpy(), g.value.to_numpy()
        out.append([float(n[np.argmax(v < t)]) if np.any(v < t) else np.nan for t in targets])
    return np.asarray(out, dtype=float)


def variant(label: str) -> tuple[str, str]:
    """(method, variant) of a pools label "<method> <variant>"."""
    m, _, v = label.partition(" ")
    return m, v


def main(scale: str = "default", out_dir="figures", jobs: int = 1) -> list[pathlib.Path]:
    sweeps, opts = common.load_panel_sweeps(NAME, scale, PANELS, OPTIONS)
    df = {p: common.run_sweep(f"{NAME}/{p}", sweeps[p], jobs=jobs) for p in PANELS}
    summary = {p: common.summarize(df[p][df[p].metric == METRIC]) for p in ("ranking", "criteria",
                                                                            "pools")}
    env = {p: sweeps[p].envs[0] for p in PANELS}
    budgets = {p: common.sweep_budgets(sweeps[p]) for p in PANELS}
    seeds = len(sweeps["ranking"].seeds)
    targets = [float(t) for t in opts["stop_targets"]]
    common.style()
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 3.6), layout="constrained")
    common.plot_curves(axes[0], summary["ranking"], METRIC, labels={
        m: m.removeprefix(RANK_PREFIX) + (" (θ̂ on all logged rankings)" if m.endswith("+") else "")
        for m in labels(sweeps["ranking"])})
    common.plot_curves(axes[1], summary["criteria"], METRIC, styles=CRITERION_STYLES,
                       labels={k: f"greedy {k.upper()}" for k in CRITERION_STYLES})
    common.plot_curves(axes[2], summary["pools"], METRIC, styles={
        lab: {"ls": VARIANT_LINES.get(variant(lab)[1], "-.")} for lab in labels(sweeps["pools"])})
    r, c, p = env["ranking"], env["criteria"], env["pools"]
    axes[0].set_xlabel("n (ranked prompts)")
    axes[0].set_title(f"Rankings: M={r['M']} prompts, K={r['K']}, d={r['d']}", fontsize=9)
    axes[1].set_title(f"Criteria (weights at θ*): N={c['N']}, d={c['d']}", fontsize=9)
    axes[2].set_title(f"Which pair / repeats: M={p['M']} prompts, K={p['K']}, d={p['d']}",
                      fontsize=9)
    for ax, size in zip(axes, (7, 7, 6)):
        ax.legend(fontsize=size)

    def means(panel: str, key=lambda lab: lab) -> dict:
        return {key(lab): per_seed(df[panel], lab).mean(axis=0).tolist()
                for lab in labels(sweeps[panel])}

    stops = {lab: stop_n(df["stop"], lab, targets) for lab in labels(sweeps["stop"])}
    pools: dict = {"mean": {}, "sem": {}}
    for lab in labels(sweeps["pools"]):
        m, v = variant(lab)
        e = per_seed(df["pools"], lab)
        pools["mean"].setdefault(m, {})[v] = e.mean(axis=0).tolist()
        pools["sem"].setdefault(m, {})[v] = (e.std(axis=0, ddof=1) / np.sqrt(len(e))).tolist()
    s = env["stop"]
    config = {"seeds": seeds, "scale": scale,
              "ranking": {"M": r["M"], "K": r["K"], "d": r["d"], "budgets": budgets["ranking"]},
              "criteria": {"N": c["N"], "d": c["d"], "budgets": budgets["criteria"]},
              "stop": {"N": s["N"], "d": s["d"], "targets": targets,
                       "check_every": budgets["stop"][0], "cap": budgets["stop"][-1]},
              "pools": {"M": p["M"], "K": p["K"], "d": p["d"], "budgets": budgets["pools"],
                        "n_candidates": _one([m["n_candidates"] for m in sweeps["pools"].methods
                                              if "n_candidates" in m])}}
    side = {"figure": NAME, "scale": scale, "config": config,
            "sweeps": {q: {"envs": list(sweeps[q].envs), "methods": list(sweeps[q].methods),
                           "seeds": list(sweeps[q].seeds), "budgets": budgets[q]}
                       for q in PANELS},
            "ranking_max_logit_error": means("ranking", lambda m: m.removeprefix(RANK_PREFIX)),
            "criteria_max_logit_error": means("criteria"),
            "stop": {m: {"targets": targets, "mean_n": _nanmean(v).tolist(),
                         "stopped_fraction": np.mean(np.isfinite(v), axis=0).tolist()}
                     for m, v in stops.items()},
            "pools_max_logit_error": pools["mean"], "pools_sem": pools["sem"]}
    return common.save(fig, out_dir, NAME, side)


def _nanmean(v: np.ndarray) -> np.ndarray:
    """Column means over the seeds that stopped (NaN where none did), without numpy's warning."""
    hit = np.isfinite(v)
    with np.errstate(invalid="ignore"):
        return np.where(hit.any(axis=0), np.nansum(v, axis=0) / hit.sum(axis=0), np.nan)


def _one(values: list):
    """The value shared by every entry of ``values`` (the sorted distinct values if several)."""
    distinct = sorted(set(values))
    return distinct[0] if len(distinct) == 1 else distinct
