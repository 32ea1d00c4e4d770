"""Max logit error vs n for ADPO, ADPO+ and uniform, with Theorem 2's bound overlaid.

Cells (environment, methods, seeds, budgets) are declared in ``fig_theory_bound.toml`` in the
runner's schema and run by :func:`sim.experiment.run_cell` through the runner's cell cache
(:func:`figures.common.run_sweep`); the measured curves are the mean max logit error with 95%
t-bands over seeds in each method's registered colour (:func:`figures.common.plot_curves`).

Bounds (theory.bounds.theorem2_bound, delta from the TOML's ``[figure]``): printed
(c_max^3/c_min with the printed c_min), corrected (c_max^2/c_min^2, tight c_min) and corrected
with the exact self-normalized radius; d and beta are the environment's, gamma the design ridge
of the methods that record kappa; kappa at n = the largest ``kappa_max`` (run_cell's
max_{t <= n} kappa_t) over those methods' cells of all seeds, at least 1 (Assumption 4 as
observed). Also drawn: the trivial ceiling max_i |phi_i^T (theta_hat - theta_*)| <= 2
(Assumption 2: ||phi|| <= 1, both parameters in the unit ball). Every bound curve lies above it
at these n, so the bound is VACUOUS here (no estimator could violate it), not merely loose. The
sidecar states, for each bound, its ratio to the ceiling and the n at which the formula first
drops below it (theory.bounds.informative_n, kappa = 1): ~6e5 for the corrected bound at d = 8 -
far beyond what this figure can run.
"""

from __future__ import annotations

import pathlib

import numpy as np
import pandas as pd

from figures import common
from theory import bounds

NAME = "theory_bound"
#: The ``[figure]`` options (defaults): the bound's confidence level 1 - delta.
OPTIONS = {"delta": 0.05}
METRIC = "max_logit_error"


def bound_setting(sweep, opts: dict) -> dict:
    """The setting Theorem 2's bound is evaluated in: the sweep's one environment's N, d and
    beta, the design ridge gamma shared by every method that records kappa, delta, the budgets.
    ValueError (naming the key) when the sweep does not pin these down."""
    if len(sweep.envs) != 1:
        raise ValueError(f"env: the bound needs one environment, got {len(sweep.envs)}")
    env = sweep.envs[0]
    if env.get("kind") != "gaussian" or env.get("assumption2") is not True or "d" not in env:
        raise ValueError("env: the bound needs kind = \"gaussian\" with assumption2 = true "
                         "and d given (Assumption 2)")
    kappa_methods = [m for m in sweep.methods if m.get("record_kappa")]
    gammas = {m.get("gamma") for m in kappa_methods}
    if not kappa_methods or None in gammas or len(gammas) != 1:
        raise ValueError("methods.gamma: give every method with record_kappa = true the same "
                         f"design ridge gamma (the bound's); got {sorted(map(str, gammas))}")
    return {"N": int(env["N"]), "d": int(env["d"]), "beta": float(env.get("beta", 1.0)),
            "gamma": float(gammas.pop()), "delta": float(opts["delta"]),
            "seeds": list(sweep.seeds), "n_grid": common.sweep_budgets(sweep)}


def per_seed(df: pd.DataFrame, method: str, metric: str, n_grid) -> np.ndarray:
    """(seeds, len(n_grid)) values of ``metric`` for ``method``, seeds in increasing order."""
    sub = df[(df.method == method) & (df.metric == metric)]
    return sub.pivot(index="seed", columns="n", values="value")[list(n_grid)].to_numpy()


def kappa_at(df: pd.DataFrame, n_grid) -> np.ndarray:
    """(len(n_grid),) kappa for the bound at each n: the largest ``kappa_max`` row at n over
    every cell that recorded one (max_{t <= n} kappa_t over methods and seeds), at least 1
    (kappa >= 1 by definition; 1 where no cell records kappa)."""
    kap = df[df.metric == "kappa_max"].groupby("n")["value"].max()
    return np.array([max(1.0, float(kap.get(n, 1.0))) for n in n_grid])


