"""Generated blocks inside hand-written Markdown (the README's benchmark table, figure claims).

A block is the text between ``<!-- NAME -->`` and ``<!-- /NAME -->`` on their own lines; code
renders its body from data, :func:`replace_block` writes it, and a test compares
:func:`get_block` of the committed file with a fresh rendering, so the prose cannot drift from
the data it quotes.
"""

from __future__ import annotations

import re


def _pattern(name: str) -> re.Pattern:
    if not re.fullmatch(r"[A-Za-z0-9_:.-]+", name):
        raise ValueError(f"block name: letters, digits and _:.- only, got {name!r}")
    return re.compile(rf"(^<!-- {re.escape(name)} -->\n)(.*?)(^<!-- /{re.escape(name)} -->$)",
                      re.S | re.M)


def get_block(text: str, name: str) -> str:
    """The body of block ``name`` in ``text``; ValueError if it is missing or repeated."""
    found = _pattern(name).findall(text)
    if len(found) != 1:
        raise ValueError(f"block {name!r}: found {len(found)} times; expected exactly one "
                         f"'<!-- {name} -->' ... '<!-- /{name} -->' pair")
    return found[0][1]


def replace_block(text: str, name: str, body: str) -> str:
    """``text`` with the body of block ``name`` replaced by ``body`` (newline-terminated)."""
    get_block(text, name)  # exactly one
    body = body if body.endswith("\n") else body + "\n"
    return _pattern(name).sub(lambda m: m.group(1) + body + m.group(3), text)
