"""``adpo select``: choose n pairs from a data file with any selector; write JSON (and JSONL)."""

import time

import numpy as np

from sim.data import PreferenceData
from sim.io import write_json
from sim.registry import METHODS
from sim.selectors import make_selector, method_options


def register(sub):
    p = sub.add_parser(
        "select", help="choose the n pairs worth labelling or training on",
        description="Run a selection method on a .npz data file and write JSON with the chosen "
        "'indices' in selection order and the design's 'logdet' (greedy methods). Online "
        "methods (adpo, pmc, uncertainty, apo-logistic) on a file with labels see each label "
        "only after selecting its row.")
    p.add_argument("--data", required=True, help=".npz (see adpo --help)")
    p.add_argument("--method", required=True, choices=METHODS.names())
    p.add_argument("--n", type=int, required=True, help="budget: number of pairs to select")
    p.add_argument("--candidates", default="all",
                   help="'all' (exact argmax) or m, a random candidate subset per pick (paper: 256)")
    p.add_argument("--alpha", type=float, default=3.0, help="UCB width of eq. 13 (0 disables)")
    p.add_argument("--refit", default="pow2", help="'pow2', 'every' or K (refit every K rounds)")
    p.add_argument("--gamma", type=float, default=1.0, help="ridge of the design matrix H_0")
    p.add_argument("--fit-gamma", type=float, default=1e-3, help="ridge of the DPO fits")
    p.add_argument("--batch-size", type=int, default=1, help="picks per round before labels")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="-", help="JSON output (default: stdout)")
    p.add_argument("--emit-jsonl", default=None, metavar="PATH",
                   help="also write the chosen rows, in order, as JSONL in the input's format "
                   "(needs the features file's sidecar from `adpo features`)")
    p.set_defaults(func=run)


def run(args) -> int:
    data = PreferenceData.load(args.data)
    if args.n > data.N:
        raise ValueError(f"n: budget {args.n} exceeds N = {data.N}; choose n <= N")
    cand = None if args.candidates == "all" else _int(args.candidates, "candidates")
    refit = args.refit if args.refit in ("pow2", "every") else _int(args.refit, "refit")
    opts = dict(n_candidates=cand, alpha=args.alpha, refit=refit, gamma=args.gamma,
                fit_gamma=args.fit_gamma, batch_size=args.batch_size)
    sel = make_selector(args.method, data, seed=args.seed, **method_options(args.method, opts))
    t0 = time.perf_counter()
    idx = sel.select(args.n)
    seconds = time.perf_counter() - t0
    out = {"method": args.method, "n": int(args.n), "indices": idx.tolist(),
           "logdet": _logdet(data, idx, sel, args.gamma), "seconds": seconds,
           "options": {"candidates": args.candidates, "alpha": args.alpha, "refit": args.refit,
                       "gamma": args.gamma, "fit_gamma": args.fit_gamma,
                       "batch_size": args.batch_size, "seed": args.seed}}
    write_json(out, args.out)
    if args.emit_jsonl:
        from sim.textdata import write_selected_jsonl
        write_selected_jsonl(args.data, idx, args.emit_jsonl)
    return 0


def _logdet(data, idx, sel, gamma) -> float:
    """log det of the design matrix H_n: the selector's own (weights frozen at pick time) for
    greedy methods, else that of gamma I + sum phi phi^T over the chosen rows."""
    if hasattr(sel, "logdet_"):
        return float(sel.logdet_)
    phi = data.phi[idx]
    return float(np.linalg.slogdet(gamma * np.eye(data.d) + phi.T @ phi)[1])


def _int(text, field):
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{field}: expected 'all' or an integer, got {text!r}") from None
