"""Selectors against sim.design.greedy_select on the same vectors (issue 11, item 3).

For each feature set (``gaussian``: ``gaussian_env``; ``unit``: the same rows scaled to
||phi_i|| = 1) and each greedy selector, times ``make_selector(...).select(n)`` and
``greedy_select(phi, n, weights=w)`` with the weights w the selector used, side by side in one
run: one warm-up each, then ``--repeat`` interleaved runs of each; medians. ``select_s`` is the
selector's whole run; ``picks_s`` excludes its first weight computation (the theta_hat fit of ADPO+ on all
N labels and eq. 13's widths), measured from the ``on_refit`` hook, so it times the same work
as ``greedy_select``. Fixed-weight selectors must pick exactly greedy_select's rows
(``same_picks``). ADPO refits theta_hat on the pow2 schedule; its reference is greedy_select at
the weights of theta_hat on all its n labels (not the same picks: its weights change along the
run, and its ~log2(n) refits each fit theta_hat and eq. 13's widths).
Target: ratio <= 1.2 for every selector.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

from sim.design import greedy_select
from sim.envs import gaussian_env
from sim.selectors import make_selector

from .common import Results, machine

CASES = (("adpo+", {"alpha": 0.0}), ("adpo+", {}), ("oracle", {}), ("apo", {}),
         ("adpo+", {"n_candidates": 256}), ("adpo", {}))


def _run_selector(name, data, n, kw):
    sel = make_selector(name, data, seed=0, **kw)
    marks: list[float] = []
    sel.observe(on_refit=lambda t, th: marks.append(time.perf_counter()))
    t0 = time.perf_counter()
    idx = sel.select(n)
    t1 = time.perf_counter()
    return t1 - t0, t1 - marks[0], idx, sel


def _case(name, data, n, kw, repeat):
    cand = kw.get("n_candidates", "all")
    w = _run_selector(name, data, n, kw)[3].weights()  # warm-up; its weights (ADPO: at
    # theta_hat on all its labels)

    def ref():
        t0 = time.perf_counter()
        r = greedy_select(data.phi, n, gamma=1.0, weights=w, candidates=cand, seed=0)
        return time.perf_counter() - t0, r

    ref()  # warm-up
    runs, refs = [], []
    for _ in range(repeat):  # interleaved, so a change of machine load hits both alike
        runs.append(_run_selector(name, data, n, kw))
        refs.append(ref())
    sel = runs[-1][3]
    t_sel = statistics.median(r[0] for r in runs)
    t_picks = statistics.median(r[1] for r in runs)
    t_ref = statistics.median(r[0] for r in refs)
    label = name + "".join(f" {k}={v}" for k, v in kw.items())
    return dict(method=label, select_s=t_sel, picks_s=t_picks, greedy_select_s=t_ref,
                ratio=t_sel / t_ref, ratio_picks=t_picks / t_ref,
                same_picks=bool(np.array_equal(runs[-1][2], refs[-1][1].indices)),
                evals=int(sel.n_evals_), refits=int(sel.n_refits_),
                runs_s=[r[0] for r in runs], greedy_runs_s=[r[0] for r in refs],
                loadavg=list(os.getloadavg()))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scale", type=int, nargs=3, metavar=("N", "d", "n"),
                    default=(2**16, 384, 2**15), help="pool size, dimension, budget "
                    "(default: the paper's 2^16 384 2^15)")
    ap.add_argument("--quick", action="store_true", help="N, d, n = 2^12, 32, 2^10")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--features", nargs="+", default=["gaussian", "unit"])
    args = ap.parse_args(argv)
    N, d, n = (2**12, 32, 2**10) if args.quick else args.scale
    res = Results("selection", quick=args.quick,
                  params=dict(N=N, d=d, n=n, repeat=args.repeat, features=args.features))
    print(f"selectors vs greedy_select, N={N}, d={d}, n={n}, median of {args.repeat} after a "
          f"warm-up; machine: {machine()}; load {os.getloadavg()}", flush=True)
    base = gaussian_env(N, d, seed=0)
    rows = []
    for feats in args.features:
        data = base if feats == "gaussian" else base.with_(
            phi=base.phi / np.linalg.norm(base.phi, axis=1, keepdims=True))
        for name, kw in CASES:
            r = res.add("rows", features=feats, **_case(name, data, n, kw, args.repeat))
            rows.append(r)
            print(f"{feats:8s} {r['method']:22s} selector {r['select_s']:7.2f} s (picks "
                  f"{r['picks_s']:7.2f} s)  greedy_select {r['greedy_select_s']:7.2f} s  ratio "
                  f"{r['ratio']:.2f} (picks {r['ratio_picks']:.2f})  same picks "
                  f"{r['same_picks']}  load {r['loadavg'][0]:.1f}", flush=True)
    fixed = [r for r in rows if not r["method"].startswith("adpo ")]
    res.headline(f"selectors vs `greedy_select` on the same vectors (`bench_selection`, N = {N}, "
                 f"d = {d}, n = {n})",
                 ours="fixed-weight selectors: ratio " + ", ".join(
                     f"{r['features']} {r['method']} {r['ratio']:.2f}" for r in fixed),
                 reference="greedy_select = 1; same picks: "
                           f"{all(r['same_picks'] for r in fixed)}")
    print(f"-> {res.write()}")


if __name__ == "__main__":
    main()
