"""DPO fine-tuning of a causal LM on selected pairs, with cached frozen activations.

The paper's pipeline ends with "an LLM policy is then optimized on S_n with DPO" (PAPER.md
sec. 6.2). This module does that on CPU in minutes: only the TOP ``k`` transformer blocks and the
final norm move; the embeddings, the lower blocks and the LM head stay frozen (SmolLM2 ties its
LM head to the input embeddings, so training the head would change the frozen part). Hence, per
sequence, two things are computed ONCE and cached (:class:`PairCache`):

* the hidden state entering block ``L - k`` at every position, shape (T, d);
* the frozen reference's response log-prob log pi_0(y|x) (the full initial model).

A training step then runs only the top ``k`` blocks, the norm and the head on response
positions. The loss is DPO's (Rafailov et al.; the paper's eq. 6 with a neural policy), on
response tokens only, averaged over the pairs of a batch as TRL does:

    loss = -mean_i log sigmoid(beta [(log pi - log pi_0)(y_w) - (log pi - log pi_0)(y_l)]).

Metrics per step on the batch (as TRL logs them): ``accuracy`` = fraction of pairs whose
implicit-reward margin is > 0, ``margin`` = mean of beta [...] above.

A run folder holds ``config.json``, ``metrics.jsonl`` (one line per step), ``checkpoint.safetensors``
(trained tensors + AdamW moments, step in the metadata; written atomically, a rerun with the same
settings resumes from it and reproduces the uninterrupted run) and, when done, ``model.safetensors``
(the trained tensors only, named as in the full model's state dict). Nothing is pickled.

Evaluation (:func:`evaluate_pairs`) is the sec. 6.2 triple out of sample: accuracy, mean margin and
DPO negative log-likelihood of held-out pairs under the trained policy against the initial model.

Many short runs on one cache (the runner's ``dpo_train`` cells,
:func:`sim.experiment.run_dpo_train_cell`): the cache is saved once as a training-cache file
(:func:`save_cache`, keys ``CACHE_FILE_KEYS``), :func:`open_cache` loads it and its network once
per process, and :func:`train_and_score` trains the shared network's top blocks afresh on one
subset, scores held-out pairs and restores the weights.

torch and transformers are imported inside functions (``import sim`` never needs them).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from . import llm
from .io import StrPath, atomic_savez, atomic_write_bytes, atomic_write_text
from .llm import TokenSeq
from .validation import positive_int, positive_scalar

if TYPE_CHECKING:  # optional dependencies: imported inside functions at run time
    import torch
    from tqdm import tqdm
    from transformers import PreTrainedModel

    from .textdata import PairRow

TIE_TOL = 1e-4  # |implicit-reward margin| at or below this is a tie (counted 1/2 in accuracy)
CONFIG_FILE, METRICS_FILE = "config.json", "metrics.jsonl"
CHECKPOINT_FILE, WEIGHTS_FILE = "checkpoint.safetensors", "model.safetensors"
#: What moves: the top k blocks and the final norm ("top-k"), or LoRA adapters (rank
#: ``lora_r``, peft) on the linear layers of the top k blocks ("lora"; the lower blocks stay
#: frozen and cached either way).
TRAIN_MODES = ("top-k", "lora")
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass
class TrainConfig:
    """Settings of one DPO run (all recorded in ``config.json``; a resume must match them).

    ``train``: "top-k" trains the top ``top_k_blocks`` blocks and the final norm; "lora" trains
    LoRA adapters of rank ``lora_r`` (alpha = r, scale 1, no dropout; A drawn from ``seed``,
    B = 0 so the policy starts at the reference) on every linear layer of those blocks.

    ``steps`` (when given) overrides ``epochs``; an epoch is one pass over the selected pairs in a
    seeded random order (``numpy`` Generator seeded with ``[seed, epoch]``).
    """

    model: str = "smollm2"
    top_k_blocks: int = 1
    beta: float = 0.1
    lr: float = 1e-4
    epochs: int = 1
    steps: int | None = None
    batch_size: int = 8
    max_length: int = 128
    seed: int = 0
    checkpoint_every: int = 20
    append_eos: bool = True
    train: str = "top-k"
    lora_r: int = 8

    def validate(self) -> "TrainConfig":
        if self.train not in TRAIN_MODES:
            raise ValueError(f"train: one of {', '.join(TRAIN_MODES)}, got {self.train!r}")
        positive_int(self.lora_r, "lora_r")
        positive_int(self.top_k_blocks, "top_k_blocks")
        positive_scalar(self.beta, "beta")
        positive_scalar(self.lr, "lr")
        positive_int(self.epochs, "epochs")
        if self.steps is not None:
            positive_int(self.steps, "steps")
        positive_int(self.batch_size, "batch_size")
        if positive_int(self.max_length, "max_length") < 4:
            raise ValueError("max_length: use at least 4 tokens")
        positive_int(self.checkpoint_every, "checkpoint_every")
        return self


# --------------------------------------------------------------------------- rows
def oriented_rows(rows: Iterable[PairRow]) -> list[PairRow]:
    """Pairs as (chosen, rejected) ``PairRow``s: TRL rows as they are; ``pair`` rows by label.

    ``ValueError`` naming the first unlabeled line: DPO needs to know which response won.
    """
    from .textdata import PairRow
    out = []
    for r in rows:
        if r.label is None:
            raise ValueError(f"line {r.line}: the pair has no label; DPO training and evaluation "
                             f"need labels (TRL rows, or 'label' on every pair row)")
        w, lo = (r.response_1, r.response_2) if r.label == 1 else (r.response_2, r.response_1)
        out.append(PairRow(r.line, r.prompt, w, lo, 1))
    return out


# --------------------------------------------------------------------------- model split
def blocks(model: PreTrainedModel) -> torch.nn.ModuleList:
    """The decoder blocks of a Llama-like causal LM (``model.model.layers``)."""
    base = getattr(model, "model", None)
    layers = getattr(base, "layers", None)
    if layers is None or not hasattr(base, "norm"):
        raise ValueError(f"model: {type(model).__name__} has no model.layers / model.norm; "
                         f"top-k training supports Llama-like decoder models")
    return layers


def split_index(model: PreTrainedModel, top_k_blocks: int) -> int:
    """Index of the first trained block, ``L - k``; ``ValueError`` unless 1 <= k <= L."""
    L = len(blocks(model))
    if not 1 <= top_k_blocks <= L:
        raise ValueError(f"top_k_blocks: the model has {L} blocks; choose 1..{L}, "
                         f"got {top_k_blocks}")
    return L - top_k_blocks


def trained_names(model: PreTrainedModel, start: int) -> list[str]:
    """State-dict names of the trained tensors: blocks ``start..L-1`` and the final norm."""
    L = len(blocks(model))
    prefixes = tuple(f"model.layers.{j}." for j in range(start, L)) + ("model.norm.",)
    return [n for n, _ in model.named_parameters() if n.startswith(prefixes)]


def trainable(model: PreTrainedModel, start: int, cfg: TrainConfig
              ) -> dict[str, torch.nn.Parameter]:
    """The tensors a run trains, ``{name: parameter}`` (requires_grad on these only): the top
    blocks and norm, or LoRA adapters added to the top blocks (:func:`add_lora`) first."""
    if cfg.train == "lora":
        add_lora(model, start, cfg.lora_r, cfg.seed)
        return _train_only(model, {n for n, _ in model.named_parameters() if ".lora_" in n})
    return freeze_all_but_top(model, start)


def _train_only(model: PreTrainedModel, names: set[str]) -> dict[str, torch.nn.Parameter]:
    """requires_grad on the parameters ``names`` only; returns ``{name: parameter}`` of those."""
    out = {}
    for n, p in model.named_parameters():
        p.requires_grad_(n in names)
        if n in names:
            out[n] = p
    return out


def add_lora(model: PreTrainedModel, start: int, r: int, seed: int) -> None:
    """Add LoRA adapters (peft, rank ``r``, alpha = r, no dropout) to the linear layers of blocks
    ``start..L-1`` of ``model`` in place; A is drawn from ``seed`` (torch's generator forked, the
    global state untouched), B = 0. A model that already has adapters is left as it is."""
    torch, _ = llm._offline()
    if any(".lora_" in n for n, _ in model.named_parameters()):
        return
    try:
        from peft import LoraConfig, inject_adapter_in_model
    except ImportError:
        raise ValueError("train: 'lora' needs the peft package (pip install peft)") from None
    L = len(blocks(model))
    cfg = LoraConfig(r=r, lora_alpha=r, lora_dropout=0.0, bias="none",
                     target_modules=list(LORA_TARGETS), layers_to_transform=list(range(start, L)))
    devices = [model.device] if model.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        inject_adapter_in_model(cfg, model)


def freeze_all_but_top(model: PreTrainedModel, start: int) -> dict[str, torch.nn.Parameter]:
    """requires_grad only on the trained tensors; returns ``{name: parameter}`` of those."""
    return _train_only(model, set(trained_names(model, start)))


@contextlib.contextmanager
def _only_blocks(model: PreTrainedModel, start: int) -> Iterator[torch.nn.Module]:
    """Temporarily make the base model run blocks ``start..L-1`` only (then its final norm)."""
    torch, _ = llm._offline()
    base = model.model
    full = base.layers
    base.layers = torch.nn.ModuleList(list(full)[start:])
    try:
        yield base
    finally:
        base.layers = full


# --------------------------------------------------------------------------- cache
@dataclass
class PairCache:
    """Frozen activations of 2N sequences (pair i: chosen ``2i``, rejected ``2i + 1``).

    ``hidden[j]`` (T_j, d): hidden state entering block ``start`` (model dtype, on ``device``);
    ``ref_logp`` (2N,) float64 tensor: log pi_0 of each response under the full initial model;
    ``phi`` (2N, d) float64 array: the initial model's final hidden state (after its last norm)
    at the last response token -- the log-linear features phi(x, y) of ``adpo features``.
    """

    seqs: Sequence[TokenSeq]
    hidden: list[torch.Tensor]
    ref_logp: torch.Tensor
    start: int
    n_truncated: int = 0
    phi: np.ndarray | None = None

    @property
    def n_pairs(self) -> int:
        return len(self.seqs) // 2


def cache_bytes(seqs: Sequence[TokenSeq], model: PreTrainedModel) -> int:
    """Bytes the cache of ``seqs`` needs: sum of lengths x hidden size x element size."""
    p = next(model.parameters())
    return sum(len(s[0]) for s in seqs) * model.config.hidden_size * p.element_size()


def check_fits(seqs: Sequence[TokenSeq], model: PreTrainedModel, device: str) -> None:
    """``ValueError`` when the cache and the model would not fit in free memory (CPU RAM or the
    CUDA device), with the sizes and what to lower."""
    torch, _ = llm._offline()
    need = cache_bytes(seqs, model) + 4 * sum(p.numel() * p.element_size()
                                               for p in model.parameters())
    if device.startswith("cuda"):
        free = torch.cuda.mem_get_info()[0]
    else:
        try:
            free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            return
    if need > free:
        raise ValueError(f"model: cache and weights need about {need / 2**30:.1f} GiB, only "
                         f"{free / 2**30:.1f} GiB free on {device}; lower --max-length or use "
                         f"fewer pairs")


def build_cache(lm: llm.LoadedModel, rows: Iterable[PairRow], start: int, *,
                max_length: int = 128,
                append_eos: bool = True, batch_size: int = 16, progress: bool = False
                ) -> PairCache:
    """Encode oriented rows (see :func:`oriented_rows`) and compute their frozen activations
    (:func:`cache_sequences`)."""
    seqs, n_trunc = llm.encode_rows(lm.tokenizer, rows, max_length, append_eos)
    return cache_sequences(lm.model, seqs, start, device=lm.device, batch_size=batch_size,
                           progress=progress, n_truncated=n_trunc)


def cache_sequences(model: PreTrainedModel, seqs: Sequence[TokenSeq], start: int, *,
                    device: str = "cpu", batch_size: int = 16, progress: bool = False,
                    n_truncated: int = 0) -> PairCache:
    """The frozen activations of token sequences ``(ids, n_prompt)`` (chosen, rejected, ...).

    One forward pass of the initial model per sequence (length-sorted, right-padded batches):
    the hidden state entering block ``start`` (``hidden_states[start]``), the response log-prob
    from the final hidden state (:func:`sim.llm.response_logprobs`) and the last-token features.
    """
    torch, _ = llm._offline()
    check_fits(seqs, model, device)
    order = sorted(range(len(seqs)), key=lambda k: -len(seqs[k][0]))
    hidden = [None] * len(seqs)
    phi = np.empty((len(seqs), model.config.hidden_size))
    ref = torch.empty(len(seqs), dtype=torch.float64, device=device)
    bar = _bar(len(seqs), "cache", "seq", progress)
    with torch.inference_mode():
        for a in range(0, len(order), batch_size):
            idx = order[a:a + batch_size]
            ids, mask, pos, starts, last = llm.pad_batch([seqs[k] for k in idx])
            ids, mask, pos = ids.to(device), mask.to(device), pos.to(device)
            out = model.model(input_ids=ids, attention_mask=mask, position_ids=pos,
                              output_hidden_states=True)
            hs = out.hidden_states[start]
            ref[idx] = llm.response_logprobs(model, out.last_hidden_state, ids, starts,
                                             last.tolist())
            phi[idx] = out.last_hidden_state[torch.arange(len(idx)), last.to(device)
                                             ].double().cpu().numpy()
            for r, k in enumerate(idx):
                hidden[k] = hs[r, :len(seqs[k][0])].clone()
            if bar is not None:
                bar.update(len(idx))
    if bar is not None:
        bar.close()
    return PairCache(seqs, hidden, ref, start, n_truncated, phi)


def policy_logp(model: PreTrainedModel, cache: PairCache, seq_idx: Sequence[int]
                ) -> torch.Tensor:
    """log pi(y|x) of the sequences ``seq_idx`` under the current top blocks (differentiable).

    Runs blocks ``start..L-1``, the final norm and the LM head (response positions only) on the
    cached hidden states, right-padded; returns (len(seq_idx),) float64.
    """
    torch, _ = llm._offline()
    seqs = [cache.seqs[j] for j in seq_idx]
    ids, mask, pos, starts, last = llm.pad_batch(seqs)
    h0 = cache.hidden[seq_idx[0]]
    x = torch.zeros((len(seqs), ids.shape[1], h0.shape[1]), dtype=h0.dtype, device=h0.device)
    for r, j in enumerate(seq_idx):
        x[r, :cache.hidden[j].shape[0]] = cache.hidden[j]
    dev = h0.device
    with _only_blocks(model, cache.start) as base:
        h = base(inputs_embeds=x, attention_mask=mask.to(dev),
                 position_ids=pos.to(dev)).last_hidden_state
    return llm.response_logprobs(model, h, ids.to(dev), starts, last.tolist())


def dpo_terms(logp: torch.Tensor, ref_logp: torch.Tensor, beta: float
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """DPO loss and per-pair implicit-reward margins from interleaved (chosen, rejected) log-probs.

    ``logp``, ``ref_logp``: (2B,) with chosen at even, rejected at odd positions. Returns
    ``(loss, margins)``: ``margins`` (B,) = beta [(log pi - log pi_0)(y_w) - (...)(y_l)],
    ``loss`` = -mean log sigmoid(margins) (stable ``logsigmoid``).
    """
    torch, _ = llm._offline()
    ratio = logp - ref_logp
    margins = beta * (ratio[0::2] - ratio[1::2])
    return -torch.nn.functional.logsigmoid(margins).mean(), margins


def batch_order(n_pairs: int, batch_size: int, seed: int, step: int) -> np.ndarray:
    """Pair indices (into the trained subset) of training step ``step`` (0-based): epochs are
    seeded permutations, ``default_rng([seed, epoch])``, cut into batches (the last may be short)."""
    per_epoch = -(-n_pairs // batch_size)
    epoch, j = divmod(step, per_epoch)
    perm = np.random.default_rng([seed, epoch]).permutation(n_pairs)
    return perm[j * batch_size:(j + 1) * batch_size]


def n_steps(cfg: TrainConfig, n_pairs: int) -> int:
    """Training steps of a run: ``cfg.steps``, else ``cfg.epochs`` passes of ceil(n / batch)."""
    return cfg.steps if cfg.steps is not None else cfg.epochs * -(-n_pairs // cfg.batch_size)


# --------------------------------------------------------------------------- training
class Trainer:
    """AdamW on the top blocks of ``lm.model`` against the cached frozen part.

    ``pairs``: indices into ``cache``'s pairs that are trained on. ``step()`` does one update
    and returns ``{"step", "loss", "accuracy", "margin"}`` on that batch (before the update).
    """

    def __init__(self, lm: llm.LoadedModel, cache: PairCache, pairs: ArrayLike,
                 cfg: TrainConfig) -> None:
        torch, _ = llm._offline()
        self.lm, self.cache, self.cfg = lm, cache, cfg
        self.pairs = np.asarray(pairs, dtype=np.int64)
        self.params = trainable(lm.model, cache.start, cfg)
        self.opt = torch.optim.AdamW(list(self.params.values()), lr=cfg.lr, weight_decay=0.0)
        self.t = 0
        lm.model.eval()  # no dropout: a step is a deterministic function of the weights

    def step(self) -> dict[str, float]:
        torch, _ = llm._offline()
        pick = self.pairs[batch_order(len(self.pairs), self.cfg.batch_size, self.cfg.seed,
                                      self.t)]
        seq_idx = [int(j) for i in pick for j in (2 * i, 2 * i + 1)]
        logp = policy_logp(self.lm.model, self.cache, seq_idx)
        loss, margins = dpo_terms(logp, self.cache.ref_logp[seq_idx], self.cfg.beta)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.t += 1
        m = margins.detach()
        return {"step": self.t, "loss": float(loss.detach()),
                "accuracy": float(_accuracy(m)), "margin": float(m.mean())}

    # ---- state (safetensors only)
    def state_tensors(self) -> dict[str, torch.Tensor]:
        out = {n: p.detach().cpu().contiguous() for n, p in self.params.items()}
        for n, p in self.params.items():
            st = self.opt.state.get(p)
            if st:
                out[f"optim.{n}.exp_avg"] = st["exp_avg"].detach().cpu().contiguous()
                out[f"optim.{n}.exp_avg_sq"] = st["exp_avg_sq"].detach().cpu().contiguous()
        return out

    def load_state(self, tensors: Mapping[str, torch.Tensor], step: int) -> None:
        torch, _ = llm._offline()
        with torch.no_grad():
            for n, p in self.params.items():
                p.copy_(tensors[n])
                if f"optim.{n}.exp_avg" in tensors:
                    self.opt.state[p] = {
                        "step": torch.tensor(float(step)),
                        "exp_avg": tensors[f"optim.{n}.exp_avg"].to(p.device),
                        "exp_avg_sq": tensors[f"optim.{n}.exp_avg_sq"].to(p.device)}
        self.t = step


def _accuracy(margins: torch.Tensor) -> torch.Tensor:
    """Fraction of margins > TIE_TOL, ties (|m| <= TIE_TOL) counted 1/2."""
    return ((margins > TIE_TOL).double() + 0.5 * (margins.abs() <= TIE_TOL).double()).mean()


def _bar(total: int, desc: str, unit: str, show: bool) -> tqdm | None:
    if not show:
        return None
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, leave=False)


def _save_safetensors(tensors: dict[str, torch.Tensor], path: Path,
                      metadata: Mapping[str, object]) -> None:
    from safetensors.torch import save

    atomic_write_bytes(path, save(tensors, metadata={k: str(v) for k, v in metadata.items()}))


def _write_text(path: Path, text: str) -> None:
    atomic_write_text(path, text)


def train(data_path: StrPath, out_dir: StrPath, cfg: TrainConfig, *,
          subset: ArrayLike | None = None, device: str = "auto",
          lm: llm.LoadedModel | None = None, progress: bool = True,
          stop_after: int | None = None) -> dict[str, Any]:
    """DPO-train ``cfg.model`` on the rows ``subset`` (indices; None = all) of a JSONL pairs file,
    writing the run folder ``out_dir`` (see the module docstring). Returns the run summary.

    A folder that already holds a run with the same config resumes from its checkpoint; one
    with another config is refused. ``lm`` skips loading (tests pass a built model; its
    ``name`` is recorded). ``stop_after`` ends after that many steps of this call (tests of
    resumption).
    """
    from .textdata import file_sha256, read_pairs
    torch, _ = llm._offline()
    cfg.validate()
    data_path = Path(os.fspath(data_path)).resolve()
    rows, fmt = read_pairs(data_path)
    idx = np.arange(len(rows)) if subset is None else np.asarray(subset, dtype=np.int64)
    if idx.size == 0:
        raise ValueError("subset: no pairs selected; select at least one")
    from .data import check_indices
    idx = check_indices(idx, len(rows), "subset")
    chosen = oriented_rows([rows[i] for i in idx])
    out_dir = Path(os.fspath(out_dir))
    if lm is None:
        lm = llm.load_model(cfg.model, device)
    start = split_index(lm.model, cfg.top_k_blocks)
    trained = list(trainable(lm.model, start, cfg))  # (adds LoRA adapters: B = 0, pi = pi_0)
    record = {"config": asdict(cfg), "model_name": lm.name, "data": str(data_path),
              "data_sha256": file_sha256(data_path), "format": fmt,
              "subset": idx.tolist(), "n_pairs": int(idx.size),
              "n_steps": n_steps(cfg, int(idx.size)), "first_trained_block": start,
              "n_blocks": len(blocks(lm.model)),
              "trained": trained}
    out_dir.mkdir(parents=True, exist_ok=True)
    cfg_path = out_dir / CONFIG_FILE
    if cfg_path.is_file():
        old = json.loads(cfg_path.read_text())
        if old != record:
            diff = sorted(k for k in record if old.get(k) != record[k])
            raise ValueError(f"out: {str(out_dir)!r} holds a run with other settings "
                             f"(differs in {diff}); use a new folder or remove it")
    else:
        _write_text(cfg_path, json.dumps(record, indent=2))
    cache = build_cache(lm, chosen, start, max_length=cfg.max_length,
                        append_eos=cfg.append_eos, progress=progress)
    trainer = Trainer(lm, cache, np.arange(cache.n_pairs), cfg)
    ckpt = out_dir / CHECKPOINT_FILE
    metrics_path = out_dir / METRICS_FILE
    if ckpt.is_file():
        from safetensors import safe_open
        from safetensors.torch import load_file
        with safe_open(str(ckpt), framework="pt") as f:
            step0 = int(f.metadata()["step"])
        trainer.load_state(load_file(str(ckpt), device=str(lm.device)), step0)
    else:
        step0 = 0
    # keep the metric lines of the checkpointed steps only (a crash may have left later ones)
    kept = []
    if metrics_path.is_file():
        kept = [ln for ln in metrics_path.read_text().splitlines()
                if ln.strip() and json.loads(ln)["step"] <= step0]
    _write_text(metrics_path, "".join(ln + "\n" for ln in kept))
    total = record["n_steps"]
    bar = _bar(total, "dpo", "step", progress)
    if bar is not None:
        bar.update(step0)
    done_now = 0
    with open(metrics_path, "a") as mf:
        while trainer.t < total and (stop_after is None or done_now < stop_after):
            m = trainer.step()
            done_now += 1
            mf.write(json.dumps(m) + "\n")
            mf.flush()
            if trainer.t % cfg.checkpoint_every == 0 or trainer.t == total:
                _save_safetensors(trainer.state_tensors(), ckpt, {"step": trainer.t})
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{m['loss']:.3f}")
    if bar is not None:
        bar.close()
    if trainer.t == total:
        weights = {n: p.detach().cpu().contiguous() for n, p in trainer.params.items()}
        _save_safetensors(weights, out_dir / WEIGHTS_FILE, {"step": total,
                                                           "model": lm.name})
    return {"run": str(out_dir), "steps_done": trainer.t, "n_steps": total,
            "steps_this_call": done_now, "n_pairs": int(idx.size),
            "n_truncated": cache.n_truncated, "finished": trainer.t == total}


# --------------------------------------------------------------------------- cache files
#: Arrays of a training-cache file (:func:`save_cache`; pair i: chosen sequence 2i, rejected
#: 2i + 1; T = the total number of tokens): ``ids`` (T,) token ids of every sequence one after
#: the other, ``lengths`` (2N,) and ``n_prompt`` (2N,) their lengths and prompt lengths,
#: ``hidden`` (T, d) float32 hidden states entering block ``start``, ``ref_logp`` (2N,),
#: ``phi`` (2N, d) (:class:`PairCache`), ``n_truncated``, ``start``; the network ``model`` (a
#: :func:`network` spec), ``model_name``, ``device`` and ``threads`` it ran on; optionally
#: ``reward`` (2N,): each sequence's generating reward (simulated labels).
CACHE_FILE_KEYS = ("ids", "lengths", "n_prompt", "hidden", "ref_logp", "phi", "n_truncated",
                   "start", "model", "model_name", "device", "threads", "reward")


@dataclass(frozen=True)
class CacheInfo:
    """What a training-cache file records besides the :class:`PairCache`: the network (a
    :func:`network` spec and its name), where the forward pass ran (``device``, torch
    ``threads``: the cells that train on the cache run there too) and the generating rewards
    (2N,) of the sequences, or None."""

    model: str
    model_name: str
    device: str
    threads: int
    reward: np.ndarray | None = None


def save_cache(path: StrPath, cache: PairCache, info: CacheInfo) -> None:
    """Write ``cache`` and ``info`` as a training-cache file (keys: CACHE_FILE_KEYS), atomically;
    read it back with :func:`load_cache`."""
    torch, _ = llm._offline()
    if cache.phi is None:
        raise ValueError("cache: no phi; build it with cache_sequences")
    arrays: dict[str, Any] = {
        "ids": np.concatenate([np.asarray(s[0], dtype=np.int64) for s in cache.seqs]),
        "lengths": np.array([len(s[0]) for s in cache.seqs], dtype=np.int64),
        "n_prompt": np.array([s[1] for s in cache.seqs], dtype=np.int64),
        "hidden": torch.cat(cache.hidden).float().cpu().numpy(),
        "ref_logp": cache.ref_logp.cpu().numpy(), "phi": cache.phi,
        "n_truncated": np.int64(cache.n_truncated), "start": np.int64(cache.start),
        "model": np.str_(info.model), "model_name": np.str_(info.model_name),
        "device": np.str_(info.device), "threads": np.int64(info.threads)}
    if info.reward is not None:
        arrays["reward"] = np.asarray(info.reward, dtype=np.float64)
    atomic_savez(path, **arrays)


def load_cache(path: StrPath) -> tuple[PairCache, CacheInfo]:
    """(PairCache, CacheInfo) of a training-cache file (:func:`save_cache`); the hidden states
    and log-probs on the file's device. ``ValueError`` naming the file when it lacks a key."""
    torch, _ = llm._offline()
    with np.load(os.fspath(path), allow_pickle=False) as z:
        missing = [k for k in CACHE_FILE_KEYS[:-1] if k not in z.files]
        if missing:
            raise ValueError(f"cache {os.fspath(path)!r}: missing {missing}; write it with "
                             f"sim.llm_train.save_cache")
        a = {k: z[k] for k in z.files}
    device = str(a["device"])
    cuts = np.cumsum(a["lengths"])[:-1]
    seqs = [(ids.tolist(), int(n_p)) for ids, n_p in zip(np.split(a["ids"], cuts),
                                                          a["n_prompt"])]
    hidden = [torch.from_numpy(h.copy()).to(device) for h in np.split(a["hidden"], cuts)]
    cache = PairCache(seqs, hidden, torch.from_numpy(a["ref_logp"]).to(device),
                      int(a["start"]), int(a["n_truncated"]), phi=a["phi"])
    return cache, CacheInfo(str(a["model"]), str(a["model_name"]), device, int(a["threads"]),
                            a.get("reward"))


