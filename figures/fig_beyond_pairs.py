"""Beyond one pair at a time: rankings of K responses, D/A/G criteria, and the stopping rule.

Left: K-wise Plackett–Luce rankings (sim.ranking): which prompts to have ranked — ADPO, ADPO+
(theta_hat on all logged rankings of the pool), the oracle (theta_star), a label-free D-optimal
design at theta = 0 ("d-opt") and Uniform; max logit error over every response pair of every
prompt (eq. 7's K-wise form) of the PL MLE on the chosen prompts.
Middle: pairwise Gaussian environment, greedy designs for the D, A and G criteria with the
Lemma 1 weights at theta_star (sim.design.criteria; G's targets are the unweighted phi, so it
minimizes the largest predicted logit variance), against Uniform: max logit error of the MLE.
Right: which pair to compare and repeated labels — the ``prompts`` environment (every pair of K
responses of M prompts, sim.envs.prompts_env), APO, ADPO+ and Uniform run by the runner's
``run_cell`` with no constraint, at most one pair per prompt (``max_per_prompt = 1``), and with
replacement (``replace``: a repeat is a fresh label from theta_true); max logit error of the MLE.
Table in the sidecar: labels needed before the largest predicted logit sd falls below a target
(sim.stopping), for APO, ADPO and Uniform.
"""

from __future__ import annotations

import numpy as np

from figures import common
from sim.design.criteria import greedy_criterion
from sim.dpo import dpo_weights, fit_dpo
from sim.envs import gaussian_env
from sim.experiment import run_cell
from sim.metrics import max_logit_error
from sim.ranking import ranking_env
from sim.ranking_select import RANKING_METHODS, run_ranking_cell
from sim.selectors import LabelOracle, make_selector
from sim.stopping import select_until

NAME = "beyond_pairs"
CRITERIA = ("d", "a", "g", "uniform")
STOP_METHODS = ("apo", "adpo", "uniform")
POOL_METHODS = ("apo", "adpo+", "uniform")
POOL_VARIANTS = {"unlimited": {}, "one per prompt": {"max_per_prompt": 1},
                 "with replacement": {"replace": True}}


def _ranking(cfg: dict) -> dict:
    r = cfg["ranking"]
    out = {m: [] for m in RANKING_METHODS}
    for seed in range(cfg["seeds"]):
        env = ranking_env(r["M"], r["K"], r["d"], seed=seed)
        for m in RANKING_METHODS:
            rows = run_ranking_cell(env, m, tuple(r["budgets"]), seed)
            out[m].append([x["value"] for x in rows if x["metric"] == "max_logit_error"])
    return np.asarray([out[m] for m in RANKING_METHODS])  # (methods, seeds, budgets)


def _criteria(cfg: dict) -> dict:
    c = cfg["criteria"]
    out = {k: [] for k in CRITERIA}
    for seed in range(cfg["seeds"]):
        data = gaussian_env(c["N"], c["d"], seed=seed)
        w = dpo_weights(data.phi, data.b, data.beta, data.theta_star)
        n_max = max(c["budgets"])
        for k in CRITERIA:
            if k == "uniform":
                idx = np.random.default_rng(seed).permutation(data.N)[:n_max]
            else:
                idx = greedy_criterion(data.phi, n_max, criterion=k, weights=w).indices
            errs = []
            for n in c["budgets"]:
                th = fit_dpo(data.phi[idx[:n]], data.b[idx[:n]], data.beta, data.s[idx[:n]],
                             fit_ridge=1e-3).theta
                errs.append(max_logit_error(data.phi, th, data.theta_star))
            out[k].append(errs)
    return np.asarray([out[k] for k in CRITERIA])  # (criteria, seeds, budgets)


def _stop(cfg: dict) -> dict:
    s = cfg["stop"]
    out = {m: np.zeros((cfg["seeds"], len(s["targets"]))) for m in STOP_METHODS}
    for seed in range(cfg["seeds"]):
        data = gaussian_env(s["N"], s["d"], seed=seed)
        for m in STOP_METHODS:
            for j, target in enumerate(s["targets"]):
                res = select_until(make_selector(m, data, seed=seed), LabelOracle(data.s), target,
                                   data.N, check_every=s["check_every"])
                out[m][seed, j] = len(res.indices) if res.stopped else np.nan
    return np.asarray([out[m] for m in STOP_METHODS])  # (methods, seeds, targets)


