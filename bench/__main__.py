"""Run every benchmark module ``bench/bench_*.py`` (``python -m bench [--quick] [names...]``).

Other options are passed on (``python -m bench selection design --paper``). Each benchmark writes
``bench/results/<name>.json`` (bench.common); a full run then re-renders the README's table from
those files (``python -m bench.readme --write``)."""

import argparse
import importlib
import pathlib
import sys


def main(argv=None) -> int:
    names = sorted(p.stem for p in pathlib.Path(__file__).parent.glob("bench_*.py"))
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    ap.add_argument("only", nargs="*", help=f"subset of {names}")
    ap.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    args, extra = ap.parse_known_args(argv)  # e.g. --paper, passed on to the benchmarks
    for name in names:
        if args.only and name not in args.only and name.removeprefix("bench_") not in args.only:
            continue
        print(f"\n=== {name} ===", flush=True)
        importlib.import_module(f"bench.{name}").main(["--quick"] * args.quick + extra)
    if not args.quick:  # the README table follows the new results
        from bench import readme

        return readme.main(["--write"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
