"""kappa_t (Assumption 4) along ADPO and ADPO+ runs, with and without candidate subsampling.

kappa_t = max_{i in [N]} v_{t,i}^T H_{t-1}^{-1} v_{t,i} / v_{t,I_t}^T H_{t-1}^{-1} v_{t,I_t},
measured by the selectors (record_kappa = true) over all N rows, selected ones included.
Cells (environment, methods, seeds, budgets) are declared in ``fig_theory_kappa.toml`` in the
runner's schema and run by :func:`sim.experiment.run_cell` through the runner's cell cache
(:func:`figures.common.run_sweep`); each cell records ``kappa_t`` at every round (its
``series``) and, at every
power-of-two budget n, ``kappa_max`` (max_{t <= n} kappa_t), ``max_design_variance`` and
``design_variance_ceiling``. A method without ``n_candidates`` takes the exact argmax over all
unselected rows, one with ``n_candidates = m`` a fresh random subset of m per round (the
paper's m = 256). Lines are drawn in each method's registered colour
(:func:`figures.common.method_style`), solid for the exact argmax, dashed with candidates.
Sidecar: max, median and 99th percentile of kappa_t per setting over rounds and seeds.

Right panel: Theorem 4 along the same runs, max_i phi_i^T Sigma_n^{-1} phi_i (Sigma_n = gamma I
+ Hessian at theta_* on the first n picks; :func:`sim.metrics.max_design_variance`) against
the printed and corrected bounds with the measured kappa (theory.bounds.theorem4_bound, kappa =
max(1, kappa_max at n)), and the ceiling max ||phi||^2 / gamma that no design can exceed. A
checkpoint where a bound is >= that ceiling checks nothing; the default config (beta = 0.25,
gamma = c_max) makes the corrected bound informative from n = 32 on. The sidecar counts, per
setting, the informative checkpoints and the failures among them.
"""

from __future__ import annotations

import pathlib

import numpy as np
import pandas as pd

from figures import common
from theory import bounds

NAME = "theory_kappa"
#: The ``[figure]`` options: none (every setting is in the cells).
OPTIONS: dict = {}
#: Metrics of a cell read here (run_cell records them with record_kappa = true).
SERIES, KAPPA, MEASURED, CEILING = ("kappa_t", "kappa_max", "max_design_variance",
                                    "design_variance_ceiling")


def kappa_setting(sweep) -> dict:
    """What the figure states and the bounds need: the one environment's kind, N, d and beta,
    the design ridge gamma and UCB width alpha shared by every method (all must record kappa),
    the seeds and the largest budget n. ValueError naming the key when the sweep does not pin
    these down."""
    if len(sweep.envs) != 1:
        raise ValueError(f"env: the figure needs one environment, got {len(sweep.envs)}")
    env = sweep.envs[0]
    if not all(m.get("record_kappa") is True and SERIES in m.get("series", [])
               for m in sweep.methods):
        raise ValueError(f"methods.record_kappa: every method must set record_kappa = true and "
                         f"series = [\"{SERIES}\"] (kappa_t and Theorem 4 are traced only then)")
    shared = {}
    for key in ("gamma", "alpha"):
        values = {m.get(key) for m in sweep.methods}
        if None in values or len(values) != 1:
            raise ValueError(f"methods.{key}: give every method the same {key}; got "
                             f"{sorted(map(str, values))}")
        shared[key] = float(values.pop())
    from sim.experiment import build_env  # d of an environment without a d option (digits)

    d = int(env["d"]) if "d" in env else build_env(env, sweep.seeds[0]).d
    return {"kind": env["kind"], "N": int(env["N"]), "d": d, "beta": float(env.get("beta", 1.0)),
            **shared, "seeds": list(sweep.seeds), "n": common.sweep_budgets(sweep)[-1],
            "n_grid": common.sweep_budgets(sweep)}


