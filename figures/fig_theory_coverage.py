"""Theorem 3's coverage vs delta, for uniform and ADPO designs.

Left: empirical coverage P(||theta_hat_n - theta_*||_{Sigma_n} <= radius(delta)) against the
nominal 1 - delta, for Theorem 3's radius and the exact self-normalized radius. Right: the
radius and the empirical (1 - delta)-quantile of the norm (the radius that would be exact),
showing how conservative the bound is, and the smallest attained geometric ceiling over trials
(theory.coverage.attained_ceiling): a radius above it is met by every estimator in the unit
ball, so coverage there is forced and verifies nothing. The default config (d = 2, n = 1000 >>
d) puts every radius below the ceiling. Sidecar: coverage per delta, radius / quantile, the
ceiling and whether each radius is informative.

Cells (environment, methods, trials as seeds, the budget n) are declared in
``fig_theory_coverage.toml`` in the runner's schema (``cell = "coverage"``) and run by
:func:`theory.coverage.run_coverage_cell` through the runner's cell cache
(:func:`figures.common.run_sweep`): one cell per (method, trial), each recording the trial's
``norm``, ``norm_rigorous``, ``ceiling`` and ``ridge_fallback`` at n. Lines are drawn in each
method's registered colour (:func:`figures.common.method_style`).
"""

from __future__ import annotations

import pathlib

import numpy as np
import pandas as pd

from figures import common
from theory import bounds
from theory.coverage import COVERAGE_METRICS  # noqa: F401  (registers the cell kind "coverage")

NAME = "theory_coverage"
#: The ``[figure]`` options (defaults): the deltas at which coverage is read.
OPTIONS: dict = {"deltas": [0.05]}


def coverage_setting(sweep, opts: dict) -> dict:
    """What the figure states and the radius needs: the one environment's N, d, beta and
    features' seed, the one budget n, Theorem 3's gamma shared by every method, the number of
    trials (seeds) and the deltas. ValueError naming the key when the sweep does not pin these
    down."""
    if sweep.cell != "coverage":
        raise ValueError(f"cell: the figure reads coverage cells (cell = \"coverage\"), got "
                         f"{sweep.cell!r}")
    if len(sweep.envs) != 1:
        raise ValueError(f"env: the figure needs one environment, got {len(sweep.envs)}")
    env, budgets = sweep.envs[0], common.sweep_budgets(sweep)
    if len(budgets) != 1:
        raise ValueError(f"budgets: the figure shows one budget n, got {budgets}")
    gammas = {float(m.get("gamma", 1.0)) for m in sweep.methods}
    if len(gammas) != 1:
        raise ValueError(f"methods.gamma: the radius needs one gamma; got {sorted(gammas)}")
    deltas = np.asarray(opts["deltas"], dtype=np.float64)
    if deltas.ndim != 1 or not deltas.size or not np.all((deltas > 0) & (deltas < 1)):
        raise ValueError(f"figure.deltas: a list of numbers in (0, 1), got {opts['deltas']!r}")
    from sim.runner import env_config

    ecfg = env_config(env, env_seed=True)
    return {"N": int(ecfg.N), "d": int(ecfg.d), "beta": float(ecfg.beta),
            "gamma": gammas.pop(), "n": budgets[0], "trials": len(sweep.seeds),
            "methods": [m["label"] for m in sweep.methods], "deltas": deltas.tolist(),
            "seed": env.get("seed")}


def trial_values(df: pd.DataFrame, method: str, metric: str) -> np.ndarray:
    """(trials,) values of ``metric`` for ``method``, by increasing seed (trial)."""
    g = df[(df.method == method) & (df.metric == metric)].sort_values("seed")
    return g["value"].to_numpy()


def main(scale: str = "default", out_dir="figures", jobs: int = 1) -> list[pathlib.Path]:
    sweep, opts = common.load_sweep_config(NAME, scale, OPTIONS)
    cfg = coverage_setting(sweep, opts)
    df = common.run_sweep(NAME, sweep, jobs=jobs)
    deltas = np.asarray(cfg["deltas"])
    args = (cfg["d"], cfg["n"], cfg["beta"], cfg["gamma"])
    radius = np.array([bounds.theorem3_radius(*args, dl) for dl in deltas])
    radius_sn = np.array([bounds.self_normalized_radius(*args, dl) for dl in deltas])
    common.style()
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(8, 3.4))
    a.plot(1 - deltas, 1 - deltas, color="k", lw=0.8, label="nominal 1 - delta")
    summary = {}
    for m in cfg["methods"]:
        x, rig, ceiling = (trial_values(df, m, k) for k in ("norm", "norm_rigorous", "ceiling"))
        color, marker = common.method_style(m)
        cov = np.array([(x <= r).mean() for r in radius])
        cov_sn = np.array([(x <= r).mean() for r in radius_sn])
        q = np.quantile(x, 1 - deltas)
        a.plot(1 - deltas, cov, "-", marker=marker, ms=3, color=color,
               label=f"{m}: Theorem 3 radius")
        a.plot(1 - deltas, cov_sn, "--", marker=marker, ms=3, color=color, mfc="none",
               label=f"{m}: exact self-normalized")
        b.plot(deltas, q, "-", marker=marker, ms=3, color=color,
               label=f"{m}: empirical (1-delta)-quantile")
        b.axhline(ceiling.min(), ls="--", lw=0.8, color=color,
                  label=f"{m}: geometric ceiling (radius above it: forced coverage)")
        summary[m] = {"coverage_theorem3": cov, "coverage_self_normalized": cov_sn,
                      "quantile": q, "radius_over_quantile": radius / q,
                      "max_norm": float(x.max()), "ceiling_min": float(ceiling.min()),
                      "informative": radius < ceiling.min(),
                      "informative_self_normalized": radius_sn < ceiling.min(),
                      "max_norm_rigorous": float(rig.max()),
                      "ridge_fallbacks": int(trial_values(df, m, "ridge_fallback").sum())}
    b.plot(deltas, radius, "k-", label="Theorem 3 radius")
    b.plot(deltas, radius_sn, "k:", label="exact self-normalized radius")
    a.set(xlabel="nominal coverage 1 - delta", ylabel="empirical coverage", ylim=(-0.02, 1.02))
    b.set(xscale="log", yscale="log", xlabel="delta", ylabel=r"$\|\hat\theta_n-\theta_*\|_{\Sigma_n}$")
    for ax in (a, b):
        ax.legend(fontsize=6)
    fig.suptitle(f"Theorem 3 coverage: N={cfg['N']}, d={cfg['d']}, n={cfg['n']}, "
                 f"beta={cfg['beta']}, gamma={cfg['gamma']}, {cfg['trials']} trials", fontsize=8)
    sidecar = {"figure": NAME, "scale": scale, "config": {**cfg, "scale": scale},
               "envs": list(sweep.envs), "methods": list(sweep.methods),
               "environment": "gaussian_env(assumption2=True, theta_norm=1, ref_norm=1), "
                              "features drawn once (env seed); theta_* = theta_true; fresh "
                              "labels per trial (cell seed); fit_dpo(fit_ridge=0, radius=1)",
               "deltas": deltas, "radius": radius, "radius_self_normalized": radius_sn,
               "per_method": summary}
    return common.save(fig, out_dir, NAME, sidecar)
