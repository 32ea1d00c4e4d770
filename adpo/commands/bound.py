"""``adpo bound``: evaluate the paper's bounds (printed and corrected) for given d, n, ...

Evaluate Theorem 3 (confidence radius), its exact self-normalized form, Theorem 4 (printed
c_max^3/c_min and corrected c_max^2/c_min^2) and Theorem 2 (max logit error bound, without the
factor beta unless noted) for one setting. Printed forms use the printed c_min = beta^2 mu(-4
beta), which is invalid for beta < 0.3047; corrected forms use c_min = beta^2 mu(2 beta) mu(-2
beta).
"""

import argparse

from theory.bounds import SUMMARY_KEYS, bound_summary
from theory.constants import c_min_printed, c_min_tight

from sim.io import check_output, write_json
from sim.validation import positive_scalar

from . import add_command
from ..options import add_renamed


def register(sub: argparse._SubParsersAction) -> None:
    keys = "\n".join(f"  {k:<36} {v}" for k, v in SUMMARY_KEYS.items())
    p = add_command(sub, "bound", __doc__, epilog="JSON keys:\n" + keys, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--d", type=int, required=True, help="feature dimension")
    p.add_argument("--n", type=int, required=True, help="budget (number of selected pairs)")
    p.add_argument("--beta", type=float, default=1.0, help="DPO scale beta > 0")
    p.add_argument("--design-ridge", type=float, default=1.0, dest="gamma",
                   help="design ridge gamma > 0 (H_0 = gamma I)")
    p.add_argument("--delta", type=float, default=0.05, help="failure probability in (0, 1)")
    p.add_argument("--kappa", type=float, default=1.0, help="Assumption 4's constant, >= 1")
    p.add_argument("--out", default="-", help="output .json (default: stdout)")
    add_renamed(p, "--gamma", gamma="--design-ridge")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    check_output(args.out, suffix=".json", allow_stdout=True)
    positive_scalar(args.beta, "beta")
    cmins = (c_min_tight(args.beta), c_min_printed(args.beta))
    if not all(0 < c < float("inf") for c in cmins):  # mu(-4 beta) underflows near beta = 186
        raise ValueError(f"beta: {args.beta:g} is too large for the bounds: c_min = beta^2 "
                         f"mu(2 beta) mu(-2 beta) (and the printed beta^2 mu(-4 beta)) is "
                         f"{min(cmins):.3g} in float64, so every bound is infinite; "
                         f"use beta <= 150")
    write_json(bound_summary(args.d, args.n, args.beta, args.gamma, args.delta, args.kappa),
               args.out)
    return 0
