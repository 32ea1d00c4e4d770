"""``adpo design``: a D-optimal design over a data file's features; writes JSON."""

import time

import numpy as np

from sim.data import PreferenceData
from sim.dpo import logistic_weight
from sim.io import check_output, write_json
from sim.validation import DataError, as_rng, check_resources, positive_int, positive_scalar

SOLVERS = ("greedy", "fw", "multiplicative", "cvxpy", "exchange", "brute")


def memory_estimate(solver: str, N: int, d: int) -> float:
    """Bytes a solver holds at its peak (float64): a few copies of the (N, d) rows; cvxpy builds
    the (N, d, d) stack of v_i v_i^T and its conic form (measured: 24 GB at N = 1e5, d = 64)."""
    if solver == "cvxpy":
        return 8.0 * 8 * N * d * d
    return 4 * 8.0 * N * d


def register(sub):
    p = sub.add_parser(
        "design", help="D-optimal design over the feature differences phi (sim.design)",
        description="Choose n rows maximizing log det(gamma I + sum v v^T) (greedy, exchange, "
        "brute), or the relaxed design pi maximizing log det sum pi_i v_i v_i^T (fw, "
        "multiplicative, cvxpy), with v_i = sqrt(w_i) phi_i. Writes JSON with 'indices' "
        "(selection order) or 'pi', 'logdet', 'efficiency' (Kiefer-Wolfowitz bound for relaxed "
        "designs, null for exact ones) and 'seconds'. With --n, relaxed designs are also rounded "
        "to n distinct rows. 'logdet' is always log det(gamma I + sum phi_i phi_i^T) over the "
        "chosen rows (as in `adpo select`; null without rows), 'weighted_logdet' the same with "
        "v_i = sqrt(w_i) phi_i (--weights theta_star), 'logdet_relaxed' log det M(pi) of a "
        "relaxed design.")
    p.add_argument("--data", required=True, help=".npz (see adpo --help)")
    p.add_argument("--solver", required=True, choices=SOLVERS)
    p.add_argument("--n", type=int, default=None,
                   help="number of rows (required for greedy, exchange, brute)")
    p.add_argument("--gamma", type=float, default=1.0,
                   help="ridge of H_0 = gamma I (exact designs; 'logdet' in the output)")
    p.add_argument("--weights", choices=("none", "theta_star"), default="none",
                   help="theta_star: w_i = beta^2 mu_i(theta_star)(1 - mu_i(theta_star)) (Lemma 1)")
    p.add_argument("--candidates", default="all",
                   help="greedy: 'all' (exact argmax) or m, a random subset per pick")
    p.add_argument("--efficiency", type=float, default=1 - 1e-6,
                   help="relaxed solvers stop once the certificate reaches this (default 1-1e-6)")
    p.add_argument("--float32", action="store_true", help="greedy: single-precision bulk refresh")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="-", help="JSON output (default: stdout)")
    p.add_argument("--force", action="store_true", help="skip the memory guard")
    p.set_defaults(func=run)


def design_weights(data: PreferenceData, kind: str):
    """None, or the Lemma 1 weights beta^2 mu_i (1 - mu_i) at theta_star, (N,)."""
    if kind == "none":
        return None
    if data.theta_star is None:
        raise DataError("weights: --weights theta_star needs theta_star in the data file (files "
                        "written by `adpo env` have it; no command adds it to other files); use "
                        "--weights none")
    return data.beta ** 2 * logistic_weight(data.beta * (data.phi @ data.theta_star - data.b))


def check_args(args) -> None:
    """Every option and the output path, before any work."""
    if args.n is not None:
        positive_int(args.n, "n")
    if args.solver in ("greedy", "exchange", "brute") and args.n is None:
        raise ValueError(f"n: --n is required for --solver {args.solver}")
    positive_scalar(args.gamma, "gamma")
    if args.candidates != "all":
        positive_int(_int(args.candidates, "candidates"), "candidates")
    if not 0 < args.efficiency < 1:
        raise ValueError(f"efficiency: must lie in (0, 1), got {args.efficiency}")
    as_rng(args.seed)
    check_output(args.out, suffix=".json", inputs=(args.data,), allow_stdout=True)


def run(args) -> int:
    from sim import design as D
    from sim.design.common import subset_logdet

    check_args(args)
    data = PreferenceData.load(args.data)
    n = args.n
    if n is not None and not 1 <= n <= data.N:
        raise ValueError(f"n: must lie in [1, N = {data.N}], got {n}")
    check_resources(memory_estimate(args.solver, data.N, data.d),
                    f"design --solver {args.solver}: N = {data.N}, d = {data.d}", force=args.force)
    w = design_weights(data, args.weights)
    t0 = time.perf_counter()
    relaxed = None
    if args.solver == "greedy":
        cand = "all" if args.candidates == "all" else int(args.candidates)
        res = D.greedy_select(data.phi, n, gamma=args.gamma, weights=w, candidates=cand,
                              seed=args.seed, dtype=np.float32 if args.float32 else np.float64)
    elif args.solver == "exchange":
        start = D.greedy_select(data.phi, n, gamma=args.gamma, weights=w)
        res = D.exchange(data.phi, start.indices, gamma=args.gamma, weights=w)
        res.info["greedy_weighted_logdet"] = start.logdet
    elif args.solver == "brute":
        res = D.brute_force_design(data.phi, n, gamma=args.gamma, weights=w)
    else:
        solve = {"fw": D.fw_design, "multiplicative": D.multiplicative_design}.get(args.solver)
        if solve is None:
            res = D.cvxpy_design(data.phi, weights=w)
        else:
            res = solve(data.phi, weights=w, efficiency=args.efficiency)
        relaxed = float(res.logdet)
        if n is not None:
            res.indices = D.round_design(data.phi, res.pi, n, gamma=args.gamma, weights=w).indices
    seconds = time.perf_counter() - t0
    out = res.to_json()
    out.pop("gains", None)
    out.pop("logdet", None)
    out.pop("seconds", None)
    idx = None if res.indices is None else np.asarray(res.indices, dtype=np.int64)
    # One meaning per field: 'logdet' is the same unweighted quantity `adpo select` reports.
    out["logdet"] = None if idx is None else subset_logdet(data.phi, idx, args.gamma)
    out["weighted_logdet"] = (None if idx is None or w is None else
                              subset_logdet(np.sqrt(w)[:, None] * data.phi, idx, args.gamma))
    out["logdet_relaxed"] = relaxed
    out["seconds"] = seconds
    out["options"] = {"solver": args.solver, "n": n, "gamma": args.gamma,
                      "weights": args.weights, "candidates": args.candidates,
                      "efficiency": args.efficiency, "seed": args.seed}
    write_json(out, args.out)
    return 0


def _int(text, field):
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{field}: expected 'all' or an integer, got {text!r}") from None
