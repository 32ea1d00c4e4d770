"""A JSONL pairs file split into a pool and a held-out file, disjoint by prompt.

The split itself is :func:`sim.splits.group_split` with the prompt as the group, so every pair of
a held-out prompt is held out and the held-out prompts are unseen in selection and training. Each
output line is the input line verbatim (the input's format and extra keys kept), in input order.
"""

from __future__ import annotations

import functools
import os
from typing import Any

from .io import OutputGroup
from .splits import group_split
from .textdata import file_sha256, meta_path, read_pairs, split_lines


def split_pairs_file(data_path: str | os.PathLike[str], pool_path: str | os.PathLike[str],
                     heldout_path: str | os.PathLike[str], *, holdout: Any = 0.2,
                     seed: Any = 0) -> dict:
    """Write the pool and held-out JSONL files; return a JSON-ready record of the split.

    ``holdout`` as in :func:`sim.splits.n_heldout` (fraction or count of pairs; whole prompts are
    taken until it is reached). ``ValueError`` when an output path is the input or both outputs
    are the same file, or fewer than two distinct prompts exist.
    """
    src = os.path.realpath(os.fspath(data_path))
    outs = [os.path.realpath(os.fspath(p)) for p in (pool_path, heldout_path)]
    if src in outs:
        raise ValueError("pool/heldout: an output would overwrite the input --data; choose "
                         "other paths")
    if outs[0] == outs[1]:
        raise ValueError("pool/heldout: the two outputs are the same file; choose two paths")
    rows, fmt = read_pairs(data_path)
    split = group_split([r.prompt for r in rows], holdout, seed)
    with open(src, encoding="utf-8") as f:
        lines = split_lines(f.read())
    with OutputGroup() as group:  # both files or neither
        for path, part in ((pool_path, split.train), (heldout_path, split.test)):
            with group.open(path) as f:
                for i in part:
                    f.write(lines[rows[i].line - 1] + "\n")
    prompts = [{rows[i].prompt for i in part} for part in (split.train, split.test)]
    return {"data": src, "data_sha256": file_sha256(src), "format": fmt, "seed": seed,
            "holdout": holdout, "n_pool": int(split.train.size),
            "n_heldout": int(split.test.size), "n_pool_prompts": len(prompts[0]),
            "n_heldout_prompts": len(prompts[1]),
            "pool_lines": [rows[i].line for i in split.train],
            "heldout_lines": [rows[i].line for i in split.test]}


def feature_groups(features_path: str | os.PathLike[str]) -> list[int] | None:
    """The prompt of each row of a features file, as group ids (0, 1, ... by first appearance).

    Read through the sidecar ``X.meta.json`` that ``adpo features`` writes next to ``X.npz``
    (its ``row_lines`` into the source JSONL, whose SHA-256 must be unchanged), so that a
    held-out split of the rows can be disjoint by prompt (:func:`sim.splits.group_split`).
    ``None`` when the file has no sidecar (hand-written data: rows have no prompts);
    ``ValueError`` when the sidecar names a source that is missing or changed.
    """
    from .textdata import _source_path, read_meta

    if not meta_path(features_path).is_file():
        return None
    path = os.path.abspath(os.fspath(features_path))
    meta = read_meta(path)
    src = _source_path(meta, path)
    st = os.stat(src)
    return list(_feature_groups(str(src), st.st_mtime_ns, st.st_size, meta["source_sha256"],
                                tuple(meta["row_lines"]), path))


@functools.lru_cache(maxsize=4)
def _feature_groups(src: str, mtime_ns: int, size: int, sha256: str, row_lines: tuple,
                    path: str) -> tuple[int, ...]:
    """One read of the source per process and source version."""
    from .validation import DataError

    if file_sha256(src) != sha256:
        raise DataError(f"features {path!r}: its source {src!r} changed since the features "
                        "were extracted (SHA-256 differs); restore it or rerun `adpo features`")
    prompt_of = {r.line: r.prompt for r in read_pairs(src)[0]}
    ids: dict[str, int] = {}
    try:
        return tuple(ids.setdefault(prompt_of[line], len(ids)) for line in row_lines)
    except KeyError as exc:
        raise DataError(f"features {path!r}: sidecar row line {exc} is not a pair of "
                        f"{src!r}; rerun `adpo features`") from None
