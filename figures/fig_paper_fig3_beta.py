"""Figure 3 analogue: the comparison of Figure 1 on the digits recipe at beta = 1, 2, 5.

The paper reports "improvements in both settings" (beta = 2 and 5) for ADPO / ADPO+.
"""

from __future__ import annotations

from figures import common


def main(scale: str = "default", out_dir="figures", jobs: int = 1):
    sweep, cfg = common.load_sweep_config("paper_fig3_beta", scale, common.SELECTION_OPTIONS)
    budgets = common.sweep_budgets(sweep)
    envs = list(sweep.envs)
    df = common.run_sweep("paper_fig3_beta", sweep, jobs=jobs)
    summary = common.summarize(df)
    common.style()
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(envs), len(cfg["metrics"]), figsize=(11, 3.0 * len(envs)),
                             squeeze=False, layout="constrained")
    side = {"figure": "paper_fig3_beta", "scale": scale, "seeds": len(sweep.seeds), "budgets": budgets,
            "envs": envs, "final_means": {}}
    for r, env in enumerate(e["label"] for e in envs):
        for c, metric in enumerate(cfg["metrics"]):
            common.plot_curves(axes[r, c], summary[summary.env == env], metric)
            axes[r, c].set_title(f"{env}: {common.METRIC_LABELS[metric]}")
        last = summary[(summary.env == env) & (summary.n == budgets[-1])]
        side["final_means"][env] = {f"{m}/{k}": v for m, k, v in
                                    zip(last.method, last.metric, last["mean"])}
    axes[0, -1].legend(fontsize=7)
    fig.suptitle(f"Figure 3 analogue: beta sweep ({len(sweep.seeds)} seeds, scale={scale})",
                 fontsize=9)
    return common.save(fig, out_dir, "paper_fig3_beta", side)
