"""Pools at scale (issue 15), each comparison measured side by side in one run.

0. GEMM rate: numpy's BLAS on the blocked greedy's refresh shape (rows x d) @ (d x 256), float64
   and float32, with the kernel named (threadpoolctl's core type and OPENBLAS_CORETYPE).
1. (Relaxed D-optimal designs, REX vs Frank-Wolfe vs cvxpy, are in bench/bench_relaxed.py.)
2. The blocked greedy, numpy vs torch-CPU, float64 and float32, at N = 2^14, d = 384,
   n = 2^13 (paper scale: N = 2^16, n = 2^15; same picks required), and numpy's achieved flop
   rate 2 N d n / t as a fraction of the GEMM rate of 0.
2b. The incremental greedy engine, numpy vs torch-CPU products: ADPO+ with a random subset of
   m = 256 candidates per pick, and with the maintained scores of ``record_kappa`` (O(N d) per
   pick), at N = 2^14, d = 128, n = 2^12 (every scale but quick), one thread each (numpy's BLAS
   and torch's pool), same picks required.
3. (The out-of-core greedy and the numpy engine's fraction of the GEMM rate at the paper's scale
   are in bench/bench_greedy.py.)
4. GreeDi (two rounds) and the exact distributed greedy with 2 (paper: 2 and 4) local Dask
   worker processes against the single-machine greedy (log det ratio, time, round trips).

``python -m bench.bench_scale [--quick | --scale paper]``; writes bench/results/scale.json
(``--quick``: results/bench/). Default scale: about 5 minutes on 2 quiet cores (2b: ~2 of them). Run timings
under ``flock /work/bench.lock`` on a shared machine; the load average is recorded.
"""

from __future__ import annotations

import argparse
import os
import threading
import time

import numpy as np

from bench.common import Results, machine


def peak_anon_mb(fn):
    """(fn(), peak increase in MB of this process's anonymous resident memory during the call),
    sampled every 2 ms from /proc/self/status (RssAnon: heap and torch/numpy buffers, not the
    page cache of memory-mapped files)."""
    def anon():
        with open("/proc/self/status") as f:
            return next(int(x.split()[1]) for x in f if x.startswith("RssAnon")) / 1024
    base, peak, done = anon(), [0.0], threading.Event()

    def watch():
        while not done.is_set():
            peak[0] = max(peak[0], anon())
            time.sleep(0.002)
    t = threading.Thread(target=watch, daemon=True)
    t.start()
    try:
        out = fn()
    finally:
        done.set()
        t.join()
    return out, max(peak[0], anon()) - base


def _timed(fn, *args, **kw):
    t0 = time.perf_counter()
    out = fn(*args, **kw)
    return time.perf_counter() - t0, out


def gemm_rate(res, d, rows=8192, k=256, repeat=9):
    """GFLOP/s of numpy's BLAS on (rows x d) @ (d x k), float64 and float32: the machine's
    rate, so the fastest of ``repeat`` products (a median let one busy second halve it: 38
    against 61 GFLOP/s in two runs 15 minutes apart). Call it again after the timed work and
    keep the larger (:func:`faster_rates`)."""
    from threadpoolctl import threadpool_info
    rng = np.random.default_rng(0)
    rates = {}
    for dt in (np.float64, np.float32):
        A, B = rng.standard_normal((rows, d)).astype(dt), rng.standard_normal((d, k)).astype(dt)
        A @ B
        ts = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            A @ B
            ts.append(time.perf_counter() - t0)
        rates[np.dtype(dt).name] = 2.0 * rows * d * k / float(np.min(ts)) / 1e9
    kernel = [f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')} "
              f"x{i.get('num_threads')}" for i in threadpool_info()
              if i.get("user_api") == "blas"]
    res.add("gemm", d=d, rows=rows, k=k, gflops_float64=rates["float64"],
            gflops_float32=rates["float32"], blas=kernel,
            OPENBLAS_CORETYPE=os.environ.get("OPENBLAS_CORETYPE"))
    print(f"GEMM ({rows}x{d})@({d}x{k}): {rates['float64']:.0f} GFLOP/s float64, "
          f"{rates['float32']:.0f} float32; {kernel}, OPENBLAS_CORETYPE="
          f"{os.environ.get('OPENBLAS_CORETYPE')}", flush=True)
    return rates


