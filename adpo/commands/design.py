"""``adpo design``: D- (or A-, G-) optimal design over the feature differences phi

Choose n rows maximizing log det(gamma I + sum v v^T) (greedy, exchange, brute), or the relaxed
design pi maximizing log det sum pi_i v_i v_i^T (fw, multiplicative, cvxpy), with v_i =
sqrt(w_i) phi_i. Writes JSON with 'indices' (selection order) or 'pi', 'logdet', 'efficiency'
(Kiefer-Wolfowitz bound for relaxed designs, null for exact ones) and 'seconds'. With --n,
relaxed designs are also rounded to n distinct rows. 'logdet' is always log det(gamma I + sum
phi_i phi_i^T) over the chosen rows (as in `adpo select`; null without rows), 'weighted_logdet'
the same with v_i = sqrt(w_i) phi_i (--weights theta_star), 'logdet_relaxed' log det M(pi) of a
relaxed design. --criterion a|g optimizes tr H^-1 or the largest predicted logit variance
instead (greedy, multiplicative, cvxpy); 'efficiency' is then that criterion's certificate and
info.final / info.value its value.
"""

import argparse

import time

import numpy as np

from sim.data import PreferenceData
from sim.design.solvers import (SOLVERS, SolveOptions, check_solver_backend, check_solver_criterion,
                                solver_names)
from sim.dpo import logistic_weight
from sim.io import check_output, write_json
from sim.store import Pool, is_pool, open_pool
from sim.validation import DataError, as_rng, check_resources, positive_int, positive_scalar

from . import add_command
from ..options import add_renamed


def memory_estimate(solver: str, N: int, d: int) -> float:
    """Bytes a solver holds at its peak (float64): a few copies of the (N, d) rows (fw and rex:
    two, measured for fw at N = 1e6, d = 128 in bench_scale's relaxed table); cvxpy builds
    the (N, d, d) stack of v_i v_i^T and its conic form (measured: 24 GB at N = 1e5, d = 64)."""
    if solver == "cvxpy":
        return 8.0 * 8 * N * d * d
    if solver in ("fw", "rex"):  # phi, the weighted rows, O(N) vectors and 65536-row blocks
        return 2 * 8.0 * N * d + 64.0 * N + 8.0 * min(N, 65536) * d
    return 4 * 8.0 * N * d


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "design", __doc__)
    p.add_argument("--data", required=True, help=".npz (see adpo --help) or a pool folder "
                   "(sim.store)")
    p.add_argument("--solver", required=True, choices=solver_names(),
                   help="; ".join(f"{e.name}: {e.help}" for e in SOLVERS))
    p.add_argument("--n", type=int, default=None,
                   help="number of rows (required for greedy, exchange, brute)")
    p.add_argument("--design-ridge", type=float, default=1.0, dest="gamma",
                   help="ridge of H_0 = gamma I (exact designs; 'logdet' in the output)")
    p.add_argument("--weights", choices=("none", "theta_star"), default="none",
                   help="theta_star: w_i = beta^2 mu_i(theta_star)(1 - mu_i(theta_star)) (Lemma 1)")
    p.add_argument("--candidates", default="all",
                   help="greedy: 'all' (exact argmax) or m, a random subset per pick")
    p.add_argument("--efficiency", type=float, default=1 - 1e-6,
                   help="relaxed solvers stop once the certificate reaches this (default 1-1e-6)")
    p.add_argument("--float32", action="store_true", help="greedy: single-precision bulk refresh")
    p.add_argument("--backend", choices=("numpy", "torch"), default="numpy",
                   help="greedy, fw: the numpy engine or the torch one (same picks / same "
                   "design; needs torch)")
    p.add_argument("--device", default="cpu", help="with --backend torch: cpu or cuda")
    p.add_argument("--rows-per-block", type=int, default=None,
                   help="greedy: rows per block of the bulk refresh, read in turn from a pool "
                   "folder (bounds the memory: ~rows x (d + 256) x 8 bytes; default 2048 for "
                   "numpy, 65536 for torch)")
    p.add_argument("--scheduler", default=None,
                   help="greedi, greedi-exact: local:K (K in-process Dask workers) or a scheduler address; "
                   "default: 2 blocks in this process")
    p.add_argument("--criterion", choices=("d", "a", "g"), default="d",
                   help="d: max log det (default); a: min tr H^-1; g: min the largest predicted "
                   "logit variance max_j phi_j^T H^-1 phi_j (sim.design.criteria); a and g: "
                   f"solvers {', '.join(sorted(set(solver_names('criterion-a'))))}")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="-", help="JSON output (default: stdout)")
    p.add_argument("--force", action="store_true", help="skip the memory guard")
    add_renamed(p, "--gamma", gamma="--design-ridge")
    p.set_defaults(func=run)


def design_weights(data: PreferenceData | Pool, kind: str) -> np.ndarray | None:
    """None, or the Lemma 1 weights beta^2 mu_i (1 - mu_i) at theta_star, (N,)."""
    if kind == "none":
        return None
    if data.theta_star is None:
        raise DataError("weights: --weights theta_star needs theta_star in the data file (files "
                        "written by `adpo env` have it; no command adds it to other files); use "
                        "--weights none")
    return data.beta ** 2 * logistic_weight(data.beta * (data.phi @ data.theta_star - data.b))


