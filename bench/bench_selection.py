"""Selectors against sim.design.greedy_select on the same vectors (issue 11, item 3).

For each feature set (``gaussian``: ``gaussian_env``; ``unit``: the same rows scaled to
||phi_i|| = 1) and each greedy selector, times ``make_selector(...).select(n)`` and
``greedy_select(phi, n, weights=w)`` with the weights w the selector used, side by side in one
run: one warm-up each (``--no-warmup``: none), then ``--repeat`` interleaved runs of each;
medians. Each row reports (b) ``select_s``, the selector's whole run, and (a) ``engine_s``,
the same run less the time spent in refits (``Selector.refit_seconds_``: the theta_hat fits
and the weights with eq. 13's widths), i.e. the selection engine alone, which does the work
``greedy_select`` does; ``refit_fraction`` = refit time / ``select_s``. Fixed-weight selectors must pick exactly
greedy_select's rows (``same_picks``). ADPO refits theta_hat on the pow2 schedule (~log2(n)
refits, Algorithm 1); its reference is greedy_select at the weights of theta_hat on all its n
labels (not the same picks: its weights change along the run). ``widths``: rows whose eq. 13
UCB width the selector computed over all its refits (rows whose optimistic logit is 0 by the
bound of :func:`sim.selectors.greedy.ucb_logits` need none).
Target (issue 11): ratio <= 1.2 for every selector.

Scales (``--scale``): ``default`` N, d, n = 2^14, 128, 2^12 (runs of a few seconds, so the
per-pick Python overhead does not dominate as it did at 2^13, 64, 2^11 with 0.2-1 s runs),
``paper`` 2^16, 384, 2^15 (also ``--paper``), ``quick`` 2^12, 32, 2^10 (also ``--quick``);
``--size N d n`` for any other (like ``--quick``, written to the ignored results/bench/).
``--methods`` runs a subset of the cases (by their labels, e.g. ``oracle "adpo+ alpha=0.0"``); ``--blas-threads K`` pins BLAS to K threads for the whole run
(threadpoolctl; recorded in the params): on a loaded 2-core machine, multi-threaded BLAS on
these small (d x d, block x d) products spins against the other processes and slows both
sides many times over (unit-norm oracle at the default scale: 43 s with 2 threads at load 7.6,
5.4 s with 1 thread at load 6.5).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

from threadpoolctl import threadpool_limits

from sim.design import greedy_select
from sim.envs import gaussian_env
from sim.selectors import make_selector

from .common import Results, machine

CASES = (("adpo+", {"alpha": 0.0}), ("adpo+", {}), ("oracle", {}), ("apo", {}),
         ("adpo+", {"n_candidates": 256}), ("adpo", {}))


SCALES = {"quick": (2**12, 32, 2**10), "default": (2**14, 128, 2**12),
          "paper": (2**16, 384, 2**15)}


def _run_selector(name, data, n, kw):
    sel = make_selector(name, data, seed=0, **kw)
    t0 = time.perf_counter()
    idx = sel.select(n)
    t1 = time.perf_counter()
    return t1 - t0, sel.refit_seconds_, idx, sel


def _label(name, kw):
    return name + "".join(f" {k}={v}" for k, v in kw.items())


def _case(name, data, n, kw, repeat, warmup=True):
    cand = kw.get("n_candidates", "all")
    first = _run_selector(name, data, n, kw)
    w = first[3].weights()  # its weights (ADPO: at theta_hat on all its labels)

    def ref():
        t0 = time.perf_counter()
        r = greedy_select(data.phi, n, gamma=1.0, weights=w, candidates=cand, seed=0)
        return time.perf_counter() - t0, r

    runs, refs = ([], []) if warmup else ([first], [ref()])  # else the first runs are timed
    if warmup:
        ref()
    for _ in range(repeat - len(runs)):  # interleaved: a change of load hits both alike
        runs.append(_run_selector(name, data, n, kw))
        refs.append(ref())
    sel = runs[-1][3]
    t_sel = statistics.median(r[0] for r in runs)
    t_engine = statistics.median(r[0] - r[1] for r in runs)
    t_ref = statistics.median(r[0] for r in refs)
    return dict(method=_label(name, kw), select_s=t_sel, engine_s=t_engine, greedy_select_s=t_ref,
                ratio=t_sel / t_ref, ratio_engine=t_engine / t_ref,
                refit_fraction=statistics.median(r[1] / r[0] for r in runs),
                same_picks=bool(np.array_equal(runs[-1][2], refs[-1][1].indices)),
                evals=int(sel.n_evals_), refits=int(sel.n_refits_),
                widths=int(getattr(sel, "n_widths_", 0)),  # rows given an eq. 13 width
                runs_s=[r[0] for r in runs], refit_runs_s=[r[1] for r in runs],
                greedy_runs_s=[r[0] for r in refs],
                loadavg=list(os.getloadavg()))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scale", choices=sorted(SCALES), default="default",
                    help="N, d, n: " + "; ".join(f"{k} {v}" for k, v in SCALES.items()))
    ap.add_argument("--paper", action="store_const", const="paper", dest="scale",
                    help="= --scale paper")
    ap.add_argument("--quick", action="store_const", const="quick", dest="scale",
                    help="= --scale quick (results go to the ignored results/bench/)")
    ap.add_argument("--size", type=int, nargs=3, metavar=("N", "d", "n"), default=None,
                    help="any other pool size, dimension, budget (overrides --scale)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-warmup", dest="warmup", action="store_false",
                    help="time the first run of each side too (paper scale: minutes per run)")
    ap.add_argument("--features", nargs="+", default=["gaussian", "unit"],
                    choices=["gaussian", "unit"])
    labels = [_label(name, kw) for name, kw in CASES]
    ap.add_argument("--methods", nargs="+", default=labels, choices=labels, metavar="CASE",
                    help="cases to run (default all): " + ", ".join(map(repr, labels)))
    ap.add_argument("--blas-threads", type=int, default=None, metavar="K",
                    help="pin BLAS to K threads (default: the library's own setting)")
    args = ap.parse_args(argv)
    if args.repeat < 1:
        ap.error(f"--repeat: a positive integer, got {args.repeat}")
    if args.blas_threads is not None and args.blas_threads < 1:
        ap.error(f"--blas-threads: a positive integer, got {args.blas_threads}")
    with threadpool_limits(limits=args.blas_threads, user_api="blas"):
        _run(args)


def _run(args) -> None:
    N, d, n = args.size or SCALES[args.scale]
    res = Results("selection", quick=args.scale == "quick" or args.size is not None,
                  params=dict(N=N, d=d, n=n, scale="size" if args.size else args.scale,
                              repeat=args.repeat, warmup=args.warmup, features=args.features,
                              methods=args.methods, blas_threads=args.blas_threads))
    print(f"selectors vs greedy_select, N={N}, d={d}, n={n}, median of {args.repeat}"
          f"{' after a warm-up' if args.warmup else ''}; BLAS threads {args.blas_threads or 'default'}; machine: {machine()}; "
          f"load {os.getloadavg()}", flush=True)
    base = gaussian_env(N, d, seed=0)
    rows = []
    for feats in args.features:
        data = base if feats == "gaussian" else base.with_(
            phi=base.phi / np.linalg.norm(base.phi, axis=1, keepdims=True))
        for name, kw in CASES:
            if _label(name, kw) not in args.methods:
                continue
            r = res.add("rows", features=feats, **_case(name, data, n, kw, args.repeat, args.warmup))
            rows.append(r)
            print(f"{feats:8s} {r['method']:22s} selector {r['select_s']:7.2f} s (engine "
                  f"{r['engine_s']:7.2f} s, refits {100 * r['refit_fraction']:4.1f}%)  "
                  f"greedy_select {r['greedy_select_s']:7.2f} s  ratio {r['ratio']:.2f} "
                  f"(engine {r['ratio_engine']:.2f})  same picks {r['same_picks']}  load "
                  f"{r['loadavg'][0]:.1f}", flush=True)
    online = [r for r in rows if r["method"].startswith("adpo ") or r["method"] == "adpo"]
    fixed = [r for r in rows if r not in online]
    res.headline(f"selectors vs `greedy_select` on the same vectors (`bench_selection`, N = {N}, "
                 f"d = {d}, n = {n})",
                 ours="ratio (engine only) " + ", ".join(
                     f"{r['features']} {r['method']} {r['ratio']:.2f} ({r['ratio_engine']:.2f})"
                     for r in fixed + online)
                      + ("; ADPO's refits: " + ", ".join(
                          f"{100 * r['refit_fraction']:.0f}% ({r['features']})" for r in online)
                         if online else ""),
                 reference="greedy_select = 1; fixed-weight selectors pick the same rows: "
                           f"{all(r['same_picks'] for r in fixed)}")
    print(f"-> {res.write()}")


if __name__ == "__main__":
    main()