def network(spec: str, device: str = "cpu") -> llm.LoadedModel:
    """The network ``spec`` on ``device``, loaded once per process: ``"tiny"`` is
    :func:`sim.llm.tiny_model` (seed 0), anything else :func:`sim.llm.load_model`'s spec.
    Shared: whoever trains it must restore its weights (:func:`train_and_score` does)."""
    return _network(spec, llm.resolve_device(device))


@functools.lru_cache(maxsize=2)
def _network(spec: str, device: str) -> llm.LoadedModel:
    if spec != "tiny":
        return llm.load_model(spec, device)
    lm = llm.tiny_model(seed=0)
    lm.model.to(device)
    lm.device = device
    return lm


def open_cache(path: StrPath) -> tuple[llm.LoadedModel, PairCache, CacheInfo]:
    """(network, PairCache, CacheInfo) of a training-cache file, each loaded once per process
    (memos keyed by the network spec and device, and by the file's path, size and mtime)."""
    st = os.stat(path)
    cache, info = _cache_file(os.path.abspath(path), st.st_mtime_ns, st.st_size)
    return network(info.model, info.device), cache, info


@functools.lru_cache(maxsize=2)
def _cache_file(path: str, mtime_ns: int, size: int) -> tuple[PairCache, CacheInfo]:
    return load_cache(path)