def check_args(args: argparse.Namespace) -> None:
    """Every option and the output path, before any work."""
    if args.n is not None:
        positive_int(args.n, "n")
    if "exact" in SOLVERS.get(args.solver).tags and args.n is None:
        raise ValueError(f"n: --n is required for --solver {args.solver}")
    positive_scalar(args.gamma, "design-ridge")
    if args.candidates != "all":
        positive_int(_int(args.candidates, "candidates"), "candidates")
    if not 0 < args.efficiency < 1:
        raise ValueError(f"efficiency: must lie in (0, 1), got {args.efficiency}")
    as_rng(args.seed)
    if args.rows_per_block is not None:
        positive_int(args.rows_per_block, "rows_per_block")
    if args.scheduler is not None and "distributed" not in SOLVERS.get(args.solver).tags:
        raise ValueError(f"scheduler: --scheduler applies to the distributed solvers only "
                         f"({', '.join(solver_names('distributed'))})")
    if args.scheduler is not None and args.scheduler.startswith("local:"):
        from sim.design.greedi import local_workers
        local_workers(args.scheduler)
    check_solver_criterion(args.solver, args.criterion)
    if args.criterion != "d" and args.n is not None and "relaxed" in SOLVERS.get(args.solver).tags:
        raise ValueError(f"n: rounding is D-optimal; a relaxed --criterion {args.criterion} design "
                         f"is not rounded: drop --n, or use --solver greedy --criterion "
                         f"{args.criterion} for n rows")
    check_solver_backend(args.solver, args.backend, args.device)
    check_output(args.out, suffix=".json", inputs=(args.data,), allow_stdout=True)


def run(args: argparse.Namespace) -> int:
    from sim.design import round_design
    from sim.design.common import subset_logdet

    check_args(args)
    stream = is_pool(args.data) and args.criterion == "d" and (
        args.solver in ("greedi", "greedi-exact")
        or (args.solver == "greedy" and (args.backend == "torch" or args.candidates == "all")))
    # A pool folder stays memory-mapped (phi is never loaded as a whole) when streamed by a
    # blocked greedy engine (numpy or torch) or read by the GreeDi workers, each its own rows.
    data = open_pool(args.data) if stream else PreferenceData.load(args.data)
    n = args.n
    if n is not None and not 1 <= n <= data.N:
        raise ValueError(f"n: must lie in [1, N = {data.N}], got {n}")
    rows = args.rows_per_block or (65536 if args.backend == "torch" else 2048)
    need = (8.0 * min(rows, data.N) * (4 * data.d + 256) + 32.0 * data.N if stream
            else memory_estimate(args.solver, data.N, data.d))
    check_resources(need, f"design --solver {args.solver}: N = {data.N}, d = {data.d}",
                    force=args.force)
    w = design_weights(data, args.weights)
    entry = SOLVERS.get(args.solver)
    cand = "all" if args.candidates == "all" else _int(args.candidates, "candidates")
    opts = SolveOptions(n=n, gamma=args.gamma, candidates=cand, seed=args.seed,
                        efficiency=args.efficiency,
                        dtype=np.float32 if args.float32 else np.float64,
                        backend=args.backend, device=args.device,
                        rows_per_block=args.rows_per_block, scheduler=args.scheduler,
                        criterion=args.criterion)
    t0 = time.perf_counter()
    res = entry.factory(data.phi, w, opts)
    relaxed = None
    if "relaxed" in entry.tags:
        relaxed = float(res.logdet)
        if n is not None:
            res.indices = round_design(data.phi, res.pi, n, gamma=args.gamma, weights=w).indices
    seconds = time.perf_counter() - t0
    out = res.to_json()
    out.pop("gains", None)
    out.pop("logdet", None)
    out.pop("seconds", None)
    idx = None if res.indices is None else np.asarray(res.indices, dtype=np.int64)
    # One meaning per field: 'logdet' is the same unweighted quantity `adpo select` reports.
    out["logdet"] = out["weighted_logdet"] = None
    if idx is not None:
        rows = np.asarray(data.phi[idx], dtype=np.float64)  # the chosen rows only
        every = np.arange(idx.size)
        out["logdet"] = subset_logdet(rows, every, args.gamma)
        if w is not None:
            out["weighted_logdet"] = subset_logdet(np.sqrt(w[idx])[:, None] * rows, every,
                                                   args.gamma)
    out["logdet_relaxed"] = relaxed
    out["seconds"] = seconds
    out["options"] = {"solver": args.solver, "n": n, "design_ridge": args.gamma,
                      "weights": args.weights, "candidates": args.candidates,
                      "efficiency": args.efficiency, "seed": args.seed,
                      "backend": args.backend, "device": args.device,
                      "criterion": args.criterion}
    write_json(out, args.out)
    return 0


def _int(text: str, field: str):
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{field}: expected 'all' or an integer, got {text!r}") from None
