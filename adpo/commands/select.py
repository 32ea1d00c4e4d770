"""``adpo select``: choose n pairs from a data file with any registered method; write JSON.

The method's flags derive from :data:`sim.registry.METHODS` (each method's config dataclass):
a flag the chosen method does not take is refused, and method-specific options (e.g. Dope's
``--weights``) are reachable.
"""

import argparse
import dataclasses
import time

import numpy as np

from sim.data import PreferenceData
from sim.io import write_json
from sim.registry import METHODS
from sim.selectors import make_selector

from ..options import add_entry_options, add_renamed, entry_options, make_config


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "select", help="choose the n pairs worth labelling or training on",
        description="Run a selection method on a .npz data file and write JSON with the chosen "
        "'indices' in selection order, the method's validated 'options' and the design's "
        "'logdet'. Online methods (adpo, pmc, uncertainty, apo-logistic) on a file with labels "
        "see each label only after selecting its row. Methods and their options: "
        "`adpo methods`.")
    p.add_argument("--data", required=True, help=".npz (see adpo --help)")
    p.add_argument("--method", required=True, metavar="NAME",
                   help=f"a registered method: {', '.join(METHODS.names())}")
    p.add_argument("--n", type=int, required=True, help="budget: number of pairs to select")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="-", help="JSON output (default: stdout)")
    p.add_argument("--emit-jsonl", default=None, metavar="PATH",
                   help="also write the chosen rows, in order, as JSONL in the input's format "
                   "(needs the features file's sidecar from `adpo features`)")
    takers = add_entry_options(p, METHODS, title="method options ([methods] that take them)")
    add_renamed(p, "--gamma", "--fit-gamma", "--n-candidates")
    p.set_defaults(func=run, takers=takers)


def run(args: argparse.Namespace) -> int:
    entry = METHODS.get(args.method)
    options = entry_options(args, entry, args.takers)
    cfg = make_config(entry, options)  # refuses bad values before the data is read
    data = PreferenceData.load(args.data)
    if args.n > data.N:
        raise ValueError(f"n: budget {args.n} exceeds N = {data.N}; choose n <= N")
    sel = make_selector(entry.name, data, seed=args.seed, **options)
    t0 = time.perf_counter()
    idx = sel.select(args.n)
    seconds = time.perf_counter() - t0
    values = {} if cfg is None else dataclasses.asdict(cfg)
    out = {"method": entry.name, "n": int(args.n), "indices": idx.tolist(),
           "logdet": _logdet(data, idx, sel, values.get("gamma", 1.0)), "seconds": seconds,
           "options": {**values, "seed": args.seed}}
    write_json(out, args.out)
    if args.emit_jsonl:
        from sim.textdata import write_selected_jsonl
        write_selected_jsonl(args.data, idx, args.emit_jsonl)
    return 0


def _logdet(data: PreferenceData, idx: np.ndarray, sel: object, gamma: float) -> float:
    """log det of the design matrix H_n: the selector's own (weights frozen at pick time) for
    greedy methods, else that of gamma I + sum phi phi^T over the chosen rows."""
    if hasattr(sel, "logdet_"):
        return float(sel.logdet_)
    phi = data.phi[idx]
    return float(np.linalg.slogdet(gamma * np.eye(data.d) + phi.T @ phi)[1])
