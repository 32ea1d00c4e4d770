"""The paper's sec. 6.2 analogue: active selection on real text with last-layer LLM features.

Pipeline (every step from an actual run; the expensive ones cached under
``results/figures/llm/<key>/``, the key a hash of the settings that determine them):

1. pairs: ``sim.textdata.chitchat_pairs`` (same-prompt Chit Chat conversations whose human
   1-10 ratings differ by >= min_gap; REAL but NOISY, conversation-level judgments);
2. features: ``sim.llm.extract_file`` with SmolLM2-135M-Instruct (d = 576), TRL rows oriented at
   random (seed ``data_seed``) so labels are not all ones; resumable chunks;
3. per seed, a prompt-disjoint split (``sim.splits.group_split``, redrawn per seed): ``holdout``
   of the pairs, with every pair of their prompts, are never available for selection;
4. every method selects n_max pairs of the pool with the labels revealed online (ADPO+ fits
   theta_hat on the logged labels of the whole pool, as in the paper); for each n in the grid,
   the log-linear DPO (eq. 9, ridge ``fit_gamma``) is fitted on the first n picks and accuracy,
   margin and NLL (sec. 6.2) are computed over the pool (in-sample, as the paper does over all
   its pairs) and over the held-out pairs (``heldout_*``: unseen prompts).

Choices the paper leaves open (INFERRED, stated in the sidecar): beta = 0.1 (TRL's default),
phi divided by its RMS row norm (one global scalar, so the design ridge gamma = 1 has a fixed
meaning), fit ridge ``fit_gamma`` = 1e-3 (the project's default). Context lines: the fit on all N
(dashed). Note the paper's logit beta (phi^T theta - b) at theta = 0 is -beta b, the REVERSED
reference preference, not pi_0's: the log-linear policy at theta = 0 is uniform, and the
selected pairs must teach theta to undo b as well as to learn the labels.
"""

from __future__ import annotations

import json
import pathlib
import platform

import numpy as np

from figures.common import SEEN, legend, load_config, mean_band, method_style, save, style
from sim.fingerprint import SIM_DIR, cache_key, code_fingerprint
from sim.io import atomic_write_text
from sim.runner import pow2_budgets

NAME = "llm"
HERE = pathlib.Path(__file__).parent
DATA_KEYS = ("source", "N", "min_gap", "n_messages", "max_chars", "data_seed")
FEATURE_KEYS = DATA_KEYS + ("model", "pooling", "max_length", "beta")


def _key(cfg, keys, code) -> str:
    return cache_key({k: cfg[k] for k in keys}, code=code)[:16]


def feature_code() -> str:
    """The code behind the feature cache: the modules that read the pairs and run the model
    (not all of sim/, so that a selector edit does not redo minutes of feature extraction)."""
    return code_fingerprint(*(SIM_DIR / f for f in ("llm.py", "textdata.py", "data.py")),
                            packages=())


def features(cfg: dict, root: pathlib.Path):
    """(PreferenceData, sidecar) of the configured pairs, computed once and cached."""
    from sim import llm, textdata
    from sim.data import PreferenceData

    folder = root / f"features-{_key(cfg, FEATURE_KEYS, feature_code())}"
    folder.mkdir(parents=True, exist_ok=True)
    pairs = folder / "pairs.jsonl"
    out = folder / "features.npz"
    if not out.is_file():
        if not pairs.is_file():
            rows = textdata.chitchat_pairs(cfg["N"], min_gap=cfg["min_gap"],
                                           n_messages=cfg["n_messages"],
                                           max_chars=cfg["max_chars"], seed=cfg["data_seed"])
            textdata.write_jsonl(rows, pairs)
        if cfg["model"] == "tiny":
            lm = llm.tiny_model(seed=0)
        else:
            import torch
            torch.set_num_threads(2)
            lm = llm.load_model(cfg["model"], device="auto")
        llm.extract_file(lm, pairs, out, pooling=cfg["pooling"], batch_size=cfg["batch_size"],
                         max_length=cfg["max_length"], beta=cfg["beta"], orient="random",
                         seed=cfg["data_seed"], progress=False)
    return PreferenceData.load(out), json.loads(textdata.meta_path(out).read_text())