def train_and_score(lm: llm.LoadedModel, cache: PairCache, pairs: ArrayLike,
                    eval_pairs: ArrayLike, cfg: TrainConfig, eval_batch: int = 32
                    ) -> tuple[list[float], np.ndarray]:
    """DPO-train the top blocks of ``lm`` from their present weights on ``pairs`` (indices of
    ``cache``'s pairs) for ``n_steps(cfg, len(pairs))`` steps, then score ``eval_pairs`` (M,).

    Returns (the loss of every step, the implicit-reward margins (M,) beta [(log pi - log
    pi_0)(y_w) - (log pi - log pi_0)(y_l)] of ``eval_pairs``, computed ``eval_batch``
    sequences at a time). The trained tensors are restored on exit (also after an error), so
    a shared :func:`network` stays the reference pi_0 for the next call."""
    torch, _ = llm._offline()
    if cfg.train != "top-k":
        raise ValueError("train: train_and_score restores the top blocks; use 'top-k'")
    names = set(trained_names(lm.model, cache.start))
    saved = {n: p.detach().clone() for n, p in lm.model.named_parameters() if n in names}
    seq = [int(j) for i in np.asarray(eval_pairs, dtype=np.int64) for j in (2 * i, 2 * i + 1)]
    try:
        trainer = Trainer(lm, cache, pairs, cfg)
        losses = [trainer.step()["loss"] for _ in range(n_steps(cfg, len(trainer.pairs)))]
        with torch.no_grad():
            ratio = np.concatenate([
                (policy_logp(lm.model, cache, seq[a:a + eval_batch])
                 - cache.ref_logp[seq[a:a + eval_batch]]).cpu().numpy()
                for a in range(0, len(seq), eval_batch)])
    finally:
        with torch.no_grad():
            for n, p in lm.model.named_parameters():
                if n in saved:
                    p.copy_(saved[n])
    return losses, cfg.beta * (ratio[0::2] - ratio[1::2])


