"""Design figure: wall time of the design solvers as N and d grow.

Greedy (n = 4 d picks, exact argmax with rank-one updates), Frank-Wolfe with away steps to
efficiency 1 - 1e-6, and cvxpy/Clarabel on the sizes where it runs in seconds, each on the rows of
one gaussian pool per size (seed 0). Cells are declared in ``fig_design_scaling.toml`` in the
runner's schema (``cell = "design"``) and run by :func:`sim.experiment.run_design_cell`; each
method has ``repeats = 3``, so every time is a warm-up then the median of 3 runs
(:func:`sim.timing.median_time`, the benchmarks' timing rule) and the cells are measurements:
the runner reruns them on every run, in this process, one at a time, and never serves a stored
time. Every solve's certified efficiency and the load average are in the sidecar.
"""

from __future__ import annotations

import os
import pathlib

import numpy as np

from figures import common
from sim.experiment import label

NAME = "design_scaling"
TIMED = True  # its sidecar holds wall-clock times: python -m figures runs it alone (figures.driver)
#: The ``[figure]`` options: the panels, time vs N (one env per N of ``Ns``, d = d_fixed) and
#: time vs d (one env per d of ``ds``, N = N_fixed).
OPTIONS = {"Ns": [], "d_fixed": 16, "ds": [], "N_fixed": 1000}


def panel(sweep, points) -> list[dict]:
    """The env of each (N, d) of ``points``; ValueError unless exactly one env has that size."""
    out = []
    for N, d in points:
        hit = [e for e in sweep.envs if e.get("N") == N and e.get("d") == d]
        if len(hit) != 1:
            raise ValueError(f"env: the figure needs exactly one env with N = {N}, d = {d} "
                             f"(its [figure] Ns/ds), got {len(hit)}")
        out.append(hit[0])
    return out


def table(df, sweep, envs) -> tuple[list[str], np.ndarray]:
    """(columns, rows): per env of ``envs``, every method's ``seconds`` (``<name>_s``), then
    every relaxed method's ``certificate`` (``<name>_efficiency``); NaN where a cell has no
    rows (max_N / max_d)."""
    from sim.design.solvers import SOLVERS

    methods = [(m["name"], label(m, "name")) for m in sweep.methods]
    cols = [(f"{n}_s", lab, "seconds") for n, lab in methods]
    cols += [(f"{n}_efficiency", lab, "certificate") for n, lab in methods
             if "relaxed" in SOLVERS.get(n).tags]
    val = df.set_index(["env", "method", "metric"])["value"]
    rows = [[float(val.get((label(e, "kind"), lab, metric), np.nan)) for _, lab, metric in cols]
            for e in envs]
    return [c for c, _, _ in cols], np.array(rows)


def main(scale: str = "default", out_dir="figures", jobs: int = 1) -> list[pathlib.Path]:
    sweep, opts = common.load_sweep_config(NAME, scale, OPTIONS)
    by_n = panel(sweep, [(N, opts["d_fixed"]) for N in opts["Ns"]])
    by_d = panel(sweep, [(opts["N_fixed"], d) for d in opts["ds"]])
    load = [os.getloadavg()]
    df = common.run_sweep(NAME, sweep, jobs=jobs)  # measurements: always run here, in turn
    load.append(os.getloadavg())
    cols, rows_n = table(df, sweep, by_n)
    _, rows_d = table(df, sweep, by_d)
    cfg = {**opts, "scale": scale}
    styles = common.sweep_styles(sweep)
    common.style()
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), layout="constrained")
    for ax, rows, xs, xlabel, base in (
            (axes[0], rows_n, cfg["Ns"], f"N (d = {cfg['d_fixed']})", 10),
            (axes[1], rows_d, cfg["ds"], f"d (N = {cfg['N_fixed']})", 2)):
        for j, m in enumerate(sweep.methods):
            lab = label(m, "name")
            y = rows[:, j]
            ok = np.isfinite(y)
            color, marker = styles[lab]
            ax.plot(np.asarray(xs)[ok], y[ok], marker=marker, color=color, label=lab)
        ax.set(yscale="log", xlabel=xlabel, ylabel="seconds")
        ax.set_xscale("log", base=base)
    axes[0].legend(fontsize=7)
    fig.suptitle("D-optimal design solvers: wall time (median of 3 after a warm-up)", fontsize=9)
    side = {"figure": NAME, "scale": scale, "config": cfg, "seed": 0,
            "envs": list(sweep.envs), "methods": list(sweep.methods),
            "columns": cols, "by_n": rows_n.tolist(), "by_d": rows_d.tolist(),
            "timing": "warm-up, then the median of 3; measured on this run (never cached)",
            "load_average_start_end": load}
    return common.save(fig, out_dir, NAME, side)
