"""Active selection: N = 2^15 pairs, d = 192, n = 2^14 (``--paper``: N = 2^16, d = 384, n = 2^15).

Times ADPO+ (fixed weights: lazy greedy over all N), ADPO with powers-of-two refits (exact
argmax over all unselected rows, and the paper's random subset of m = 256), APO and Uniform on
the `gaussian` environment, side by side in one run; each a warm-up then the median of 3. Targets (2 cores): ADPO+ <= 2 min,
ADPO <= 5 min. ``evals`` counts exact score evaluations v^T H^{-1} v: a naive greedy needs
N per pick (2^15 * 2^16 = 2.1e9 at paper scale), the lazy greedy a tiny fraction of that.
"""

from __future__ import annotations

import argparse
import time

from sim.envs import gaussian_env
from sim.selectors import make_selector

from .common import Results, machine, median_time


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--paper", action="store_true", help="the paper's N = 2^16, d = 384, n = 2^15"
                    " (about 10 min with the median of 3; the default is 4x smaller in N d)")
    args = ap.parse_args(argv)
    n_total, d, n = ((2**13, 64, 2**11) if args.quick else (2**16, 384, 2**15) if args.paper
                     else (2**15, 192, 2**14))
    res = Results("selection", quick=args.quick, params=dict(N=n_total, d=d, n=n, repeat=3))
    t0 = time.perf_counter()
    data = gaussian_env(n_total, d, seed=0)
    print(f"selection, N={n_total}, d={d}, n={n}; machine: {machine()}")
    print(f"environment (incl. theta_star MLE on all N): {time.perf_counter() - t0:.1f} s")
    rows = []
    for name, kw in (("adpo+", {}), ("adpo", {}), ("adpo", {"n_candidates": 256}),
                     ("apo", {}), ("uniform", {})):
        sels = []  # a fresh selector per call; the last one is inspected below
        sec = median_time(lambda: sels.append(make_selector(name, data, seed=0, **kw))
                          or sels[-1].select(n)).seconds
        sel = sels[-1]
        evals = getattr(sel, "n_evals_", 0)  # public counter of the greedy engines
        label = name + ("" if not kw else f" m={kw['n_candidates']}")
        rows.append(res.add("rows", method=label, seconds=sec, evals=evals, refits=sel.n_refits_,
                         naive_evals=n * n_total))
        print(f"{label:12s} {sec:8.1f} s   exact score evals {evals:>11,d} "
              f"({evals / (n * n_total):.2%} of naive)   refits {sel.n_refits_}", flush=True)
    # Lazy vs exhaustive on a prefix: record_kappa=True rescores all N rows at every pick
    # (Sherman-Morrison downdates, O(N d) per pick), i.e. the naive greedy without inverses.
    k = min(n, 1024)
    t0 = time.perf_counter()
    lazy = make_selector("adpo+", data, seed=0).select(k)
    t_lazy = time.perf_counter() - t0
    t0 = time.perf_counter()
    naive = make_selector("adpo+", data, seed=0, record_kappa=True).select(k)
    t_naive = time.perf_counter() - t0
    same = bool((lazy == naive).all())
    print(f"first {k} ADPO+ picks: lazy {t_lazy:.1f} s vs exhaustive rescoring {t_naive:.1f} s "
          f"(x{t_naive / t_lazy:.1f}); identical picks: {same}")
    res.add("prefix", prefix=k, identical=same, lazy_s=t_lazy, naive_s=t_naive)
    by = {r["method"]: r["seconds"] for r in rows}
    res.headline(f"selection (`bench_selection`, gaussian, N = {n_total}, d = {d}, n = {n})",
                 ours=", ".join(f"{m} {s:.1f} s" for m, s in by.items()),
                 reference=f"lazy vs exhaustive rescoring on the first {k} ADPO+ picks: "
                           f"identical {same}, {t_naive / t_lazy:.1f}× faster")
    print(f"-> {res.write()}")


if __name__ == "__main__":
    main()
