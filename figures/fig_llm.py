"""The paper's sec. 6.2 analogue on real text with last-layer LLM features, and the sec. 6.1
logit errors on the same features against a known theta.

Pipeline (every step from an actual run; the expensive ones cached under
``results/figures/llm/``):

1. pairs: ``sim.textdata.chitchat_pairs`` (same-prompt Chit Chat conversations whose human
   1-10 ratings differ by >= min_gap; REAL but NOISY, conversation-level judgments);
2. features: ``sim.llm.extract_file`` with SmolLM2-135M-Instruct (d = 576), TRL rows oriented at
   random (seed ``data_seed``) so labels are not all ones; computed once, cached under
   ``features-<key>/`` (the key a hash of the data and model settings and of the code that reads
   the pairs and runs the model);
3. the cells, in the runner's schema (``figures/fig_llm.toml``: ``[[env]]``, ``[[methods]]``,
   seeds and budgets per scale; ``sim.runner``, cached per cell): two environments on the same
   features file (``@features`` in the TOML is its path):

   * ``file`` — the REAL labels: accuracy, margin and NLL (sec. 6.2) of the log-linear DPO fit on
     each method's first n picks (eq. 9), over the pool (in-sample, as the paper does) and over
     the held-out pairs;
   * ``llm-truth`` — the same features with labels redrawn from a known theta (the sec. 6.1
     recipe fitted to the real labels; ``sim.envs.truth_env``): max / mean logit error against
     that theta (``*_logit_error_true``) and the paper's max logit error against theta_star (the
     MLE on the pool), in-sample and held out.

   ``holdout`` pairs per seed, whole prompts (``sim.splits.group_split`` through the features
   sidecar's prompts), are never available for selection.

Choices the paper leaves open (INFERRED, stated in the sidecar): beta = 0.1 (TRL's default),
phi divided by its RMS row norm (one global scalar, so the design ridge gamma = 1 has a fixed
meaning), fit ridge ``fit_ridge`` = 1e-3 (the project's default). Context lines: the fit on all N
(dashed). Note the paper's logit beta (phi^T theta - b) at theta = 0 is -beta b, the REVERSED
reference preference, not pi_0's: the log-linear policy at theta = 0 is uniform, and the
selected pairs must teach theta to undo b as well as to learn the labels.
"""

from __future__ import annotations

import json
import pathlib
import platform

import numpy as np

from figures import common
from sim.fingerprint import SIM_DIR, cache_key, code_fingerprint

NAME = "llm"
DATA_KEYS = ("source", "N", "min_gap", "n_messages", "max_chars", "data_seed")
FEATURE_KEYS = DATA_KEYS + ("model", "pooling", "max_length", "beta")
#: The ``[figure]`` options (all set in the TOML): the metric columns of the two environments,
#: the environments' labels, and the settings of the pairs and features.
OPTIONS = dict.fromkeys(("metrics", "truth_metrics", "real_env", "truth_env", "batch_size")
                        + FEATURE_KEYS)
LOGY = ("max_logit_error", "mean_logit_error", "max_logit_error_true", "mean_logit_error_true")


def feature_code() -> str:
    """The code behind the feature cache: the modules that read the pairs and run the model
    (not all of sim/, so that a selector edit does not redo minutes of feature extraction)."""
    return code_fingerprint(*(SIM_DIR / f for f in ("llm.py", "textdata.py", "data.py")),
                            packages=())


def features(cfg: dict, root: pathlib.Path) -> tuple[pathlib.Path, dict]:
    """(path of the features .npz, its sidecar) of the configured pairs, computed once."""
    from sim import llm, textdata

    key = cache_key({k: cfg[k] for k in FEATURE_KEYS}, code=feature_code())[:16]
    folder = root / f"features-{key}"
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
            torch.set_num_threads(common.cpu_threads())
            lm = llm.load_model(cfg["model"], device="auto")
        llm.extract_file(lm, pairs, out, pooling=cfg["pooling"], batch_size=cfg["batch_size"],
                         max_length=cfg["max_length"], beta=cfg["beta"], orient="random",
                         seed=cfg["data_seed"], progress=False)
    return out, json.loads(textdata.meta_path(out).read_text())


def load(scale: str):
    """(sweep, figure options, features sidecar): the TOML with ``@features`` resolved."""
    meta: dict = {}

    def resolve(opts):
        missing = sorted(k for k, v in opts.items() if v is None)
        if missing:
            raise ValueError(f"figures/fig_{NAME}.toml [figure]: missing key(s) {missing}")
        path, m = features(opts, common.cache_dir(NAME))
        meta.update(m)
        return {"@features": str(path)}

    sweep, cfg = common.load_sweep_config(NAME, scale, OPTIONS, resolve=resolve)
    return sweep, cfg, meta


