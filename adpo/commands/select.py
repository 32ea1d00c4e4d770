"""``adpo select``: choose n pairs from a data file with any selector; write JSON (and JSONL)."""

import time

from sim.data import PreferenceData
from sim.design.common import subset_logdet
from sim.io import STDOUT, OutputGroup, check_output, check_outputs, write_json
from sim.registry import METHODS
from sim.selectors import make_selector, method_options
from sim.validation import as_rng, check_resources, positive_int, positive_scalar

#: float64 copies of phi a selector holds (phi, weighted rows, maintained scores, candidates).
SELECT_COPIES = 6


def register(sub):
    p = sub.add_parser(
        "select", help="choose the n pairs worth labelling or training on",
        description="Run a selection method on a .npz data file and write JSON with the chosen "
        "'indices' in selection order, 'logdet' = log det(gamma I + sum phi_i phi_i^T) over the "
        "chosen rows (the same unweighted quantity for every method) and, for the weighted "
        "greedy methods, 'weighted_logdet' (their own design matrix). Online "
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
    p.add_argument("--force", action="store_true", help="skip the memory guard")
    p.set_defaults(func=run)


def check_args(args) -> None:
    """Every option and output path, before any work (ValueError naming the option)."""
    positive_int(args.n, "n")
    if args.candidates != "all":
        positive_int(_int(args.candidates, "candidates", "'all' or an integer m >= 1"), "candidates")
    positive_scalar(args.alpha, "alpha", allow_zero=True)
    if args.refit not in ("pow2", "every"):
        positive_int(_int(args.refit, "refit", "'pow2', 'every' or an integer K >= 1"), "refit")
    positive_scalar(args.gamma, "gamma")
    # With fewer labelled rows than dimensions the unregularized MLE never exists, and every
    # online method refits on 2, 4, ... rows: a zero fit ridge cannot work.
    positive_scalar(args.fit_gamma, "fit-gamma")
    positive_int(args.batch_size, "batch-size")
    as_rng(args.seed)
    check_output(args.out, suffix=".json", inputs=(args.data,), allow_stdout=True)
    if args.emit_jsonl is not None:
        check_output(args.emit_jsonl, suffix=".jsonl", inputs=(args.data,), field="emit-jsonl")
        check_outputs({"out": args.out, "emit-jsonl": args.emit_jsonl}, inputs=(args.data,))


def run(args) -> int:
    check_args(args)
    data = PreferenceData.load(args.data)
    if args.n > data.N:
        raise ValueError(f"n: budget {args.n} exceeds N = {data.N}; choose n <= N")
    if args.emit_jsonl is not None:  # the sidecar and the unchanged source, before any work
        from sim.textdata import selected_lines
        selected_lines(args.data, [])
    check_resources(SELECT_COPIES * 8.0 * data.N * data.d, f"select: N = {data.N}, d = {data.d}",
                    force=args.force)
    cand = None if args.candidates == "all" else int(args.candidates)
    refit = args.refit if args.refit in ("pow2", "every") else int(args.refit)
    opts = dict(n_candidates=cand, alpha=args.alpha, refit=refit, gamma=args.gamma,
                fit_gamma=args.fit_gamma, batch_size=args.batch_size)
    sel = make_selector(args.method, data, seed=args.seed, **method_options(args.method, opts))
    t0 = time.perf_counter()
    idx = sel.select(args.n)
    seconds = time.perf_counter() - t0
    out = {"method": args.method, "n": int(args.n), "indices": idx.tolist(),
           "logdet": subset_logdet(data.phi, idx, args.gamma),
           "weighted_logdet": float(sel.logdet_) if hasattr(sel, "logdet_") else None,
           "seconds": seconds,
           "options": {"candidates": args.candidates, "alpha": args.alpha, "refit": args.refit,
                       "gamma": args.gamma, "fit_gamma": args.fit_gamma,
                       "batch_size": args.batch_size, "seed": args.seed}}
    if args.emit_jsonl is None:
        write_json(out, args.out)
        return 0
    from sim.textdata import selected_lines
    lines = selected_lines(args.data, idx)
    with OutputGroup() as group:  # both files or neither
        if args.out != STDOUT:
            group.json(args.out, out)
        with group.open(args.emit_jsonl) as f:
            f.writelines(lines)
    if args.out == STDOUT:  # only once the JSONL is in place
        write_json(out, None)
    return 0


def _int(text, field, expected):
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{field}: expected {expected}, got {text!r}") from None
