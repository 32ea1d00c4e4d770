"""``adpo select``: choose the n pairs worth labelling or training on

Run a selection method on a .npz data file and write JSON with the chosen 'indices' in selection
order, 'logdet' = log det(gamma I + sum phi_i phi_i^T) over the chosen rows (the same unweighted
quantity for every method; gamma = --design-ridge, default 1) and, for the weighted greedy
methods, 'weighted_logdet' (their own design matrix), and the method's validated 'options'.
Online methods (adpo, pmc, uncertainty, apo-logistic) on a file with labels see each label only
after selecting its row. With --replace (designs with replacement) a pair may be chosen again,
each repeat a fresh label drawn from the file's theta_true; --max-per-prompt C keeps at most C
pairs per prompt (files with a 'group' key, `adpo env --kind prompts`). On a ranking pool (`adpo
env --kind ranking`) the ranking methods (rank-*) choose prompts to have ranked ('logdet' null,
'weighted_logdet' their own design); a method of the other data kind is refused. Methods and
their options: `adpo methods`.
"""

import argparse
import dataclasses
import time

from sim.data import PreferenceData
from sim.ranking import RankingData, load_pool
from sim.design.common import subset_logdet
from sim.io import STDOUT, OutputGroup, check_output, check_outputs, write_json
from sim.registry import METHODS, Entry
from sim.selectors import LabelOracle
from sim.selectors.base import Selector
from sim.selectors.ranking import check_method_data
from sim.stopping import select_until
from sim.validation import DataError, as_rng, check_resources, positive_int, positive_scalar

from . import add_command
from ..options import add_entry_options, add_renamed, entry_options, make_config

#: float64 copies of phi a selector holds (phi, weighted rows, maintained scores, candidates).
SELECT_COPIES = 6


# The method's flags derive from sim.registry.METHODS (each method's config dataclass): a flag
# the chosen method does not take is refused, and method-specific options (e.g. Dope's
# --weights) are reachable.
def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "select", __doc__)
    p.add_argument("--data", required=True, help=".npz (see adpo --help)")
    p.add_argument("--method", required=True, metavar="NAME",
                   help=f"a registered method: {', '.join(METHODS.names())}")
    p.add_argument("--n", type=int, required=True, help="budget: number of pairs to select")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="-", help="JSON output (default: stdout)")
    p.add_argument("--emit-jsonl", default=None, metavar="PATH",
                   help="also write the chosen rows, in order, as JSONL in the input's format "
                   "(needs the features file's sidecar from `adpo features`)")
    p.add_argument("--force", action="store_true", help="skip the memory guard")
    p.add_argument("--stop-below", type=float, default=None, metavar="SD",
                   help="stop asking for labels once the largest predicted logit sd "
                   "beta sqrt(phi_i^T H^-1 phi_i) over all rows is < SD (sim.stopping; needs "
                   "labels; --n is the cap); the output's 'stop' records why and at which n")
    p.add_argument("--check-every", type=int, default=1, metavar="K",
                   help="with --stop-below: test the rule every K labels (each test fits theta)")
    p.add_argument("--backend", choices=("numpy", "torch"), default="numpy",
                   help="who runs the greedy methods' engine products (oracle, adpo, adpo+, "
                   "apo; exact argmax, --candidates, --record-kappa; same picks); torch needs "
                   "PyTorch")
    p.add_argument("--device", default="cpu", help="torch device: cpu, cuda or cuda:K")
    takers = add_entry_options(p, METHODS, title="method options ([methods] that take them)")
    add_renamed(p, "--gamma", "--fit-gamma", "--n-candidates")
    p.set_defaults(func=run, takers=takers)


def check_args(args: argparse.Namespace) -> tuple[Entry, dict, dict]:
    """The method, its given options and its validated option values, and every output path,
    before any work (ValueError naming the flag)."""
    entry = METHODS.get(args.method)
    options = entry_options(args, entry, args.takers)
    cfg = make_config(entry, options)
    values = {} if cfg is None else dataclasses.asdict(cfg)
    # With fewer labelled rows than dimensions the unregularized MLE never exists, and every
    # online method refits on 2, 4, ... rows: a zero fit ridge cannot work.
    if values.get("fit_ridge") == 0:
        raise ValueError("--fit-ridge: must be > 0 for selection (the first refits "
                         "see fewer labels than dimensions), got 0")
    positive_int(args.n, "n")
    positive_int(args.check_every, "check-every")
    if args.stop_below is not None:
        positive_scalar(args.stop_below, "stop-below")
        if values.get("replace"):
            raise ValueError("stop-below: not available with --replace yet (the rule reveals "
                             "the file's logged labels, one per pair); drop one of them")
    as_rng(args.seed)
    check_output(args.out, suffix=".json", inputs=(args.data,), allow_stdout=True)
    if args.emit_jsonl is not None:
        if values.get("replace"):
            raise ValueError("--emit-jsonl: the JSONL holds each pair once, with its logged "
                             "label; repeated picks (--replace) have no text of their own — "
                             "drop one of the two flags")
        check_output(args.emit_jsonl, suffix=".jsonl", inputs=(args.data,), field="emit-jsonl")
        check_outputs({"out": args.out, "emit-jsonl": args.emit_jsonl}, inputs=(args.data,))
    return entry, options, values


