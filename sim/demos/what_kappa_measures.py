"""What kappa measures (Assumption 4).

kappa_t = max_{i in [N]} v_{t,i}^T H_{t-1}^{-1} v_{t,i} / v_{t,I_t}^T H_{t-1}^{-1} v_{t,I_t}: how
much information the best point of ALL N (already-selected ones included, which cannot be picked
again) offers relative to the point actually picked. With the exact argmax only already-picked
points can exceed the pick; with the paper's random subset of m = 256 candidates the pick can be
far from the best, and kappa grows. The theory's rate carries a factor kappa.
"""

import numpy as np

from sim.envs import gaussian_env
from sim.selectors import make_selector

from ._common import parse, save


def main():
    args = parse(__doc__)
    data = gaussian_env(4000, 8, seed=args.seed)
    out = {}
    for label, m in (("exact argmax", None), ("m = 256", 256), ("m = 16", 16)):
        sel = make_selector("adpo", data, n_candidates=m, record_kappa=True, seed=args.seed)
        sel.select(1000)
        out[label] = sel.kappa_
        k = sel.kappa_
        print(f"{label:13s} kappa: median {np.median(k):.2f}, 99% {np.quantile(k, .99):.2f}, "
              f"max {k.max():.2f}")
    if args.no_plot:
        return
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for label, k in out.items():
        ax.plot(np.arange(1, len(k) + 1), k, lw=0.8, label=label)
    ax.set(xscale="log", yscale="log", xlabel="round t", ylabel=r"$\kappa_t$")
    ax.legend()
    save(fig, args, "what_kappa_measures")


if __name__ == "__main__":
    main()