def bench_torch_cpu(res, N, d, n, rates, repeat=3):
    """numpy vs torch-CPU blocked greedy side by side in this process: both warmed up, then
    ``repeat`` interleaved runs each (numpy, torch, numpy, torch, ...) so that a change of load
    hits both; the medians, every run and the load average at each run are recorded."""
    import torch

    from sim.design import greedy_select
    from sim.design.torch_greedy import greedy_select_torch
    V = np.random.default_rng(0).standard_normal((N, d))
    greedy_select(V[:2000], 20)
    greedy_select_torch(V[:2000], 20)  # warm-up: torch import and thread pools
    flops = 2.0 * N * d * n            # the bulk downdates (paper scale: 1.65e12)
    engines = {"numpy": greedy_select, "torch": greedy_select_torch}
    for dt in (np.float64, np.float32):
        name = np.dtype(dt).name
        runs = {e: [] for e in engines}
        load = []
        out = {}
        for _ in range(repeat):
            for e, fn in engines.items():
                t, out[e] = _timed(fn, V, n, dtype=dt)
                runs[e].append(t)
                load.append(os.getloadavg()[0])
        t_np, t_t = float(np.median(runs["numpy"])), float(np.median(runs["torch"]))
        same = bool(np.array_equal(out["numpy"].indices, out["torch"].indices))
        frac = flops / t_np / 1e9 / rates[name]
        res.add("torch_cpu", N=N, d=d, n=n, dtype=name, numpy_s=t_np, torch_s=t_t,
                ratio=t_t / t_np, numpy_runs=runs["numpy"], torch_runs=runs["torch"],
                load_1min=load, same_picks=same, flops=flops,
                numpy_gflops=flops / t_np / 1e9, gemm_fraction=frac,
                torch_threads=torch.get_num_threads(),
                torch_host_picks=out["torch"].info.get("host_picks"),
                reanchors=out["numpy"].info.get("reanchors"))
        print(f"greedy {name}: numpy {t_np:.2f} s ({flops / t_np / 1e9:.0f} GFLOP/s = "
              f"{frac:.0%} of GEMM), torch {t_t:.2f} s ({t_t / t_np:.2f}x), median of "
              f"{repeat}; same picks {same}; load {min(load):.1f}-{max(load):.1f}", flush=True)


def bench_torch_incremental(res, N, d, n, m, repeat=3):
    """ADPO+ on the incremental engine with numpy's and torch's products (the selector's
    ``products`` hook), one thread each, interleaved runs (numpy, torch, ...); per mode the
    medians of the selection's wall time and of its engine time (wall time minus the fit of
    theta_hat, which is numpy's in both), every run and the load average at each."""
    import torch
    from threadpoolctl import threadpool_limits

    from sim.design.torch_greedy import TorchProducts
    from sim.envs import gaussian_env
    from sim.selectors import make_selector
    data = gaussian_env(N, d, seed=0)
    modes = {"subset": {"n_candidates": m}, "maintained": {"record_kappa": True}}
    backends = {"numpy": lambda: None, "torch": TorchProducts}

    def run(kw, products, n):
        sel = make_selector("adpo+", data, seed=0, **kw)
        sel.products = products
        t, idx = _timed(sel.select, n)
        return t, t - sel.refit_seconds_, idx, sel

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1, user_api="blas"):
            for kw in modes.values():                        # warm-up
                for make in backends.values():
                    run(kw, make(), 20)
            for mode, kw in modes.items():
                runs = {b: [] for b in backends}
                load = []
                for _ in range(repeat):
                    for b, make in backends.items():
                        runs[b].append(run(kw, make(), n))
                        load.append(os.getloadavg()[0])
                med = {b: (float(np.median([r[0] for r in rs])),
                           float(np.median([r[1] for r in rs]))) for b, rs in runs.items()}
                (_, _, i_np, s_np), (_, _, i_t, s_t) = runs["numpy"][-1], runs["torch"][-1]
                same = bool(np.array_equal(i_np, i_t))
                kappa = (float(np.max(np.abs(s_t.kappa_ - s_np.kappa_)))
                         if mode == "maintained" else None)
                res.add("torch_incremental", N=N, d=d, n=n, mode=mode, method="adpo+",
                        candidates=m if mode == "subset" else "all",
                        record_kappa=mode == "maintained",
                        numpy_s=med["numpy"][0], torch_s=med["torch"][0],
                        numpy_engine_s=med["numpy"][1], torch_engine_s=med["torch"][1],
                        ratio=med["torch"][0] / med["numpy"][0],
                        ratio_engine=med["torch"][1] / med["numpy"][1],
                        numpy_runs=[r[0] for r in runs["numpy"]],
                        torch_runs=[r[0] for r in runs["torch"]],
                        load_1min=load, same_picks=same, kappa_max_abs_diff=kappa,
                        evaluations=int(s_np.n_evals_), threads=1)
                print(f"ADPO+ {mode} N = {N}, d = {d}, n = {n}: numpy {med['numpy'][0]:.2f} s "
                      f"(engine {med['numpy'][1]:.2f}), torch {med['torch'][0]:.2f} s (engine "
                      f"{med['torch'][1]:.2f}; {med['torch'][1] / med['numpy'][1]:.2f}x), median "
                      f"of {repeat}, one thread; same picks {same}; load {min(load):.1f}-"
                      f"{max(load):.1f}", flush=True)
    finally:
        torch.set_num_threads(threads)


