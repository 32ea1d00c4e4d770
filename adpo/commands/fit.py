"""``adpo fit``: the DPO MLE on a data file (or a subset of it) and every available metric."""

import argparse

import numpy as np

from sim.data import PreferenceData, read_subset
from sim.dpo import fit_dpo
from sim.io import check_output, write_json
from sim.metrics import evaluate
from sim.validation import DataError, positive_scalar

from ..options import add_renamed


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fit", help="fit the log-linear DPO MLE and print metrics as JSON",
                       description="Fit theta_hat = argmin L_DPO(theta; S) + fit_ridge/2 ||theta||^2 "
                       "(--fit-ridge) on the labelled rows S (all rows, or --subset) and print JSON with "
                       "theta_hat and every metric the file allows.")
    p.add_argument("--data", required=True, help=".npz with phi, b, beta, s (see adpo --help)")
    p.add_argument("--subset", default=None,
                   help="JSON file: a list of row indices, or an object with key 'indices'")
    p.add_argument("--fit-ridge", type=float, default=1e-3, dest="fit_ridge",
                   help="ridge of the fit (default 1e-3)")
    p.add_argument("--radius", type=float, default=None, help="ball constraint ||theta|| <= radius")
    p.add_argument("--out", default="-", help="JSON output path (default: stdout)")
    add_renamed(p, "--gamma", "--fit-gamma", gamma="--fit-ridge")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    positive_scalar(args.fit_ridge, "fit-ridge", allow_zero=True)
    if args.radius is not None:
        positive_scalar(args.radius, "radius")
    check_output(args.out, suffix=".json", inputs=(args.data, args.subset), allow_stdout=True)
    data = PreferenceData.load(args.data)
    if data.s is None:
        raise DataError(f"s: {args.data} has no labels; a fit needs labels s in {{0, 1}}")
    idx = np.arange(data.N) if not args.subset else read_subset(args.subset, data.N)
    if args.fit_ridge == 0 and args.radius is None and idx.size <= data.d:
        raise ValueError(f"fit-ridge: 0 with {idx.size} labelled row(s) <= d = {data.d}: the labels "
                         f"are separable, so the unregularized MLE does not exist; use --fit-ridge > 0 "
                         f"(e.g. 1e-3) or a --radius")
    sub = data.subset(idx)
    res = fit_dpo(sub.phi, sub.b, data.beta, sub.s, fit_ridge=args.fit_ridge, radius=args.radius)
    out = {"n": int(idx.size), "fit_ridge": args.fit_ridge, "radius": args.radius,
           "converged": res.converged, "newton_steps": res.n_iter,
           "theta_hat": res.theta.tolist(), "metrics": evaluate(data, res.theta)}
    write_json(out, args.out)
    return 0
