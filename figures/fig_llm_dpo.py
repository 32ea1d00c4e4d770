"""From selection to a DPO-trained LLM, judged on held-out prompts (issue 13's experiment).

Pipeline (every number from an actual run; the one LLM forward pass cached under
``results/figures/llm_dpo/`` keyed by the data and model settings):

1. pairs: ``sim.textdata.simulated_pairs`` -- real Chit Chat text, SIMULATED labels from a known
   lexicon reward (so agreement with the generating reward is measurable);
2. one forward pass of SmolLM2-135M-Instruct per sequence (:func:`sim.llm_train.build_cache`):
   the last-token final hidden state phi(x, y) (the log-linear features, as ``adpo features``),
   the reference log-prob log pi_0(y|x), and the hidden states entering the top block (the
   training cache);
3. per seed, a prompt-disjoint split (``sim.splits.group_split``, redrawn per seed) into a pool and
   held-out pairs; every method selects ``max(budgets)`` pairs from the pool with the log-linear
   features (labels revealed online; ADPO+ uses logged labels, as in the paper);
4. per budget n: (i) the log-linear DPO fit (eq. 9, ridge ``fit_ridge``) on the first n picks and
   (ii) DPO training of the top block of the network on the same n pairs (``steps`` AdamW
   steps of ``batch_size`` pairs, lr ``lr``); both judged on the held-out pairs: accuracy,
   margin, NLL (sec. 6.2), agreement with the generating reward, and the Pearson correlation
   and calibration slope between the log-linear predicted logits and the trained network's
   implicit-reward margins.

Methods, seeds and budgets are declared in the runner's schema (``[[methods]]`` tables, ``seeds``,
``budgets``; validated by :func:`figures.common.declared_cells`), but the cells are not runner
cells: every (seed, method) cell resets and DPO-trains the same loaded network on the one cached
forward pass (hidden states entering the top block, kept in memory); a runner cell is a pure
function of (env, method, seed, budgets) run in its own worker, so it would reload the network
and the training cache per cell (and hold one copy per worker), and its rows are the log-linear
fit's metrics, not a trained network's. The selection itself is the runner's protocol: each
method's ``fit_ridge`` is the figure's, as ``run_cell`` gives it the environment's.

INFERRED choices (the paper is silent; also in the sidecar): beta = 0.1 (TRL's default); phi /
RMS row norm; chosen/rejected orientation of the log-linear rows at random (``data_seed``) so
labels are not all ones; the network's reference is its own initial weights (the same pi_0 as
the log-linear b); a fixed number of training steps per run, whatever n (so small budgets see
their pairs several times).
"""

from __future__ import annotations

import json
import pathlib
import platform

import numpy as np

from sim.io import atomic_savez, atomic_write_text

from figures.common import (cache_dir, declared_cells, figure_code, load_config, mean_band,
                            method_style, save, style)

NAME = "llm_dpo"
DATA_KEYS = ("N", "n_messages", "max_chars", "scale_reward", "data_seed")
CACHE_KEYS = DATA_KEYS + ("model", "max_length", "top_k_blocks")


def _key(cfg, keys) -> str:
    """Cache key of the settings ``keys`` and the code behind the figure (sim/, the script)."""
    from sim.fingerprint import cache_key
    return cache_key({k: cfg[k] for k in keys}, code=figure_code(NAME))[:16]


