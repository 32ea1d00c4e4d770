"""Greedy D-optimal selection at LLM scale on one GPU (sim.design.torch_greedy), as one script.

1. check: N = 1e5, d = 512, n = 500 rows generated on the device (float32); the torch engine in
   float32 and in float64 on the device must pick exactly what the numpy engine picks in
   float64 on the CPU from the same values.
2. timing: N = 1e6, d = 4096, n = 1e4, float32 bulk on the device (16 GB of features), after a
   warm-up run (CUDA context, cuBLAS handles) that is not timed.

Features: rows with i.i.d. N(0, 1/d) entries, generated on the device from ``--seed`` (norms
1 +- 1.1%); ``--unit-norm`` normalizes them exactly. With exactly unit-norm rows all N initial
scores are equal up to float32 rounding, so the first picks are decided by rounding noise and
the float32 certificate cannot separate them: the engine then re-scores all rows exactly in
float64 (measured on an H200: 5 such passes, 8.9 s instead of 6.3 s for n = 1e4).

TF32 is switched off (it would change float32 products to ~1e-3 relative precision).
Only numpy, scipy, torch and this repository are needed (no cvxpy, no dask).

    python -m bench.gpu_scale --out gpu_scale.json             # on a CUDA machine, <= 4 min
    python -m bench.gpu_scale --device cpu --tiny --out t.json # smoke test

The JSON is the benchmarks' common format (bench/common.py, ``adpo-bench/1``) with the GPU
named in ``machine.gpu``; copy it to ``bench/results/gpu_scale.json`` to enter the README table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np


def features(torch, N, d, seed, device, unit_norm=False):
    g = torch.Generator(device=device)
    g.manual_seed(seed)
    V = torch.randn((N, d), generator=g, device=device, dtype=torch.float32)
    if unit_norm:
        V /= V.norm(dim=1, keepdim=True)
    else:
        V /= float(np.sqrt(d))
    return V


def sync(torch, device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.gpu_scale", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="JSON output path")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--tiny", action="store_true", help="small sizes (CPU smoke test)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--unit-norm", action="store_true", help="normalize every row to norm 1")
    ap.add_argument("--N", type=int, default=None, help="timing run: rows (default 1e6)")
    ap.add_argument("--d", type=int, default=None, help="timing run: dimension (default 4096)")
    ap.add_argument("--n", type=int, default=None, help="timing run: picks (default 1e4)")
    args = ap.parse_args(argv)

    import torch

    from sim.design import greedy_select
    from sim.design.torch_greedy import greedy_select_torch, resolve_device

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    dev = resolve_device(args.device)
    check = (3000, 32, 100) if args.tiny else (100_000, 512, 500)
    big = (20_000, 64, 500) if args.tiny else (1_000_000, 4096, 10_000)
    big = (args.N or big[0], args.d or big[1], args.n or big[2])
    warm = (2000, big[1], 20)
    from bench.common import Results
    gpu = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "none (cpu)"
    res_out = Results("gpu_scale", quick=args.tiny, params={
        "device": str(dev), "gpu": gpu, "torch": torch.__version__, "tf32": False,
        "features": ("unit-norm rows" if args.unit_norm else "i.i.d. N(0, 1/d) entries")
        + ", float32, generated on the device", "seed": args.seed})
    out = {}

    # 1. identical picks on a slice: torch float32/float64 on the device vs numpy float64 (CPU)
    N, d, n = check
    V = features(torch, N, d, args.seed, dev, args.unit_norm)
    V64 = V.cpu().double().numpy()
    t0 = time.perf_counter()
    ref = greedy_select(V64, n, dtype=np.float64)
    t_np = time.perf_counter() - t0
    r32 = greedy_select_torch(V, n, dtype=np.float32, device=str(dev))
    r64 = greedy_select_torch(V, n, dtype=np.float64, device=str(dev))
    out["check"] = {
        "N": N, "d": d, "n": n, "numpy_f64_cpu_s": t_np,
        "torch_f32_equal_numpy_f64": bool(np.array_equal(r32.indices, ref.indices)),
        "torch_f64_equal_numpy_f64": bool(np.array_equal(r64.indices, ref.indices)),
        "first_mismatch_f32": _first_mismatch(r32.indices, ref.indices),
        "logdet_numpy": ref.logdet, "logdet_torch_f32": r32.logdet,
        "logdet_torch_f64": r64.logdet}
    del V, V64
    print(json.dumps(out["check"]), flush=True)

    # 2. timing at scale (warm-up excluded)
    Vw = features(torch, warm[0], warm[1], args.seed + 1, dev, args.unit_norm)
    greedy_select_torch(Vw, warm[2], dtype=np.float32, device=str(dev))
    del Vw
    N, d, n = big
    t0 = time.perf_counter()
    V = features(torch, N, d, args.seed, dev, args.unit_norm)
    sync(torch, dev)
    t_gen = time.perf_counter() - t0
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    t0 = time.perf_counter()
    res = greedy_select_torch(V, n, dtype=np.float32, device=str(dev))
    sync(torch, dev)
    secs = time.perf_counter() - t0
    out["timing"] = {
        "N": N, "d": d, "n": n, "dtype": "float32", "seconds": secs,
        "generate_seconds": t_gen, "picks_per_second": n / secs, "logdet": res.logdet,
        "blocks": res.info["blocks"], "reanchors": res.info["reanchors"],
        "evaluations": res.info["evaluations"], "first_picks": res.indices[:20].tolist(),
        "distinct_picks": int(np.unique(res.indices).size),
        "flop_bulk_estimate": 2.0 * N * d * n,
        "peak_gpu_memory_gb": (torch.cuda.max_memory_allocated(dev) / 2**30
                               if dev.type == "cuda" else None)}
    print(json.dumps(out["timing"]), flush=True)
    res_out.add("check", **out["check"])
    res_out.add("timing", **out["timing"])
    t = out["timing"]
    res_out.headline(f"greedy on one GPU ({gpu}), N = {N:.0e}, d = {d}, n = {n:.0e}, float32",
                     ours=f"{t['seconds']:.1f} s",
                     reference="first {} picks at N = {:.0e}, d = {} equal numpy float64: {}"
                     .format(out['check']['n'], out['check']['N'], out['check']['d'],
                             out['check']['torch_f32_equal_numpy_f64']))
    payload = res_out.payload()
    payload["machine"]["gpu"] = gpu
    tmp = args.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(payload, f, indent=1)
    os.replace(tmp, args.out)
    ok = out["check"]["torch_f32_equal_numpy_f64"] and out["check"]["torch_f64_equal_numpy_f64"]
    return 0 if ok else 1


def _first_mismatch(a, b):
    diff = np.flatnonzero(np.asarray(a) != np.asarray(b))
    return int(diff[0]) if diff.size else None


if __name__ == "__main__":
    sys.exit(main())