# --------------------------------------------------------------------------- runs
def read_run(run_dir: StrPath) -> dict[str, Any]:
    """``config.json`` of a finished run; ``ValueError`` when missing or unfinished."""
    run_dir = Path(os.fspath(run_dir))
    cfg_path = run_dir / CONFIG_FILE
    if not cfg_path.is_file():
        raise ValueError(f"run {str(run_dir)!r}: no {CONFIG_FILE}; pass a folder written by "
                         f"`adpo train`")
    if not (run_dir / WEIGHTS_FILE).is_file():
        raise ValueError(f"run {str(run_dir)!r}: no {WEIGHTS_FILE} (unfinished?); rerun the "
                         f"same `adpo train` command to resume it")
    return json.loads(cfg_path.read_text())


def load_weights(model: PreTrainedModel, run_dir: StrPath) -> list[str]:
    """Copy a run's trained tensors into ``model`` (in place; LoRA adapters are added first for a
    ``lora`` run); returns their names. ``ValueError`` when a tensor is missing from the model
    or has another shape."""
    torch, _ = llm._offline()
    from safetensors.torch import load_file
    run = read_run(run_dir)
    cfg = TrainConfig(**run["config"])
    if cfg.train == "lora":
        add_lora(model, split_index(model, cfg.top_k_blocks), cfg.lora_r, cfg.seed)
    tensors = load_file(str(Path(os.fspath(run_dir)) / WEIGHTS_FILE))
    own = dict(model.named_parameters())
    with torch.no_grad():
        for n, t in tensors.items():
            if n not in own or own[n].shape != t.shape:
                raise ValueError(f"run {os.fspath(run_dir)!r}: tensor {n!r} does not fit this "
                                 f"model; evaluate with the run's own model")
            own[n].copy_(t)
    return sorted(tensors)