def rows_and_cache(cfg: dict, lm):
    """(raw JSON rows, oriented PairRows, PairCache) of the configured pairs.

    The cache's tensors are saved once as ``cache-<key>.npz`` (hidden states concatenated, with
    their lengths) and rebuilt from it on later runs.
    """
    import torch

    from sim import llm
    from sim import llm_train as lt
    from sim import textdata as td

    raw = td.simulated_pairs(cfg["N"], scale=cfg["scale_reward"], n_messages=cfg["n_messages"],
                             max_chars=cfg["max_chars"], seed=cfg["data_seed"])
    rows = lt.oriented_rows([td.PairRow(k + 1, r["prompt"], r["response_1"], r["response_2"],
                                        r["label"]) for k, r in enumerate(raw)])
    start = lt.split_index(lm.model, cfg["top_k_blocks"])
    path = cache_dir(NAME) / f"cache-{_key(cfg, CACHE_KEYS)}.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as z:
            lens, hid = z["lengths"], z["hidden"]
            seqs, _ = llm.encode_rows(lm.tokenizer, rows, cfg["max_length"])
            cuts = np.cumsum(lens)[:-1]
            hidden = [torch.from_numpy(h.copy()) for h in np.split(hid, cuts)]
            cache = lt.PairCache(seqs, hidden, torch.from_numpy(z["ref_logp"]), start,
                                 int(z["n_truncated"]), phi=z["phi"])
        return raw, rows, cache
    cache = lt.build_cache(lm, rows, start, max_length=cfg["max_length"], progress=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_savez(path, lengths=np.array([h.shape[0] for h in cache.hidden]),
                 hidden=torch.cat(cache.hidden).float().cpu().numpy(),
                 ref_logp=cache.ref_logp.cpu().numpy(), phi=cache.phi,
                 n_truncated=np.array(cache.n_truncated))
    return raw, rows, cache


def loglinear_data(cache, cfg):
    """PreferenceData of the pairs: rows oriented at random (``data_seed``) from (chosen,
    rejected); phi / RMS row norm. Returns (data, sign) with sign = +1 where y_1 is the chosen."""
    from sim.data import PreferenceData
    sign = np.where(np.random.default_rng([cfg["data_seed"], 1]).random(cache.n_pairs) < 0.5,
                    -1.0, 1.0)
    phi = sign[:, None] * (cache.phi[0::2] - cache.phi[1::2])
    ref = cache.ref_logp.cpu().numpy()
    b = sign * (ref[0::2] - ref[1::2])
    scale = float(np.sqrt(np.mean(np.sum(phi ** 2, axis=1))))
    s = (sign > 0).astype(np.int64)
    return PreferenceData(phi=phi / scale, b=b, beta=cfg["beta"], s=s), sign


def held_out_metrics(margins: np.ndarray, true_diff: np.ndarray) -> dict:
    """accuracy / margin / NLL of (chosen - rejected) margins, and agreement with the generating
    reward difference (chosen - rejected; ties left out)."""
    from sim.llm_train import pair_metrics
    out = pair_metrics(np.stack([margins, np.zeros_like(margins)], 1), 1.0)
    keep = true_diff != 0
    out["reward_agreement"] = float(np.mean(np.sign(margins[keep]) == np.sign(true_diff[keep])))
    return out


def compute(cfg: dict) -> dict:
    import torch

    from sim import llm
    from sim import llm_train as lt
    from sim.dpo import fit_dpo
    from sim.selectors import make_selector, method_options
    from sim.splits import SPLIT_STREAM, group_split

    out_path = cache_dir(NAME) / f"runs-{_key(cfg, tuple(sorted(cfg)))}.json"
    if out_path.is_file():
        return json.loads(out_path.read_text())
    torch.set_num_threads(cfg["threads"])
    if cfg["model"] == "tiny":
        lm = llm.tiny_model(seed=0)
    else:
        lm = llm.load_model(cfg["model"], device=cfg["device"])
    raw, rows, cache = rows_and_cache(cfg, lm)
    data, sign = loglinear_data(cache, cfg)
    # generating reward of (chosen, rejected)
    r1 = np.array([r["reward_1"] for r in raw])
    r2 = np.array([r["reward_2"] for r in raw])
    lab = np.array([r["label"] for r in raw])
    true_diff = np.where(lab == 1, r1 - r2, r2 - r1)
    init = {n: p.detach().clone() for n, p in lm.model.named_parameters()
            if n in set(lt.trained_names(lm.model, cache.start))}
    tcfg = lt.TrainConfig(model=cfg["model"], top_k_blocks=cfg["top_k_blocks"],
                          beta=cfg["beta"], lr=cfg["lr"], steps=cfg["steps"],
                          batch_size=cfg["batch_size"], max_length=cfg["max_length"])
    methods, seeds, budgets = declared_cells(cfg, cfg["N"])
    n_max = max(budgets)
    cells = []
    for seed in seeds:
        split = group_split([r.prompt for r in rows], cfg["heldout"],
                            np.random.SeedSequence([seed, SPLIT_STREAM]))
        pool, test = split.train, split.test
        pool_data = data.subset(pool)
        test_seq = [int(j) for i in test for j in (2 * i, 2 * i + 1)]
        for decl in methods:
            name = decl["name"]
            opts = {k: v for k, v in decl.items() if k not in ("name", "label")}
            sel = make_selector(name, pool_data, seed=seed, **opts,
                                **method_options(name, {"fit_ridge": cfg["fit_ridge"]}))
            picks_all = pool[sel.select(n_max)]
            for n in budgets:
                picks = picks_all[:n]
                theta = fit_dpo(data.phi[picks], data.b[picks], data.beta, data.s[picks],
                                fit_ridge=cfg["fit_ridge"]).theta
                # log-linear logit of (chosen - rejected) on held-out pairs
                z = sign[test] * data.beta * (data.phi[test] @ theta - data.b[test])
                # network: fresh top block, DPO on the same pairs, held-out margins
                with torch.no_grad():
                    for name, p in lm.model.named_parameters():
                        if name in init:
                            p.copy_(init[name])
                tcfg.seed = seed
                trainer = lt.Trainer(lm, cache, picks, tcfg)
                losses = [trainer.step()["loss"] for _ in range(cfg["steps"])]
                with torch.no_grad():
                    ratio = np.concatenate([
                        (lt.policy_logp(lm.model, cache, test_seq[a:a + 32])
                         - cache.ref_logp[test_seq[a:a + 32]]).cpu().numpy()
                        for a in range(0, len(test_seq), 32)])
                m = cfg["beta"] * (ratio[0::2] - ratio[1::2])
                net = held_out_metrics(m, true_diff[test])
                ll = held_out_metrics(z, true_diff[test])
                corr = float(np.corrcoef(z, m)[0, 1]) if np.std(m) > 0 and np.std(z) > 0 \
                    else float("nan")
                slope = float(np.polyfit(z, m, 1)[0]) if np.std(z) > 0 else float("nan")
                cells.append({"seed": seed, "method": decl["label"], "n": n,
                              "net": net, "loglinear": ll, "corr": corr, "slope": slope,
                              "train_loss_first": losses[0], "train_loss_last": losses[-1],
                              "n_pool": int(pool.size), "n_heldout": int(test.size)})
    result = {"cells": cells, "N": cache.n_pairs, "d": int(data.d), "model": lm.name,
              "n_truncated": cache.n_truncated}
    out_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_path, json.dumps(result))
    return result


