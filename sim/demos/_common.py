"""Shared plumbing for the demos: argument parsing and figure saving."""

from typing import Any
import argparse
import pathlib


def parse(doc: str):
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
