"""Figure 4 analogue: ADPO and ADPO+ with alpha = 0 (dashed) and alpha = 3 (solid).

The paper: alpha = 0 "has no major impact on our trends as the number of data points n
increases". The sidecar gives the ratio of the alpha = 0 to the alpha = 3 mean at each n.
"""

from __future__ import annotations

from figures import common


def main(scale: str = "default", out_dir="figures", jobs: int = 1):
    sweep, cfg = common.load_sweep_config("paper_fig4_alpha", scale, common.SELECTION_OPTIONS)
    budgets = common.sweep_budgets(sweep)
    df = common.run_sweep("paper_fig4_alpha", sweep, jobs=jobs)
    summary = common.summarize(df)
    common.style()
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(cfg["metrics"]), figsize=(11, 3.3), squeeze=False, layout="constrained")
    for c, metric in enumerate(cfg["metrics"]):
        ax = axes[0, c]
        common.plot_curves(ax, summary, metric)
        for line in ax.get_lines():
            if "a=0" in line.get_label():
                line.set_linestyle("--")
        ax.set_title(common.METRIC_LABELS[metric])
    axes[0, -1].legend(fontsize=7)
    fig.suptitle(f"Figure 4 analogue: alpha = 0 (dashed) vs 3 (solid), digits, "
                 f"{len(sweep.seeds)} seeds, scale={scale}", fontsize=9)
    ratios = {}
    for name in ("adpo+", "adpo"):
        for metric in cfg["metrics"]:
            a0 = summary[(summary.method == f"{name} a=0") & (summary.metric == metric)]
            a3 = summary[(summary.method == f"{name} a=3") & (summary.metric == metric)]
            ratios[f"{name}/{metric}"] = dict(zip(a0.n.tolist(),
                                                  (a0["mean"].to_numpy() / a3["mean"].to_numpy()).tolist()))
    side = {"figure": "paper_fig4_alpha", "scale": scale, "seeds": len(sweep.seeds),
            "budgets": budgets, "env": sweep.envs[0], "ratio_alpha0_over_alpha3": ratios}
    return common.save(fig, out_dir, "paper_fig4_alpha", side)