def _pools(cfg: dict) -> np.ndarray:
    p = cfg["pools"]
    env = {"kind": "prompts", "M": p["M"], "K": p["K"], "d": p["d"]}
    out = np.zeros((len(POOL_METHODS), len(POOL_VARIANTS), cfg["seeds"], len(p["budgets"])))
    for seed in range(cfg["seeds"]):
        for i, m in enumerate(POOL_METHODS):
            for j, opts in enumerate(POOL_VARIANTS.values()):
                method = {"name": m, **opts}
                if m != "uniform":
                    method["n_candidates"] = p["n_candidates"]
                rows = run_cell(env, method, seed, p["budgets"])
                out[i, j, seed] = [r["value"] for r in rows if r["metric"] == "max_logit_error"]
    return out  # (methods, variants, seeds, budgets)


def compute(cfg: dict) -> dict:
    return {"ranking": _ranking(cfg), "criteria": _criteria(cfg), "stop": _stop(cfg),
            "pools": _pools(cfg)}


def main(scale: str = "default", out_dir="figures", jobs: int = 1):
    cfg = common.load_config(NAME, scale)
    res = common.cached(NAME, cfg, lambda: compute(cfg))
    common.style()
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 3.6), layout="constrained")
    for ax, key, sub, names in ((axes[0], "ranking", cfg["ranking"], RANKING_METHODS),
                                (axes[1], "criteria", cfg["criteria"], CRITERIA)):
        for m in names:
            v = np.asarray(res[key][names.index(m)])
            mean, half = np.transpose([common.mean_band(col) for col in v.T])
            lo, hi = mean - half, mean + half
            label = m if key == "ranking" else (f"greedy {m.upper()}" if m != "uniform" else m)
            if m == "adpo+":
                label += " (θ̂ on all logged rankings)"
            ax.plot(sub["budgets"], mean, marker="o", ms=3, label=label)
            ax.fill_between(sub["budgets"], lo, hi, alpha=0.12)
        ax.set(xscale="log", yscale="log", xlabel="n (labels)", ylabel="max logit error")
        ax.legend(fontsize=7)
    r, c = cfg["ranking"], cfg["criteria"]
    axes[0].set_title(f"Rankings: M={r['M']} prompts, K={r['K']}, d={r['d']}", fontsize=9)
    axes[1].set_title(f"Criteria (weights at θ*): N={c['N']}, d={c['d']}", fontsize=9)
    p = cfg["pools"]
    for i, m in enumerate(POOL_METHODS):
        for j, (variant, ls) in enumerate(zip(POOL_VARIANTS, ("-", "--", ":"))):
            v = np.asarray(res["pools"][i][j])
            mean, half = np.transpose([common.mean_band(col) for col in v.T])
            axes[2].plot(p["budgets"], mean, ls=ls, marker="o", ms=3, color=f"C{i}",
                         label=f"{m}, {variant}")
    axes[2].set(xscale="log", yscale="log", xlabel="n (labels)", ylabel="max logit error")
    axes[2].legend(fontsize=6, ncol=1)
    axes[2].set_title(f"Which pair / repeats: M={p['M']} prompts, K={p['K']}, d={p['d']}",
                      fontsize=9)

    def curves(key, names):
        return {m: np.asarray(res[key][j]).mean(axis=0).tolist() for j, m in enumerate(names)}

    stop = {m: {"targets": cfg["stop"]["targets"],
                "mean_n": np.nanmean(res["stop"][j], axis=0).tolist(),
                "stopped_fraction": np.mean(np.isfinite(res["stop"][j]), axis=0).tolist()}
            for j, m in enumerate(STOP_METHODS)}
    side = {"figure": NAME, "scale": scale, "config": cfg,
            "ranking_max_logit_error": curves("ranking", RANKING_METHODS),
            "criteria_max_logit_error": curves("criteria", CRITERIA),
            "stop": stop,
            "pools_max_logit_error": {
                m: {variant: np.asarray(res["pools"][i][j]).mean(axis=0).tolist()
                    for j, variant in enumerate(POOL_VARIANTS)}
                for i, m in enumerate(POOL_METHODS)},
            "pools_sem": {
                m: {variant: (np.asarray(res["pools"][i][j]).std(axis=0, ddof=1)
                              / np.sqrt(cfg["seeds"])).tolist()
                    for j, variant in enumerate(POOL_VARIANTS)}
                for i, m in enumerate(POOL_METHODS)}}
    return common.save(fig, out_dir, NAME, side)
