"""The ``adpo`` console script: one subcommand per module in :mod:`adpo.commands`.

Each module defines ``register(subparsers)``, which adds its parser and sets ``func`` (a callable
taking the parsed args and returning an exit code). Errors in user input exit with code 2 and a
one-line message naming the field; nothing is unpickled, nothing is downloaded.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from sim.data import NPZ_KEYS  # noqa: F401  (documented in the epilog)

# Order = order in `adpo --help`.
COMMANDS = ("env", "fit", "select", "design", "sweep", "bound", "pairs", "features")

EPILOG = """\
data files (.npz, read with allow_pickle=False):
  phi         (N, d) float   feature differences phi_i = phi(x_i, y_i1) - phi(x_i, y_i2)
  b           (N,)   float   reference log-ratios b_i = log pi_0(y_i1|x_i) - log pi_0(y_i2|x_i)
  beta        ()     float   DPO scale beta > 0
  s           (N,)   int     optional labels in {0, 1}; 1 = y_i1 preferred
  theta_star  (d,)   float   optional target: DPO MLE on all N labels (paper eq. 5)
  theta_true  (d,)   float   optional generating parameter of the labels (eq. 12)
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="adpo", description="Active learning for DPO: environments, fits, designs, "
        "selection, sweeps, bounds and LLM features.", epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(f"adpo.commands.{name}").register(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ValueError as exc:
        print(f"adpo {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"adpo {args.command}: interrupted; finished work is kept", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
