"""The README's benchmark table, rendered from ``bench/results/*.json``.

``python -m bench.readme`` prints the tables; ``--write`` replaces the README blocks
``<!-- bench:table -->`` ... ``<!-- /bench:table -->`` (every headline) and ``<!-- bench:pools
-->`` (10^4 pairs from a large pool on a laptop, a GPU and a Dask cluster) with them;
``--check`` exits 1 when the README disagrees with the JSON (the test suite runs the same
comparison).
"""

from __future__ import annotations

import argparse
import pathlib
import sys

from bench.common import RESULTS_DIR, ROOT, load
from sim.docblocks import replace_block

BLOCK = "bench:table"
POOLS_BLOCK = "bench:pools"
README = ROOT / "README.md"

# 10^4 pairs from a large pool in three settings: (where, command, ((results file, the start of
# the headline(s) in that file that measured it), ...)). Numbers come only from the committed
# results.
POOLS = (
    ("laptop (2 CPU cores), pool folder streamed from disk",
     "adpo design --data pool/ --solver greedy --n 10000 --float32",
     (("greedy", "out-of-core greedy"),)),
    ("one GPU", "adpo design --data pool/ --solver greedy --n 10000 --float32 --backend torch "
     "--device cuda", (("gpu_scale", "adpo design"), ("gpu_scale", "greedy"))),
    ("a Dask cluster (here: local worker processes)", "adpo design --data pool/ --solver greedi "
     "--n 10000 --scheduler tcp://HOST:8786", (("greedy", "GreeDi"), ("scale", "GreeDi"))),
)


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


def render_pools(results_dir=None) -> str:
    """Markdown table of :data:`POOLS`: the command and what the named results file measured."""
    d = pathlib.Path(results_dir or RESULTS_DIR)
    lines = ["| where | command | measured (`bench/results/`) |", "|---|---|---|"]
    for where, cmd, sources in POOLS:
        got = []
        for name, prefix in sources:
            f = d / f"{name}.json"
            rec = load(f) if f.exists() else {"headlines": []}
            hits = [h for h in rec["headlines"] if h["benchmark"].startswith(prefix)]
            got.append("; ".join(f"{h['benchmark']}: {h['ours']} ({h['reference']})"
                                 for h in hits) or "not measured yet")
            got[-1] += f" (`{name}.json`)"
        lines.append(f"| {where} | `{cmd}` | {'; '.join(got)} |")
    return "\n".join(lines) + "\n"


def _render_all(text: str) -> str:
    text = replace_block(text, BLOCK, render())
    return replace_block(text, POOLS_BLOCK, render_pools())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.readme", description=__doc__)
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--write", action="store_true", help="update the README block in place")
    g.add_argument("--check", action="store_true", help="exit 1 if the README block is stale")
    args = ap.parse_args(argv)
    try:
        text = README.read_text()
        new = _render_all(text)
        if args.write:
            from sim.io import atomic_write_text

            atomic_write_text(README, new)
        elif args.check:
            if new != text:
                print("README benchmark tables are stale: run python -m bench.readme --write",
                      file=sys.stderr)
                return 1
        else:
            print(render() + "\n" + render_pools(), end="")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
