"""Design figure: wall time of the design solvers as N and d grow.

Greedy (n = 4 d picks, exact argmax with rank-one updates), Frank-Wolfe with away steps to
efficiency 1 - 1e-6, and cvxpy/Clarabel on the sizes where it runs in seconds. One random
Gaussian instance per size (seed 0); every solve's certified efficiency is in the sidecar.
"""

from __future__ import annotations

import time

import numpy as np

from figures import common
from sim.design import greedy_select
from sim.design.relaxed import cvxpy_design, fw_design

NAME = "design_scaling"
SOLVERS = ("greedy (n = 4d)", "Frank-Wolfe (eff. 1-1e-6)", "cvxpy / Clarabel")


def _timed(fn):
    t0 = time.perf_counter()
    res = fn()
    return time.perf_counter() - t0, res


def one(N, d, cvxpy_ok):
    V = np.random.default_rng(0).standard_normal((N, d))
    tg, _ = _timed(lambda: greedy_select(V, min(N, 4 * d), gamma=1.0))
    tf, fw = _timed(lambda: fw_design(V, efficiency=1 - 1e-6))
    tc, eff_c = np.nan, np.nan
    if cvxpy_ok:
        tc, cv = _timed(lambda: cvxpy_design(V))
        eff_c = cv.efficiency
    return [tg, tf, tc, fw.efficiency, eff_c]


def compute(cfg):
    by_n = [one(N, cfg["d_fixed"], N <= cfg["cvxpy_max_N"] and cfg["d_fixed"] <= cfg["cvxpy_max_d"])
            for N in cfg["Ns"]]
    by_d = [one(cfg["N_fixed"], d, cfg["N_fixed"] <= cfg["cvxpy_max_N"] and d <= cfg["cvxpy_max_d"])
            for d in cfg["ds"]]
    return {"by_n": np.array(by_n), "by_d": np.array(by_d)}


def main(scale: str = "default", out_dir="figures", jobs: int = 1):
    cfg = common.load_config(NAME, scale)
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
    fig.suptitle("D-optimal design solvers: wall time (one 2-core run)", fontsize=9)
    side = {"figure": NAME, "scale": scale, "config": cfg, "seed": 0,
            "columns": ["greedy_s", "fw_s", "cvxpy_s", "fw_efficiency", "cvxpy_efficiency"],
            "by_n": res["by_n"].tolist(), "by_d": res["by_d"].tolist()}
    return common.save(fig, out_dir, NAME, side)
