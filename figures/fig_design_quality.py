"""Design figure: how close greedy D-optimal selection comes to the exact optimum.

On random tiny instances the brute-force optimum over all n-subsets is computable; the relaxed
optimum M* (Frank-Wolfe to efficiency 1 - 1e-9) bounds every exact design from above. We plot
the D-efficiency (det sum_S v v^T / det(n M*))^(1/d) of brute force, greedy, greedy followed by
the exchange local search, efficient rounding of M*, and a random subset.
"""

from __future__ import annotations

import numpy as np

from figures import common
from sim.design import greedy_select
from sim.design.brute import brute_force_design
from sim.design.relaxed import fw_design
from sim.design.rounding import exchange, round_design

NAME = "design_quality"
METHODS = ("brute force", "greedy", "greedy + exchange", "rounded relaxed", "random")
GAMMA = 1e-9  # exact designs are scored without a ridge (n >= d)


def efficiencies(V, n, rng):
    d = V.shape[1]
    star = fw_design(V, efficiency=1 - 1e-9)
    ref = d * np.log(n) + star.logdet  # log det(n M*)

    def eff(idx):
        sub = V[np.asarray(idx)]
        return float(np.exp((np.linalg.slogdet(sub.T @ sub)[1] - ref) / d))

    greedy = greedy_select(V, n, gamma=GAMMA).indices
    return [eff(brute_force_design(V, n, gamma=GAMMA).indices), eff(greedy),
            eff(exchange(V, greedy, gamma=GAMMA).indices),
            eff(round_design(V, star.pi, n, gamma=GAMMA).indices),
            eff(rng.choice(len(V), n, replace=False))]


def compute(cfg):
    rng = np.random.default_rng(0)
    out = np.zeros((len(cfg["budgets"]), cfg["instances"], len(METHODS)))
    for k in range(cfg["instances"]):
        V = rng.standard_normal((cfg["N"], cfg["d"]))
        for j, n in enumerate(cfg["budgets"]):
            out[j, k] = efficiencies(V, n, rng)
    return {"eff": out}


def main(scale: str = "default", out_dir="figures", jobs: int = 1):
    cfg = common.load_config(NAME, scale, keys=("N", "d", "budgets", "instances"))
    eff = common.cached(NAME, cfg, lambda: compute(cfg))["eff"]
    common.style()
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6), layout="constrained")
    budgets = cfg["budgets"]
    for m, name in enumerate(METHODS):
        mean = eff[:, :, m].mean(axis=1)
        lo, hi = np.quantile(eff[:, :, m], [0.05, 0.95], axis=1)
        ax.plot(budgets, mean, marker="os^vD"[m], label=name)
        ax.fill_between(budgets, lo, hi, alpha=0.12)
    ax.set(xlabel="n (design size)", ylabel="D-efficiency vs relaxed optimum",
           title=f"Exact designs, N={cfg['N']}, d={cfg['d']}, {cfg['instances']} instances")
    ax.legend(fontsize=7)
    ratio = eff[:, :, 1] / eff[:, :, 0]  # greedy / brute force
    side = {"figure": NAME, "scale": scale, "config": cfg, "seed": 0,
            "greedy_over_brute_min": float(ratio.min()),
            "greedy_over_brute_mean": float(ratio.mean()),
            "greedy_equals_brute_fraction": float(np.mean(ratio > 1 - 1e-9)),
            "exchange_over_brute_mean": float((eff[:, :, 2] / eff[:, :, 0]).mean()),
            "greedy_beats_brute": bool((ratio > 1 + 1e-9).any()),
            "mean_efficiency": {name: eff[:, :, m].mean(axis=1).tolist()
                                for m, name in enumerate(METHODS)}}
    return common.save(fig, out_dir, NAME, side)
