"""The DPO MLE at the paper's scale (N = 2^16, d = 384) against scikit-learn on the same data.

scikit-learn has no offsets b or scale beta, so the data use b = 0 and beta = 1, where the DPO
MLE with ridge gamma is exactly LogisticRegression(C = 1/gamma, fit_intercept=False). Every
solver's accuracy is reported as max |theta - theta_ref| against a reference solved to float
precision, so the times compare like with like.
"""

from __future__ import annotations

import argparse

import numpy as np
from sklearn.linear_model import LogisticRegression

from sim.dpo import dpo_gradient, fit_dpo, sigmoid

from .common import machine, save, timed


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--gamma", type=float, default=1.0, help="ridge of the well-conditioned case")
    args = ap.parse_args(argv)
    n, d = (2**12, 64) if args.quick else (2**16, 384)
    # Two regimes: well conditioned (||theta|| = 3, the gaussian env's default, ridge 1) and
    # nearly separable (||theta|| = 30, ridge 1e-3, as in the digits pilot).
    for theta_norm, gamma in ((3.0, args.gamma), (30.0, 1e-3)):
        run(n, d, theta_norm, gamma)


def run(n, d, theta_norm, gamma):
    rng = np.random.default_rng(0)
    phi = rng.standard_normal((n, d)) / np.sqrt(d)
    theta = theta_norm * rng.standard_normal(d) / np.sqrt(d)
    s = (rng.random(n) < sigmoid(phi @ theta)).astype(np.int8)
    b = np.zeros(n)

    ref = fit_dpo(phi, b, 1.0, s, gamma=gamma, hessian_dtype=np.float64).theta
    rows = []

    def report(name, seconds, th):
        err = float(np.abs(th - ref).max())
        g = float(np.abs(dpo_gradient(th, phi, b, 1.0, s, gamma)).max())
        rows.append(dict(solver=name, seconds=seconds, max_abs_err=err, grad_max=g))

    fit_dpo(phi, b, 1.0, s, gamma=gamma)  # warm-up (page faults of the first large allocations)
    t, res = timed(fit_dpo, phi, b, 1.0, s, gamma=gamma, repeat=3)
    report("ours: fit_dpo (Newton)", t, res.theta)
    for tol in (1e-4, 1e-8, 1e-12):
        for solver in ("lbfgs", "newton-cholesky"):
            m = LogisticRegression(C=1 / gamma, fit_intercept=False, tol=tol, solver=solver,
                                   max_iter=10_000)
            t, m = timed(m.fit, phi, s, repeat=3)
            report(f"sklearn {solver} tol={tol:g}", t, m.coef_[0])
    ours = rows[0]["seconds"]
    print(f"\nMLE, N={n}, d={d}, ||theta||={theta_norm}, gamma={gamma}; machine: {machine()}")
    print(f"{'solver':38s} {'seconds':>8s} {'ratio':>7s} {'max|err|':>10s} {'max|grad|':>10s}")
    for r in rows:
        r["ratio_to_ours"] = r["seconds"] / ours
        print(f"{r['solver']:38s} {r['seconds']:8.3f} {r['ratio_to_ours']:7.2f} "
              f"{r['max_abs_err']:10.2e} {r['grad_max']:10.2e}")
    print(f"-> {save(f'mle_theta{theta_norm:g}', dict(N=n, d=d, gamma=gamma, rows=rows))}")


if __name__ == "__main__":
    main()
