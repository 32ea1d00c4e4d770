"""Figure 1 analogue: every method's max logit error, mean logit error and error rate vs n.

Rows: the digits recipe of sec. 6.1 and the gaussian environment; columns: the paper's metrics
over the pool (in-sample) and the same metrics over held-out pairs never available for selection
(redrawn per seed). Mean over seeds with 95% t-bands. Next to the paper's ADPO+ (theta_hat on
all logged labels of the pool, i.e. on the labels that define theta_star) runs ``adpo+fair``
(theta_hat on an independent label draw). The sidecar records the curves and, per environment,
the n at which ADPO+ / fair ADPO+ first reach Uniform's and APO's max logit error at n_max, in
sample and held out (the paper: < 2^13 vs Uniform's 2^15, < 2^14 vs APO's 2^15).
"""

from __future__ import annotations

from figures import common
from sim.runner import pow2_budgets


def method_configs(cfg, **over):
    out = []
    for name in cfg["methods"]:
        m = {"name": name, "label": name}
        if name != "uniform":
            m["n_candidates"] = cfg["n_candidates"]
        if name in ("adpo", "adpo+", "adpo+fair"):
            m["alpha"] = cfg["alpha"]
        if name in ("adpo", "pmc"):
            m["refit"] = cfg["refit"]
        m.update(over)
        out.append(m)
    return out


def main(scale: str = "default", out_dir="figures", jobs: int = 1):
    cfg = common.load_config("paper_fig1", scale)
    budgets = pow2_budgets(cfg["n_min"], cfg["n_max"])
    df = common.run_sweep("paper_fig1", envs=cfg["envs"], methods=method_configs(cfg),
                          seeds=range(cfg["seeds"]), budgets=budgets, jobs=jobs)
    summary = common.summarize(df)
    common.style()
    import matplotlib.pyplot as plt

    envs = [e["label"] for e in cfg["envs"]]
    fig, axes = plt.subplots(len(envs), len(cfg["metrics"]),
                             figsize=(3.6 * len(cfg["metrics"]), 3.2 * len(envs)),
                             squeeze=False, layout="constrained")
    for r, env in enumerate(envs):
        for c, metric in enumerate(cfg["metrics"]):
            ax = axes[r, c]
            common.plot_curves(ax, summary[summary.env == env], metric)
            ax.set_title(f"{env}: {common.METRIC_LABELS[metric]}")
    axes[0, -1].legend(fontsize=7)
    fig.suptitle(f"Figure 1 analogue (beta=1, alpha={cfg['alpha']}, m={cfg['n_candidates']}, "
                 f"{cfg['seeds']} seeds, scale={scale})", fontsize=9)
    side = {"figure": "paper_fig1", "scale": scale, "seeds": cfg["seeds"], "budgets": budgets,
            "envs": cfg["envs"], "methods": method_configs(cfg), "seen": common.SEEN,
            "curves": common.curves(summary, cfg["metrics"]), "env_facts": common.env_facts(df),
            "claims": {}}
    n_max = budgets[-1]
    for env in envs:
        at_max = summary[(summary.env == env) & (summary.n == n_max)]
        final = {f"{m}/{k}": v for m, k, v in zip(at_max.method, at_max.metric, at_max["mean"])}
        reach = {}
        for meth in ("adpo+", "adpo+fair"):
            for base in ("uniform", "apo"):
                for metric in ("max_logit_error", "heldout_max_logit_error"):
                    target = final.get(f"{base}/{metric}")
                    if target is not None and f"{meth}/{metric}" in final:
                        where = "heldout_" if metric.startswith("heldout_") else ""
                        reach[f"{meth}_reaches_{base}_{where}at_n_max"] = common.n_to_reach(
                            summary, env, meth, metric, target)
        side["claims"][env] = {"final_means": final, **reach}
    return common.save(fig, out_dir, "paper_fig1", side)
