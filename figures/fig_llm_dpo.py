"""From selection to a DPO-trained LLM, judged on held-out prompts (issue 13's experiment).

Pipeline (every number from an actual run; the expensive parts cached under
``results/figures/llm_dpo/``):

1. pairs: ``sim.textdata.simulated_pairs`` -- real Chit Chat text, SIMULATED labels from a known
   lexicon reward (so agreement with the generating reward is measurable);
2. one forward pass of SmolLM2-135M-Instruct per sequence (:func:`sim.llm_train.build_cache`),
   saved once as the training cache ``cache-<key>.npz`` (:func:`sim.llm_train.save_cache`; the
   key a hash of the data and model settings and of the code): the hidden states entering the
   top block, the reference log-prob log pi_0(y|x), the last-token final hidden state phi(x, y),
   and each sequence's generating reward; from it the log-linear rows ``features-<key>.npz`` (a
   ``file`` env: phi(x, y_1) - phi(x, y_2) / RMS row norm, b the reference log-ratio, the label,
   the prompt as the row's group);
3. the cells, in the runner's schema (``figures/fig_llm_dpo.toml``: ``cell = "dpo_train"``,
   ``[env]`` with its ``train`` table, ``[[methods]]``, seeds and budgets; ``@features`` and
   ``@cache`` are the two files): one runner cell per (seed, method),
   :func:`sim.experiment.run_dpo_train_cell`, cached by the runner's cell store under
   ``results/figures/llm_dpo/cells/``. Per seed a prompt-disjoint split (redrawn per seed) into a
   pool and held-out pairs; the method selects ``max(budgets)`` pairs of the pool with the
   log-linear features (labels revealed online; ADPO+ uses logged labels, as in the paper); per
   budget n (i) the log-linear DPO fit (eq. 9, the env's ridge ``fit_ridge``) on the first n picks
   and (ii) DPO training of the network's top block on the same n pairs (``steps`` AdamW steps of
   ``batch_size`` pairs, lr ``lr``), both judged on the held-out pairs: accuracy, margin, NLL
   (sec. 6.2), agreement with the generating reward, and the Pearson correlation and calibration
   slope between the log-linear logits and the trained network's implicit-reward margins.

The network and the training cache are loaded once per process (``sim.llm_train.open_cache``'s
memo): the cells run in this process (``jobs`` is not used: they share that one network, and
torch runs on the cache's ``threads``), and the forward pass and every cell use the same loaded
network. The figure reads its rows from the runner's table.

INFERRED choices (the paper is silent; also in the sidecar): beta = 0.1 (TRL's default); phi /
RMS row norm; chosen/rejected orientation of the log-linear rows at random (``data_seed``) so
labels are not all ones; the network's reference is its own initial weights (the same pi_0 as
the log-linear b); a fixed number of training steps per run, whatever n (so small budgets see
their pairs several times).
"""

from __future__ import annotations

import pathlib
import platform

import numpy as np

from figures import common

NAME = "llm_dpo"
DATA_KEYS = ("N", "n_messages", "max_chars", "scale_reward", "data_seed")
#: What the forward pass depends on (the training cache's key, with the code).
CACHE_KEYS = DATA_KEYS + ("model", "max_length", "top_k_blocks", "device", "threads")
#: The ``[figure]`` options (all set in the TOML): the pairs, the network and its forward pass,
#: and beta of the log-linear rows (the training's beta too).
OPTIONS = dict.fromkeys(CACHE_KEYS + ("beta",))
#: Per budget and method, what the sidecar summarizes (mean and 95% half-width over seeds).
SUMMARY_METRICS = tuple(f"{who}_{k}" for who in ("net", "loglinear")
                        for k in ("accuracy", "margin", "nll", "reward_agreement")) + (
    "corr", "slope")


def _key(opts: dict, keys) -> str:
    """Cache key of the settings ``keys`` and the code behind the figure (sim/, the script)."""
    from sim.fingerprint import cache_key
    return cache_key({k: opts[k] for k in keys}, code=common.figure_code(NAME))[:16]


def prompt_groups(prompts) -> np.ndarray:
    """One integer id per row, equal for rows of one prompt: the rank of the prompt text among
    the distinct prompts, offset to a fixed number of digits, so that the ids' decimal strings
    sort as the texts do (``sim.splits.group_split`` orders groups by their ``str``: the split
    of the ids is the split of the texts)."""
    uniq, inverse = np.unique(np.asarray(prompts), return_inverse=True)
    return 10 ** len(str(uniq.size)) + inverse.astype(np.int64)


