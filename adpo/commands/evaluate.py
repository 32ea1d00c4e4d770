"""``adpo evaluate``: score a trained run (or the untrained model) on held-out pairs

Implicit-reward accuracy (beta log pi/pi_0 of the chosen > of the rejected; ties count 1/2),
mean reward margin and DPO negative log-likelihood over a JSONL of held-out pairs (the paper's
sec. 6.2 metrics, out of sample), plus reward_agreement where the rows carry their generating
reward (adpo pairs --source simulated). JSON keys: accuracy, margin, nll, reward_agreement,
n_pairs, model, run.
"""

import argparse

from . import add_command


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "evaluate", __doc__)
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--run", help="run folder written by `adpo train`")
    who.add_argument("--model", help="'smollm2' or a model directory: the untrained model "
                     "(policy = reference, margin 0)")
    p.add_argument("--data", required=True, help="held-out JSONL pairs")
    p.add_argument("--beta", type=float, default=None, help="default: the run's, else 0.1")
    p.add_argument("--max-length", type=int, default=None, help="default: the run's, else 128")
    p.add_argument("--device", default="auto", choices=("cpu", "cuda", "auto"))
    p.add_argument("--batch-size", type=int, default=16, help="sequences per forward pass")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--out", default="-", help="JSON output (default: stdout)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sim.io import check_output, write_json
    from sim.llm_train import evaluate_pairs, oriented_rows, read_run
    from sim.textdata import read_pairs
    from sim.validation import check_beta, positive_int

    check_output(args.out, suffix=".json", inputs=(args.data,), allow_stdout=True)
    if args.beta is not None:
        check_beta(args.beta)
    positive_int(args.batch_size, "batch-size")

    oriented_rows(read_pairs(args.data)[0])  # unlabeled or malformed rows fail first
    if args.run is not None:
        read_run(args.run)
    if args.threads is not None:
        import torch
        torch.set_num_threads(max(1, args.threads))
    res = evaluate_pairs(args.data, run_dir=args.run, model=args.model or "smollm2",
                         beta=args.beta, device=args.device, max_length=args.max_length,
                         batch_size=args.batch_size, progress=not args.quiet)
    write_json(res, args.out)
    return 0
