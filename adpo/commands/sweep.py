"""``adpo sweep``: run a grid of (environment, method, seed) cells; resumable

Run every cell of a TOML sweep up to its largest budget, store each finished cell atomically
under DIR, skip cells already finished, and write the tidy table DIR/results.csv.
"""

import argparse
import os

from . import add_command

SCHEMA_TEMPLATE = """\
sweep file (TOML):
  name = "digits-paper"        optional
  seeds = [0, 1, 2]            or {start = 0, count = 10}, or 10 (= seeds 0..9)
  budgets = "pow2:4:14"        2^4..2^14, or a list [16, 32, 100], or "every:16" (16, 32,
                               ... and N); omitted: powers of two from n_min (16) to n_max
                               (largest 2^k <= N/2)
  [env]                        an environment kind of sim.registry.ENVS and its options
  kind = "digits"              (<ENVS>; `adpo envs` lists the options)
  N = 16384                    label = "..." (optional name in the table)
  [grid]                       optional: env parameters to sweep (cartesian product)
  beta = [1.0, 2.0, 5.0]
  [[methods]]                  one table per method of sim.registry.METHODS plus its options
  name = "adpo"                (<METHODS>;
  n_candidates = 256           `adpo methods` lists the options), label; options are the API
  grid = {alpha = [0.0, 3.0]}  names (gamma, fit_ridge, n_candidates); grid sweeps an option
  [[methods]]
  name = "uniform"

output (DIR):
  cells/<key>.json   one finished cell (config + rows), written atomically; key = SHA-256
                     of the cell's canonical configuration. Reruns skip finished cells.
  sweep.json         the expanded sweep
  results.csv        tidy table: env, method, seed, n, metric, value (+ results.parquet
                     when pyarrow is installed)
  Ctrl-C keeps every finished cell; run the same command again to resume.

examples:
  adpo sweep sweeps/gaussian_small.toml --out results/gaussian_small --jobs 2
  ADPO_SCHEDULER=tcp://10.0.0.5:8786 adpo sweep sweeps/digits_paper.toml --out results/digits
"""


def schema() -> str:
    """The epilog of ``adpo sweep --help``, with the registered kinds and methods."""
    from sim.registry import ENVS, METHODS

    return (SCHEMA_TEMPLATE.replace("<ENVS>", " | ".join(ENVS.names()))
            .replace("<METHODS>", " | ".join(METHODS.names())))


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "sweep", __doc__, epilog=schema(), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", metavar="CONFIG.toml", help="sweep file (schema below)")
    p.add_argument("--out", required=True, metavar="DIR", help="results directory")
    p.add_argument("--jobs", type=int, default=1,
                   help="local worker processes, BLAS pinned to 1 thread each (default 1: in "
                   "process, BLAS on all cores)")
    p.add_argument("--scheduler", default=None, metavar="ADDR",
                   help="Dask scheduler address, e.g. tcp://host:8786 (default: $ADPO_SCHEDULER; "
                   "unset = run locally); --jobs is then ignored")
    p.add_argument("--dry-run", action="store_true",
                   help="validate the file and list the cells to run, without running them")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sim.io import check_output_dir
    from sim.runner import CellStore, load_sweep, run_sweep

    if args.jobs < 1:
        raise ValueError(f"jobs: must be >= 1, got {args.jobs}")
    check_output_dir(args.out, inputs=(args.config,))
    sweep = load_sweep(args.config)
    scheduler = args.scheduler or os.environ.get("ADPO_SCHEDULER") or None
    if args.dry_run:
        store, cells = CellStore(args.out), sweep.cells()
        todo = sum(not store.finished(k) for k in sweep.keys())  # keys of the sweep's kind
        print(f"{sweep.name}: {len(sweep.envs)} env config(s) x {len(sweep.methods)} method(s) x "
              f"{len(sweep.seeds)} seed(s) = {len(cells)} cells; {todo} to run, "
              f"{len(cells) - todo} finished in {args.out}")
        return 0
    res = run_sweep(sweep, args.out, jobs=args.jobs, scheduler=scheduler,
                    progress=False if args.quiet else None)
    where = f"dask {scheduler}" if scheduler else f"{args.jobs} local job(s)"
    print(f"{sweep.name}: {res.n_ran} cell(s) run, {res.n_skipped} already finished "
          f"({where}, {res.seconds:.1f} s); {len(res.table)} rows written to "
          f"{', '.join(map(str, res.paths))}")
    return 0