def n_grid(cfg) -> list[int]:
    return pow2_budgets(cfg["n_min"], cfg["n_max"])


def prepare(data, cfg):
    """Scale phi by its RMS row norm (INFERRED choice; one scalar, documented in the sidecar)."""
    scale = 1.0
    if cfg["feature_scale"] == "rms":
        scale = float(np.sqrt(np.mean(np.sum(data.phi ** 2, axis=1))))
    return data.with_(phi=data.phi / scale), scale


def split_of(groups, cfg, seed):
    """The seed's prompt-disjoint split (redrawn per seed, its own random stream)."""
    from sim.splits import SPLIT_STREAM, group_split

    split = group_split(groups, cfg["holdout"], np.random.SeedSequence([seed, SPLIT_STREAM]))
    if split.train.size < cfg["n_max"]:
        raise ValueError(f"holdout: leaves {split.train.size} selectable pairs for seed {seed}, "
                         f"fewer than n_max = {cfg['n_max']}; lower holdout or n_max")
    return split


def _metrics(data, theta) -> dict:
    from sim.metrics import accuracy, margin, neg_log_likelihood

    args = (data.phi, data.b, data.beta, theta, data.s)
    return {"accuracy": accuracy(*args), "margin": margin(*args), "nll": neg_log_likelihood(*args)}


def run_method(data, cfg, method, seed, groups) -> dict:
    """Metrics over the pool and the held-out pairs of the DPO fit on the first n picks."""
    from sim.dpo import fit_dpo
    from sim.selectors import make_selector, method_options

    split = split_of(groups, cfg, seed)
    pool, test = data.subset(split.train), data.subset(split.test)
    m = cfg["n_candidates"] or None
    shared = dict(n_candidates=m, gamma=cfg["gamma"], alpha=cfg["alpha"], refit=cfg["refit"],
                  fit_ridge=cfg["fit_gamma"])
    sel = make_selector(method, pool, seed=seed, **method_options(method, shared))
    idx = sel.select(cfg["n_max"])
    out = {}
    for n in n_grid(cfg):
        pick = idx[:n]
        theta = fit_dpo(pool.phi[pick], pool.b[pick], pool.beta, pool.s[pick],
                        fit_ridge=cfg["fit_gamma"]).theta
        for where, part in (("", pool), ("heldout_", test)):
            for k, v in _metrics(part, theta).items():
                out.setdefault(where + k, []).append(v)
    out["heldout_N"] = int(split.test.size)
    return out


def compute(cfg: dict, jobs: int = 1) -> dict:
    root = pathlib.Path("results/figures") / NAME
    data, meta = features(cfg, root)
    data, scale = prepare(data, cfg)
    run_key = _key({**cfg, "scale_": scale}, FEATURE_KEYS + (
        "methods", "seeds", "n_min", "n_max", "gamma", "fit_gamma", "alpha", "refit",
        "n_candidates", "feature_scale", "holdout"), code_fingerprint(pathlib.Path(__file__)))
    cache = root / f"runs-{run_key}.json"
    if cache.is_file():
        return json.loads(cache.read_text())
    from joblib import Parallel, delayed

    from sim import textdata
    from sim.dpo import fit_dpo

    rows, _ = textdata.read_pairs(root / f"features-{_key(cfg, FEATURE_KEYS, feature_code())}" / "pairs.jsonl")
    prompt_of = {r.line: r.prompt for r in rows}
    groups = [prompt_of[line] for line in meta["row_lines"]]  # the prompt of each feature row
    for s in range(cfg["seeds"]):
        split_of(groups, cfg, s)  # refuse a holdout that leaves too few pairs, before any work
    cells = [(meth, s) for meth in cfg["methods"] for s in range(cfg["seeds"])]
    res = Parallel(n_jobs=jobs)(delayed(run_method)(data, cfg, *c, groups) for c in cells)
    full = fit_dpo(data.phi, data.b, data.beta, data.s, fit_ridge=cfg["fit_gamma"]).theta
    result = {
        "cells": [{"method": c[0], "seed": c[1], **r} for c, r in zip(cells, res)],
        "n": n_grid(cfg), "N": data.N, "d": data.d, "feature_scale_divisor": scale,
        "n_prompts": len(set(groups)),
        "all_N_fit": _metrics(data, full), "theta_zero": _metrics(data, np.zeros(data.d)),
        "reference_agrees_with_label": float(np.mean((data.b > 0) == (data.s == 1))),
        "features": {k: meta[k] for k in ("model", "pooling", "max_length", "n_tokens",
                                          "n_truncated", "chat_template", "format")},
    }
    atomic_write_text(cache, json.dumps(result))
    return result


