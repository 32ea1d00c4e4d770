"""``adpo design``: a D-optimal design over a data file's features; writes JSON."""

import time

import numpy as np

from sim.data import PreferenceData
from sim.design.solvers import SOLVERS, SolveOptions, solver_names
from sim.dpo import logistic_weight
from sim.io import write_json
from sim.store import Pool, is_pool, open_pool


def register(sub):
    p = sub.add_parser(
        "design", help="D-optimal design over the feature differences phi (sim.design)",
        description="Choose n rows maximizing log det(gamma I + sum v v^T) (greedy, exchange, "
        "brute), or the relaxed design pi maximizing log det sum pi_i v_i v_i^T (fw, "
        "multiplicative, cvxpy), with v_i = sqrt(w_i) phi_i. Writes JSON with 'indices' "
        "(selection order) or 'pi', 'logdet', 'efficiency' (Kiefer-Wolfowitz bound for relaxed "
        "designs, null for exact ones) and 'seconds'. With --n, relaxed designs are also rounded "
        "to n distinct rows ('indices', 'rounded_logdet').")
    p.add_argument("--data", required=True, help=".npz (see adpo --help) or a pool folder "
                   "(sim.store)")
    p.add_argument("--solver", required=True, choices=solver_names(),
                   help="; ".join(f"{e.name}: {e.help}" for e in SOLVERS))
    p.add_argument("--n", type=int, default=None,
                   help="number of rows (required for greedy, exchange, brute)")
    p.add_argument("--gamma", type=float, default=1.0,
                   help="ridge of H_0 = gamma I (exact designs)")
    p.add_argument("--weights", choices=("none", "theta_star"), default="none",
                   help="theta_star: w_i = beta^2 mu_i(theta_star)(1 - mu_i(theta_star)) (Lemma 1)")
    p.add_argument("--candidates", default="all",
                   help="greedy: 'all' (exact argmax) or m, a random subset per pick")
    p.add_argument("--efficiency", type=float, default=1 - 1e-6,
                   help="relaxed solvers stop once the certificate reaches this (default 1-1e-6)")
    p.add_argument("--float32", action="store_true", help="greedy: single-precision bulk refresh")
    p.add_argument("--backend", choices=("numpy", "torch"), default="numpy",
                   help="greedy: the numpy engine or the torch one (same picks; needs torch)")
    p.add_argument("--device", default="cpu", help="greedy with --backend torch: cpu or cuda")
    p.add_argument("--rows-per-block", type=int, default=65536,
                   help="greedy with --backend torch on a pool folder: rows read per block "
                   "(bounds the memory: ~rows x d x 8 bytes)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="-", help="JSON output (default: stdout)")
    p.set_defaults(func=run)


def design_weights(data: PreferenceData | Pool, kind: str):
    """None, or the Lemma 1 weights beta^2 mu_i (1 - mu_i) at theta_star, (N,)."""
    if kind == "none":
        return None
    if data.theta_star is None:
        raise ValueError("weights: --weights theta_star needs theta_star in the data file; "
                         "create it with `adpo env` or `adpo fit`, or use --weights none")
    return data.beta ** 2 * logistic_weight(data.beta * (data.phi @ data.theta_star - data.b))


def run(args) -> int:
    if is_pool(args.data) and args.backend == "torch" and args.solver == "greedy":
        data = open_pool(args.data)  # phi stays memory-mapped; the engine streams it
    else:
        data = PreferenceData.load(args.data)
    w = design_weights(data, args.weights)
    n = args.n
    entry = SOLVERS.get(args.solver)
    if "exact" in entry.tags and n is None:
        raise ValueError(f"n: --n is required for --solver {args.solver}")
    if n is not None and not 1 <= n <= data.N:
        raise ValueError(f"n: must lie in [1, N = {data.N}], got {n}")
    if args.backend != "numpy" and args.solver != "greedy":
        raise ValueError(f"backend: --backend {args.backend} applies to --solver greedy only")
    cand = "all" if args.candidates == "all" else _int(args.candidates, "candidates")
    opts = SolveOptions(n=n, gamma=args.gamma, candidates=cand, seed=args.seed,
                        efficiency=args.efficiency,
                        dtype=np.float32 if args.float32 else np.float64,
                        backend=args.backend, device=args.device,
                        rows_per_block=args.rows_per_block)
    t0 = time.perf_counter()
    res = entry.factory(data.phi, w, opts)
    if "relaxed" in entry.tags and n is not None:
        from sim.design import round_design
        r = round_design(data.phi, res.pi, n, gamma=args.gamma, weights=w)
        res.indices = r.indices
        res.info["rounded_logdet"] = r.logdet
    seconds = time.perf_counter() - t0
    out = res.to_json()
    out["seconds"] = seconds
    out.pop("gains", None)
    out["options"] = {"solver": args.solver, "n": n, "gamma": args.gamma,
                      "weights": args.weights, "candidates": args.candidates,
                      "efficiency": args.efficiency, "seed": args.seed,
                      "backend": args.backend, "device": args.device}
    write_json(out, args.out)
    return 0


def _int(text, field):
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{field}: expected 'all' or an integer, got {text!r}") from None