def implicit_rewards(lm: llm.LoadedModel, rows: Iterable[PairRow], *,
                     run_dir: StrPath | None = None, top_k_blocks: int = 1,
                     max_length: int = 128, append_eos: bool = True, batch_size: int = 16,
                     progress: bool = False) -> tuple[np.ndarray, PairCache]:
    """Per-pair log-ratios (log pi - log pi_0) of (chosen, rejected) rows: shape (N, 2).

    The reference pi_0 is ``lm`` as loaded (cached first); the policy pi is ``lm`` with the
    run's trained tensors copied in (``lm.model`` is modified), or the untrained ``lm`` itself
    when ``run_dir`` is None -- then its log-ratios are 0 up to float error, through the same
    cached top-block path (a check of the cache, not zero by construction).
    """
    torch, _ = llm._offline()
    if run_dir is not None:
        top_k_blocks = read_run(run_dir)["config"]["top_k_blocks"]
    start = split_index(lm.model, top_k_blocks)
    cache = build_cache(lm, rows, start, max_length=max_length, append_eos=append_eos,
                        batch_size=batch_size, progress=progress)
    if run_dir is not None:
        load_weights(lm.model, run_dir)
    out = torch.empty(len(cache.seqs), dtype=torch.float64)
    with torch.no_grad():
        for a in range(0, len(cache.seqs), batch_size):
            idx = list(range(a, min(a + batch_size, len(cache.seqs))))
            out[idx] = (policy_logp(lm.model, cache, idx) - cache.ref_logp[idx]).cpu()
    return out.numpy().reshape(-1, 2), cache