def main(scale: str = "default", out_dir="figures", jobs: int = 1) -> list[pathlib.Path]:
    cfg = load_config(NAME, scale)
    res = compute(cfg, jobs)
    style()
    import matplotlib.pyplot as plt

    labels = {"accuracy": "accuracy", "margin": "margin", "nll": "negative log-likelihood"}
    rows = (("", "pool (in-sample)"), ("heldout_", "held-out pairs, unseen prompts"))
    fig, axes = plt.subplots(len(rows), len(cfg["metrics"]),
                             figsize=(3.3 * len(cfg["metrics"]), 3.0 * len(rows)), squeeze=False)
    n = np.array(res["n"])
    summary = {}
    for r, (prefix, where) in enumerate(rows):
        for ax, base in zip(axes[r], cfg["metrics"]):
            metric = prefix + base
            for meth in cfg["methods"]:
                vals = np.array([c[metric] for c in res["cells"] if c["method"] == meth])
                band = [mean_band(vals[:, j]) for j in range(len(n))]
                m = np.array([b[0] for b in band])
                h = np.array([b[1] for b in band])
                color, marker = method_style(meth)
                ax.plot(n, m, marker=marker, ms=3.5, lw=1.2, color=color, label=legend(meth))
                ax.fill_between(n, m - h, m + h, color=color, alpha=0.15, lw=0)
                summary.setdefault(meth, {})[metric] = {"mean": m.tolist(), "half_95": h.tolist()}
            if not prefix:
                ax.axhline(res["all_N_fit"][metric], color="black", lw=0.8, ls="--",
                           label="fit on all N")
            ax.set_xscale("log", base=2)
            ax.set_xlabel("n (selected pairs)")
            ax.set_ylabel(labels[base])
            ax.set_title(where, fontsize=8)
    axes[0, 0].legend(fontsize=6, loc="best")
    src = "tiny random transformer (test scale)" if cfg["model"] == "tiny" else \
        "SmolLM2-135M-Instruct"
    fig.suptitle(f"Chit Chat pairs (human ratings, noisy), {src} last-layer features: "
                 f"N = {res['N']}, d = {res['d']}, beta = {cfg['beta']}", fontsize=8)
    fig.tight_layout()
    import sklearn
    import torch
    import transformers

    sidecar = {
        "figure": NAME, "scale": scale, "config": cfg,
        "seeds": list(range(cfg["seeds"])), "n": res["n"], "N": res["N"], "d": res["d"],
        "summary": summary, "seen": {m: SEEN[m] for m in cfg["methods"] if m in SEEN},
        "holdout": cfg["holdout"], "n_prompts": res["n_prompts"],
        "heldout_N": sorted({c["heldout_N"] for c in res["cells"]}),
        "all_N_fit": res["all_N_fit"], "theta_zero": res["theta_zero"],
        "reference_agrees_with_label": res["reference_agrees_with_label"],
        "feature_scale_divisor": res["feature_scale_divisor"], "features": res["features"],
        "labels": "REAL human conversation-level ratings (Chit Chat), noisy; pairs with rating "
                  "gap >= min_gap, rating 5 (form default) dropped",
        "inferred_choices": {"beta": "0.1 (TRL default; paper silent)",
                             "feature_scale": "phi / RMS row norm",
                             "fit_gamma": "ridge of the last-layer DPO fit",
                             "orientation": "chosen first or second at random (data_seed)"},
        "environment": {"python": platform.python_version(), "numpy": np.__version__,
                        "torch": torch.__version__, "transformers": transformers.__version__,
                        "sklearn": sklearn.__version__, "machine": platform.machine()},
    }
    return save(fig, out_dir, NAME, sidecar)


if __name__ == "__main__":
    print(main())
