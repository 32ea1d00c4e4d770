"""Plumbing shared by the theory figure scripts (figures/fig_theory_*.py).

* :func:`load_config` reads ``figures/<name>.toml`` and returns the section of one scale
  (``tiny`` | ``default`` | ``paper``);
* :func:`cached` stores an expensive result (a dict of arrays) as ``.npz`` under
  ``results/figures/<name>/`` keyed by a hash of its configuration, read back with
  ``allow_pickle=False``;
* :func:`save_figure` writes ``<out_dir>/<name>.png``, ``.pdf`` and a ``.json`` sidecar.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import tomllib

import numpy as np

SCALES = ("tiny", "default", "paper")
CACHE_ROOT = pathlib.Path("results") / "figures"


def load_config(toml_path, scale: str) -> dict:
    """The ``[scale]`` table of a figure's TOML, with ``scale`` added."""
    if scale not in SCALES:
        raise ValueError(f"scale: must be one of {SCALES}, got {scale!r}")
    with open(toml_path, "rb") as f:
        cfg = tomllib.load(f)
    if scale not in cfg:
        raise ValueError(f"scale: {toml_path} has no [{scale}] section")
    return {**cfg[scale], "scale": scale}


def config_key(cfg: dict) -> str:
    """A short stable hash of a JSON-able configuration."""
    return hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:16]


def cached(name: str, cfg: dict, compute, version: int = 1) -> dict:
    """``compute()`` -> dict of arrays, cached as results/figures/<name>/<key>.npz.

    The key hashes ``cfg`` and ``version``; bump ``version`` when the computation changes.
    """
    path = CACHE_ROOT / name / f"{config_key({**cfg, '_version': version})}.npz"
    if path.exists():
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    out = {k: np.asarray(v) for k, v in compute().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez(tmp, **out)
    os.replace(tmp, path)
    return out


def style() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import seaborn

    seaborn.set_theme(style="whitegrid", context="paper")


def save_figure(fig, out_dir, name: str, sidecar: dict) -> list[pathlib.Path]:
    """Write <out_dir>/<name>.png, .pdf and .json (the sidecar); close the figure."""
    import matplotlib.pyplot as plt

    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{name}.png", out / f"{name}.pdf", out / f"{name}.json"]
    fig.savefig(paths[0], dpi=150, bbox_inches="tight")
    fig.savefig(paths[1], bbox_inches="tight")
    plt.close(fig)
    paths[2].write_text(json.dumps(sidecar, indent=2, default=_jsonable) + "\n")
    return paths


def _jsonable(x):
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    raise TypeError(f"not JSON-serializable: {type(x).__name__}")
