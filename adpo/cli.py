"""The ``adpo`` console script: one subcommand per module in :mod:`adpo.commands`.

Each module defines ``register(subparsers)``, which adds its parser and sets ``func`` (a callable
taking the parsed args and returning an exit code). :func:`main` is the one error boundary: every
error that reaches it becomes one line on stderr, ``adpo <command>: <field or path>: <what>;
<fix>``, and an exit code from :data:`EXIT_CODES`; ``adpo --debug <command> ...`` adds the
traceback. Nothing is unpickled, nothing is downloaded.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import sys
import traceback

from sim.data import NPZ_KEYS  # noqa: F401  (documented in the epilog)

# Order = order in `adpo --help`.
COMMANDS = ("env", "fit", "select", "design", "sweep", "bound", "pairs", "split", "features",
            "train", "evaluate", "methods", "envs")

#: The documented exit codes (README "Errors and exit codes").
EXIT_CODES = {
    0: "success",
    1: "internal error: a bug; rerun with --debug and report the traceback",
    2: "usage: an unknown option or a bad option value, or an output path that cannot be used",
    3: "bad input data: an input file's contents cannot be used, or the fit/design fails on them",
    4: "resources: refused by a memory guard (--force overrides), or out of memory",
    5: "system: the operating system refused (disk full, permission denied, ...)",
    130: "interrupted (Ctrl-C): partial outputs removed; finished sweep cells are kept",
}

EPILOG = """\
data files (.npz, read with allow_pickle=False):
  phi         (N, d) float   feature differences phi_i = phi(x_i, y_i1) - phi(x_i, y_i2)
  b           (N,)   float   reference log-ratios b_i = log pi_0(y_i1|x_i) - log pi_0(y_i2|x_i)
  beta        ()     float   DPO scale beta > 0
  s           (N,)   int     optional labels in {0, 1}; 1 = y_i1 preferred
  theta_star  (d,)   float   optional target: DPO MLE on all N labels (paper eq. 5)
  theta_true  (d,)   float   optional generating parameter of the labels (eq. 12)
  group       (N,)   int     optional prompt id of each row (adpo env --kind prompts)

exit codes:
""" + "\n".join(f"  {code:<4} {text}" for code, text in EXIT_CODES.items())


class _Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors (exit 2) instead of the usage block."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: {message}; see {self.prog} --help\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="adpo", description="Active learning for DPO: environments, fits, designs, "
        "selection, sweeps, bounds and LLM features.", epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debug", action="store_true",
                        help="on an error, also print the Python traceback")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(f"adpo.commands.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``adpo`` with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2, message already printed)
        return int(exc.code or 0)
    if extra:  # argparse would report these under the bare program name
        print(f"adpo {args.command}: unrecognized arguments: {' '.join(extra)}; see "
              f"adpo {args.command} --help", file=sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except BaseException as exc:  # noqa: BLE001  (the one boundary: every error is mapped)
        if isinstance(exc, SystemExit):
            raise
        code, message = describe_error(exc)
        print(f"adpo {args.command}: {message}", file=sys.stderr)
        if args.debug:
            traceback.print_exc()
        return code


def describe_error(exc: BaseException) -> tuple[int, str]:
    """(exit code, one-line message) for an error that reached the CLI."""
    from sim.dpo import ConvergenceError
    from sim.validation import DataError, ResourceError

    if isinstance(exc, KeyboardInterrupt):
        return 130, "interrupted; partial outputs removed (finished sweep cells are kept: rerun " \
                    "the same command to resume)"
    if isinstance(exc, DataError):
        return 3, _one_line(exc)
    if isinstance(exc, ConvergenceError):
        return 3, (f"fit: {_one_line(exc)} (the data may be separable or badly scaled: raise the "
                   f"fit ridge or set a radius)")
    if isinstance(exc, ResourceError):
        return 4, _one_line(exc)
    if isinstance(exc, MemoryError):
        return 4, ("out of memory" + (f" ({_one_line(exc)})" if str(exc) else "")
                   + "; reduce N, d or the budget")
    if isinstance(exc, ValueError):
        return 2, _one_line(exc)
    if isinstance(exc, ArithmeticError):  # OverflowError, FloatingPointError, ZeroDivisionError
        return 3, (f"numerical failure ({type(exc).__name__}: {_one_line(exc)}); the inputs' "
                   f"scale is extreme: rescale the features or lower beta")
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        fix = {errno.ENOSPC: "free disk space or write to another folder",
               errno.EACCES: "check the permissions or choose another path",
               errno.EPERM: "check the permissions or choose another path",
               errno.EROFS: "the file system is read-only; choose another folder"}.get(
                   exc.errno or 0, "check the path and the file system")
        return 5, f"{where}{exc.strerror or _one_line(exc)}; {fix}"
    return 1, (f"internal error: {type(exc).__name__}: {_one_line(exc)}; rerun with "
               f"`adpo --debug ...` and report the traceback")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:2000]


if __name__ == "__main__":
    sys.exit(main())