def per_seed(df: pd.DataFrame, method: str, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """(n values, (seeds, len(n)) array) of ``metric`` for ``method``, seeds and n increasing."""
    table = df[(df.method == method) & (df.metric == metric)].pivot(
        index="seed", columns="n", values="value").sort_index().sort_index(axis=1)
    return table.columns.to_numpy(), table.to_numpy()


def theorem4_bounds(cfg: dict, n_grid, kappa_max: np.ndarray) -> dict[str, np.ndarray]:
    """(seeds, len(n_grid)) printed and corrected Theorem 4 bounds at each cell's kappa, max(1,
    kappa_max at n) (the smallest constant for which Assumption 4 holds up to round n)."""
    return {form: np.array([[bounds.theorem4_bound(cfg["d"], int(n), cfg["beta"], cfg["gamma"],
                                                   max(1.0, float(k)), form=form)
                             for n, k in zip(n_grid, row)] for row in kappa_max])
            for form in bounds.FORMS}


def summary_row(cfg: dict, kappa: np.ndarray, meas: np.ndarray, bnd: dict, ceiling: np.ndarray
                ) -> dict:
    """The sidecar entry of one setting: kappa_t (seeds, n) statistics and Theorem 4's checks
    (meas, bounds and ceiling (seeds, len(n_grid)))."""
    printed, corrected = bnd["printed"], bnd["corrected"]
    informative = corrected < ceiling
    return {"max": float(kappa.max()), "median": float(np.median(kappa)),
            "p99": float(np.quantile(kappa, 0.99)),
            "max_after_n_over_4": float(kappa[:, cfg["n"] // 4:].max()),
            "theorem4_checks": int(meas.size),
            "theorem4_informative_checks": int(informative.sum()),
            "theorem4_printed_failures": int((meas > printed).sum()),
            "theorem4_printed_failures_informative": int(((meas > printed) & informative).sum()),
            "theorem4_corrected_failures": int((meas > corrected).sum()),
            "theorem4_corrected_failures_informative": int(((meas > corrected) & informative).sum()),
            "theorem4_max_measured_over_printed": float((meas / printed).max()),
            "theorem4_min_corrected_over_measured_informative": float(
                (corrected / meas)[informative].min()) if informative.any() else None,
            "theorem4_max_corrected_over_ceiling": float((corrected / ceiling).max())}


def main(scale: str = "default", out_dir="figures", jobs: int = 1) -> list[pathlib.Path]:
    sweep, _ = common.load_sweep_config(NAME, scale, OPTIONS)
    cfg = kappa_setting(sweep)
    df = common.run_sweep(NAME, sweep, jobs=jobs)
    ng = np.asarray(cfg["n_grid"])
    common.style()
    import matplotlib.pyplot as plt

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(9, 3.4))
    summary, kappa_all, ceiling_all = {}, 1.0, 0.0
    for m in sweep.methods:
        lab = m["label"]
        color, marker = common.method_style(lab)
        ls = "-" if m.get("n_candidates") is None else "--"
        t, kappa = per_seed(df, lab, SERIES)
        kappa_all = max(kappa_all, float(kappa.max()))
        ax.plot(t, kappa.max(axis=0), ls, color=color, lw=0.8, label=f"{lab} (max over seeds)")
        meas = per_seed(df, lab, MEASURED)[1]
        ceiling = per_seed(df, lab, CEILING)[1]
        ceiling_all = max(ceiling_all, float(ceiling.max()))
        bx.plot(ng, meas.max(axis=0), ls, marker=marker, ms=2, color=color, lw=0.8, label=lab)
        bnd = theorem4_bounds(cfg, ng, per_seed(df, lab, KAPPA)[1])
        summary[lab] = summary_row(cfg, kappa, meas, bnd, ceiling)
    for form, ls in (("printed", "--"), ("corrected", "-")):
        bx.plot(ng, [bounds.theorem4_bound(cfg["d"], n, cfg["beta"], cfg["gamma"], kappa_all,
                                           form=form) for n in ng], ls, color="k", lw=1,
                label=f"Theorem 4, {form} (kappa = {kappa_all:.2f})")
    bx.axhline(ceiling_all, color="r", lw=0.8, ls=":",
               label=r"ceiling $\max\|\phi\|^2/\gamma$ (vacuous above)")
    ax.set(xscale="log", yscale="log", xlabel="round t", ylabel=r"$\kappa_t$ (Assumption 4)")
    bx.set(xscale="log", yscale="log", xlabel="budget n",
           ylabel=r"$\max_i \phi_i^\top \Sigma_n^{-1} \phi_i$")
    fig.suptitle(f"kappa_t and Theorem 4 along runs ({cfg['kind']}, N={cfg['N']}, d={cfg['d']}, "
                 f"beta={cfg['beta']}, gamma={cfg['gamma']}, alpha={cfg['alpha']})", fontsize=8)
    ax.legend(fontsize=6)
    bx.legend(fontsize=6)
    sidecar = {"figure": NAME, "scale": scale, "config": {**cfg, "scale": scale},
               "envs": list(sweep.envs), "methods": list(sweep.methods), "seen": common.SEEN,
               "environment": f"{cfg['kind']} env (gaussian: assumption2=True, theta_norm=1, "
                              "ref_norm=1); theta_hat fitted as theta_star (run_cell's default)",
               "kappa": summary}
    return common.save(fig, out_dir, NAME, sidecar)
