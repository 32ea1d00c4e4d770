"""``adpo fit``: the DPO MLE on a data file (or a subset of it) and every available metric."""

import numpy as np

from sim.data import PreferenceData, check_indices
from sim.dpo import fit_dpo
from sim.metrics import evaluate
from sim.io import read_json, write_json


def register(sub):
    p = sub.add_parser("fit", help="fit the log-linear DPO MLE and print metrics as JSON",
                       description="Fit theta_hat = argmin L_DPO(theta; S) + gamma/2 ||theta||^2 "
                       "on the labelled rows S (all rows, or --subset) and print JSON with "
                       "theta_hat and every metric the file allows.")
    p.add_argument("--data", required=True, help=".npz with phi, b, beta, s (see adpo --help)")
    p.add_argument("--subset", default=None,
                   help="JSON file: a list of row indices, or an object with key 'indices'")
    p.add_argument("--gamma", type=float, default=1e-3, help="ridge of the fit")
    p.add_argument("--radius", type=float, default=None, help="ball constraint ||theta|| <= radius")
    p.add_argument("--out", default="-", help="JSON output path (default: stdout)")
    p.set_defaults(func=run)


def run(args) -> int:
    data = PreferenceData.load(args.data)
    if data.s is None:
        raise ValueError(f"s: {args.data} has no labels; a fit needs labels s in {{0, 1}}")
    idx = np.arange(data.N)
    if args.subset:
        obj = read_json(args.subset, "subset file")
        idx = check_indices(obj["indices"] if isinstance(obj, dict) else obj, data.N, "subset")
        if idx.size == 0:
            raise ValueError("subset: empty; select at least one row")
    sub = data.subset(idx)
    res = fit_dpo(sub.phi, sub.b, data.beta, sub.s, gamma=args.gamma, radius=args.radius)
    out = {"n": int(idx.size), "gamma": args.gamma, "radius": args.radius,
           "converged": res.converged, "newton_steps": res.n_iter,
           "theta_hat": res.theta.tolist(), "metrics": evaluate(data, res.theta)}
    write_json(out, args.out)
    return 0
