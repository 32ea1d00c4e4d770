"""Design figure: wall time of the design solvers as N and d grow.

Greedy (n = 4 d picks, exact argmax with rank-one updates), Frank-Wolfe with away steps to
efficiency 1 - 1e-6, and cvxpy/Clarabel on the sizes where it runs in seconds. One random
Gaussian instance per size (seed 0); each time is a warm-up then the median of 3 runs
(``bench.common.median_time``, the benchmarks' timing rule); every solve's certified efficiency
and the load average are in the sidecar.
"""

from __future__ import annotations

import os

import numpy as np

from bench.common import median_time
from figures import common
from sim.design import greedy_select
from sim.design.relaxed import cvxpy_design, fw_design

NAME = "design_scaling"
KEYS = ("Ns", "d_fixed", "ds", "N_fixed", "cvxpy_max_N", "cvxpy_max_d")
SOLVERS = ("greedy (n = 4d)", "Frank-Wolfe (eff. 1-1e-6)", "cvxpy / Clarabel")


def one(N, d, cvxpy_ok):
    V = np.random.default_rng(0).standard_normal((N, d))
    tg = median_time(greedy_select, V, min(N, 4 * d), gamma=1.0).seconds
    f = median_time(fw_design, V, efficiency=1 - 1e-6)
    tc, eff_c = np.nan, np.nan
    if cvxpy_ok:
        c = median_time(cvxpy_design, V)
        tc, eff_c = c.seconds, c.result.efficiency
    return [tg, f.seconds, tc, f.result.efficiency, eff_c]


def compute(cfg):
    load = [os.getloadavg()]
    by_n = [one(N, cfg["d_fixed"], N <= cfg["cvxpy_max_N"] and cfg["d_fixed"] <= cfg["cvxpy_max_d"])
            for N in cfg["Ns"]]
    by_d = [one(cfg["N_fixed"], d, cfg["N_fixed"] <= cfg["cvxpy_max_N"] and d <= cfg["cvxpy_max_d"])
            for d in cfg["ds"]]
    load.append(os.getloadavg())
    return {"by_n": np.array(by_n), "by_d": np.array(by_d), "load_average": np.array(load)}


def main(scale: str = "default", out_dir="figures", jobs: int = 1):
    cfg = common.load_config(NAME, scale, keys=KEYS)
    res = common.cached(NAME, cfg, lambda: compute(cfg))
    common.style()
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), layout="constrained")
    for ax, key, xs, xlabel in ((axes[0], "by_n", cfg["Ns"], f"N (d = {cfg['d_fixed']})"),
                                (axes[1], "by_d", cfg["ds"], f"d (N = {cfg['N_fixed']})")):
        for j, name in enumerate(SOLVERS):
            y = res[key][:, j]
            ok = np.isfinite(y)
            ax.plot(np.asarray(xs)[ok], y[ok], marker="os^"[j], label=name)
        ax.set(yscale="log", xlabel=xlabel, ylabel="seconds")
        ax.set_xscale("log", base=10 if key == "by_n" else 2)
    axes[0].legend(fontsize=7)
    fig.suptitle("D-optimal design solvers: wall time (median of 3 after a warm-up)", fontsize=9)
    side = {"figure": NAME, "scale": scale, "config": cfg, "seed": 0,
            "columns": ["greedy_s", "fw_s", "cvxpy_s", "fw_efficiency", "cvxpy_efficiency"],
            "by_n": res["by_n"].tolist(), "by_d": res["by_d"].tolist(), "timing": "warm-up, "
            "then the median of 3", "load_average_start_end": res["load_average"].tolist()}
    return common.save(fig, out_dir, NAME, side)
