"""``adpo train``: DPO-train an LLM on the pairs a selection chose (top-k blocks, cached)

DPO fine-tuning (loss -log sigmoid(beta [(log pi - log pi_0)(chosen) - (...)(rejected)]) on
response tokens) of the top --top-k-blocks transformer blocks and the final norm, against the
frozen initial model as the reference; the frozen part's hidden states and the reference
log-probs are computed once per sequence and cached. Writes RUN_DIR/config.json, metrics.jsonl
(loss, accuracy, margin per step), checkpoint.safetensors and, when finished, model.safetensors
(trained tensors only). Rerunning the same command resumes from the last checkpoint.
"""

import argparse

import dataclasses

from . import add_command


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "train", __doc__)
    p.add_argument("--data", required=True, help="JSONL pairs (TRL rows or labelled pair rows)")
    p.add_argument("--subset", default=None,
                   help="selection JSON from `adpo select` ({'indices': [...]}, rows of --data; "
                   "the features must come from this same file); default: every row")
    p.add_argument("--out", required=True, help="run folder (created; resumed when it holds "
                   "the same run)")
    p.add_argument("--model", default="smollm2",
                   help="'smollm2' (embedded SmolLM2-135M-Instruct GGUF) or a local Hugging "
                   "Face model directory (safetensors)")
    p.add_argument("--device", default="auto", choices=("cpu", "cuda", "auto"))
    d = {f.name: f.default for f in dataclasses.fields(_cfg())}
    p.add_argument("--top-k-blocks", type=int, default=d["top_k_blocks"],
                   help="transformer blocks trained (or given LoRA adapters), counted from the top")
    p.add_argument("--train", default=d["train"], choices=("top-k", "lora"),
                   help="what moves: the top blocks and the final norm, or LoRA adapters (peft) "
                   "on the linear layers of the top blocks")
    p.add_argument("--lora-r", type=int, default=d["lora_r"], help="LoRA rank (with --train lora)")
    p.add_argument("--beta", type=float, default=d["beta"], help="DPO beta (TRL's default)")
    p.add_argument("--lr", type=float, default=d["lr"], help="AdamW learning rate")
    p.add_argument("--epochs", type=int, default=d["epochs"])
    p.add_argument("--steps", type=int, default=None, help="optimizer steps (overrides epochs)")
    p.add_argument("--batch-size", type=int, default=d["batch_size"], help="pairs per step")
    p.add_argument("--max-length", type=int, default=d["max_length"],
                   help="tokens per prompt+response")
    p.add_argument("--checkpoint-every", type=int, default=d["checkpoint_every"])
    p.add_argument("--seed", type=int, default=d["seed"], help="order of the pairs")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def _cfg():
    from sim.llm_train import TrainConfig
    return TrainConfig


def run(args: argparse.Namespace) -> int:
    from sim.io import check_output_dir
    from sim.data import read_subset
    from sim.llm_train import train
    from sim.textdata import read_pairs

    check_output_dir(args.out, inputs=(args.data, args.subset))

    cfg = _cfg()(model=args.model, top_k_blocks=args.top_k_blocks, beta=args.beta, lr=args.lr,
                 epochs=args.epochs, steps=args.steps, batch_size=args.batch_size,
                 max_length=args.max_length, seed=args.seed,
                 checkpoint_every=args.checkpoint_every, train=args.train,
                 lora_r=args.lora_r).validate()
    rows, _ = read_pairs(args.data)  # malformed rows and bad subsets fail before the model loads
    subset = None if args.subset is None else read_subset(args.subset, len(rows))
    if args.threads is not None:
        import torch
        torch.set_num_threads(max(1, args.threads))
    out = train(args.data, args.out, cfg, subset=subset, device=args.device,
                progress=not args.quiet)
    print(f"{'finished' if out['finished'] else 'stopped'}: {out['run']} after "
          f"{out['steps_done']}/{out['n_steps']} steps on {out['n_pairs']} pairs "
          f"({out['n_truncated']} sequences truncated)")
    return 0