def pair_metrics(ratios: np.ndarray, beta: float) -> dict[str, float]:
    """The sec. 6.2 metrics from (N, 2) log-ratios of (chosen, rejected): ``accuracy`` (margin >
    0, ties within ``TIE_TOL`` count 1/2), mean ``margin`` beta [r_w - r_l], DPO ``nll``."""
    from .dpo import log_sigmoid
    m = beta * (ratios[:, 0] - ratios[:, 1])
    acc = np.mean((m > TIE_TOL) + 0.5 * (np.abs(m) <= TIE_TOL))
    return {"accuracy": float(acc), "margin": float(m.mean()),
            "nll": float(-np.mean(log_sigmoid(m))), "n_pairs": int(m.size)}


def reward_agreement(path: StrPath, rows: Sequence[PairRow], ratios: np.ndarray
                     ) -> float | None:
    """Fraction of pairs whose implicit-reward order matches the generating reward's
    (``reward_1`` / ``reward_2`` on every row, as ``adpo pairs --source simulated`` writes);
    pairs with equal generating rewards are left out. None when the rows carry no rewards."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    objs = [json.loads(lines[r.line - 1]) for r in rows]
    if not all(isinstance(o.get("reward_1"), (int, float)) and
               isinstance(o.get("reward_2"), (int, float)) for o in objs):
        return None
    true = np.array([o["reward_1"] - o["reward_2"] for o in objs])
    # ratios are (chosen, rejected); map back to (response_1, response_2)
    sign = np.array([1.0 if r.label == 1 else -1.0 for r in rows])
    implied = sign * (ratios[:, 0] - ratios[:, 1])
    return agreement(implied, true)


def agreement(implied: np.ndarray, true: np.ndarray) -> float | None:
    """Fraction of pairs whose implied reward difference (N,) has the sign of the generating
    one (N,); pairs with a generating difference of 0 are left out (None when all are)."""
    keep = true != 0
    if not keep.any():
        return None
    return float(np.mean(np.sign(implied[keep]) == np.sign(true[keep])))


def margin_metrics(margins: np.ndarray, true_diff: np.ndarray | None = None) -> dict[str, float]:
    """:func:`pair_metrics` of implicit-reward margins (N,) of (chosen - rejected) pairs, and
    ``reward_agreement`` with the generating reward differences (N,) (chosen - rejected) when
    given (:func:`agreement`; left out when every difference is 0)."""
    out: dict[str, float] = dict(pair_metrics(np.stack([margins, np.zeros_like(margins)], 1),
                                              1.0))
    agree = None if true_diff is None else agreement(margins, true_diff)
    if agree is not None:
        out["reward_agreement"] = agree
    return out


def evaluate_pairs(data_path: StrPath, *, run_dir: StrPath | None = None,
                   model: str = "smollm2", beta: float | None = None, device: str = "auto",
                   lm: llm.LoadedModel | None = None, max_length: int | None = None,
                   batch_size: int = 16, progress: bool = False) -> dict[str, Any]:
    """Score a run (or the untrained ``model``) on a JSONL of held-out pairs.

    Returns ``accuracy``, ``margin``, ``nll``, ``n_pairs``, ``model``, ``run``, ``beta`` and
    ``reward_agreement`` (null unless the rows carry ``reward_1``/``reward_2``).
    """
    from .textdata import read_pairs
    rows, _ = read_pairs(data_path)
    chosen = oriented_rows(rows)
    run_cfg = read_run(run_dir)["config"] if run_dir is not None else None
    if run_cfg is not None:
        model = run_cfg["model"]
        beta = run_cfg["beta"] if beta is None else beta
        max_length = run_cfg["max_length"] if max_length is None else max_length
    beta = positive_scalar(0.1 if beta is None else beta, "beta")
    max_length = 128 if max_length is None else positive_int(max_length, "max_length")
    if lm is None:
        lm = llm.load_model(model, device)
    ratios, cache = implicit_rewards(
        lm, chosen, run_dir=run_dir, max_length=max_length, batch_size=batch_size,
        append_eos=True if run_cfg is None else run_cfg["append_eos"], progress=progress)
    out: dict[str, Any] = dict(pair_metrics(ratios, beta))
    out.update(reward_agreement=reward_agreement(data_path, rows, ratios), model=lm.name,
               run=None if run_dir is None else str(run_dir), beta=beta,
               n_truncated=cache.n_truncated)
    return out
