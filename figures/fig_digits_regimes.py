"""The digits recipe in four regimes (rows) x three metrics (columns), every method.

A pilot of the paper's recipe found nearly separable labels and showed that which method wins
depends on the ridge of the final fit and on the label noise. This figure makes those regimes
visible; its sidecar gives, per regime, the final means and the n at which ADPO+ first matches
Uniform's and APO's max logit error at n_max.
"""

from __future__ import annotations

from figures import common
from figures.fig_paper_fig1 import OPTIONS


def main(scale: str = "default", out_dir="figures", jobs: int = 1):
    sweep, cfg = common.load_sweep_config("digits_regimes", scale, OPTIONS)
    budgets = common.sweep_budgets(sweep)
    envs = list(sweep.envs)
    df = common.run_sweep("digits_regimes", sweep, jobs=jobs)
    summary = common.summarize(df)
    common.style()
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(envs), len(cfg["metrics"]), figsize=(11, 2.9 * len(envs)),
                             squeeze=False, layout="constrained")
    side = {"figure": "digits_regimes", "scale": scale, "seeds": len(sweep.seeds),
            "budgets": budgets, "envs": envs, "regimes": {}}
    for r, env in enumerate(e["label"] for e in envs):
        for c, metric in enumerate(cfg["metrics"]):
            common.plot_curves(axes[r, c], summary[summary.env == env], metric)
            axes[r, c].set_title(f"{env[:1]}: {common.METRIC_LABELS[metric]}", fontsize=8)
        axes[r, 0].annotate(env, (0.01, 1.12), xycoords="axes fraction", fontsize=8,
                            weight="bold")
        last = summary[(summary.env == env) & (summary.n == budgets[-1])]
        final = {f"{m}/{k}": v for m, k, v in zip(last.method, last.metric, last["mean"])}
        info = {"final_means": final}
        for base in ("uniform", "apo"):
            for metric in cfg["metrics"]:
                info[f"adpo+_reaches_{base}_{metric}_at_n_max"] = common.n_to_reach(
                    summary, env, "adpo+", metric, final[f"{base}/{metric}"])
        side["regimes"][env] = info
    axes[0, -1].legend(fontsize=7)
    fig.suptitle(f"Digits recipe by regime ({len(sweep.seeds)} seeds, N={envs[0]['N']}, "
                 f"scale={scale})",
                 fontsize=9)
    return common.save(fig, out_dir, "digits_regimes", side)
