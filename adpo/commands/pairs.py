"""``adpo pairs``: write text preference pairs (chitchat, simulated, handwritten) as JSONL

chitchat: same-prompt Chit Chat conversations whose human 1-10 ratings differ by >= --min-gap
(REAL but noisy, conversation-level judgments; TRL rows). simulated: the same text with
SIMULATED labels from a lexicon reward (rows response_1/response_2/label, marked simulated).
handwritten: pairs written by this project (fact vs wrong fact, on-topic vs off-topic).
"""

import argparse

from . import add_command


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "pairs", __doc__)
    p.add_argument("--source", required=True, choices=("chitchat", "simulated", "handwritten"))
    p.add_argument("--out", required=True, help="output JSONL")
    p.add_argument("--n", type=int, default=2000, help="number of pairs (chitchat, simulated)")
    p.add_argument("--min-gap", type=float, default=3.0, help="chitchat: rating gap")
    p.add_argument("--scale", type=float, default=4.0, help="simulated: reward scale")
    p.add_argument("--messages", type=int, default=4, help="messages of each chat shown")
    p.add_argument("--max-chars", type=int, default=300, help="characters of each response")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sim import textdata as td
    from sim.io import check_output
    from sim.validation import as_rng, positive_int, positive_scalar

    check_output(args.out, suffix=".jsonl")
    positive_int(args.n, "n")
    positive_scalar(args.min_gap, "min-gap")
    positive_scalar(args.scale, "scale")
    positive_int(args.messages, "messages")
    positive_int(args.max_chars, "max-chars")
    as_rng(args.seed)
    if args.source == "chitchat":
        rows = td.chitchat_pairs(args.n, min_gap=args.min_gap, n_messages=args.messages,
                                 max_chars=args.max_chars, seed=args.seed)
    elif args.source == "simulated":
        rows = td.simulated_pairs(args.n, scale=args.scale, n_messages=args.messages,
                                  max_chars=args.max_chars, seed=args.seed)
    else:
        rows = td.handwritten_pairs()
    td.write_jsonl(rows, args.out)
    print(f"wrote {len(rows)} {args.source} pairs to {args.out}")
    return 0
