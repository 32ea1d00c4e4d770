"""Relaxed D-optimal designs to efficiency 1 - 1e-6 (issue 15, item 4): REX (sim.design.rex)
against Frank-Wolfe (sim.design.relaxed, numpy and torch-CPU) and cvxpy/Clarabel (tightened;
only where it finishes in about a minute), on V ~ N(0, I) (N, d), each solver on the same
instance in one run: wall time, log det gap to the best design of the instance, the
Kiefer-Wolfowitz certificate, iterations (REX: passes; FW: steps), REX's exchanges, and the
peak anonymous memory beyond V. REX stops at ``rex_seconds`` like R's ``t.max`` (the efficiency
it reached is recorded, converged false). REX's exchange kernel is compiled by numba when the
extra ``fast`` is installed (``params.rex_kernel`` names it); it is compiled (or loaded from
numba's cache) once before any timing.

Scales (``--scale``): quick (smoke, N <= 3000, d = 8); default N = 1e3 ... 1e5 at d = 32 and
N = 1e4 at d = 128 (REX capped at 120 s; about 3 minutes on 2 quiet cores); paper: N = 1e3 x 32
with cvxpy, then 1e4 x 128, 1e5 x 128, 1e4 x 256 and 1e6 x 32 (REX capped at 300 s each).
REX runs with its default leading batch "auto" (``params.rex_batch``; R's gamma = 4 is
``batch=4``: see sim.design.rex). Measured in session 7, one BLAS thread, load 0.5-1.1, REX
alone: 1e4 x 128 in 17.6-20.6 s (R's gamma = 4: 41.5 s), 1e5 x 128 in 43.4 s (89.0 s),
1e4 x 256 in 219.9 s, 44 passes (gamma = 4: stopped at 1 - 1.1e-4 after 420 s, load 0.7-2.8),
1e6 x 32 in 7.1 s (7.6 s: the same passes, L = 4 d throughout). The whole paper scale: about
7-8 minutes on 2 quiet cores (session 6's FW and cvxpy times plus these).
``python -m bench.bench_relaxed [--quick | --scale paper]`` writes
bench/results/relaxed.json (``--quick``: results/bench/). Run timings under
``flock /work/bench.lock`` on a shared machine; the load average is recorded with every row.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from bench.bench_scale import peak_anon_mb
from bench.common import Results, machine

TARGET = 1 - 1e-6
REX_BATCH = "auto"    # REX's leading batch (sim.design.rex.leading_batch); 4 is R's gamma

SCALES = {
    # (N, d) sizes, the sizes where cvxpy also runs, REX's time cap in seconds
    "quick": {"sizes": [(300, 8), (3000, 8)], "cvxpy": [(300, 8)], "rex_seconds": 30},
    "default": {"sizes": [(1000, 32), (10_000, 32), (100_000, 32), (10_000, 128)],
                "cvxpy": [(1000, 32)], "rex_seconds": 120},
    "paper": {"sizes": [(1000, 32), (10_000, 128), (100_000, 128), (10_000, 256),
                        (1_000_000, 32)],
              "cvxpy": [(1000, 32)], "rex_seconds": 300},
}


def solver_runs(V: np.ndarray, rex_seconds: float, cvxpy: bool, torch: bool) -> dict:
    """name -> zero-argument call returning a DesignResult, for one instance V (N, d)."""
    from sim.design import cvxpy_design, fw_design, rex_design
    runs = {"fw-numpy": lambda: fw_design(V, efficiency=TARGET)}
    if torch:
        runs["fw-torch"] = lambda: fw_design(V, efficiency=TARGET, backend="torch")
    runs["rex"] = lambda: rex_design(V, efficiency=TARGET, seed=0, max_seconds=rex_seconds,
                                     batch=REX_BATCH)
    if cvxpy:
        runs["cvxpy"] = lambda: cvxpy_design(V, tol_gap_rel=1e-10, tol_gap_abs=1e-10,
                                             tol_feas=1e-10)
    return runs


def rex_kernel() -> str:
    """Which exchange kernel REX runs ("numba X.Y" or "python"), after compiling it (or loading
    it from numba's cache) on a small instance, so that no timing below includes it."""
    from sim.design import rex_design
    from sim.design.rex import COMPILED
    rex_design(np.random.default_rng(0).standard_normal((200, 6)), seed=0)
    if not COMPILED:
        return "python"
    import numba
    return f"numba {numba.__version__}"


def bench_relaxed(res: Results, sizes, cvxpy_sizes, rex_seconds: float,
                  torch: bool | None = None) -> None:
    """One table row per (instance, solver) in ``res``'s table "relaxed" (module docstring)."""
    res.params["rex_kernel"] = rex_kernel()
    if torch is None:
        try:
            import torch as _  # noqa: F401
            torch = True
        except ImportError:
            torch = False
    for N, d in sizes:
        V = np.random.default_rng(1).standard_normal((N, d))
        rows = {}
        for name, run in solver_runs(V, rex_seconds, (N, d) in cvxpy_sizes, torch).items():
            t0 = time.perf_counter()
            r, mb = peak_anon_mb(run)
            rows[name] = (time.perf_counter() - t0, r, mb, list(os.getloadavg()))
        best = max(r.logdet for _, r, _, _ in rows.values())
        for name, (sec, r, mb, load) in rows.items():
            res.add("relaxed", N=N, d=d, solver=name, seconds=sec, logdet=r.logdet,
                    logdet_gap=best - r.logdet, efficiency=r.efficiency, support=r.support,
                    iterations=r.iterations, converged=r.converged,
                    exchanges=r.info.get("exchanges"), peak_anon_mb=mb,
                    V_mb=V.nbytes / 2**20, load=load)
            print(f"relaxed N={N} d={d} {name}: {sec:.2f} s, eff {r.efficiency:.9f}, gap "
                  f"{best - r.logdet:.2e}, {'converged' if r.converged else 'NOT converged'}, "
                  f"+{mb:.0f} MB (V {V.nbytes / 2**20:.0f} MB), load {load[0]:.1f}", flush=True)
        fw = rows["fw-numpy"][0]
        res.headline(f"relaxed design to efficiency 1 - 1e-6, N = {N}, d = {d}",
                     ours=", ".join(f"{k} {v[0]:.2f} s" + ("" if v[1].converged else
                                    f" (stopped at efficiency {v[1].efficiency:.6f})")
                                    for k, v in rows.items() if k != "cvxpy"),
                     reference=(f"REX / FW-numpy {'' if rows['rex'][1].converged else '> '}"
                                f"{rows['rex'][0] / fw:.1f}x" +
                                (f"; cvxpy {rows['cvxpy'][0]:.2f} s (gap "
                                 f"{best - rows['cvxpy'][1].logdet:.1e})" if "cvxpy" in rows
                                 else "")))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.bench_relaxed", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="smoke sizes (= --scale quick)")
    ap.add_argument("--scale", choices=tuple(SCALES), default="default")
    ap.add_argument("--no-torch", action="store_true", help="skip Frank-Wolfe on torch-CPU")
    args = ap.parse_args(argv)
    scale = "quick" if args.quick else args.scale
    S = SCALES[scale]
    res = Results("relaxed", quick=scale == "quick",
                  params={"scale": scale, "sizes": S["sizes"], "cvxpy_sizes": S["cvxpy"],
                          "rex_seconds": S["rex_seconds"], "rex_batch": REX_BATCH,
                          "efficiency": TARGET,
                          "no_torch": args.no_torch})
    print(machine(), flush=True)
    bench_relaxed(res, S["sizes"], S["cvxpy"], S["rex_seconds"],
                  torch=False if args.no_torch else None)
    print(res.write())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
