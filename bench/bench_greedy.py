"""The blocked greedy engine at scale on this machine: how close to the BLAS it runs, and out of
core (issue 15).

1. GEMM rate of numpy's BLAS at the refresh's shape, float64 and float32, with the kernel named.
2. In memory: the blocked greedy (paper eq. 10, :func:`sim.design.greedy_select`) on N x d
   Gaussian rows, n picks, float64 and float32. It needs 2 N d n flop for the bulk downdates
   (the paper's scale N = 2^16, d = 384, n = 2^15: 1.65e12); reported as GFLOP/s and as a fraction
   of the GEMM rate. Same picks in both precisions required. Then the same runs on
   ``--backend torch`` on the CPU (when torch is installed): seconds, the ratio to numpy in the
   same process, same picks.
3. Out of core: a float32 pool folder (:mod:`sim.store`) of N x d rows written block by block,
   memory-mapped, and the greedy run on it streamed (never loaded: rows are read in
   ``rows_per_block`` blocks); wall time and peak anonymous resident memory (the page cache of
   the mapped file is not counted: it is the operating system's, and evictable). The first
   min(n, 1000) picks are checked against the in-memory float64 engine on the same rows (the
   whole pool when a float64 copy fits in a third of the memory, else its first ``check_rows``
   rows: recorded).
   Where the time went: CPU seconds, split into the row-block products that run on all
   cores and the per-pick work on one core (``work_split``), the mean block length and the
   GEMM rate of the bulk refresh at that length.
4. Beside a busy core: the same greedy alone and while another process keeps one of the two
   cores busy (a shared laptop, a CI runner), and the ratio.
5. Across machines: n picks from a pool folder by GreeDi on local Dask worker processes that
   read their own rows of the file, against the single-machine greedy streamed from it: time
   and log det ratio.

``python -m bench.bench_greedy [--quick | --scale paper]``; writes bench/results/greedy.json.
Default scale: about 3 minutes on 2 quiet cores; paper scale (N = 2^20, d = 768, n = 2^14 out of
core, and GreeDi from a 10^6-row pool): about 13 minutes.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np

from bench.bench_scale import gemm_rate, peak_anon_mb
from bench.common import Results, machine

SCALES = {
    # in memory (N, d, n); out of core (N, d, n, check rows when the pool does not fit twice)
    # GreeDi from a pool (N, d, n, workers)
    # the greedy alone and beside a busy core (N, d, n)
    "quick": {"greedy": (3000, 64, 512), "ooc": (20_000, 32, 300, 5000),
              "greedi": (20_000, 16, 100, 2), "busy": (3000, 64, 512)},
    "default": {"greedy": (2**14, 384, 2**13), "ooc": (2**18, 768, 2**12, 2**15),
                "greedi": (2**18, 64, 2**12, 2), "busy": (2**14, 384, 2**12)},
    "paper": {"greedy": (2**16, 384, 2**15), "ooc": (2**20, 768, 2**14, 2**17),
              "greedi": (10**6, 128, 10**4, 2), "busy": (2**14, 384, 2**12)},
}


def bench_in_memory(res, N, d, n, rates):
    from sim.design import greedy_select
    from sim.design.greedy import blas_threads
    workers = blas_threads()
    V = np.random.default_rng(0).standard_normal((N, d))
    greedy_select(V[:2000], 50)                 # warm-up
    flops = 2.0 * N * d * n
    picks = {}
    for dt in (np.float64, np.float32):
        name = np.dtype(dt).name
        t0, c0 = time.perf_counter(), time.process_time()
        r = greedy_select(V, n, dtype=dt)
        sec, cpu = time.perf_counter() - t0, time.process_time() - c0
        picks[name] = r.indices
        gf = flops / sec / 1e9
        res.add("in_memory", N=N, d=d, n=n, dtype=name, seconds=sec, flops=flops, gflops=gf,
                gemm_gflops=rates[name], gemm_fraction=gf / rates[name], blocks=r.info["blocks"],
                evaluations=r.info["evaluations"], loadavg=list(os.getloadavg()),
                **work_split(sec, cpu, workers, flops, rates[name]))
        k = max(1, round(n / r.info["blocks"]))
        res.tables["in_memory"][-1].update(mean_block=k, gemm_gflops_at_mean_block=gemm_at(
            d, k, dt, workers))
        print(f"greedy N={N} d={d} n={n} {name}: {sec:.2f} s = {gf:.0f} GFLOP/s = "
              f"{gf / rates[name]:.0%} of GEMM ({r.info['blocks']} blocks)", flush=True)
    same = bool(np.array_equal(picks["float64"], picks["float32"]))
    for row in res.tables["in_memory"][-2:]:
        row["same_picks_f32_f64"] = same
    try:
        from sim.design.torch_greedy import greedy_select_torch
    except ImportError:          # torch is optional: the row says so
        return
    greedy_select_torch(V[:2000], 50)           # warm-up: torch's import and thread pool
    for row in res.tables["in_memory"][-2:]:
        t0 = time.perf_counter()
        r = greedy_select_torch(V, n, dtype=np.dtype(row["dtype"]))
        row.update(torch_cpu_seconds=time.perf_counter() - t0,
                   torch_same_picks=bool(np.array_equal(r.indices, picks[row["dtype"]])),
                   torch_loadavg=list(os.getloadavg()))
        row["torch_over_numpy"] = row["torch_cpu_seconds"] / row["seconds"]
        print(f"  torch-CPU (--backend torch, numpy's engine with torch's products) "
              f"{row['dtype']}: {row['torch_cpu_seconds']:.2f} s = "
              f"{row['torch_over_numpy']:.2f}x numpy, same picks {row['torch_same_picks']}",
              flush=True)


def work_split(wall, cpu, workers, flops, rate):
    """Where a run's time went, from its wall and CPU seconds on ``workers`` cores: the
    blocked greedy runs its row-block products on all of them (parallel work P) and everything
    else (each pick's solve and score downdates, the active sets) on one while the others wait
    (serial work S): wall = P / workers + S and cpu = P + S. ``gemm_fraction_overlapped`` is
    the fraction of the GEMM rate the same work would reach if no core ever waited (wall =
    cpu / workers): what the engine's arithmetic allows, as against how it is scheduled."""
    if workers < 2:
        return {"cpu_seconds": cpu, "workers": workers}
    parallel = max(cpu - wall, 0.0) * workers / (workers - 1)
    return {"cpu_seconds": cpu, "workers": workers, "parallel_cpu_s": parallel,
            "serial_s": max(cpu - parallel, 0.0),
            "gemm_fraction_overlapped": flops / (cpu / workers) / 1e9 / rate}


def gemm_at(d, k, dtype, workers, rows=2048, total=2**15):
    """GFLOP/s of the bulk refresh's products at block length k: (rows x d) @ (d x k) on
    ``total`` rows in blocks of ``rows``, on ``workers`` threads as the engine runs them
    (median of 5)."""
    from sim.design.greedy import BulkProducts
    X = np.random.default_rng(1).standard_normal((total, d)).astype(dtype)
    W = np.random.default_rng(2).standard_normal((k, d)).astype(dtype)
    q = np.zeros(total)

    def part(lo, hi):
        q[lo:hi] = BulkProducts().rowsq(X[lo:hi], W)
    ts = []
    for _ in range(6):
        t0 = time.perf_counter()
        BulkProducts().map_rows(part, total, rows, workers)
        ts.append(time.perf_counter() - t0)
    return 2.0 * total * d * k / float(np.median(ts[1:])) / 1e9


def bench_busy(res, N, d, n):
    """The blocked greedy alone and beside another process that keeps one of the cores busy
    (one-thread GEMMs), interleaved: wall seconds and their ratio (same picks)."""
    import subprocess
    import sys
    from sim.design import greedy_select
    V = np.random.default_rng(0).standard_normal((N, d))
    hog = ("import numpy as np, threadpoolctl\n"
           "A = np.random.default_rng(0).standard_normal((1024, 1024))\n"
           "with threadpoolctl.threadpool_limits(1):\n"
           "    while True: A @ A\n")
    times = {"quiet": [], "busy": []}
    picks = []
    for _ in range(2):
        for mode in ("quiet", "busy"):
            p = subprocess.Popen([sys.executable, "-c", hog]) if mode == "busy" else None
            try:
                if p is not None:
                    time.sleep(1.0)
                t0 = time.perf_counter()
                picks.append(greedy_select(V, n).indices)
                times[mode].append(time.perf_counter() - t0)
            finally:
                if p is not None:
                    p.kill()
                    p.wait()
    quiet, busy = (float(np.median(times[m])) for m in ("quiet", "busy"))
    res.add("busy", N=N, d=d, n=n, quiet_s=quiet, busy_s=busy, busy_over_quiet=busy / quiet,
            runs=times, same_picks=all(np.array_equal(p, picks[0]) for p in picks),
            loadavg=list(os.getloadavg()))
    print(f"greedy N={N} d={d} n={n}: quiet {quiet:.2f} s, one core busy {busy:.2f} s "
          f"({busy / quiet:.2f}x)", flush=True)


def write_pool(path, N, d, seed=2):
    """A float32 pool folder of N x d Gaussian rows, written block by block (never N x d in
    memory); returns the seconds it took."""
    from sim.store import PoolWriter
    t0 = time.perf_counter()
    with PoolWriter(path, N, d, beta=1.0, dtype=np.float32) as w:
        for lo in range(0, N, 65536):
            rng = np.random.default_rng([seed, lo])
            w.phi[lo:lo + 65536] = rng.standard_normal((min(65536, N - lo), d), dtype=np.float32)
        w.put("b", np.zeros(N))
    return time.perf_counter() - t0


def bench_out_of_core(res, N, d, n, check_rows, tmpdir):
    from sim.design import greedy_select
    from sim.store import open_pool
    os.makedirs(tmpdir, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=tmpdir) as tmp:
        t_write = write_pool(f"{tmp}/pool", N, d)
        pool = open_pool(f"{tmp}/pool")
        greedy_select(pool.phi[:2000], 20)           # warm-up (an in-memory slice)
        load0 = list(os.getloadavg())
        t0 = time.perf_counter()
        out, mb = peak_anon_mb(lambda: greedy_select(pool.phi, n, dtype=np.float32))
        t_stream = time.perf_counter() - t0
        assert out.info["streamed"]
        # the exactness check against the in-memory float64 engine: on the whole pool when its
        # float64 copy fits in a third of the memory
        m = min(n, 1000)
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        rows = N if 8 * N * d < total / 3 else check_rows
        ref = greedy_select(np.asarray(pool.phi[:rows], dtype=np.float64), m, dtype=np.float64)
        streamed = out.indices[:m] if rows == N else greedy_select(
            pool.phi[:rows], m, dtype=np.float32).indices
    same = bool(np.array_equal(streamed, ref.indices))
    res.add("out_of_core", N=N, d=d, n=n, phi_mb=N * d * 4 / 2**20, write_s=t_write,
            streamed_s=t_stream, peak_anon_mb=mb, blocks=out.info["blocks"],
            check_rows=rows, check_picks=m, same_picks_as_in_memory_f64=same,
            loadavg_start=load0, loadavg_end=list(os.getloadavg()))
    print(f"out-of-core N={N} d={d} n={n} float32: {t_stream:.1f} s, peak RssAnon +{mb:.0f} MB "
          f"(phi {N * d * 4 / 2**20:.0f} MB); first {m} picks on {rows} rows = in-memory "
          f"float64: {same}", flush=True)


def bench_greedi_pool(res, N, d, n, workers, tmpdir):
    """n picks from a pool folder by GreeDi on ``workers`` local Dask worker processes (each
    reads its own rows from the memory-mapped file; one BLAS thread each) against the
    single-machine greedy streamed from the same file (2 BLAS threads), both float32 bulks."""
    from sim.design import greedy_select
    from sim.design.greedi import connect, greedi_select
    from sim.store import open_pool
    os.makedirs(tmpdir, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=tmpdir) as tmp:
        write_pool(f"{tmp}/pool", N, d, seed=5)
        pool = open_pool(f"{tmp}/pool")
        load0 = list(os.getloadavg())
        t0 = time.perf_counter()
        single = greedy_select(pool.phi, n, dtype=np.float32)
        t_single = time.perf_counter() - t0
        client = connect(f"local:{workers}")
        try:
            greedi_select(pool.phi[:4000], 20, parts=workers, client=client)   # warm-up
            t0 = time.perf_counter()
            g = greedi_select(pool.phi, n, parts=workers, client=client, dtype=np.float32)
            t_g = time.perf_counter() - t0
        finally:
            client.close()
    ratio = g.logdet / single.logdet
    overlap = len(set(g.indices.tolist()) & set(single.indices.tolist())) / n
    res.add("greedi_pool", N=N, d=d, n=n, workers=workers, greedi_s=t_g,
            round1_s=g.info["round1_seconds"], single_streamed_s=t_single,
            logdet_ratio=ratio, pick_overlap=overlap,
            rows_read_by_workers=g.info["rows_read_by_workers"], loadavg_start=load0,
            loadavg_end=list(os.getloadavg()))
    print(f"GreeDi pool N={N} d={d} n={n} x{workers} workers: {t_g:.1f} s (log det ratio "
          f"{ratio:.5f}, overlap {overlap:.2f}) vs single-machine streamed {t_single:.1f} s",
          flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.bench_greedy", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="smoke sizes (= --scale quick)")
    ap.add_argument("--scale", choices=tuple(SCALES), default="default")
    ap.add_argument("--tmp", default="results/bench", help="folder for the temporary pool "
                    "(on disk: the page cache, not a tmpfs)")
    args = ap.parse_args(argv)
    scale = "quick" if args.quick else args.scale
    S = SCALES[scale]
    res = Results("greedy", quick=scale == "quick",
                  params={"scale": scale, "in_memory": S["greedy"], "out_of_core": S["ooc"],
                          "greedi_pool": S["greedi"], "busy": S["busy"]})
    print(machine(), flush=True)
    rates = gemm_rate(res, S["greedy"][1])
    bench_in_memory(res, *S["greedy"], rates)
    after = gemm_rate(res, S["greedy"][1])  # again: the larger of the two is the reference
    for r in res.tables["in_memory"]:
        rate = max(rates[r["dtype"]], after[r["dtype"]])
        if "gemm_fraction_overlapped" in r:
            r["gemm_fraction_overlapped"] *= r["gemm_gflops"] / rate
        r.update(gemm_gflops=rate, gemm_fraction=r["gflops"] / rate)
    bench_busy(res, *S["busy"])
    bench_out_of_core(res, *S["ooc"], args.tmp)
    bench_greedi_pool(res, *S["greedi"], args.tmp)
    g = res.tables["gemm"][0]  # (the kernel: the same in both measurements)
    for r in res.tables["in_memory"]:
        res.headline(f"blocked greedy N = {r['N']}, d = {r['d']}, n = {r['n']}, {r['dtype']}, in "
                     f"memory", ours=f"{r['seconds']:.1f} s = {r['gflops']:.0f} GFLOP/s = "
                     f"{r['gemm_fraction']:.0%} of GEMM", reference=f"GEMM "
                     f"{r['gemm_gflops']:.0f} GFLOP/s ({'; '.join(g['blas'])}, "
                     f"OPENBLAS_CORETYPE={g['OPENBLAS_CORETYPE']})")
        if "serial_s" in r:
            res.headline(f"where the blocked greedy's time went, N = {r['N']}, d = {r['d']}, "
                         f"n = {r['n']}, {r['dtype']}, {r['workers']} cores",
                         ours=f"{r['serial_s']:.1f} s of {r['seconds']:.1f} s on one core while "
                         f"the other waits; {r['gemm_fraction_overlapped']:.0%} of GEMM if no "
                         f"core waited", reference=f"bulk refresh at the mean block length k = "
                         f"{r['mean_block']}: {r['gemm_gflops_at_mean_block']:.0f} GFLOP/s = "
                         f"{r['gemm_gflops_at_mean_block'] / r['gemm_gflops']:.0%} of GEMM")
        if "torch_over_numpy" in r:
            res.headline(f"torch-CPU blocked greedy N = {r['N']}, d = {r['d']}, n = {r['n']}, "
                         f"{r['dtype']}", ours=f"{r['torch_cpu_seconds']:.1f} s = "
                         f"{r['torch_over_numpy']:.2f}x numpy", reference=f"numpy "
                         f"{r['seconds']:.1f} s, same picks: {r['torch_same_picks']}")
    b = res.tables["busy"][0]
    res.headline(f"blocked greedy N = {b['N']}, d = {b['d']}, n = {b['n']}, float64, another "
                 f"process busy on one core", ours=f"{b['busy_s']:.1f} s = "
                 f"{b['busy_over_quiet']:.2f}x alone", reference=f"alone {b['quiet_s']:.1f} s, "
                 f"same picks: {b['same_picks']}")
    o = res.tables["out_of_core"][0]
    res.headline(f"out-of-core greedy N = {o['N']}, d = {o['d']}, n = {o['n']}, float32 pool "
                 f"streamed", ours=f"{o['streamed_s']:.0f} s, peak +{o['peak_anon_mb']:.0f} MB "
                 f"(phi {o['phi_mb']:.0f} MB)", reference=f"first {o['check_picks']} picks on "
                 f"{o['check_rows']} rows = in-memory float64: "
                 f"{o['same_picks_as_in_memory_f64']}")
    r = res.tables["greedi_pool"][0]
    res.headline(f"GreeDi from a pool folder N = {r['N']}, d = {r['d']}, n = {r['n']}, "
                 f"{r['workers']} local Dask worker processes reading their own rows",
                 ours=f"{r['greedi_s']:.0f} s, log det ratio {r['logdet_ratio']:.5f}",
                 reference=f"single-machine greedy streamed from the same file "
                 f"{r['single_streamed_s']:.0f} s")
    print(res.write())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
