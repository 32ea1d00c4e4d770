"""Feature-extraction throughput of the torch bridge (sim.llm) on the embedded SmolLM2-135M.

Real Chit Chat pairs (prompt rendered with the chat template, responses = conversation
openings) are featurized at several batch sizes; throughput is tokens/s where tokens are the
real (non-pad) tokens of prompt + response, both responses of each pair. Every batch size runs
the same sequences in the same process, one after another, so the ratios compare like with like.
A second comparison times our response-only LM head against the plain full-sequence logits
(``model(...).logits``) at the largest batch size. CPU threads are pinned (default 2); the GPU
is measured too when CUDA is present. Every timing is a warm-up then the median of 3
(``bench.common.median_time``).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from .common import Results, machine, median_time


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="batch sizes 1 and 8 only")
    ap.add_argument("--pairs", type=int, default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-length", type=int, default=256)
    args = ap.parse_args(argv)
    from sim import llm, textdata

    torch, _ = llm._offline()
    torch.set_num_threads(args.threads)
    n_pairs = args.pairs or 16
    sizes = (1, 8) if args.quick else (1, 8, 32)
    rows = [textdata.PairRow(k, r["prompt"], r["chosen"], r["rejected"], 1) for k, r in
            enumerate(textdata.chitchat_pairs(n_pairs, seed=0, max_chars=200))]
    t0 = time.perf_counter()
    lm = llm.load_model("smollm2", device="cpu")
    load_s = time.perf_counter() - t0
    seqs, _ = llm.encode_rows(lm.tokenizer, rows, args.max_length)
    n_tok = sum(len(s[0]) for s in seqs)
    res = Results("llm", quick=args.quick, params={"n_pairs": n_pairs, "n_sequences": len(seqs),
                                                   "n_tokens": n_tok, "threads": args.threads,
                                                   "load_seconds": load_s, "repeat": 3})
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    results = []
    for dev in devices:
        lm.model.to(dev)
        for bs in sizes:
            def ours(bs=bs, dev=dev):
                llm.featurize_sequences(lm.model, seqs, batch_size=bs, device=dev)
                if dev == "cuda":
                    torch.cuda.synchronize()
            sec = median_time(ours).seconds
            results.append(res.add("rows", device=dev, method="ours", batch=bs, seconds=sec,
                                   tokens_per_s=n_tok / sec))
        sec = median_time(_full_logits, torch, lm.model, seqs, sizes[-1], dev).seconds
        results.append(res.add("rows", device=dev, method="full logits", batch=sizes[-1],
                               seconds=sec, tokens_per_s=n_tok / sec))
    print(f"\nSmolLM2-135M features: {n_pairs} chitchat pairs, {len(seqs)} sequences, "
          f"{n_tok} tokens (mean {n_tok / len(seqs):.0f}); load {load_s:.1f}s; "
          f"torch threads {args.threads}; load average {os.getloadavg()[0]:.1f} (other "
          f"processes share the cores when > threads); machine: {machine()}")
    print(f"{'device':6s} {'method':12s} {'batch':>5s} {'seconds':>8s} {'tokens/s':>9s} "
          f"{'vs batch 1':>10s}")
    for dev in devices:
        base = next(r for r in results if r["device"] == dev and r["batch"] == 1)
        for r in (r for r in results if r["device"] == dev):
            print(f"{dev:6s} {r['method']:12s} {r['batch']:5d} {r['seconds']:8.2f} "
                  f"{r['tokens_per_s']:9.1f} {base['seconds'] / r['seconds']:10.2f}")
    for dev in devices:
        r = {(x["method"], x["batch"]): x for x in results if x["device"] == dev}
        res.headline(f"LLM features (`bench_llm`, SmolLM2-135M, {dev}, {args.threads} threads, "
                     f"{n_pairs} pairs)",
                     ours=" / ".join(f"{r['ours', b]['tokens_per_s']:.0f}" for b in sizes) +
                     f" tokens/s at batch {' / '.join(map(str, sizes))}",
                     reference=f"full-vocabulary logits at batch {sizes[-1]}: "
                               f"{r['full logits', sizes[-1]]['tokens_per_s']:.0f} tokens/s")
    print(f"wrote {res.write()}")


def _full_logits(torch, model, seqs, bs, dev) -> float:
    """Time the usual recipe: right-padded batches through model(...).logits, full vocabulary
    at every position, then the response-token log-probs (same length-sorted batches)."""
    order = sorted(range(len(seqs)), key=lambda k: -len(seqs[k][0]))
    t = time.perf_counter()
    with torch.inference_mode():
        for a in range(0, len(order), bs):
            batch = [seqs[k] for k in order[a:a + bs]]
            L = max(len(s[0]) for s in batch)
            ids = torch.zeros((len(batch), L), dtype=torch.long)
            mask = torch.zeros_like(ids)
            for r, (s, _) in enumerate(batch):
                ids[r, :len(s)] = torch.tensor(s)
                mask[r, :len(s)] = 1
            out = model(input_ids=ids.to(dev), attention_mask=mask.to(dev),
                        output_hidden_states=True)
            lsm = torch.log_softmax(out.logits.float(), -1)
            for r, (s, n_p) in enumerate(batch):
                pos = torch.arange(n_p - 1, len(s) - 1, device=dev)
                lsm[r, pos, ids[r, n_p:len(s)].to(dev)].sum().item()
    if dev == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t


if __name__ == "__main__":
    main()
