"""kappa_t (Assumption 4) along ADPO and ADPO+ runs, with and without candidate subsampling.

kappa_t = max_{i in [N]} v_{t,i}^T H_{t-1}^{-1} v_{t,i} / v_{t,I_t}^T H_{t-1}^{-1} v_{t,I_t},
measured by the selectors (record_kappa=True) over all N rows, selected ones included.
Candidates: 0 = exact argmax over all unselected rows, m = a fresh random subset of m per
round (the paper's m = 256). Sidecar: max, median and 99th percentile of kappa_t per setting.
"""

from __future__ import annotations

import pathlib

import numpy as np

from sim.envs import make_env
from theory.checks import kappa_along_run, rng_for
from theory.figure_support import cached, load_config, save_figure, style

NAME = "theory_kappa"
HERE = pathlib.Path(__file__).parent


def _env(cfg, seed):
    kw = dict(N=cfg["N"], beta=cfg["beta"], seed=seed)
    if cfg["kind"] == "gaussian":
        kw.update(d=cfg["d"], theta_norm=1.0, ref_norm=1.0, assumption2=True)
    return make_env(cfg["kind"], **kw)


def _run(cfg, method, m, seed):
    data = _env(cfg, seed)
    return kappa_along_run(method, data, cfg["n"], n_candidates=m or None, gamma=cfg["gamma"],
                           alpha=cfg["alpha"], seed=rng_for(seed, 2))


def compute(cfg: dict, jobs: int = 1) -> dict:
    from joblib import Parallel, delayed

    cells = [(meth, m, s) for meth in cfg["methods"] for m in cfg["candidates"] for s in cfg["seeds"]]
    res = Parallel(n_jobs=jobs)(delayed(_run)(cfg, *c) for c in cells)
    out = {}
    for meth in cfg["methods"]:
        for m in cfg["candidates"]:
            out[f"{meth}|{m}"] = np.stack([r for c, r in zip(cells, res) if c[:2] == (meth, m)])
    return out


def main(scale: str = "default", out_dir="figures", jobs: int = 1) -> list[pathlib.Path]:
    cfg = load_config(HERE / f"fig_{NAME}.toml", scale)
    res = cached(NAME, cfg, lambda: compute(cfg, jobs))
    style()
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 3.4))
    t = np.arange(1, cfg["n"] + 1)
    summary = {}
    for key, k in res.items():
        meth, m = key.split("|")
        lab = f"{meth}, {'all candidates' if m == '0' else f'm = {m}'}"
        ax.plot(t, k.max(axis=0), lw=0.8, label=f"{lab} (max over seeds)")
        summary[lab] = {"max": float(k.max()), "median": float(np.median(k)),
                        "p99": float(np.quantile(k, 0.99)),
                        "max_after_n_over_4": float(k[:, cfg["n"] // 4:].max())}
    ax.set(xscale="log", yscale="log", xlabel="round t", ylabel=r"$\kappa_t$ (Assumption 4)",
           title=f"kappa_t along runs ({cfg['kind']}, N={cfg['N']}, d={cfg.get('d', 64)}, "
                 f"beta={cfg['beta']}, gamma={cfg['gamma']}, alpha={cfg['alpha']})")
    ax.title.set_fontsize(7)
    ax.legend(fontsize=6)
    sidecar = {"figure": NAME, "scale": scale, "config": cfg,
               "environment": f"{cfg['kind']} env (gaussian: assumption2=True, theta_norm=1, ref_norm=1)",
               "kappa": summary}
    return save_figure(fig, out_dir, f"fig_{NAME}", sidecar)
