"""``python -m figures [--scale tiny|default|paper] [--jobs N] [names]``: regenerate every figure.

Each ``figures/fig_<name>.py`` exposes ``main(scale, out_dir, jobs) -> list[Path]`` and reads
the TOML of the same name beside it. Expensive runs are cached under ``results/figures/`` keyed
by their configuration and a fingerprint of the code (``sim.fingerprint``), so a rerun only
redoes what changed, and a library edit never publishes stale numbers.

Scheduling. A figure whose sidecar holds wall-clock measurements declares ``TIMED = True``; those
run first, one at a time, alone on the machine with ``--jobs`` worker processes for their cells.
The others then run ``--jobs`` at a time, each in its own process with one BLAS / torch thread
and its cells in that process (``jobs=1``): a figure spends much of its time in serial work
(plotting and saving, an LLM forward pass, a single-threaded fit) that would leave the other
cores idle, and its numbers do not depend on where its cells run (every cell is a pure function
of its settings and seed). The longest figures of the last run start first
(``results/figures/durations.json``; alphabetical without one).
"""

import argparse
import ast
import concurrent.futures as cf
import importlib
import json
import multiprocessing
import os
import pathlib
import time

#: environment of a figure process in the parallel phase: one thread for every BLAS / OpenMP
#: pool (read by numpy's and torch's libraries when they load; see figures.common.cpu_threads)
_ONE_THREAD = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "ADPO_FIGURE_THREADS")
DURATIONS = pathlib.Path("results") / "figures" / "durations.json"


def discover() -> list[str]:
    return sorted(p.stem.removeprefix("fig_") for p in pathlib.Path(__file__).parent.glob("fig_*.py"))


def run_figure(name: str, scale: str, out_dir: str, jobs: int) -> tuple[str, float, list[str]]:
    """Run one figure script; (name, seconds, output paths)."""
    t0 = time.perf_counter()
    mod = importlib.import_module(f"figures.fig_{name}")
    paths = mod.main(scale=scale, out_dir=out_dir, jobs=jobs)
    return name, time.perf_counter() - t0, [str(p) for p in paths]


def _pin_one_thread() -> None:
    for k in _ONE_THREAD:
        os.environ[k] = "1"


def is_timed(name: str) -> bool:
    """Whether the figure measures wall-clock time (module attribute ``TIMED``), read without
    importing it (a spawned figure process must be the first to load numpy's BLAS)."""
    tree = ast.parse((pathlib.Path(__file__).parent / f"fig_{name}.py").read_text())
    return any(isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
               and node.value.value is True
               and any(isinstance(t, ast.Name) and t.id == "TIMED" for t in node.targets)
               for node in tree.body)


def _order(names: list[str]) -> list[str]:
    """Longest first by the last run's seconds; a figure without one first of all."""
    try:
        past = {str(k): float(v) for k, v in json.loads(DURATIONS.read_text()).items()}
    except (OSError, ValueError, TypeError, AttributeError):
        past = {}
    return sorted(names, key=lambda n: -past.get(n, float("inf")))


def _report(name: str, seconds: float, paths: list[str]) -> None:
    print(f"[{seconds:6.1f} s] {name}: " + ", ".join(paths), flush=True)


def main(argv=None) -> int:
    names = discover()
    ap = argparse.ArgumentParser(prog="python -m figures", description=__doc__)
    ap.add_argument("only", nargs="*", help=f"subset of {names}")
    ap.add_argument("--scale", default="default", choices=("tiny", "default", "paper"))
    ap.add_argument("--jobs", type=int, default=2,
                    help="figures run at a time (and worker processes of a timed figure)")
    ap.add_argument("--out-dir", default="figures")
    args = ap.parse_args(argv)
    unknown = set(args.only) - set(names)
    if unknown:
        ap.error(f"unknown figure(s) {sorted(unknown)}; choose from {names}")
    if args.jobs < 1:
        ap.error(f"--jobs: at least 1, got {args.jobs}")
    todo = [n for n in names if not args.only or n in args.only]
    timed = [n for n in todo if is_timed(n)]
    rest = [n for n in todo if n not in timed]
    t_all = time.perf_counter()
    took = {}
    for name in timed:
        _, took[name], paths = run_figure(name, args.scale, args.out_dir, args.jobs)
        _report(name, took[name], paths)
    if args.jobs == 1 or len(rest) <= 1:
        for name in rest:
            _, took[name], paths = run_figure(name, args.scale, args.out_dir, args.jobs)
            _report(name, took[name], paths)
    else:
        ctx = multiprocessing.get_context("spawn")
        with cf.ProcessPoolExecutor(args.jobs, mp_context=ctx,
                                    initializer=_pin_one_thread) as pool:
            futures = [pool.submit(run_figure, n, args.scale, args.out_dir, 1)
                       for n in _order(rest)]
            for fut in cf.as_completed(futures):
                name, took[name], paths = fut.result()
                _report(name, took[name], paths)
    print(f"all figures in {time.perf_counter() - t_all:.1f} s (scale={args.scale})")
    if not args.only:
        from sim.io import atomic_write_text
        DURATIONS.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(DURATIONS, json.dumps(took, indent=1) + "\n")
    return 0
