"""``adpo features``: LLM last-layer features and reference log-ratios of JSONL pairs

Turn a JSONL file of preference pairs (prompt/chosen/rejected, or prompt/response_1/response_2
with optional label) into a .npz data file: phi_i = phi(x, y_1) - phi(x, y_2) from the final
hidden layer, b_i = log pi_0(y_1|x) - log pi_0(y_2|x) over response tokens, labels when known;
plus a sidecar OUT.meta.json (model, pooling, source, row line numbers). Runs offline; resumes
an interrupted run from its finished chunks.
"""

import argparse
import contextlib
import io

from . import add_command



def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "features", __doc__)
    p.add_argument("--model", default="smollm2",
                   help="'smollm2' (embedded SmolLM2-135M-Instruct GGUF), a local Hugging Face "
                   "model directory (safetensors), or a .gguf file")
    p.add_argument("--data", required=True, help="JSONL pairs")
    p.add_argument("--out", required=True, help="output .npz, or DIR/ for a pool folder "
                   "(memory-mappable, sim/store.py; float32 phi); sidecar written next to it")
    p.add_argument("--device", default="auto", choices=("cpu", "cuda", "auto"))
    p.add_argument("--batch-size", type=int, default=16, help="sequences per forward pass")
    p.add_argument("--pooling", default="last", choices=("last", "mean"),
                   help="last response token (default) or mean over response tokens")
    p.add_argument("--max-length", type=int, default=256, help="tokens per prompt+response")
    p.add_argument("--chunk-rows", type=int, default=64, help="pairs per resumable chunk")
    p.add_argument("--beta", type=float, default=1.0, help="DPO scale stored in the .npz")
    p.add_argument("--orient", default="random", choices=("random", "as-is"),
                   help="TRL rows: put the chosen response first (as-is) or at random with "
                   "--seed (labels then not all ones)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--no-eos", action="store_true", help="do not end responses with EOS")
    p.add_argument("--keep-parts", action="store_true", help="keep the chunk files")
    p.add_argument("--quiet", action="store_true", help="no progress bars (model loading included)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sim import llm
    from sim.io import check_output, check_output_dir, check_outputs
    from sim.store import is_pool
    from sim.textdata import meta_path, read_pairs
    from sim.validation import as_rng, check_beta, positive_int

    # every option, the outputs and the rows, before the 15-25 s model load
    check_beta(args.beta)
    positive_int(args.batch_size, "batch-size")
    positive_int(args.chunk_rows, "chunk-rows")
    if positive_int(args.max_length, "max-length") < 4:
        raise ValueError(f"max-length: use at least 4 tokens, got {args.max_length}")
    if args.threads is not None:
        positive_int(args.threads, "threads")
    as_rng(args.seed)
    if llm.is_pool_path(args.out):
        out = check_output_dir(args.out, inputs=(args.data,))
        if out.exists() and not is_pool(out):
            raise ValueError(f"out: {args.out!r} is a folder but not a pool folder; give a new "
                             f"folder path (an existing pool is replaced)")
    else:
        check_output(args.out, suffix=".npz", inputs=(args.data,))
    check_output(meta_path(args.out), suffix=".json", inputs=(args.data,), field="out (sidecar)")
    check_outputs({"out": args.out, "out (sidecar)": meta_path(args.out)}, inputs=(args.data,))
    read_pairs(args.data)
    if args.threads is not None:
        import torch
        torch.set_num_threads(max(1, args.threads))
    # --quiet: the model-loading bars too (transformers' GGUF loader uses plain tqdm, which reads
    # sys.stderr when a bar is created); an error still propagates and is reported.
    with contextlib.redirect_stderr(io.StringIO()) if args.quiet else contextlib.nullcontext():
        lm = llm.load_model(args.model, args.device)
    meta = llm.extract_file(lm, args.data, args.out, pooling=args.pooling,
                            batch_size=args.batch_size, max_length=args.max_length,
                            chunk_rows=args.chunk_rows, beta=args.beta, orient=args.orient,
                            seed=args.seed, append_eos=not args.no_eos,
                            progress=not args.quiet, keep_parts=args.keep_parts)
    print(f"wrote {args.out}: N={meta['n_rows']} d={meta['d']} tokens={meta['n_tokens']} "
          f"truncated={meta['n_truncated']} labels={meta['labels']}")
    return 0
