"""The README's benchmark table, rendered from ``bench/results/*.json``.

``python -m bench.readme`` prints the table; ``--write`` replaces the README block
``<!-- bench:table -->`` ... ``<!-- /bench:table -->`` with it; ``--check`` exits 1 when the
README disagrees with the JSON (the test suite runs the same comparison).
"""

from __future__ import annotations

import argparse
import pathlib
import sys

from bench.common import RESULTS_DIR, ROOT, load
from sim.docblocks import get_block, replace_block

BLOCK = "bench:table"
README = ROOT / "README.md"


def render(results_dir=None) -> str:
    """Markdown table: one row per headline of every results file, with its conditions."""
    files = sorted(pathlib.Path(results_dir or RESULTS_DIR).glob("*.json"))
    lines = ["| benchmark | ours | reference in the same run | run (load avg start → end) |",
             "|---|---|---|---|"]
    cpus = set()
    for f in files:
        rec = load(f)
        m, la = rec["machine"], rec["load_average"]
        cpus.add(f"{m['cpu']}, {m['cores']} cores, " + ", ".join(
            sorted({f"{b['api']} {b['version']} ({b['core_type']})" for b in m["blas"]})))
        cond = (f"`{f.stem}` {rec['started'][:10]}, load {la['start'][0]:.1f} → "
                f"{la['end'][0]:.1f}")
        for h in rec["headlines"]:
            lines.append(f"| {h['benchmark']} | {h['ours']} | {h['reference']} | {cond} |")
    head = "Machine: " + "; ".join(sorted(cpus)) if cpus else "No results yet: run `make bench`."
    return head + "\n\n" + "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.readme", description=__doc__)
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--write", action="store_true", help="update the README block in place")
    g.add_argument("--check", action="store_true", help="exit 1 if the README block is stale")
    args = ap.parse_args(argv)
    try:
        table = render()
        text = README.read_text()
        if args.write:
            from sim.io import atomic_write_text

            atomic_write_text(README, replace_block(text, BLOCK, table))
        elif args.check:
            if get_block(text, BLOCK) != table:
                print("README benchmark table is stale: run python -m bench.readme --write",
                      file=sys.stderr)
                return 1
        else:
            print(table, end="")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
