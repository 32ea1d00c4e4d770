"""Pools at scale (issue 15), each comparison measured side by side in one run.

1. relaxed D-optimal designs to efficiency 1 - 1e-6: REX (sim.design.rex) and Frank-Wolfe
   (sim.design.relaxed) at N = 1e3 ... 1e5, d = 32, against cvxpy/Clarabel (tightened) where it
   runs in reasonable time (N = 1e3); the log det gap to the best of the three.
2. The torch blocked greedy engine on the CPU vs the numpy engine, float64 and float32 (same
   picks required).
3. Out-of-core: a pool folder (sim.store) of float32 rows streamed by the torch engine in row
   blocks; peak anonymous resident memory sampled during the run, picks equal to the in-memory
   numpy engine's.
4. GreeDi with 2 local Dask workers against the single-machine greedy (log det ratio, time).

``python -m bench.bench_scale [--quick]``; the full run writes bench/results/scale.json. Run
timings under ``flock /work/bench.lock`` on a shared machine; the load average is recorded.
"""

from __future__ import annotations

import argparse
import tempfile
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


def bench_torch_cpu(res, N, d, n):
    from sim.design import greedy_select
    from sim.design.torch_greedy import greedy_select_torch
    V = np.random.default_rng(0).standard_normal((N, d))
    greedy_select_torch(V[:2000], 20)  # warm-up: torch import and thread pool
    for dt in (np.float64, np.float32):
        t_np, a = _timed(greedy_select, V, n, dtype=dt)
        t_t, b = _timed(greedy_select_torch, V, n, dtype=dt)
        res.add("torch_cpu", N=N, d=d, n=n, dtype=np.dtype(dt).name, numpy_s=t_np, torch_s=t_t,
                ratio=t_t / t_np, same_picks=bool(np.array_equal(a.indices, b.indices)))
        print(f"torch-cpu {np.dtype(dt).name}: numpy {t_np:.2f} s, torch {t_t:.2f} s, same "
              f"picks {np.array_equal(a.indices, b.indices)}", flush=True)


def bench_out_of_core(res, N, d, n, rows_per_block):
    from sim.data import PreferenceData
    from sim.design import greedy_select
    from sim.design.torch_greedy import greedy_select_torch
    from sim.store import open_pool, save_pool
    rng = np.random.default_rng(2)
    with tempfile.TemporaryDirectory() as tmp:
        phi = rng.standard_normal((N, d), dtype=np.float32)
        save_pool(f"{tmp}/pool", PreferenceData(phi=phi, b=np.zeros(N)), dtype=np.float32)
        del phi
        pool = open_pool(f"{tmp}/pool")
        greedy_select_torch(pool.phi[:2000], 20, stream=True)  # warm-up
        t0 = time.perf_counter()
        out, mb = peak_anon_mb(lambda: greedy_select_torch(pool.phi, n, dtype=np.float32,
                                                           rows_per_block=rows_per_block))
        t_stream = time.perf_counter() - t0
        V = np.asarray(pool.phi, dtype=np.float64)
        t_mem, ref = _timed(greedy_select, V, n, dtype=np.float64)
    same = bool(np.array_equal(out.indices, ref.indices))
    res.add("out_of_core", N=N, d=d, n=n, rows_per_block=rows_per_block,
            phi_mb=N * d * 4 / 2**20, streamed_s=t_stream, peak_anon_mb=mb,
            in_memory_numpy_f64_s=t_mem, same_picks_as_in_memory_f64=same)
    print(f"out-of-core N={N} d={d} n={n}: {t_stream:.1f} s, peak +{mb:.0f} MB "
          f"(phi {N * d * 4 / 2**20:.0f} MB), same picks {same}", flush=True)


def bench_greedi(res, N, d, n, workers):
    from sim.design import greedy_select
    from sim.design.greedi import connect, greedi_select
    V = np.random.default_rng(3).standard_normal((N, d))
    t_single, single = _timed(greedy_select, V, n)
    client = connect(f"local:{workers}")
    try:
        greedi_select(V[:2000], 10, parts=workers, client=client)  # warm-up
        t_g, g = _timed(greedi_select, V, n, parts=workers, client=client)
    finally:
        client.close()
    res.add("greedi", N=N, d=d, n=n, workers=workers, single_s=t_single, greedi_s=t_g,
            logdet_ratio=g.logdet / single.logdet, pick_overlap=len(
                set(g.indices.tolist()) & set(single.indices.tolist())) / n)
    print(f"greedi N={N} d={d} n={n} x{workers}: {t_g:.1f} s vs {t_single:.1f} s, ratio "
          f"{g.logdet / single.logdet:.5f}", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.bench_scale", description=__doc__)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    q = args.quick
    sizes = [(300, 8), (3000, 8)] if q else [(1000, 32), (10_000, 32), (100_000, 32)]
    tc = (3000, 16, 200) if q else (16_384, 128, 2048)
    ooc = (20_000, 16, 100, 4096) if q else (131_072, 128, 1024, 16_384)
    gd = (5000, 16, 50, 2) if q else (65_536, 64, 512, 2)
    res = Results("scale", quick=q, params={"relaxed_sizes": sizes, "torch_cpu": tc,
                                            "out_of_core": ooc, "greedi": gd,
                                            "efficiency": 1 - 1e-6})
    print(machine(), flush=True)
    bench_relaxed(res, sizes, cvxpy_max_n=1000 if not q else 300)
    bench_torch_cpu(res, *tc)
    bench_out_of_core(res, *ooc)
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
    o = res.tables["out_of_core"][0]
    res.headline(f"out-of-core greedy N = {o['N']}, d = {o['d']}, n = {o['n']}, float32 "
                 f"streamed in {o['rows_per_block']}-row blocks",
                 ours=f"{o['streamed_s']:.1f} s, peak +{o['peak_anon_mb']:.0f} MB (phi "
                 f"{o['phi_mb']:.0f} MB)", reference=f"in-memory numpy float64 "
                 f"{o['in_memory_numpy_f64_s']:.1f} s; same picks {o['same_picks_as_in_memory_f64']}")
    gr = res.tables["greedi"][0]
    res.headline(f"GreeDi N = {gr['N']}, d = {gr['d']}, n = {gr['n']}, {gr['workers']} local "
                 f"Dask workers (in-process, 2 cores)", ours=f"{gr['greedi_s']:.1f} s, log det "
                 f"ratio {gr['logdet_ratio']:.5f}", reference=f"single-machine greedy "
                 f"{gr['single_s']:.1f} s")
    print(res.write())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