def context(sweep, cfg) -> dict:
    """Facts of the real-label environment (not per cell): the fit on all N rows (its
    theta_star: eq. 5 on every row), theta = 0, the reference's agreement with the labels."""
    from sim.experiment import build_env
    from sim.metrics import accuracy, margin, neg_log_likelihood

    real = build_env(next(e for e in sweep.envs if e["label"] == cfg["real_env"]), 0)

    def metrics(theta):
        args = (real.phi, real.b, real.beta, theta, real.s)
        return {"accuracy": accuracy(*args), "margin": margin(*args),
                "nll": neg_log_likelihood(*args)}

    return {"N": real.N, "d": real.d, "n_prompts": real.info.get("n_groups"),
            "feature_scale_divisor": real.info["scale_divisor"],
            "all_N_fit": metrics(real.theta_star), "theta_zero": metrics(np.zeros(real.d)),
            "reference_agrees_with_label": float(np.mean((real.b > 0) == (real.s == 1)))}


def main(scale: str = "default", out_dir="figures", jobs: int = 1) -> list[pathlib.Path]:
    sweep, cfg, meta = load(scale)
    budgets = common.sweep_budgets(sweep)
    df = common.run_sweep(NAME, sweep, jobs=jobs)
    summary = common.summarize(df)
    ctx = context(sweep, cfg)
    common.style()
    import matplotlib.pyplot as plt

    pre = common.HELDOUT
    panels = [(cfg["real_env"], "", cfg["metrics"], "real labels, pool (in-sample)"),
              (cfg["real_env"], pre, cfg["metrics"], "real labels, held-out prompts"),
              (cfg["truth_env"], "", cfg["truth_metrics"], "known theta, pool (in-sample)"),
              (cfg["truth_env"], pre, cfg["truth_metrics"], "known theta, held-out prompts")]
    ncol = max(len(cfg["metrics"]), len(cfg["truth_metrics"]))
    fig, axes = plt.subplots(len(panels), ncol, figsize=(3.3 * ncol, 2.9 * len(panels)),
                             squeeze=False, layout="constrained")
    for r, (env, prefix, metrics, where) in enumerate(panels):
        for ax, base in zip(axes[r], metrics):
            common.plot_curves(ax, summary[summary.env == env], prefix + base,
                               logy=base in LOGY)
            if not prefix and base in ctx["all_N_fit"] and env == cfg["real_env"]:
                ax.axhline(ctx["all_N_fit"][base], color="black", lw=0.8, ls="--",
                           label="fit on all N")
            ax.set_title(f"{where}: {base}", fontsize=7)
    axes[0, 0].legend(fontsize=6, loc="best")
    src = "tiny random transformer (test scale)" if cfg["model"] == "tiny" else \
        "SmolLM2-135M-Instruct"
    fig.suptitle(f"Chit Chat pairs (human ratings, noisy), {src} last-layer features: "
                 f"N = {ctx['N']}, d = {ctx['d']}, beta = {cfg['beta']}, "
                 f"{len(sweep.seeds)} seeds", fontsize=8)
    curves = common.curves(summary, [p + m for m in cfg["metrics"] + cfg["truth_metrics"]
                                     for p in ("", pre)])
    facts = common.env_facts(df, ("label_mean", "theta_star_norm", "heldout_N"))
    import sklearn
    import torch
    import transformers

    real_env = next(e for e in sweep.envs if e["label"] == cfg["real_env"])
    sidecar = {
        "figure": NAME, "scale": scale,
        "config": {**cfg, "methods": [m["label"] for m in sweep.methods],
                   "seeds": len(sweep.seeds)},
        "envs": list(sweep.envs), "methods": list(sweep.methods),
        "seeds": list(sweep.seeds), "n": budgets, "N": ctx["N"], "d": ctx["d"],
        # the real-label curves under "summary" (method -> metric), the known-theta ones under
        # "truth"; each {"n", "mean", "half_95"} over seeds
        "summary": curves[cfg["real_env"]], "truth": curves[cfg["truth_env"]],
        "env_facts": facts, "seen": {m: common.SEEN[m] for m in common.SEEN
                                     if m in [x["label"] for x in sweep.methods]},
        "holdout": real_env.get("holdout"), "n_prompts": ctx["n_prompts"],
        "heldout_N": sorted({int(v) for v in facts[cfg["real_env"]].get("heldout_N", [])}),
        "all_N_fit": ctx["all_N_fit"], "theta_zero": ctx["theta_zero"],
        "reference_agrees_with_label": ctx["reference_agrees_with_label"],
        "feature_scale_divisor": ctx["feature_scale_divisor"],
        "features": {k: meta[k] for k in ("model", "pooling", "max_length", "n_tokens",
                                          "n_truncated", "chat_template", "format")},
        "labels": "REAL human conversation-level ratings (Chit Chat), noisy; pairs with rating "
                  "gap >= min_gap, rating 5 (form default) dropped; the known-theta rows redraw "
                  "the labels from theta_true (sim.envs.truth_env)",
        "inferred_choices": {"beta": "0.1 (TRL default; paper silent)",
                             "feature_scale": "phi / RMS row norm",
                             "fit_ridge": "ridge of the last-layer DPO fit",
                             "orientation": "chosen first or second at random (data_seed)",
                             "known_theta": "sec. 6.1 steps 2-4 with the real labels in place "
                                            "of all-ones (theta_bar ridge 1)"},
        "environment": {"python": platform.python_version(), "numpy": np.__version__,
                        "torch": torch.__version__, "transformers": transformers.__version__,
                        "sklearn": sklearn.__version__, "machine": platform.machine()},
    }
    return common.save(fig, out_dir, NAME, sidecar)


if __name__ == "__main__":
    print(main())
