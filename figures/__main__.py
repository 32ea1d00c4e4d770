"""Regenerate every figure: ``python -m figures [--scale tiny|default|paper] [--jobs N] [names]``.

Each ``figures/fig_<name>.py`` exposes ``main(scale, out_dir, jobs) -> list[Path]`` and reads
the TOML of the same name beside it. Expensive runs are cached under ``results/figures/`` keyed
by their configuration and a fingerprint of the code (``sim.fingerprint``), so a rerun only
redoes what changed, and a library edit never publishes stale numbers.
"""

import argparse
import importlib
import pathlib
import sys
import time


def discover() -> list[str]:
    return sorted(p.stem.removeprefix("fig_") for p in pathlib.Path(__file__).parent.glob("fig_*.py"))


def main(argv=None) -> int:
    names = discover()
    ap = argparse.ArgumentParser(prog="python -m figures", description=__doc__)
    ap.add_argument("only", nargs="*", help=f"subset of {names}")
    ap.add_argument("--scale", default="default", choices=("tiny", "default", "paper"))
    ap.add_argument("--jobs", type=int, default=2, help="parallel worker processes")
    ap.add_argument("--out-dir", default="figures")
    args = ap.parse_args(argv)
    unknown = set(args.only) - set(names)
    if unknown:
        ap.error(f"unknown figure(s) {sorted(unknown)}; choose from {names}")
    t_all = time.perf_counter()
    for name in names:
        if args.only and name not in args.only:
            continue
        t0 = time.perf_counter()
        mod = importlib.import_module(f"figures.fig_{name}")
        paths = mod.main(scale=args.scale, out_dir=args.out_dir, jobs=args.jobs)
        print(f"[{time.perf_counter() - t0:6.1f} s] {name}: " + ", ".join(str(p) for p in paths),
              flush=True)
    print(f"all figures in {time.perf_counter() - t_all:.1f} s (scale={args.scale})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