def use_backend(sel: Selector, args: argparse.Namespace) -> None:
    """Run a greedy selector's engine products on torch (same picks), or refuse in one line.

    Every D-optimal greedy method runs on torch: its engines (the blocked one, and the
    incremental one of ``--candidates m`` / ``--record-kappa``) take
    :class:`sim.design.torch_greedy.TorchProducts` on ``--device``. On CUDA the blocked
    engine is the device engine (``torch_engine``), which serves fixed weights without
    ``--replace`` or ``--max-per-prompt``; the other blocked cases need ``--device cpu``."""
    if args.backend == "numpy":
        if args.device != "cpu":
            raise ValueError("device: --device applies to --backend torch only")
        return
    from functools import partial

    from sim.design.torch_greedy import TorchProducts, resolve_device, torch_engine
    from sim.selectors.greedy import GreedySelector
    if not (isinstance(sel, GreedySelector) and sel.cfg.criterion == "d"):
        raise ValueError(f"backend: --backend torch runs the D-optimal greedy methods (oracle, "
                         f"adpo, adpo+, apo); {args.method!r} with these options needs "
                         f"--backend numpy")
    sel.products = TorchProducts(args.device)
    blocked = sel.candidates.exhaustive and not sel.cfg.record_kappa
    if not blocked or resolve_device(args.device).type == "cpu":
        return
    if not sel.fixed_weights or sel.replace or sel.cfg.max_per_prompt is not None:
        raise ValueError("device: on CUDA the exact argmax serves fixed weights (oracle, adpo+, "
                         "apo) without --replace or --max-per-prompt; use --device cpu, or "
                         "--candidates M / --record-kappa")
    sel.engine_factory = partial(torch_engine, n=args.n, device=args.device)


def run(args: argparse.Namespace) -> int:
    entry, options, values = check_args(args)
    data = load_pool(args.data)  # pairs (phi) or a ranking pool (psi, rankings)
    check_method_data(entry, data)
    ranking = isinstance(data, RankingData)
    if ranking and (args.stop_below is not None or args.emit_jsonl is not None):
        raise ValueError("stop-below/emit-jsonl: defined for pairwise pools only, not for a "
                         "ranking pool")
    if args.n > data.N and not values.get("replace"):
        raise ValueError(f"n: budget {args.n} exceeds N = {data.N}; choose n <= N (or pass "
                         "--replace for a design with replacement)")
    if args.emit_jsonl is not None:  # the sidecar and the unchanged source, before any work
        from sim.textdata import selected_lines
        selected_lines(args.data, [])
    check_resources(SELECT_COPIES * 8.0 * data.N * data.d, f"select: N = {data.N}, d = {data.d}",
                    force=args.force)
    sel = entry.factory(data, seed=args.seed, **options)  # a Selector or a RankingSelector
    use_backend(sel, args)
    t0 = time.perf_counter()
    stop = None
    if args.stop_below is None:
        idx = sel.select(args.n)
    else:
        assert isinstance(data, PreferenceData)  # ranking pools were refused above
        if data.s is None:
            raise DataError(f"stop-below: {args.data} has no labels s; the rule fits theta_hat "
                            "on the labels it reveals")
        stop = select_until(sel, LabelOracle(data.s), args.stop_below, args.n,
                            check_every=args.check_every, gamma=values.get("gamma", 1.0),
                            fit_ridge=values.get("fit_ridge", 1e-3))
        idx = stop.indices
    seconds = time.perf_counter() - t0
    out = {"method": entry.name, "n": int(idx.size), "indices": idx.tolist(),
           "logdet": None if isinstance(data, RankingData)
           else subset_logdet(data.phi, idx, values.get("gamma", 1.0)),
           "weighted_logdet": float(sel.logdet_) if hasattr(sel, "logdet_") else None,
           "seconds": seconds, "options": {**values, "seed": args.seed}}
    if stop is not None:
        out["stop"] = stop.to_json(args.n, args.check_every)
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
