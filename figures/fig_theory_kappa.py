"""kappa_t (Assumption 4) along ADPO and ADPO+ runs, with and without candidate subsampling.

kappa_t = max_{i in [N]} v_{t,i}^T H_{t-1}^{-1} v_{t,i} / v_{t,I_t}^T H_{t-1}^{-1} v_{t,I_t},
measured by the selectors (record_kappa=True) over all N rows, selected ones included.
Candidates: 0 = exact argmax over all unselected rows, m = a fresh random subset of m per
round (the paper's m = 256). Sidecar: max, median and 99th percentile of kappa_t per setting.

Right panel: Theorem 4 along the same runs, max_i phi_i^T Sigma_n^{-1} phi_i (Sigma_n = gamma I
+ Hessian at theta_* on the first n picks) against the printed and corrected bounds with the
measured kappa (theory.checks.theorem4_along_run), and the ceiling max ||phi||^2 / gamma that
no design can exceed. A checkpoint where a bound is >= that ceiling checks nothing; the default
config (beta = 0.25, gamma = c_max) makes the corrected bound informative from n = 32 on. The
sidecar counts, per setting, the informative checkpoints and the failures among them.
"""

from __future__ import annotations

import pathlib

import numpy as np

from sim.envs import make_env
from sim.runner import pow2_budgets
from theory import bounds
from sim.validation import rng_for
from theory.checks import selector_trace, theorem4_along_run
from figures.common import cached, load_config, save, style

NAME = "theory_kappa"
PARTS = ("kappa", "t4_measured", "t4_printed", "t4_corrected", "t4_ceiling")


def _env(cfg, seed):
    kw = dict(N=cfg["N"], beta=cfg["beta"], seed=seed)
    if cfg["kind"] == "gaussian":
        kw.update(d=cfg["d"], theta_norm=1.0, ref_norm=1.0, assumption2=True)
    return make_env(cfg["kind"], **kw)


def _n_grid(cfg):
    return pow2_budgets(1, cfg["n"])


def _run(cfg, method, m, seed):
    data = _env(cfg, seed)
    tr = selector_trace(method, data, cfg["n"], n_candidates=m or None, gamma=cfg["gamma"],
                        alpha=cfg["alpha"], seed=rng_for(seed, 2))
    t4 = theorem4_along_run(data, tr.indices, cfg["gamma"], tr.kappa, _n_grid(cfg))
    return tr.kappa, t4["measured"], t4["printed"], t4["corrected"], t4["ceiling"]


def compute(cfg: dict, jobs: int = 1) -> dict:
    from joblib import Parallel, delayed

    cells = [(meth, m, s) for meth in cfg["methods"] for m in cfg["candidates"] for s in cfg["seeds"]]
    res = Parallel(n_jobs=jobs)(delayed(_run)(cfg, *c) for c in cells)
    out = {}
    for meth in cfg["methods"]:
        for m in cfg["candidates"]:
            mine = [r for c, r in zip(cells, res) if c[:2] == (meth, m)]
            for j, part in enumerate(PARTS):
                out[f"{part}|{meth}|{m}"] = np.stack([r[j] for r in mine])
    return out


def main(scale: str = "default", out_dir="figures", jobs: int = 1) -> list[pathlib.Path]:
    cfg = load_config(NAME, scale)
    res = cached(NAME, cfg, lambda: compute(cfg, jobs), version=3)
    style()
    import matplotlib.pyplot as plt

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(9, 3.4))
    t = np.arange(1, cfg["n"] + 1)
    ng = np.asarray(_n_grid(cfg))
    summary, kappa_all = {}, 1.0
    for key in [k for k in res if k.startswith("kappa|")]:
        _, meth, m = key.split("|")
        k = res[key]
        kappa_all = max(kappa_all, float(k.max()))
        lab = f"{meth}, {'all candidates' if m == '0' else f'm = {m}'}"
        ax.plot(t, k.max(axis=0), lw=0.8, label=f"{lab} (max over seeds)")
        meas = res[f"t4_measured|{meth}|{m}"]
        bx.plot(ng, meas.max(axis=0), "o-", ms=2, lw=0.8, label=lab)
        printed, corrected = res[f"t4_printed|{meth}|{m}"], res[f"t4_corrected|{meth}|{m}"]
        informative = corrected < res[f"t4_ceiling|{meth}|{m}"]
        summary[lab] = {"max": float(k.max()), "median": float(np.median(k)),
                        "p99": float(np.quantile(k, 0.99)),
                        "max_after_n_over_4": float(k[:, cfg["n"] // 4:].max()),
                        "theorem4_checks": int(meas.size),
                        "theorem4_informative_checks": int(informative.sum()),
                        "theorem4_printed_failures": int((meas > printed).sum()),
                        "theorem4_printed_failures_informative": int(((meas > printed) & informative).sum()),
                        "theorem4_corrected_failures": int((meas > corrected).sum()),
                        "theorem4_corrected_failures_informative": int(((meas > corrected) & informative).sum()),
                        "theorem4_max_measured_over_printed": float((meas / printed).max()),
                        "theorem4_min_corrected_over_measured_informative": float(
                            (corrected / meas)[informative].min()) if informative.any() else None,
                        "theorem4_max_corrected_over_ceiling": float(
                            (corrected / res[f"t4_ceiling|{meth}|{m}"]).max())}
    d = cfg.get("d", 64)
    for form, ls in (("printed", "--"), ("corrected", "-")):
        bx.plot(ng, [bounds.theorem4_bound(d, n, cfg["beta"], cfg["gamma"], kappa_all, form=form)
                     for n in ng], ls, color="k", lw=1,
                label=f"Theorem 4, {form} (kappa = {kappa_all:.2f})")
    ceiling = float(np.max([res[k].max() for k in res if k.startswith("t4_ceiling|")]))
    bx.axhline(ceiling, color="r", lw=0.8, ls=":", label=r"ceiling $\max\|\phi\|^2/\gamma$ (vacuous above)")
    ax.set(xscale="log", yscale="log", xlabel="round t", ylabel=r"$\kappa_t$ (Assumption 4)")
    bx.set(xscale="log", yscale="log", xlabel="budget n",
           ylabel=r"$\max_i \phi_i^\top \Sigma_n^{-1} \phi_i$")
    fig.suptitle(f"kappa_t and Theorem 4 along runs ({cfg['kind']}, N={cfg['N']}, d={d}, "
                 f"beta={cfg['beta']}, gamma={cfg['gamma']}, alpha={cfg['alpha']})", fontsize=8)
    ax.legend(fontsize=6)
    bx.legend(fontsize=6)
    sidecar = {"figure": NAME, "scale": scale, "config": cfg,
               "environment": f"{cfg['kind']} env (gaussian: assumption2=True, theta_norm=1, ref_norm=1)",
               "kappa": summary}
    return save(fig, out_dir, NAME, sidecar)