def summarize(res: dict, cfg: dict) -> dict:
    """Mean and 95% half-width over seeds per (method label, n) of every reported quantity."""
    out = {}
    methods, _, budgets = declared_cells(cfg, cfg["N"])
    for meth in (m["label"] for m in methods):
        for n in budgets:
            cs = [c for c in res["cells"] if c["method"] == meth and c["n"] == n]
            entry = {}
            for who in ("net", "loglinear"):
                for k in ("accuracy", "margin", "nll", "reward_agreement"):
                    m, h = mean_band(np.array([c[who][k] for c in cs]))
                    entry[f"{who}_{k}"] = {"mean": float(m), "half_95": float(h)}
            for k in ("corr", "slope"):
                m, h = mean_band(np.array([c[k] for c in cs]))
                entry[k] = {"mean": float(m), "half_95": float(h)}
            out.setdefault(meth, {})[str(n)] = entry
    return out


def method_order(summary: dict, key: str, n: int) -> list[str]:
    """Methods sorted best first by the mean of ``key`` at budget n (higher is better)."""
    return sorted(summary, key=lambda m: -summary[m][str(n)][key]["mean"])


def main(scale: str = "default", out_dir="figures", jobs: int = 1) -> list[pathlib.Path]:
    cfg = load_config(NAME, scale)
    res = compute(cfg)
    summ = summarize(res, cfg)
    _, seeds, budgets = declared_cells(cfg, cfg["N"])
    style()
    import matplotlib.pyplot as plt

    panels = [("net_accuracy", "network: held-out accuracy"),
              ("loglinear_accuracy", "log-linear: held-out accuracy"),
              ("net_reward_agreement", "network: agreement with true reward"),
              ("corr", "corr(log-linear logit, network margin)")]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.0))
    n = np.array(budgets)
    for ax, (key, title) in zip(axes, panels):
        for meth in summ:
            m = np.array([summ[meth][str(b)][key]["mean"] for b in n])
            h = np.array([summ[meth][str(b)][key]["half_95"] for b in n])
            color, marker = method_style(meth)
            ax.plot(n, m, marker=marker, ms=3.5, lw=1.2, color=color, label=meth)
            ax.fill_between(n, m - h, m + h, color=color, alpha=0.15, lw=0)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("n (selected pairs)")
        ax.set_title(title, fontsize=8)
    axes[0].legend(fontsize=7, loc="best")
    src = "tiny random transformer (test scale)" if cfg["model"] == "tiny" else \
        "SmolLM2-135M-Instruct"
    fig.suptitle(f"DPO on selected pairs, judged on held-out prompts: {res['N']} simulated-label "
                 f"Chit Chat pairs, {src}, top {cfg['top_k_blocks']} block(s) trained, "
                 f"{cfg['steps']} steps, {len(seeds)} seeds", fontsize=8)
    fig.tight_layout()
    big = max(budgets)
    orders = {k: method_order(summ, k, big) for k in
              ("net_accuracy", "loglinear_accuracy", "net_reward_agreement",
               "loglinear_reward_agreement", "net_nll", "loglinear_nll")}
    uniform_gap = {m: {str(b): summ[m][str(b)]["net_accuracy"]["mean"]
                       - summ["uniform"][str(b)]["net_accuracy"]["mean"] for b in budgets}
                   for m in summ if "uniform" in summ and m != "uniform"}
    import torch
    import transformers
    sidecar = {
        "figure": NAME, "scale": scale, "config": cfg, "N": res["N"], "d": res["d"],
        "model": res["model"], "n_truncated": res["n_truncated"], "summary": summ,
        "order_at_largest_budget": orders,
        "net_accuracy_minus_uniform": uniform_gap,
        "cells": res["cells"],
        "labels": "SIMULATED: s ~ Bernoulli(sigmoid(scale (r_1 - r_2))), r = lexicon reward of "
                  "the response text (sim.textdata.simulated_pairs)",
        "inferred_choices": {"beta": "0.1 (TRL default)", "feature_scale": "phi / RMS row norm",
                             "orientation": "log-linear rows at random (data_seed)",
                             "steps": "fixed per run, whatever n",
                             "trained": f"top {cfg['top_k_blocks']} block(s) + final norm"},
        "environment": {"python": platform.python_version(), "numpy": np.__version__,
                        "torch": torch.__version__, "transformers": transformers.__version__,
                        "machine": platform.machine()},
    }
    return save(fig, out_dir, NAME, sidecar)


if __name__ == "__main__":
    print(main())
