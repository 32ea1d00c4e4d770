"""``adpo env``: draw an environment of :data:`sim.registry.ENVS` and save it as .npz.

The flags after ``--kind`` are derived from the registered kinds' config dataclasses; a flag
that the chosen kind does not take is refused.
"""

import argparse

from sim.envs import make_env
from sim.io import write_json
from sim.registry import ENVS

from ..options import add_entry_options, add_renamed, entry_options


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "env", help="draw an environment (labels included) and save it as .npz",
        description="Draw preference data with known parameters; labels are drawn once and "
        "stored, so every method later sees the same labels. The options of each kind: "
        "`adpo envs`; a flag the chosen kind does not take is refused.")
    p.add_argument("--kind", choices=ENVS.names(), default="gaussian")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--out", required=True, help="output .npz")
    takers = add_entry_options(p, ENVS, title="environment options ([kinds] that take them)")
    add_renamed(p, "--fit-gamma")
    p.set_defaults(func=run, takers=takers)


def run(args: argparse.Namespace) -> int:
    entry = ENVS.get(args.kind)
    data = make_env(entry.name, seed=args.seed, **entry_options(args, entry, args.takers))
    data.save(args.out)
    write_json({"out": args.out, "N": data.N, "d": data.d, **{k: v for k, v in data.info.items()
                                                               if k not in ("N", "d")}}, None)
    return 0
