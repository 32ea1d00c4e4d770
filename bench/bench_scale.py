"""Pools at scale (issue 15), each comparison measured side by side in one run.

0. GEMM rate: numpy's BLAS on the blocked greedy's refresh shape (rows x d) @ (d x 256), float64
   and float32, with the kernel named (threadpoolctl's core type and OPENBLAS_CORETYPE).
1. Relaxed D-optimal designs to efficiency 1 - 1e-6: REX (sim.design.rex) and Frank-Wolfe
   (sim.design.relaxed) at N = 1e3 ... 1e5 (1e6 with ``--scale paper``), d = 32, against
   cvxpy/Clarabel (tightened) where it runs in reasonable time (N = 1e3); the log det gap to
   the best of them.
2. The blocked greedy, numpy vs torch-CPU, float64 and float32, at N = 2^14, d = 384,
   n = 2^13 (paper scale: N = 2^16, n = 2^15; same picks required), and numpy's achieved flop
   rate 2 N d n / t as a fraction of the GEMM rate of 0.
3. (The out-of-core greedy and the numpy engine's fraction of the GEMM rate at the paper's scale
   are in bench/bench_greedy.py.)
4. GreeDi (two rounds) and the exact distributed greedy with 2 (paper: 2 and 4) local Dask
   worker processes against the single-machine greedy (log det ratio, time, round trips).

``python -m bench.bench_scale [--quick | --scale paper]``; writes bench/results/scale.json
(``--quick``: results/bench/). Default scale: about 3 minutes on 2 quiet cores. Run timings
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


def bench_relaxed(res, sizes, cvxpy_max_n):
    from sim.design import cvxpy_design, fw_design, rex_design
    for N, d in sizes:
        V = np.random.default_rng(1).standard_normal((N, d))
        rows = {}
        rows["rex"] = _timed(rex_design, V, efficiency=1 - 1e-6, seed=0)
        rows["fw"] = _timed(fw_design, V, efficiency=1 - 1e-6)
        if N <= cvxpy_max_n:
            rows["cvxpy"] = _timed(cvxpy_design, V, tol_gap_rel=1e-10, tol_gap_abs=1e-10,
                                   tol_feas=1e-10)
        best = max(r.logdet for _, r in rows.values())
        for name, (sec, r) in rows.items():
            res.add("relaxed", N=N, d=d, solver=name, seconds=sec, logdet=r.logdet,
                    logdet_gap=best - r.logdet, efficiency=r.efficiency, support=r.support,
                    iterations=r.iterations, converged=r.converged)
            print(f"relaxed N={N} d={d} {name}: {sec:.2f} s, eff {r.efficiency:.9f}, "
                  f"gap {best - r.logdet:.2e}", flush=True)


def gemm_rate(res, d, rows=8192, k=256):
    """GFLOP/s of numpy's BLAS on (rows x d) @ (d x k), float64 and float32 (median of 5)."""
    from threadpoolctl import threadpool_info
    rng = np.random.default_rng(0)
    rates = {}
    for dt in (np.float64, np.float32):
        A, B = rng.standard_normal((rows, d)).astype(dt), rng.standard_normal((d, k)).astype(dt)
        A @ B
        ts = []
        for _ in range(5):
            t0 = time.perf_counter()
            A @ B
            ts.append(time.perf_counter() - t0)
        rates[np.dtype(dt).name] = 2.0 * rows * d * k / float(np.median(ts)) / 1e9
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


def bench_torch_cpu(res, N, d, n, rates):
    from sim.design import greedy_select
    from sim.design.torch_greedy import greedy_select_torch
    V = np.random.default_rng(0).standard_normal((N, d))
    greedy_select_torch(V[:2000], 20)  # warm-up: torch import and thread pool
    flops = 2.0 * N * d * n            # the bulk downdates (paper scale: 1.65e12)
    for dt in (np.float64, np.float32):
        name = np.dtype(dt).name
        t_np, a = _timed(greedy_select, V, n, dtype=dt)
        t_t, b = _timed(greedy_select_torch, V, n, dtype=dt)
        same = bool(np.array_equal(a.indices, b.indices))
        frac = flops / t_np / 1e9 / rates[name]
        res.add("torch_cpu", N=N, d=d, n=n, dtype=name, numpy_s=t_np, torch_s=t_t,
                ratio=t_t / t_np, same_picks=same, flops=flops,
                numpy_gflops=flops / t_np / 1e9, gemm_fraction=frac,
                reanchors=a.info.get("reanchors"))
        print(f"greedy {name}: numpy {t_np:.2f} s ({flops / t_np / 1e9:.0f} GFLOP/s = "
              f"{frac:.0%} of GEMM), torch {t_t:.2f} s ({t_t / t_np:.2f}x), same picks {same}",
              flush=True)


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
    # relaxed sizes; greedy (N, d, n);
    # greedi (N, d, n, workers)
    "quick": {"relaxed": [(300, 8), (3000, 8)], "greedy": (3000, 64, 512),
              "greedi": (5000, 16, 50, (2,))},
    "default": {"relaxed": [(1000, 32), (10_000, 32), (100_000, 32)],
                "greedy": (2**14, 384, 2**13),
                "greedi": (2**16, 64, 512, (2,))},
    "paper": {"relaxed": [(1000, 32), (10_000, 32), (100_000, 32), (1_000_000, 32)],
              "greedy": (2**16, 384, 2**15),
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
    sizes, tc, gd = S["relaxed"], S["greedy"], S["greedi"]
    res = Results("scale", quick=q, params={"scale": scale, "relaxed_sizes": sizes,
                                            "greedy": tc, "greedi": gd,
                                            "efficiency": 1 - 1e-6})
    print(machine(), flush=True)
    rates = gemm_rate(res, tc[1])
    bench_relaxed(res, sizes, cvxpy_max_n=1000 if not q else 300)
    bench_torch_cpu(res, *tc, rates)
    bench_greedi(res, *gd)
    rel = {(r["N"], r["solver"]): r for r in res.tables["relaxed"]}
    big = max(N for N, _ in sizes)
    res.headline(f"relaxed design to efficiency 1 - 1e-6, N = {big}, d = {sizes[-1][1]}",
                 ours=f"REX {rel[(big, 'rex')]['seconds']:.1f} s",
                 reference=f"FW {rel[(big, 'fw')]['seconds']:.1f} s")
    small = min(N for N, _ in sizes)
    res.headline(f"relaxed design, N = {small}, d = {sizes[0][1]}: log det gap to cvxpy",
                 ours=f"REX {rel[(small, 'rex')]['logdet_gap']:.1e}, FW "
                 f"{rel[(small, 'fw')]['logdet_gap']:.1e}",
                 reference=f"cvxpy {rel[(small, 'cvxpy')]['seconds']:.1f} s, REX "
                 f"{rel[(small, 'rex')]['seconds']:.2f} s, FW {rel[(small, 'fw')]['seconds']:.2f} s")
    for r in res.tables["torch_cpu"]:
        res.headline(f"greedy N = {r['N']}, d = {r['d']}, n = {r['n']}, {r['dtype']}: torch-CPU "
                     f"vs numpy", ours=f"torch {r['torch_s']:.2f} s ({r['ratio']:.2f}x)",
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