def main(scale: str = "default", out_dir="figures", jobs: int = 1) -> list[pathlib.Path]:
    sweep, opts = common.load_sweep_config(NAME, scale, OPTIONS)
    cfg = bound_setting(sweep, opts)
    df = common.run_sweep(NAME, sweep, jobs=jobs)
    n_grid = np.asarray(cfg["n_grid"])
    d, beta, gamma, delta = cfg["d"], cfg["beta"], cfg["gamma"], cfg["delta"]
    kappa_n = kappa_at(df, n_grid)
    forms = {"printed": dict(form="printed"), "corrected": {},
             "corrected, exact self-normalized": dict(radius="self_normalized")}
    bnd = {lab: [bounds.theorem2_bound(d, n, beta, gamma, delta, k, **kw)
                 for n, k in zip(n_grid, kappa_n)] for lab, kw in forms.items()}
    ceiling = bounds.theorem2_ceiling()
    crossing = {lab: bounds.informative_n(
        lambda n, kw=kw: bounds.theorem2_bound(d, n, beta, gamma, delta, 1.0, **kw), ceiling)
        for lab, kw in forms.items()}

    summary = common.summarize(df[df.metric == METRIC])
    common.style()
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    labels = [m["label"] for m in sweep.methods]
    common.plot_curves(ax, summary, METRIC,
                       labels={m: f"{common.legend(m)}, measured" for m in labels})
    ax.axhline(ceiling, color="r", lw=0.8, ls=":",
               label=f"trivial ceiling {ceiling:g} (a bound above it is vacuous)")
    per_method = {}
    for m in labels:
        e = per_seed(df, m, METRIC, n_grid)
        med = np.median(e, axis=0)
        band = summary[summary.method == m].set_index("n").loc[n_grid]
        per_method[m] = {"median_max_logit_error": med, "mean_max_logit_error": band["mean"].to_numpy(),
                         "half_95": band["half"].to_numpy(),
                         "ratio_corrected_to_measured": np.asarray(bnd["corrected"]) / med,
                         "ratio_printed_to_measured": np.asarray(bnd["printed"]) / med}
    for (lab, y), ls in zip(bnd.items(), ("--", "-", ":")):
        ax.plot(n_grid, y, ls, color="k", lw=1, label=f"Theorem 2 bound, {lab}")
    vac = {lab: bool(np.all(np.asarray(y) >= ceiling)) for lab, y in bnd.items()}
    common.log_log_panel(
        ax, xlabel="budget n",
        ylabel=r"max logit error $\max_i |\phi_i^\top(\hat\theta_n-\theta_*)|$",
        title=f"{'VACUOUS here: ' if all(vac.values()) else ''}bound vs measured (d={d}, "
              f"N={cfg['N']}, beta={beta}, gamma={gamma}, delta={delta}, "
              f"{len(cfg['seeds'])} seeds; mean, 95% t-band)")
    ax.set_xscale("log", base=2)
    ax.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)
    top = max(ceiling, *(max(y) for y in bnd.values()))
    ax.set_ylim(summary["mean"].min() / 2, top * 1.5)  # plot_curves fitted only the measured
    sidecar = {"figure": NAME, "scale": scale, "config": {**cfg, "scale": scale},
               "envs": list(sweep.envs), "methods": list(sweep.methods), "seen": common.SEEN,
               "environment": "gaussian_env(assumption2=True, theta_norm=1, ref_norm=1); "
                              "theta_* = full-data DPO MLE in the unit ball; fits in the unit ball",
               "kappa_used": kappa_n, "bounds": bnd, "per_method": per_method,
               "trivial_ceiling": ceiling, "vacuous_at_every_n": vac,
               "bound_over_ceiling": {lab: np.asarray(y) / ceiling for lab, y in bnd.items()},
               "informative_from_n_kappa1": crossing}
    return common.save(fig, out_dir, NAME, sidecar)
