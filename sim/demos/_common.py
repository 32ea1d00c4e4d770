"""Shared plumbing for the demos: argument parsing, one-panel figures and figure saving."""

from collections.abc import Callable, Mapping, Sequence
from typing import Any
import argparse
import pathlib

import numpy as np


def parse(doc: str) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=doc)
    ap.add_argument("--out", default="results/demos", help="folder for the PNG")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-plot", action="store_true", help="print only")
    return ap.parse_args()


def save(fig: Any, args: Any, name: str) -> None:
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out / f"{name}.png", dpi=120)
    print(f"figure: {out / f'{name}.png'}")


def plot(args: Any, name: str, draw: Callable[[Any], None],
         figsize: tuple[float, float] = (4.5, 3.5)) -> None:
    """Unless ``--no-plot``: one panel of ``figsize`` inches drawn by ``draw(ax)`` (its lines and
    axis labels), with a legend, saved as ``<args.out>/<name>.png``. matplotlib is imported only
    here, so a ``--no-plot`` run never loads it."""
    if args.no_plot:
        return
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=figsize)
    draw(ax)
    ax.legend()
    save(fig, args, name)


def log_log_curves(ax: Any, curves: Mapping[str, np.ndarray], x: Sequence[float] | None = None, *,
                   xlabel: str = "n", ylabel: str = "max logit error", fmt: str = "o-",
                   **line: Any) -> None:
    """One line per ``label -> y`` of ``curves`` on log-log axes: each y (len(x),) against ``x``,
    or against its rounds 1, ..., len(y) when ``x`` is None; ``fmt`` and ``line`` are the
    matplotlib format string and line options."""
    for label, y in curves.items():
        ax.plot(np.arange(1, len(y) + 1) if x is None else x, y, fmt, label=label, **line)
    ax.set(xscale="log", yscale="log", xlabel=xlabel, ylabel=ylabel)
