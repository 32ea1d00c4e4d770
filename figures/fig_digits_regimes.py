"""The digits recipe in four regimes (rows) x three metrics (columns), every method.

A pilot of the paper's recipe found nearly separable labels and showed that which method wins
depends on the ridge of the final fit and on the label noise. This figure makes those regimes
visible; its sidecar gives the curves and, per regime, the final means and the n at which ADPO+
first matches Uniform's and APO's metrics at n_max. ``N`` is the pool a method selects from (the
paper's N); ``holdout`` more pairs, redrawn per seed, are never selectable and are evaluated on
(``heldout_*`` metrics).
"""

from __future__ import annotations

from figures import common
from figures.fig_paper_fig1 import method_configs
from sim.runner import pow2_budgets


def regime_envs(cfg):
    envs = []
    for r in cfg["regimes"]:
        ridge = r["theta_bar_ridge"]
        if ridge == "N/10":
            ridge = (cfg["N"] + cfg["holdout"]) / 10  # the ridge per row of theta_bar's fit
        envs.append({"kind": "digits", "N": cfg["N"] + cfg["holdout"], "holdout": cfg["holdout"],
                     "feature_scale": r["feature_scale"], "theta_bar_ridge": float(ridge),
                     "fit_ridge": float(r["fit_ridge"]), "label": r["label"]})
    return envs


def main(scale: str = "default", out_dir="figures", jobs: int = 1):
    cfg = common.load_config("digits_regimes", scale)
    budgets = pow2_budgets(cfg["n_min"], cfg["n_max"])
    envs = regime_envs(cfg)
    df = common.run_sweep("digits_regimes", envs=envs, methods=method_configs(cfg),
                          seeds=range(cfg["seeds"]), budgets=budgets, jobs=jobs)
    summary = common.summarize(df)
    common.style()
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(envs), len(cfg["metrics"]),
                             figsize=(3.6 * len(cfg["metrics"]), 2.9 * len(envs)),
                             squeeze=False, layout="constrained")
    side = {"figure": "digits_regimes", "scale": scale, "seeds": cfg["seeds"],
            "budgets": budgets, "envs": envs, "seen": common.SEEN,
            "curves": common.curves(summary, cfg["metrics"]), "env_facts": common.env_facts(df),
            "regimes": {}}
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
    fig.suptitle(f"Digits recipe by regime ({cfg['seeds']} seeds, N={cfg['N']}, scale={scale})",
                 fontsize=9)
    return common.save(fig, out_dir, "digits_regimes", side)
