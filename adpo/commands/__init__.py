"""Subcommands of the ``adpo`` console script (see :mod:`adpo.cli`): one module per command,
each defining ``register(subparsers)``.

A command module's docstring is its one piece of documentation (:func:`add_command`): its first
line, ````adpo NAME``: HELP``, gives the one-line help of ``adpo --help``, and the paragraphs
after it the description of ``adpo NAME --help``.
"""

from __future__ import annotations

import argparse
import re
from typing import Any


def add_command(sub: argparse._SubParsersAction, name: str, doc: str | None,
                **kwargs: Any) -> argparse.ArgumentParser:
    """Add the parser of ``adpo <name>``, documented by its module docstring ``doc``.

    ``doc`` starts with ````adpo <name>``: HELP`` (HELP: the command's line in ``adpo --help``);
    each later paragraph becomes one paragraph of the description (its lines joined). Under
    ``python -OO`` (docstrings stripped, ``doc`` None) the command works without help texts.
    ``kwargs`` go to ``add_parser`` (e.g. ``epilog``, ``formatter_class``).
    """
    if doc is None:
        return sub.add_parser(name, **kwargs)
    head, _, body = doc.strip().partition("\n\n")
    match = re.fullmatch(rf"``adpo {re.escape(name)}``: (.+)", " ".join(head.split()))
    if match is None:
        raise ValueError(f"the docstring of command {name!r} starts with '``adpo {name}``: HELP', "
                         f"got {head!r}")
    description = "\n\n".join(" ".join(par.split()) for par in body.split("\n\n") if par.strip())
    return sub.add_parser(name, help=match.group(1), description=description or None, **kwargs)
