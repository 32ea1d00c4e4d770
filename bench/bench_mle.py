"""The DPO MLE at the paper's scale (N = 2^16, d = 384) against scikit-learn on the same data.

scikit-learn has no offsets b or scale beta, so the data use b = 0 and beta = 1, where the DPO
MLE with fit ridge r is exactly LogisticRegression(C = 1/r, fit_intercept=False). Accuracy is
measured against an INDEPENDENT reference: scikit-learn's newton-cholesky solver at tol = 1e-14
(not our solver), and every solver's gradient norm is computed with scipy's ``expit`` from the
textbook formula phi^T (sigma(phi theta) - s) + r theta, not with ``sim.dpo``. Timings: a
warm-up, then the median of 3 (``bench.common.median_time``).
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy.special import expit
from sklearn.linear_model import LogisticRegression

from sim.dpo import fit_dpo, sigmoid

from .common import Results, machine, median_time


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--fit-ridge", type=float, default=1.0,
                    help="fit ridge of the well-conditioned case")
    args = ap.parse_args(argv)
    n, d = (2**12, 64) if args.quick else (2**16, 384)
    res = Results("mle", quick=args.quick, params={"N": n, "d": d, "b": 0.0, "beta": 1.0,
                                                   "repeat": 3, "reference":
                                                   "sklearn newton-cholesky tol=1e-14"})
    print(f"machine: {machine()}")
    # Two regimes: well conditioned (||theta|| = 3, the gaussian env's default, ridge 1) and
    # nearly separable (||theta|| = 30, ridge 1e-3, as in the digits pilot).
    for theta_norm, ridge in ((3.0, args.fit_ridge), (30.0, 1e-3)):
        run(res, n, d, theta_norm, ridge)
    print(f"-> {res.write()}")


def _grad(theta, phi, s, ridge) -> float:
    """max |gradient| of the ridge logistic loss, written independently of sim.dpo."""
    return float(np.abs(phi.T @ (expit(phi @ theta) - s) + ridge * theta).max())


def run(res: Results, n, d, theta_norm, ridge):
    rng = np.random.default_rng(0)
    phi = rng.standard_normal((n, d)) / np.sqrt(d)
    theta = theta_norm * rng.standard_normal(d) / np.sqrt(d)
    s = (rng.random(n) < sigmoid(phi @ theta)).astype(np.int8)
    b = np.zeros(n)
    ref = LogisticRegression(C=1 / ridge, fit_intercept=False, tol=1e-14,
                             solver="newton-cholesky", max_iter=10_000).fit(phi, s).coef_[0]
    table = f"theta{theta_norm:g}"
    rows = []

    def report(name, t, th):
        rows.append(res.add(table, solver=name, seconds=t.seconds, runs=t.runs,
                            max_abs_err=float(np.abs(th - ref).max()),
                            grad_max=_grad(th, phi, s, ridge), theta_norm=theta_norm,
                            fit_ridge=ridge))

    t = median_time(fit_dpo, phi, b, 1.0, s, fit_ridge=ridge)
    report("ours: fit_dpo (Newton)", t, t.result.theta)
    for tol in (1e-4, 1e-8, 1e-12):
        for solver in ("lbfgs", "newton-cholesky"):
            m = LogisticRegression(C=1 / ridge, fit_intercept=False, tol=tol, solver=solver,
                                   max_iter=10_000)
            t = median_time(m.fit, phi, s)
            report(f"sklearn {solver} tol={tol:g}", t, t.result.coef_[0])
    ours = rows[0]
    print(f"\nMLE, N={n}, d={d}, ||theta||={theta_norm}, fit_ridge={ridge}")
    print(f"{'solver':38s} {'seconds':>8s} {'ratio':>7s} {'max|err|':>10s} {'max|grad|':>10s}")
    for r in rows:
        r["ratio_to_ours"] = r["seconds"] / ours["seconds"]
        print(f"{r['solver']:38s} {r['seconds']:8.3f} {r['ratio_to_ours']:7.2f} "
              f"{r['max_abs_err']:10.2e} {r['grad_max']:10.2e}")
    nc = next(r for r in rows if r["solver"] == "sklearn newton-cholesky tol=1e-08")
    lb = next(r for r in rows if r["solver"] == "sklearn lbfgs tol=1e-08")
    cond = ("well conditioned (‖θ‖ = 3, ridge 1)" if theta_norm == 3 else
            f"nearly separable (‖θ‖ = {theta_norm:g}, ridge {ridge:g})")
    res.headline(f"DPO MLE (`bench_mle`), N = {n}, d = {d}, {cond}",
                 ours=f"{ours['seconds']:.2f} s, max\\|θ − θ_ref\\| = {ours['max_abs_err']:.0e}",
                 reference=f"scikit-learn newton-cholesky tol 1e-8 {nc['seconds']:.2f} s at "
                           f"{nc['max_abs_err']:.0e} ({nc['ratio_to_ours']:.2f}×); lbfgs "
                           f"{lb['seconds']:.2f} s at {lb['max_abs_err']:.0e} "
                           f"({lb['ratio_to_ours']:.2f}×); θ_ref: newton-cholesky tol 1e-14")


if __name__ == "__main__":
    main()
