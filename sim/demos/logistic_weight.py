"""Why the logistic weight matters: APO (Das et al. 2024) vs ADPO+, and where it stops helping.

Under the Bradley-Terry model a pair with a large |logit| is almost always won by the same
response: its label carries little information (Fisher weight mu(1 - mu) ~ e^{-|z|}). APO's
linear design ignores that and happily labels "obvious" pairs; ADPO+ weights each candidate by
beta^2 mu(1 - mu) (Lemma 1). With a strong preference signal (||theta|| = 8) we compare the mean
Fisher weight of the picks and the resulting max logit error (mean over 5 seeds).

What the output shows (and why APO ends ahead at n = 512): ADPO+ wins while labels are few
(n = 64..256), because each of its labels is informative. But it maximizes log det of the
*weighted* Fisher matrix, i.e. the precision of theta where the weights are large: near the
decision boundary (median |logit| of its picks 0.86, against 2.97 for APO; 5 seeds, seed 0). The
max logit error is a max over ALL rows, and ADPO+'s worst row is far from the boundary (mean
|logit| 9.6, against 6.0 for APO), where an error in the scale of theta along its own direction
is multiplied by a large phi^T theta. APO's wider picks (90% quantile of |logit| ~6.7 against
~1.8) pin that scale once enough labels arrive.
D-optimality for theta is not minimax over rows: the paper's design targets the first.
"""

import numpy as np

from sim.dpo import fit_dpo, logistic_weight
from sim.envs import gaussian_env
from sim.metrics import max_logit_error
from sim.selectors import make_selector

from ._common import log_log_curves, parse, plot


def main() -> None:
    args = parse(__doc__)
    budgets, seeds = (64, 128, 256, 512), range(args.seed, args.seed + 5)
    res = {name: np.zeros(len(budgets)) for name in ("apo", "adpo+", "uniform")}
    fisher = {name: 0.0 for name in res}
    pick_z = {name: 0.0 for name in res}   # median |logit| of the picks
    worst_z = {name: 0.0 for name in res}  # |logit| of the row with the largest error, n = 512
    for seed in seeds:
        data = gaussian_env(8000, 8, seed=seed, theta_norm=8.0)
        z = np.abs(data.beta * (data.phi @ data.theta_star - data.b))
        w = logistic_weight(z)
        for name in res:
            idx = make_selector(name, data, seed=seed).select(budgets[-1])
            fisher[name] += w[idx].mean() / len(seeds)
            pick_z[name] += np.median(z[idx]) / len(seeds)
            for k, n in enumerate(budgets):
                th = fit_dpo(data.phi[idx[:n]], data.b[idx[:n]], data.beta, data.s[idx[:n]],
                             fit_ridge=1e-3).theta
                res[name][k] += max_logit_error(data.phi, th, data.theta_star) / len(seeds)
            worst_z[name] += z[np.argmax(np.abs(data.phi @ (th - data.theta_star)))] / len(seeds)
    for name, errs in res.items():
        print(f"{name:8s} mean Fisher weight of picks {fisher[name]:.4f}  mean max logit error "
              f"over 5 seeds at n=64..512: " + " ".join(f"{e:.2f}" for e in errs))
        print(f"{'':8s} median |logit| of picks {pick_z[name]:.2f}; |logit| of the worst row at "
              f"n=512 {worst_z[name]:.2f}")
    print("ADPO+ labels informative pairs near the boundary; the max error sits on far rows whose\n"
          "logit scale APO's wider picks pin down better at large n (see the docstring).")
    plot(args, "logistic_weight", lambda ax: log_log_curves(ax, res, budgets))


if __name__ == "__main__":
    main()
