"""``adpo env``: draw an environment (labels included) and save it as .npz

Draw preference data with known parameters; labels are drawn once and stored, so every method
later sees the same labels. The options of each kind: `adpo envs`; a flag the chosen kind does
not take is refused.
"""

import argparse

from sim.envs import make_env
from sim.io import check_output, write_json
from sim.registry import ENVS
from sim.validation import as_rng, check_resources

from . import add_command
from ..options import add_entry_options, add_renamed, entry_options, make_config

#: float64 copies of phi an environment holds at once (phi, pixel pairs, the fit's work arrays).
ENV_COPIES = 6


# The flags after --kind are derived from the registered kinds' config dataclasses
# (sim.registry.ENVS); a flag that the chosen kind does not take is refused.
def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "env", __doc__)
    p.add_argument("--kind", choices=ENVS.names(), default="gaussian")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--out", required=True, help="output .npz")
    p.add_argument("--force", action="store_true", help="skip the memory guard")
    takers = add_entry_options(p, ENVS, title="environment options ([kinds] that take them)")
    add_renamed(p, "--fit-gamma")
    p.set_defaults(func=run, takers=takers)


def run(args: argparse.Namespace) -> int:
    entry = ENVS.get(args.kind)
    options = entry_options(args, entry, args.takers)
    cfg = make_config(entry, options)  # every option checked before any work
    as_rng(args.seed)
    check_output(args.out, suffix=".npz")
    n, d = int(getattr(cfg, "N", 0)), int(getattr(cfg, "d", 64))
    check_resources(ENV_COPIES * 8.0 * n * d, f"env: N = {n}, d = {d} ({ENV_COPIES} float64 "
                    f"copies of phi)", force=args.force)
    data = make_env(entry.name, seed=args.seed, **options)
    data.save(args.out)
    write_json({"out": args.out, "N": data.N, "d": data.d, **{k: v for k, v in data.info.items()
                                                               if k not in ("N", "d")}}, None)
    return 0
