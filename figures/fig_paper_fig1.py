"""Figure 1 analogue: every method's max logit error, mean logit error and error rate vs n.

Rows: the digits recipe of sec. 6.1 and the gaussian environment; mean over seeds with 95%
t-bands. The sidecar records, per environment, the n at which ADPO+ first reaches Uniform's and
APO's max logit error at n_max (the paper: < 2^13 vs Uniform's 2^15, < 2^14 vs APO's 2^15).
"""

from __future__ import annotations

from figures import common

OPTIONS = {"metrics": ["max_logit_error", "mean_logit_error", "error_rate"]}


def main(scale: str = "default", out_dir="figures", jobs: int = 1):
    sweep, cfg = common.load_sweep_config("paper_fig1", scale, OPTIONS)
    budgets = common.sweep_budgets(sweep)
    df = common.run_sweep("paper_fig1", sweep, jobs=jobs)
    summary = common.summarize(df)
    common.style()
    import matplotlib.pyplot as plt

    envs = [e["label"] for e in sweep.envs]
    fig, axes = plt.subplots(len(envs), len(cfg["metrics"]), figsize=(11, 3.2 * len(envs)),
                             squeeze=False, layout="constrained")
    for r, env in enumerate(envs):
        for c, metric in enumerate(cfg["metrics"]):
            ax = axes[r, c]
            common.plot_curves(ax, summary[summary.env == env], metric)
            ax.set_title(f"{env}: {common.METRIC_LABELS[metric]}")
    axes[0, -1].legend(fontsize=7)
    adpo = next(m for m in sweep.methods if m["name"] == "adpo+")
    fig.suptitle(f"Figure 1 analogue (beta=1, alpha={adpo['alpha']}, m={adpo['n_candidates']}, "
                 f"{len(sweep.seeds)} seeds, scale={scale})", fontsize=9)
    side = {"figure": "paper_fig1", "scale": scale, "seeds": len(sweep.seeds), "budgets": budgets,
            "envs": list(sweep.envs), "methods": list(sweep.methods), "claims": {}}
    n_max = budgets[-1]
    for env in envs:
        at_max = summary[(summary.env == env) & (summary.n == n_max)]
        final = {f"{m}/{k}": v for m, k, v in zip(at_max.method, at_max.metric, at_max["mean"])}
        reach = {}
        for base in ("uniform", "apo"):
            target = final.get(f"{base}/max_logit_error")
            if target is not None:
                reach[f"adpo+_reaches_{base}_at_n_max"] = common.n_to_reach(
                    summary, env, "adpo+", "max_logit_error", target)
        side["claims"][env] = {"final_means": final, **reach}
    return common.save(fig, out_dir, "paper_fig1", side)
