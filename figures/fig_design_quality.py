"""Design figure: how close greedy D-optimal selection comes to the exact optimum.

On random tiny instances the brute-force optimum over all n-subsets is computable; the relaxed
optimum M* (Frank-Wolfe to efficiency 1 - 1e-9) bounds every exact design from above. We plot
the D-efficiency (det sum_S v v^T / det(n M*))^(1/d) (:func:`sim.experiment.d_efficiency`) of
brute force, greedy, greedy followed by the exchange local search, efficient rounding of M*,
and a random subset: the mean over instances with a 95% t-band (:func:`figures.common.summarize`),
in each solver's registered colour.

Cells are declared in ``fig_design_quality.toml`` in the runner's schema (``cell = "design"``:
one instance = one seed of the pool, every solver from ``sim.design.solvers.SOLVERS``) and run by
:func:`sim.experiment.run_design_cell` through the runner's cell cache
(:func:`figures.common.run_sweep`). M* is the ``fw`` method's ``relaxed_logdet`` of the same
instance; scores are log det(gamma I + sum_S v v^T) with the declared gamma = 1e-9.
"""

from __future__ import annotations

import pathlib

import numpy as np
import pandas as pd

from figures import common
from sim.experiment import d_efficiency, label

NAME = "design_quality"
#: The solvers the sidecar's ratios need, by their names in the solver table: the optimum, the
#: greedy and exchange designs, and the relaxed solver whose relaxed_logdet is M*.
ROLES = {"optimum": "brute", "greedy": "greedy", "exchange": "exchange", "relaxed": "fw"}
METRIC = "d_efficiency"


def roles(sweep) -> dict[str, str]:
    """{role: method label} for ROLES; ValueError unless each solver appears exactly once."""
    out = {}
    for role, solver in ROLES.items():
        labels = [label(m, "name") for m in sweep.methods if m["name"] == solver]
        if len(labels) != 1:
            raise ValueError(f"methods: the figure needs exactly one {solver!r} method (the "
                             f"{role}), got {len(labels)}")
        out[role] = labels[0]
    return out


def efficiency_table(df: pd.DataFrame, reference: str, d: int) -> pd.DataFrame:
    """Tidy rows of ``d_efficiency`` for every method's ``logdet`` against the same seed's
    ``relaxed_logdet`` of the ``reference`` method (M* of that instance)."""
    ref = df[(df.method == reference) & (df.metric == "relaxed_logdet")].set_index(
        ["seed", "n"])["value"]
    out = df[df.metric == "logdet"].copy()
    out["value"] = d_efficiency(out.value.to_numpy(),
                                ref.loc[list(zip(out.seed, out.n))].to_numpy(),
                                out.n.to_numpy(), d)
    out["metric"] = METRIC
    return out


def main(scale: str = "default", out_dir="figures", jobs: int = 1) -> list[pathlib.Path]:
    sweep, _ = common.load_sweep_config(NAME, scale, {})
    if len(sweep.envs) != 1 or "d" not in sweep.envs[0]:
        raise ValueError("env: the figure needs one environment with d given")
    env = sweep.envs[0]
    role = roles(sweep)
    budgets = common.sweep_budgets(sweep)
    df = common.run_sweep(NAME, sweep, jobs=jobs)
    eff_df = efficiency_table(df, role["relaxed"], int(env["d"]))
    labels = [label(m, "name") for m in sweep.methods]
    # (budgets, seeds, methods) in declaration order
    eff = np.stack([eff_df[eff_df.method == m].pivot(index="n", columns="seed", values="value")
                    .loc[budgets].to_numpy() for m in labels], axis=-1)
    summary = common.summarize(eff_df)
    common.style()
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6), layout="constrained")
    common.plot_curves(ax, summary, METRIC, logy=False, labels={m: m for m in labels},
                       styles=common.sweep_styles(sweep))
    ax.set_xscale("linear")
    ax.set(xlabel="n (design size)", ylabel="D-efficiency vs relaxed optimum",
           title=f"Exact designs, N={env['N']}, d={env['d']}, {len(sweep.seeds)} instances "
                 "(mean, 95% t-band)")
    ax.legend(fontsize=7)
    col = {r: labels.index(m) for r, m in role.items()}
    ratio = eff[:, :, col["greedy"]] / eff[:, :, col["optimum"]]
    cfg = {"N": env["N"], "d": env["d"], "budgets": budgets, "instances": len(sweep.seeds),
           "scale": scale}
    side = {"figure": NAME, "scale": scale, "config": cfg, "seeds": list(sweep.seeds),
            "envs": list(sweep.envs), "methods": list(sweep.methods),
            "greedy_over_brute_min": float(ratio.min()),
            "greedy_over_brute_mean": float(ratio.mean()),
            "greedy_equals_brute_fraction": float(np.mean(ratio > 1 - 1e-9)),
            "exchange_over_brute_mean": float((eff[:, :, col["exchange"]]
                                               / eff[:, :, col["optimum"]]).mean()),
            "greedy_beats_brute": bool((ratio > 1 + 1e-9).any()),
            "mean_efficiency": {m: eff[:, :, j].mean(axis=1).tolist()
                                for j, m in enumerate(labels)},
            "curves": common.curves(summary, [METRIC])}
    return common.save(fig, out_dir, NAME, side)
