"""Max logit error vs d at fixed n, with fitted log-log slopes (theory: <= 1; union bound ~1/2).

Each (method, seed) gives a curve over d_grid from sim.experiment.run_cell; slopes per seed,
mean and 95% Student-t interval from theory.rates.slope_summary. Sidecar: the slopes, and the
verdict of the test used in tests/test_theory_rates.py (theory.rates.SlopeBandTest, band
[0.25, 1], false failure <= 1e-6) with its simulated power against a true slope of 1.5 and 0
at this figure's number of seeds (with few seeds the power is low: read it before the verdict).
"""

from __future__ import annotations

import pathlib

import numpy as np

from figures.common import cached, load_config, log_log_panel, save, style
from theory.rates import SlopeBandTest, error_curves_in_d, slope_summary

NAME = "theory_dscaling"
D_TEST = SlopeBandTest(band=(0.25, 1.0), false_alarm=1e-6)


def _env(cfg):
    return {"kind": "gaussian", "N": cfg["N"], "beta": cfg["beta"], "theta_norm": 1.0}


def _method(cfg, m):
    return {"name": m} if m == "uniform" else {"name": m, "n_candidates": cfg["n_candidates"]}


def compute(cfg: dict, jobs: int = 1) -> dict:
    from joblib import Parallel, delayed

    res = Parallel(n_jobs=jobs)(
        delayed(error_curves_in_d)(_env(cfg), _method(cfg, m), cfg["seeds"], cfg["d_grid"], cfg["n"])
        for m in cfg["methods"])
    return {f"err_{m}": r for m, r in zip(cfg["methods"], res)}


def main(scale: str = "default", out_dir="figures", jobs: int = 1) -> list[pathlib.Path]:
    cfg = load_config(NAME, scale)
    res = cached(NAME, cfg, lambda: compute(cfg, jobs))
    d = np.asarray(cfg["d_grid"], dtype=float)
    style()
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    summary = {}
    for m in cfg["methods"]:
        e = res[f"err_{m}"]
        s = slope_summary(d, e)
        med = np.median(e, axis=0)
        ax.plot(d, med, "o-", ms=3,
                label=f"{m}: slope {s.mean:.2f} [{s.ci[0]:.2f}, {s.ci[1]:.2f}]")
        ax.fill_between(d, e.min(0), e.max(0), alpha=0.2)
        v = D_TEST.decide(d, e)
        summary[m] = {"median_error": med, "slope_mean": s.mean, "slope_se": s.se,
                      "slope_ci95": s.ci, "per_seed_slopes": s.per_seed,
                      "band_test": {"band": D_TEST.band, "passed": v.passed,
                                    "bounds_at_1e-6": (v.lower, v.upper),
                                    "power_vs_slope_1.5": D_TEST.power(s.per_seed, 1.5),
                                    "power_vs_slope_0": D_TEST.power(s.per_seed, 0.0)}}
    ref = np.median(res[f"err_{cfg['methods'][0]}"], axis=0)[0]
    ax.plot(d, ref * d / d[0], "k--", lw=0.8, label="slope 1 (Theorem 2)")
    ax.plot(d, ref * np.sqrt(d / d[0]), "k:", lw=0.8, label="slope 1/2")
    log_log_panel(ax, xlabel="dimension d", ylabel="max logit error",
                  title=f"Error vs d at n={cfg['n']} (gaussian, N={cfg['N']}, beta={cfg['beta']}, "
                        f"{len(cfg['seeds'])} seeds; 95% t intervals)")
    sidecar = {"figure": NAME, "scale": scale, "config": cfg,
               "environment": "gaussian_env(theta_norm=1, ref_norm=1, no ball); theta_* = full-data "
                              "DPO MLE (ridge 1e-3); error = max_i |phi_i^T(theta_hat_n - theta_*)|",
               "per_method": summary}
    return save(fig, out_dir, NAME, sidecar)
