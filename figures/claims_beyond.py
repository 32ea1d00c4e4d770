"""Claims of the README's "beyond one pair" and LLM-on-GPU statements, from their sidecars.

Registered in :data:`figures.claims.PROVIDERS` (see :mod:`figures.claims` for the mechanism):
``beyond-ranking`` / ``beyond-criteria`` / ``beyond-stop`` read ``figures/beyond_pairs.json``,
``llm-dpo-gpu`` reads the paper-scale GPU run ``figures/gpu/llm_dpo.json``.
"""

from __future__ import annotations

import numpy as np

from figures.claims import Sidecars, claim, num

RANK_NAMES = {"adpo": "ADPO", "adpo+": "ADPO⁺ (θ̂ on all logged rankings)", "oracle": "oracle",
              "d-opt": "label-free D-optimal", "uniform": "Uniform"}


def _order(curves: dict, at: int = -1) -> list[tuple[str, float]]:
    return sorted(((m, float(v[at])) for m, v in curves.items()), key=lambda kv: kv[1])


def _listing(pairs, names) -> str:
    return ", ".join(f"{names.get(m, m)} {num(v)}" for m, v in pairs)


@claim("beyond-ranking")
def beyond_ranking(sc: Sidecars) -> str:
    cfg = sc.get("beyond_pairs", "config")
    curves = sc.get("beyond_pairs", "ranking_max_logit_error")
    r = cfg["ranking"]
    first, last = _order(curves, 0), _order(curves, -1)
    return (f"Rankings (M = {r['M']} prompts, K = {r['K']}, d = {r['d']}, {cfg['seeds']} seeds, "
            f"{cfg['scale']} scale): mean max logit error at n = {r['budgets'][-1]}: "
            f"{_listing(last, RANK_NAMES)}; at n = {r['budgets'][0]}: "
            f"{_listing(first, RANK_NAMES)}. Lowest at n = {r['budgets'][-1]}: "
            f"{RANK_NAMES.get(last[0][0], last[0][0])}.")


@claim("beyond-criteria")
def beyond_criteria(sc: Sidecars) -> str:
    cfg = sc.get("beyond_pairs", "config")
    curves = sc.get("beyond_pairs", "criteria_max_logit_error")
    c = cfg["criteria"]
    names = {"d": "greedy D", "a": "greedy A", "g": "greedy G", "uniform": "Uniform"}
    parts = [f"n = {n}: " + _listing(_order(curves, j), names) for j, n in enumerate(c["budgets"])
             if j in (0, len(c["budgets"]) // 2, len(c["budgets"]) - 1)]
    wins = sum(min(curves, key=lambda m: curves[m][j]) == "g" for j in range(len(c["budgets"])))
    return (f"Criteria (Gaussian pairs, N = {c['N']}, d = {c['d']}, weights at θ*, "
            f"{cfg['seeds']} seeds): mean max logit error, " + "; ".join(parts)
            + f". Greedy G is lowest at {wins} of {len(c['budgets'])} budgets.")


@claim("beyond-stop")
def beyond_stop(sc: Sidecars) -> str:
    cfg = sc.get("beyond_pairs", "config")
    stop = sc.get("beyond_pairs", "stop")
    s = cfg["stop"]
    rows = []
    for j, t in enumerate(s["targets"]):
        got = ", ".join(f"{m} {num(v['mean_n'][j], 3)}"
                        + ("" if v["stopped_fraction"][j] == 1 else
                           f" ({num(100 * v['stopped_fraction'][j], 2)}% of seeds stopped)")
                        for m, v in stop.items())
        rows.append(f"sd < {num(t, 2)}: {got}")
    return (f"Stopping rule (Gaussian pairs, N = {s['N']}, d = {s['d']}, checks every "
            f"{s['check_every']} labels, {cfg['seeds']} seeds), mean labels until the largest "
            "predicted logit sd falls below the target: " + "; ".join(rows) + ".")


@claim("llm-dpo-gpu")
def llm_dpo_gpu(sc: Sidecars) -> str:
    g = lambda *k: sc.get("gpu/llm_dpo", *k)  # noqa: E731
    cfg, summ = g("config"), g("summary")
    budgets = [str(b) for b in cfg["budgets"]]
    top = budgets[-1]
    acc = {m: summ[m][top]["net_accuracy"] for m in summ}
    best = max(acc, key=lambda m: acc[m]["mean"])
    uni = acc["uniform"]
    overlap = all(abs(acc[m]["mean"] - uni["mean"]) <= acc[m]["half_95"] + uni["half_95"]
                  for m in acc)
    listing = ", ".join(f"{m} {num(v['mean'], 3)} ± {num(v['half_95'], 2)}"
                        for m, v in sorted(acc.items(), key=lambda kv: -kv[1]["mean"]))
    corr = np.mean([c["corr"] for c in g("cells") if c["n"] == int(top)])
    return (f"Paper scale on an NVIDIA H200 ({g('N')} Chit Chat pairs with simulated labels, "
            f"{cfg['seeds']} seeds, top {cfg['top_k_blocks']} block(s) trained, {cfg['steps']} "
            f"steps): held-out implicit-reward accuracy of the DPO-trained network at n = {top}: "
            f"{listing} (95% t half-widths). Highest: {best}; "
            + ("every method's interval overlaps Uniform's: no method separates from Uniform"
               if overlap else "some intervals do not overlap Uniform's")
            + f". Mean correlation of the log-linear logits with the network's implicit rewards "
              f"on held-out pairs at n = {top}: {num(corr, 2)}.")


def _versus(a: float, sa: float, b: float, sb: float) -> str:
    """'higher' / 'lower' when a and b differ by more than 2 standard errors, else 'within noise'."""
    gap = 2.0 * float(np.hypot(sa, sb))
    return "higher" if a - b > gap else "lower" if b - a > gap else "within noise of"


@claim("beyond-pools")
def beyond_pools(sc: Sidecars) -> str:
    cfg = sc.get("beyond_pairs", "config")
    means, sems = sc.get("beyond_pairs", "pools_max_logit_error"), sc.get("beyond_pairs", "pools_sem")
    p = cfg["pools"]
    top = p["budgets"][-1]
    parts, verdicts = [], []
    for m, by in means.items():
        cells = ", ".join(f"{v} {num(by[v][-1])} ± {num(sems[m][v][-1], 2)}" for v in by)
        parts.append(f"{m}: {cells}")
        for v in by:
            if v != "unlimited":
                verdicts.append(f"{m} {v} is {_versus(by[v][-1], sems[m][v][-1], by['unlimited'][-1], sems[m]['unlimited'][-1])} unlimited")
    return (f"Which pair to compare and repeated labels (prompts pool, M = {p['M']} prompts × "
            f"K = {p['K']} responses = {p['M'] * p['K'] * (p['K'] - 1) // 2} pairs, d = {p['d']}, "
            f"{cfg['seeds']} seeds): mean max logit error ± s.e. at n = {top}: "
            + "; ".join(parts) + ". Differences beyond 2 s.e.: " + "; ".join(verdicts) + ".")