def bench_greedi(res, N, d, n, workers_list):
    from sim.design import greedy_select
    from sim.design.greedi import connect, greedi_exact_select, greedi_select
    V = np.random.default_rng(3).standard_normal((N, d))
    t_single, single = _timed(greedy_select, V, n)
    for workers in workers_list:
        t0 = time.perf_counter()
        client = connect(f"local:{workers}")
        t_start = time.perf_counter() - t0
        try:
            greedi_select(V[:2000], 10, parts=workers, client=client)  # warm-up
            t_g, g = _timed(greedi_select, V, n, parts=workers, client=client)
            t_e, e = _timed(greedi_exact_select, V, n, parts=workers, client=client)
        finally:
            client.close()
        same = bool(np.array_equal(e.indices, single.indices))
        res.add("greedi", N=N, d=d, n=n, workers=workers, cluster_start_s=t_start,
                single_s=t_single, greedi_s=t_g, logdet_ratio=g.logdet / single.logdet,
                pick_overlap=len(set(g.indices.tolist()) & set(single.indices.tolist())) / n,
                exact_s=t_e, exact_round_trips=e.info["round_trips"],
                exact_same_picks=same)
        print(f"greedi N={N} d={d} n={n} x{workers}: two-round {t_g:.1f} s (ratio "
              f"{g.logdet / single.logdet:.5f}), exact {t_e:.1f} s in "
              f"{e.info['round_trips']} round trips (same picks {same}) vs single "
              f"{t_single:.1f} s", flush=True)


SCALES = {
    # greedy (N, d, n); incremental (N, d, n, m); greedi (N, d, n, workers)
    "quick": {"greedy": (3000, 64, 512), "incremental": (3000, 32, 256, 64),
              "greedi": (5000, 16, 50, (2,))},
    "default": {"greedy": (2**14, 384, 2**13), "incremental": (2**14, 128, 2**12, 256),
                "greedi": (2**16, 64, 512, (2, 4))},
    "paper": {"greedy": (2**16, 384, 2**15), "incremental": (2**14, 128, 2**12, 256),
              "greedi": (2**16, 64, 512, (2, 4))},
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.bench_scale", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="smoke sizes (= --scale quick)")
    ap.add_argument("--scale", choices=tuple(SCALES), default="default")
    args = ap.parse_args(argv)
    scale = "quick" if args.quick else args.scale
    q = scale == "quick"
    S = SCALES[scale]
    tc, ti, gd = S["greedy"], S["incremental"], S["greedi"]
    res = Results("scale", quick=q, params={"scale": scale, "greedy": tc, "incremental": ti,
                                            "greedi": gd})
    print(machine(), flush=True)
    rates = gemm_rate(res, tc[1])
    bench_torch_cpu(res, *tc, rates)
    bench_torch_incremental(res, *ti)
    bench_greedi(res, *gd)
    for r in res.tables["torch_cpu"]:
        res.headline(f"greedy N = {r['N']}, d = {r['d']}, n = {r['n']}, {r['dtype']}: torch-CPU "
                     f"vs numpy", ours=f"torch {r['torch_s']:.2f} s ({r['ratio']:.2f}x)",
                     reference=f"numpy {r['numpy_s']:.2f} s; same picks {r['same_picks']}")
    for r in res.tables["torch_incremental"]:
        how = f"m = {r['candidates']}" if r["mode"] == "subset" else "record_kappa"
        res.headline(f"ADPO+ incremental engine ({how}), N = {r['N']}, d = {r['d']}, "
                     f"n = {r['n']}, one thread: torch-CPU vs numpy products",
                     ours=f"torch {r['torch_s']:.2f} s (engine {r['ratio_engine']:.2f}x)",
                     reference=f"numpy {r['numpy_s']:.2f} s; same picks {r['same_picks']}")
    for gr in res.tables["greedi"]:
        res.headline(f"GreeDi N = {gr['N']}, d = {gr['d']}, n = {gr['n']}, {gr['workers']} "
                     f"local Dask worker processes", ours=f"two-round {gr['greedi_s']:.1f} s, "
                     f"log det ratio {gr['logdet_ratio']:.5f}; exact {gr['exact_s']:.1f} s "
                     f"({gr['exact_round_trips']} round trips, same picks "
                     f"{gr['exact_same_picks']})", reference=f"single-machine greedy "
                     f"{gr['single_s']:.1f} s")
    # (the numpy engine's fraction of the GEMM rate is a headline of bench/bench_greedy.py)
    print(res.write())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
