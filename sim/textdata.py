"""Preference pairs as text: JSONL reading with line numbers, three offline sources, and the
write-back of selected rows.

Two row formats are read (one per file; every row of a file must use the same one):

``trl``
    ``{"prompt": str, "chosen": str, "rejected": str, ...}`` (TRL's convention). The label is
    known: the chosen response is preferred.
``pair``
    ``{"prompt": str, "response_1": str, "response_2": str, "label": 0|1 (optional), ...}``;
    ``label = 1`` means ``response_1`` is preferred (the project's ``s``). Either every row has a
    label or none has.

Other keys are kept untouched (they travel with the row when selected rows are written back).
A malformed row is never dropped: :func:`read_pairs` raises one ``ValueError`` listing every bad
line by number. Blank lines carry no row and are skipped; line numbers still count them.

Sources (all offline, all deterministic given a seed):

* :func:`chitchat_pairs` -- REAL human judgments, NOISY: conversations of the Chit Chat Challenge
  (PyPI ``chitchat-dataset``) rated 1-10 by a participant; same-prompt pairs whose mean rating
  differs by at least ``min_gap``. The rating is of a whole conversation, the "response" is its
  opening, so the label is a weak, conversation-level signal.
* :func:`simulated_pairs` -- real text, SIMULATED labels from a transparent lexicon reward.
* :func:`handwritten_pairs` -- a dozen pairs written by this project (fact vs wrong fact,
  on-topic vs off-topic), for tests and demos.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .io import StrPath, atomic_open
from .validation import DataError, Seed, as_rng, positive_int, positive_scalar

FORMATS = {"trl": ("prompt", "chosen", "rejected"), "pair": ("prompt", "response_1", "response_2")}
HANDWRITTEN_PATH = Path(__file__).parent / "data_files" / "handwritten_pairs.jsonl"
_MAX_LISTED = 20


@dataclass(frozen=True)
class PairRow:
    """One preference pair read from a JSONL file.

    ``response_1`` / ``response_2`` are y_1 and y_2 in the order of the file (``chosen`` /
    ``rejected`` for TRL rows); ``label`` is 1 when y_1 is preferred, 0 when y_2 is, ``None``
    when unknown. ``line`` is the 1-based line number in the source file.
    """

    line: int
    prompt: str
    response_1: str
    response_2: str
    label: int | None


def file_sha256(path: StrPath) -> str:
    """SHA-256 of a file's bytes (identifies the source of a features file)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def split_lines(text: str) -> list[str]:
    """JSONL lines: split on ``\\n`` only (a trailing ``\\r`` is dropped), never with
    ``str.splitlines``, which also splits on U+2028, U+2029, U+0085 and other characters that
    are legal unescaped inside JSON strings (and that :func:`write_jsonl` writes raw)."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [s[:-1] if s.endswith("\r") else s for s in lines]


def read_pairs(path: StrPath) -> tuple[list[PairRow], str]:
    """Read and validate a JSONL file of preference pairs.

    Returns ``(rows, fmt)`` with ``fmt`` in ``{"trl", "pair"}``. Raises ``ValueError`` naming the
    file and each malformed line (up to 20, then a count) with what is wrong.
    """
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            lines = split_lines(f.read())
    except FileNotFoundError:
        raise DataError(f"data {path!r}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"data {path!r}: not a readable UTF-8 text file ({exc})") from None
    rows: list[PairRow] = []
    errors: list[str] = []
    fmt: str | None = None
    has_label: bool | None = None
    for lineno, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            obj = json.loads(text)
        except (ValueError, RecursionError) as exc:  # JSONDecodeError, int digit limit, depth
            errors.append(f"line {lineno}: not valid JSON ({getattr(exc, 'msg', exc)})")
            continue
        if not isinstance(obj, dict):
            errors.append(f"line {lineno}: expected a JSON object, got {type(obj).__name__}")
            continue
        row_fmt = _row_format(obj)
        if row_fmt is None:
            errors.append(f"line {lineno}: needs keys prompt+chosen+rejected (TRL) or "
                          f"prompt+response_1+response_2; has {sorted(obj)}")
            continue
        if fmt is None:
            fmt = row_fmt
        elif row_fmt != fmt:
            errors.append(f"line {lineno}: {row_fmt!r} row in a {fmt!r} file; use one format "
                          f"per file")
            continue
        problem = _field_problem(obj, FORMATS[fmt])
        label = None
        if problem is None and fmt == "pair":
            if has_label is None:
                has_label = "label" in obj
            if ("label" in obj) != has_label:
                problem = "'label' present on some rows only; label every row or none"
            elif has_label:
                label = _label(obj["label"])
                if label is None:
                    problem = f"'label' must be 0 or 1 (1 = response_1 preferred), got {obj['label']!r}"
        if problem is not None:
            errors.append(f"line {lineno}: {problem}")
            continue
        a, b = FORMATS[fmt][1:]
        rows.append(PairRow(lineno, obj["prompt"], obj[a], obj[b], 1 if fmt == "trl" else label))
    if errors:
        shown = "; ".join(errors[:_MAX_LISTED])
        more = f"; and {len(errors) - _MAX_LISTED} more" if len(errors) > _MAX_LISTED else ""
        raise DataError(f"data {path!r}: {len(errors)} malformed row(s): {shown}{more}")
    if not rows:
        raise DataError(f"data {path!r}: no rows; write one JSON object per line")
    assert fmt is not None  # set by the first row
    return rows, fmt


def _row_format(obj: Mapping[str, Any]) -> str | None:
    has = {fmt for fmt, keys in FORMATS.items() if all(k in obj for k in keys[1:])}
    if len(has) == 1 and "prompt" in obj:
        return has.pop()
    return None


def _field_problem(obj: Mapping[str, Any], keys: Iterable[str]) -> str | None:
    for key in keys:
        val = obj[key]
        if not isinstance(val, str):
            return f"{key!r} must be a string, got {type(val).__name__}"
        if key != "prompt" and not val.strip():
            return f"{key!r} is empty; every response needs text"
    return None


def _label(val: object) -> int | None:
    if isinstance(val, bool):
        return int(val)
    if isinstance(val, int) and val in (0, 1):
        return val
    return None


# ---------------------------------------------------------------------- features sidecar
def meta_path(features_path: StrPath) -> Path:
    """The sidecar of a features file: ``X.npz`` -> ``X.meta.json``."""
    p = Path(os.fspath(features_path))
    stem = p.name[:-4] if p.name.endswith(".npz") else p.name
    return p.with_name(stem + ".meta.json")


def read_meta(features_path: StrPath) -> dict[str, Any]:
    """Read the sidecar written by ``adpo features``; ``ValueError`` when missing or broken."""
    mp = meta_path(features_path)
    try:
        with open(mp) as f:
            meta = json.load(f)
    except FileNotFoundError:
        raise DataError(f"features {os.fspath(features_path)!r}: sidecar {str(mp)!r} not found; "
                         f"it is written by `adpo features` next to the .npz") from None
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"features sidecar {str(mp)!r}: not readable JSON ({exc})") from None
    for key in ("source", "source_sha256", "row_lines"):
        if key not in meta:
            raise DataError(f"features sidecar {str(mp)!r}: missing key {key!r}; rerun "
                             f"`adpo features`")
    return meta


def _source_path(meta: Mapping[str, Any], features_path: StrPath) -> Path:
    """The source JSONL: the absolute path recorded, else the path relative to the sidecar."""
    candidates = [Path(meta["source"])]
    if "source_relative" in meta:
        candidates.append(meta_path(features_path).parent / meta["source_relative"])
    for c in candidates:
        if c.is_file():
            return c
    raise DataError(f"features {os.fspath(features_path)!r}: source JSONL {meta['source']!r} "
                     f"not found; restore it or rerun `adpo features`")


def write_selected_jsonl(features_npz_path: StrPath, indices: ArrayLike, out_path: StrPath
                         ) -> int:
    """Write the rows behind ``indices`` (rows of the features file), in the order given, as
    JSONL in the source file's own format: each output line is the source line verbatim.

    The source is found through the sidecar (``X.meta.json``) and must still have the SHA-256
    recorded at extraction. Returns the number of rows written. ``ValueError`` when the sidecar or
    the source is missing or changed, or an index is out of range or repeated.
    """
    lines = selected_lines(features_npz_path, indices)
    with atomic_open(out_path, "w") as f:
        f.writelines(lines)
    return len(lines)


def selected_lines(features_npz_path: StrPath, indices: ArrayLike) -> list[str]:
    """The source lines (each ending in ``\\n``) behind ``indices``, in order; with no indices,
    only checks that the sidecar and the unchanged source are there (before a run writes)."""
    from .data import check_indices

    meta = read_meta(features_npz_path)
    row_lines = list(meta["row_lines"])
    idx = check_indices(indices, len(row_lines))
    src = _source_path(meta, features_npz_path)
    if file_sha256(src) != meta["source_sha256"]:
        raise DataError(f"source {str(src)!r} changed since its features were extracted "
                         f"(SHA-256 differs); rerun `adpo features`")
    with open(src, encoding="utf-8") as f:
        lines = split_lines(f.read())
    return [lines[row_lines[i] - 1] + "\n" for i in idx]


def write_jsonl(rows: Iterable[Mapping[str, Any]], path: StrPath) -> None:
    """Write dicts as JSONL atomically (UTF-8, one object per line)."""
    with atomic_open(path, "w") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


# ---------------------------------------------------------------------- sources
def handwritten_pairs(kind: str | None = None) -> list[dict[str, Any]]:
    """The pairs written by this project (TRL rows with ``kind`` 'fact' or 'topic')."""
    with open(HANDWRITTEN_PATH, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    if kind is not None:
        if kind not in ("fact", "topic"):
            raise ValueError(f"kind: expected 'fact', 'topic' or None, got {kind!r}")
        rows = [r for r in rows if r["kind"] == kind]
    return rows


def chitchat_path() -> Path:
    """The ``dataset.json`` of the installed ``chitchat-dataset`` package (not imported)."""
    spec = importlib.util.find_spec("chitchat_dataset")
    if spec is None or not spec.submodule_search_locations:
        raise ValueError("source: the 'chitchat-dataset' package is not installed; "
                         "pip install chitchat-dataset")
    path = Path(list(spec.submodule_search_locations)[0]) / "dataset.json"
    if not path.is_file():
        raise ValueError(f"source: {str(path)!r} missing from the chitchat-dataset package")
    return path


@dataclass(frozen=True)
class Conversation:
    """One chat: its id, topic prompt, opening text and mean rating (None when unrated)."""

    cid: str
    prompt: str
    opening: str
    rating: float | None


def load_conversations(n_messages: int = 4, max_chars: int = 300) -> list[Conversation]:
    """Chit Chat conversations that have a prompt, with their opening as text.

    The opening is the first ``n_messages`` messages, one per line as ``A: ...`` / ``B: ...``
    (speakers in order of appearance), cut at a word boundary to at most ``max_chars``
    characters. The rating is the mean of the 1-10 ratings given (witty, upbeat, interesting).
    """
    n_messages = positive_int(n_messages, "n_messages")
    max_chars = positive_int(max_chars, "max_chars")
    with open(chitchat_path(), encoding="utf-8") as f:
        raw = json.load(f)
    out = []
    for cid in sorted(raw):  # dict order is the file's; sort so ids, not file order, decide
        conv = raw[cid]
        prompt = conv.get("prompt")
        if not prompt or not conv.get("messages"):
            continue
        speakers: dict[str, str] = {}
        lines: list[str] = []
        for msg in conv["messages"][:n_messages]:
            who = speakers.setdefault(msg[0]["sender"], "AB"[min(len(speakers), 1)])
            lines.append(f"{who}: " + " ".join(u["text"].strip() for u in msg))
        text = _cut("\n".join(lines), max_chars)
        ratings = conv.get("ratings") or {}
        vals = [v for v in ratings.values() if isinstance(v, (int, float))]
        out.append(Conversation(cid, prompt.strip(), text, sum(vals) / len(vals) if vals else None))
    return out


def _cut(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    cut = text[:max_chars]
    space = cut.rfind(" ")
    return cut[:space] if space > max_chars // 2 else cut


def chitchat_pairs(n_pairs: int = 2000, *, min_gap: float = 3.0, middle: float = 5.0,
                   n_messages: int = 4, max_chars: int = 300, seed: Seed = 0
                   ) -> list[dict[str, Any]]:
    """Same-prompt pairs of Chit Chat conversations with REAL but NOISY human labels (TRL rows).

    A conversation's rating is the mean of its 1-10 ratings; conversations rated exactly
    ``middle`` (5, the rating form's default; 56% of rated chats are 5/5/5) are dropped as
    uninformative, and so are unrated ones. Every pair of remaining conversations with the same
    prompt whose ratings differ by ``>= min_gap`` is eligible; ``n_pairs`` of them are drawn
    uniformly without replacement with ``seed`` (all of them when fewer exist). The chosen side is
    the higher-rated conversation. The label judges a whole conversation, not the opening shown,
    so it is a weak signal: expect accuracies well below 1 for any model.
    """
    n_pairs = positive_int(n_pairs, "n_pairs")
    min_gap = positive_scalar(min_gap, "min_gap")
    rng = as_rng(seed)
    by_prompt: dict[str, list[Conversation]] = {}
    for c in load_conversations(n_messages, max_chars):
        if c.rating is not None and c.rating != middle:
            by_prompt.setdefault(c.prompt, []).append(c)
    eligible: list[tuple[Conversation, Conversation]] = []
    for prompt in sorted(by_prompt):
        convs = by_prompt[prompt]
        r = np.array([c.rating for c in convs])
        i, j = np.nonzero(np.abs(r[:, None] - r[None, :]) >= min_gap)
        keep = i < j
        eligible.extend((convs[a], convs[b]) for a, b in zip(i[keep], j[keep]))
    if not eligible:
        raise ValueError(f"min_gap: no same-prompt pairs differ by >= {min_gap}; lower it")
    pick = rng.choice(len(eligible), size=min(n_pairs, len(eligible)), replace=False)
    rows = []
    for k in pick:
        a, b = eligible[k]
        hi, lo = (a, b) if a.rating > b.rating else (b, a)
        rows.append({"prompt": hi.prompt, "chosen": hi.opening, "rejected": lo.opening,
                     "source": "chitchat (human conversation-level ratings; noisy)",
                     "rating_chosen": hi.rating, "rating_rejected": lo.rating,
                     "ids": [hi.cid, lo.cid]})
    return rows


# A transparent reward: counts of a few dozen sentiment words per sqrt(word count).
POSITIVE_WORDS = frozenset(
    "good great love lovely nice happy fun awesome amazing glad enjoy enjoyed like cool wonderful "
    "fantastic excited interesting beautiful best thanks thank haha lol yes sure favorite "
    "favourite friend friends laugh smile".split())
NEGATIVE_WORDS = frozenset(
    "bad sad hate terrible awful boring tired sick sorry no not never worst angry annoying "
    "stress stressed stressful hard difficult ugh unfortunately problem wrong hurt lonely "
    "worried scared".split())
_WORD = re.compile(r"[a-z']+")


def lexicon_reward(text: str) -> float:
    """(#positive - #negative words) / sqrt(#words), with the word lists above (lowercased)."""
    words = _WORD.findall(text.lower())
    if not words:
        return 0.0
    pos = sum(w in POSITIVE_WORDS for w in words)
    neg = sum(w in NEGATIVE_WORDS for w in words)
    return (pos - neg) / math.sqrt(len(words))


def simulated_pairs(n_pairs: int = 2000, *, scale: float = 4.0, n_messages: int = 4,
                    max_chars: int = 300, seed: Seed = 0) -> list[dict[str, Any]]:
    """Real Chit Chat text with SIMULATED labels (``pair`` rows, ``"simulated": true``).

    Two distinct conversations with the same prompt form a pair (drawn uniformly with ``seed``,
    ratings ignored); the label is drawn as ``s ~ Bernoulli(sigmoid(scale * (r_1 - r_2)))`` with
    ``r = lexicon_reward(opening)``, so the generating reward is known and stored per row.
    """
    n_pairs = positive_int(n_pairs, "n_pairs")
    scale = positive_scalar(scale, "scale")
    rng = as_rng(seed)
    by_prompt: dict[str, list[Conversation]] = {}
    for c in load_conversations(n_messages, max_chars):
        by_prompt.setdefault(c.prompt, []).append(c)
    prompts = [p for p in sorted(by_prompt) if len(by_prompt[p]) >= 2]
    sizes = np.array([len(by_prompt[p]) for p in prompts], dtype=float)
    n_possible = int((sizes * (sizes - 1) / 2).sum())
    n_pairs = min(n_pairs, n_possible)
    seen: set[tuple[str, int, int]] = set()
    rows: list[dict[str, Any]] = []
    while len(rows) < n_pairs:
        # a prompt with probability proportional to its number of pairs = uniform over pairs
        p = prompts[rng.choice(len(prompts), p=sizes * (sizes - 1) / (sizes * (sizes - 1)).sum())]
        i, j = rng.choice(len(by_prompt[p]), size=2, replace=False)
        key = (p, min(i, j), max(i, j))
        if key in seen:
            continue
        seen.add(key)
        a, b = by_prompt[p][i], by_prompt[p][j]
        r1, r2 = lexicon_reward(a.opening), lexicon_reward(b.opening)
        prob = 1.0 / (1.0 + math.exp(-scale * (r1 - r2)))
        rows.append({"prompt": p, "response_1": a.opening, "response_2": b.opening,
                     "label": int(rng.random() < prob), "simulated": True,
                     "source": "chitchat text, SIMULATED labels (lexicon reward)",
                     "reward_1": r1, "reward_2": r2, "scale": scale, "ids": [a.cid, b.cid]})
    return rows
