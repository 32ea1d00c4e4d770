"""Online vs offline: ADPO learns its weights from the labels it buys, ADPO+ knows them.

ADPO (Algorithm 1) starts from theta_hat_0 = 0 and refits at t = 2, 4, 8, ...; ADPO+
(Algorithm 2) fits theta_hat once on all N logged labels, which in a log-linear experiment is
exactly theta_star. The gap between them is the price of not knowing the weights in advance;
it closes as ADPO's estimate improves.
"""

import numpy as np

from sim.experiment import run_cell

from ._common import log_log_curves, parse, plot


def main() -> None:
    args = parse(__doc__)
    env = {"kind": "gaussian", "N": 8000, "d": 8, "theta_norm": 6.0}
    budgets = [16, 32, 64, 128, 256, 512, 1024]
    curves = {}
    for name in ("adpo", "adpo+", "uniform"):
        runs = [[r["value"] for r in run_cell(env, {"name": name}, seed, budgets)
                 if r["metric"] == "max_logit_error"] for seed in range(args.seed, args.seed + 5)]
        curves[name] = np.exp(np.mean(np.log(runs), axis=0))  # geometric mean over 5 seeds
        print(f"{name:8s} max logit error (geo. mean, 5 seeds): "
              + " ".join(f"{v:6.2f}" for v in curves[name]))
    ratio = np.array(curves["adpo"]) / np.array(curves["adpo+"])
    print("ADPO / ADPO+ error ratio by n:", " ".join(f"{r:.2f}" for r in ratio))
    plot(args, "online_vs_offline", lambda ax: log_log_curves(ax, curves, budgets))


if __name__ == "__main__":
    main()
