"""``adpo split``: split JSONL pairs into a pool and a held-out file, disjoint by prompt

Hold out whole prompts (sim.splits.group_split): every pair whose prompt is held out goes to
--heldout, the rest to --pool, each line copied verbatim in the input's order, so no held-out
prompt is ever seen in training or selection. A JSON record of the split (input SHA-256, seed,
source line numbers of each part) goes to --record.
"""

import argparse

from . import add_command


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "split", __doc__)
    p.add_argument("--data", required=True, help="input JSONL pairs")
    p.add_argument("--pool", required=True, help="output JSONL: the pool (select and train here)")
    p.add_argument("--heldout", required=True, help="output JSONL: held-out pairs (evaluate here)")
    p.add_argument("--holdout", type=float, default=0.2,
                   help="fraction of pairs held out (whole prompts; may overshoot by < 1 prompt)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--record", default=None, help="optional JSON record of the split")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sim.io import check_output, check_outputs, write_json
    from sim.textsplit import split_pairs_file

    for field in ("pool", "heldout"):
        check_output(getattr(args, field), suffix=".jsonl", inputs=(args.data,), field=field)
    if args.record is not None:
        check_output(args.record, suffix=".json", inputs=(args.data,), field="record")
    check_outputs({"pool": args.pool, "heldout": args.heldout, "record": args.record},
                  inputs=(args.data,))

    rec = split_pairs_file(args.data, args.pool, args.heldout, holdout=args.holdout,
                           seed=args.seed)
    if args.record:
        write_json(rec, args.record)
    print(f"wrote {rec['n_pool']} pool pairs ({rec['n_pool_prompts']} prompts) to {args.pool} "
          f"and {rec['n_heldout']} held-out pairs ({rec['n_heldout_prompts']} prompts) to "
          f"{args.heldout}")
    return 0