def build_files(opts: dict, root: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    """(features .npz, training cache .npz) of the configured pairs, each computed once.

    The cache holds the forward pass (the slow part; the network from
    :func:`sim.llm_train.network`, shared with the cells); the features are the log-linear rows
    oriented at random (``data_seed``; labels s = 1 where y_1 is the chosen response)."""
    from sim import llm_train as lt
    from sim.design.torch_greedy import torch_threads
    from sim import textdata as td
    from sim.data import PreferenceData

    cache_path = root / f"cache-{_key(opts, CACHE_KEYS)}.npz"
    feat_path = root / f"features-{_key(opts, CACHE_KEYS + ('beta',))}.npz"
    if cache_path.is_file() and feat_path.is_file():
        return feat_path, cache_path
    raw = td.simulated_pairs(opts["N"], scale=opts["scale_reward"], n_messages=opts["n_messages"],
                             max_chars=opts["max_chars"], seed=opts["data_seed"])
    if not cache_path.is_file():
        rows = lt.oriented_rows([td.PairRow(k + 1, r["prompt"], r["response_1"],
                                            r["response_2"], r["label"])
                                 for k, r in enumerate(raw)])
        lm = lt.network(opts["model"], opts["device"])
        with torch_threads(opts["threads"]):
            cache = lt.build_cache(lm, rows, lt.split_index(lm.model, opts["top_k_blocks"]),
                                   max_length=opts["max_length"], progress=True)
        # generating reward of each sequence: (chosen, rejected) per pair
        reward = np.array([x for r in raw for x in ((r["reward_1"], r["reward_2"])
                                                    if r["label"] == 1 else
                                                    (r["reward_2"], r["reward_1"]))])
        root.mkdir(parents=True, exist_ok=True)
        lt.save_cache(cache_path, cache, lt.CacheInfo(opts["model"], lm.name, lm.device,
                                                      opts["threads"], reward))
    cache, _ = lt.load_cache(cache_path)
    sign = np.where(np.random.default_rng([opts["data_seed"], 1]).random(cache.n_pairs) < 0.5,
                    -1.0, 1.0)
    phi = sign[:, None] * (cache.phi[0::2] - cache.phi[1::2])
    ref = cache.ref_logp.cpu().numpy()
    scale = float(np.sqrt(np.mean(np.sum(phi ** 2, axis=1))))
    PreferenceData(phi=phi / scale, b=sign * (ref[0::2] - ref[1::2]), beta=opts["beta"],
                   s=(sign > 0).astype(np.int64),
                   group=prompt_groups([r["prompt"] for r in raw])).save(feat_path)
    return feat_path, cache_path


def load(scale: str):
    """(sweep, figure options, facts of the cache): the TOML with ``@features`` and ``@cache``
    resolved to the files :func:`build_files` wrote."""
    paths: dict = {}

    def resolve(opts):
        missing = sorted(k for k, v in opts.items() if v is None)
        if missing:
            raise ValueError(f"figures/fig_{NAME}.toml [figure]: missing key(s) {missing}")
        paths["features"], paths["cache"] = build_files(opts, common.cache_dir(NAME))
        return {"@features": str(paths["features"]), "@cache": str(paths["cache"])}

    sweep, opts = common.load_sweep_config(NAME, scale, OPTIONS, resolve=resolve)
    if sweep.cell != "dpo_train" or len(sweep.envs) != 1:
        raise ValueError(f"figures/fig_{NAME}.toml: expected cell = \"dpo_train\" and one [env]")
    with np.load(paths["cache"], allow_pickle=False) as z:
        facts = {"N": int(z["ref_logp"].size // 2), "d": int(z["phi"].shape[1]),
                 "model": str(z["model_name"]), "n_truncated": int(z["n_truncated"])}
    return sweep, opts, facts


def table_cells(df, sweep) -> list[dict]:
    """The runner's rows as one record per (seed, method, n), seed-major then the declared
    method order (``{"seed", "method", "n", "net": {...}, "loglinear": {...}, "corr", ...}``)."""
    from sim.experiment import label

    values: dict = {}
    for r in df.itertuples(index=False):
        values.setdefault((int(r.seed), r.method, int(r.n)), {})[r.metric] = float(r.value)
    order = {label(m, "name"): i for i, m in enumerate(sweep.methods)}
    out = []
    for (seed, meth, n), v in sorted(values.items(),
                                     key=lambda kv: (kv[0][0], order[kv[0][1]], kv[0][2])):
        nested = {who: {**{k: v[f"{who}_{k}"] for k in ("accuracy", "margin", "nll")},
                        "n_pairs": int(v["n_heldout"]),
                        **({"reward_agreement": v[f"{who}_reward_agreement"]}
                           if f"{who}_reward_agreement" in v else {})}
                  for who in ("net", "loglinear")}
        out.append({"seed": seed, "method": meth, "n": n, **nested,
                    **{k: v[k] for k in ("corr", "slope", "train_loss_first", "train_loss_last")},
                    "n_pool": int(v["n_pool"]), "n_heldout": int(v["n_heldout"])})
    return out


def summarize(df, sweep) -> dict:
    """{method label: {str(n): {metric: {"mean", "half_95"}}}} over seeds, declared order."""
    from sim.experiment import label

    summ = common.summarize(df[df.metric.isin(SUMMARY_METRICS)])
    out: dict = {}
    for meth in (label(m, "name") for m in sweep.methods):
        for n in common.sweep_budgets(sweep):
            g = summ[(summ.method == meth) & (summ.n == n)].set_index("metric")
            out.setdefault(meth, {})[str(n)] = {
                k: {"mean": float(g.loc[k, "mean"]), "half_95": float(g.loc[k, "half"])}
                for k in SUMMARY_METRICS if k in g.index}
    return out


def method_order(summary: dict, key: str, n: int) -> list[str]:
    """Methods sorted best first by the mean of ``key`` at budget n (higher is better)."""
    return sorted(summary, key=lambda m: -summary[m][str(n)][key]["mean"])


def main(scale: str = "default", out_dir="figures", jobs: int = 1) -> list[pathlib.Path]:
    sweep, opts, facts = load(scale)
    df = common.run_sweep(NAME, sweep, jobs=1)  # in this process: one loaded network
    summ = summarize(df, sweep)
    budgets = common.sweep_budgets(sweep)
    train = sweep.envs[0]["train"]
    common.style()
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
            color, marker = common.method_style(meth)
            ax.plot(n, m, marker=marker, ms=3.5, lw=1.2, color=color, label=meth)
            ax.fill_between(n, m - h, m + h, color=color, alpha=0.15, lw=0)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("n (selected pairs)")
        ax.set_title(title, fontsize=8)
    axes[0].legend(fontsize=7, loc="best")
    src = "tiny random transformer (test scale)" if opts["model"] == "tiny" else \
        "SmolLM2-135M-Instruct"
    fig.suptitle(f"DPO on selected pairs, judged on held-out prompts: {facts['N']} "
                 f"simulated-label Chit Chat pairs, {src}, top {opts['top_k_blocks']} block(s) "
                 f"trained, {train['steps']} steps, {len(sweep.seeds)} seeds", fontsize=8)
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
    env = sweep.envs[0]
    sidecar = {
        "figure": NAME, "scale": scale,
        # flat, with the keys the figure's settings always had (claims read steps, seeds, ...)
        "config": {**opts, "heldout": env["holdout"], "fit_ridge": env.get("fit_ridge"),
                   **{k: v for k, v in train.items() if k != "cache"},
                   "methods": list(sweep.methods), "budgets": budgets,
                   "seeds": len(sweep.seeds), "scale": scale, "cell": sweep.cell,
                   "files": {"features": pathlib.Path(env["path"]).name,
                             "cache": pathlib.Path(train["cache"]).name}},
        **facts, "summary": summ,
        "order_at_largest_budget": orders,
        "net_accuracy_minus_uniform": uniform_gap,
        "cells": table_cells(df, sweep),
        "labels": "SIMULATED: s ~ Bernoulli(sigmoid(scale (r_1 - r_2))), r = lexicon reward of "
                  "the response text (sim.textdata.simulated_pairs)",
        "inferred_choices": {"beta": "0.1 (TRL default)", "feature_scale": "phi / RMS row norm",
                             "orientation": "log-linear rows at random (data_seed)",
                             "steps": "fixed per run, whatever n",
                             "trained": f"top {opts['top_k_blocks']} block(s) + final norm"},
        "environment": {"python": platform.python_version(), "numpy": np.__version__,
                        "torch": torch.__version__, "transformers": transformers.__version__,
                        "machine": platform.machine()},
    }
    return common.save(fig, out_dir, NAME, sidecar)


if __name__ == "__main__":
    print(main())
