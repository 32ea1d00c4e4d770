"""``adpo fit``: fit the log-linear DPO MLE and print metrics as JSON

Fit theta_hat = argmin L_DPO(theta; S) + fit_ridge/2 ||theta||^2 (--fit-ridge) on the labelled
rows S (all rows, or --subset) and print JSON with theta_hat and every metric the file allows.
On a ranking pool (`adpo env --kind ranking`) it fits the Plackett-Luce MLE on the ranked
prompts instead (metrics: max/mean error of the response-pair logits against theta_star and
theta_true).
"""

import argparse

import numpy as np

from sim.data import PreferenceData, read_subset
from sim.dpo import fit_dpo
from sim.io import check_output, write_json
from sim.ranking import RankingData, fit_pl, is_ranking_file
from sim.ranking_select import ranking_logit_errors
from sim.metrics import evaluate
from sim.validation import DataError, positive_scalar

from . import add_command
from ..options import add_renamed


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "fit", __doc__)
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
    if is_ranking_file(args.data):
        return _fit_ranking(args)
    data = PreferenceData.load(args.data)
    if data.s is None:
        raise DataError(f"s: {args.data} has no labels; a fit needs labels s in {{0, 1}}")
    idx = np.arange(data.N) if not args.subset else read_subset(args.subset, data.N)
    if args.fit_ridge == 0 and args.radius is None and idx.size <= data.d:
        raise ValueError(f"fit-ridge: 0 with {idx.size} labelled row(s) <= d = {data.d}: the labels "
                         f"are separable, so the unregularized MLE does not exist; use --fit-ridge > 0 "
                         f"(e.g. 1e-3) or a --radius")
    sub = data.subset(idx)
    assert sub.s is not None  # data.s was checked above
    res = fit_dpo(sub.phi, sub.b, data.beta, sub.s, fit_ridge=args.fit_ridge, radius=args.radius)
    out = {"n": int(idx.size), "fit_ridge": args.fit_ridge, "radius": args.radius,
           "converged": res.converged, "newton_steps": res.n_iter,
           "theta_hat": res.theta.tolist(), "metrics": evaluate(data, res.theta)}
    write_json(out, args.out)
    return 0


def _fit_ranking(args: argparse.Namespace) -> int:
    """The Plackett-Luce MLE (sim.ranking.fit_pl, ridge --fit-ridge) on the ranked prompts of a
    ranking pool (all, or --subset); metrics: :func:`sim.ranking_select.ranking_logit_errors`."""
    if args.radius is not None:
        raise ValueError("radius: the Plackett-Luce fit has no ball constraint; drop --radius")
    data = RankingData.load(args.data)
    if data.rankings is None:
        raise DataError(f"rankings: {args.data} has no rankings; a fit needs them")
    idx = np.arange(data.M) if not args.subset else read_subset(args.subset, data.M)
    if args.fit_ridge == 0 and idx.size * (data.K - 1) <= data.d:
        raise ValueError(f"fit-ridge: 0 with {idx.size} ranked prompt(s) cannot identify d = "
                         f"{data.d} parameters; use --fit-ridge > 0 (e.g. 1e-3)")
    res = fit_pl(data.psi[idx], data.b[idx], data.beta, data.rankings[idx], fit_ridge=args.fit_ridge)
    metrics = {}
    for key in ("theta_star", "theta_true"):
        target = getattr(data, key)
        if target is not None:
            mx, mean = ranking_logit_errors(data, res.theta, target)
            metrics[f"max_logit_error_{key}"], metrics[f"mean_logit_error_{key}"] = mx, mean
    out = {"n": int(idx.size), "model": "plackett-luce", "fit_ridge": args.fit_ridge,
           "converged": res.converged, "newton_steps": res.n_iter,
           "theta_hat": res.theta.tolist(), "metrics": metrics}
    write_json(out, args.out)
    return 0
