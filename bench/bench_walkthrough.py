"""The README's command-line walkthroughs, timed end to end (``python -m bench walkthrough``).

Runs, in a fresh temporary folder and as separate processes (``python -m adpo ...``, so every time
includes Python start-up and imports, as a user sees it):

1. the five-minute tour: ``env`` (gaussian, N = 4096, d = 16), ``select --method adpo+ --n 256``,
   ``fit``, ``--help``, ``select --method adpo --n 512 --candidates 256``, ``design --solver
   greedy|fw --n 1000``;
2. from text to a DPO-tuned model on the embedded SmolLM2 (the README's second block, same
   sizes): ``pairs --source simulated --n 240``, ``split``, ``features`` (the pool), ``select
   --method adpo --n 32``, ``train --epochs 3``, ``evaluate`` of the run and of the untrained model.

Each command runs once (they are deterministic and the slow ones take minutes; the warm-up /
median rule of ``bench.common`` is for in-process timings). ``--quick`` runs only part 1 with
small sizes. Results: ``bench/results/walkthrough.json``, one row per command with its seconds and
exit code; the README's benchmark table shows the two totals and the slowest step.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
import time

from bench.common import Results

TOUR = [
    "env --kind gaussian --N 4096 --d 16 --seed 0 --out g.npz",
    "select --data g.npz --method adpo+ --n 256 --out sel.json",
    "fit --data g.npz --subset sel.json",
    "--help",
    "select --data g.npz --method adpo --n 512 --candidates 256 --out sel2.json",
    "design --data g.npz --solver greedy --n 1000 --out design.json",
    "design --data g.npz --solver fw --n 1000 --out fw.json",
]
QUICK_TOUR = [c.replace("--N 4096", "--N 512").replace("--n 1000", "--n 100")
              .replace("--n 512", "--n 64") for c in TOUR]
LLM = [
    "pairs --source simulated --n 240 --max-chars 120 --out pairs.jsonl",
    "split --data pairs.jsonl --pool pool.jsonl --heldout heldout.jsonl --holdout 0.25 --seed 0",
    "features --data pool.jsonl --out pool.npz --max-length 128 --quiet",
    "select --data pool.npz --method adpo --n 32 --out lsel.json",
    "train --data pool.jsonl --subset lsel.json --out run --epochs 3",
    "evaluate --run run --data heldout.jsonl",
    "evaluate --model smollm2 --data heldout.jsonl",
]


def _run(res: Results, part: str, command: str, cwd: str, threads: int) -> float:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "adpo", *shlex.split(command)], cwd=cwd, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    secs = time.perf_counter() - t0
    tail = proc.stderr.strip().splitlines()[-1:] if proc.returncode else []
    res.add("commands", part=part, command=f"adpo {command}", seconds=secs,
            exit_code=proc.returncode, error=tail[0] if tail else None,
            load_average=list(os.getloadavg()))
    print(f"[{secs:7.1f} s] rc={proc.returncode} adpo {command}", flush=True)
    if proc.returncode:
        raise SystemExit(f"walkthrough: 'adpo {command}' failed: {tail}")
    return secs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench walkthrough", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="the tour only, small sizes")
    ap.add_argument("--threads", type=int, default=2, help="BLAS/torch threads (default 2)")
    args, _ = ap.parse_known_args(argv)
    res = Results("walkthrough", quick=args.quick, params={
        "threads": args.threads, "runner": "python -m adpo, one process per command, run once"})
    parts = {"tour": QUICK_TOUR if args.quick else TOUR}
    if not args.quick:
        parts["llm"] = LLM
    totals, slowest = {}, {}
    with tempfile.TemporaryDirectory(prefix="adpo-walk-") as tmp:
        for part, commands in parts.items():
            times = [(_run(res, part, c, tmp, args.threads), c) for c in commands]
            totals[part] = sum(t for t, _ in times)
            slowest[part] = max(times)
    res.headline("README five-minute tour (7 commands, separate processes, 2 cores)",
                 ours=f"{totals['tour']:.0f} s in all",
                 reference=f"slowest: adpo {slowest['tour'][1].split(' --out')[0]} "
                           f"{slowest['tour'][0]:.1f} s")
    if "llm" in totals:
        res.headline("README text → DPO-tuned SmolLM2 (240 simulated pairs, 7 commands, CPU)",
                     ours=f"{totals['llm'] / 60:.1f} min in all",
                     reference=f"slowest: adpo {slowest['llm'][1].split(' --')[0]} "
                               f"{slowest['llm'][0]:.0f} s")
    print(res.write())
    return 0


if __name__ == "__main__":
    sys.exit(main())
