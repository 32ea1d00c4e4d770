"""CLI flags derived from registry entries (:mod:`sim.registry`).

Every option of a method or environment kind is a field of its config dataclass; this module
turns those fields into ``argparse`` flags (name, type, default, help from the field's
``metadata["help"]``) and back into the options of one chosen entry, refusing flags that the
entry does not take. Nothing here lists a method's or an environment's options by hand.

A field ``fit_ridge`` becomes ``--fit-ridge`` (underscores become dashes) unless
:data:`FLAG_NAMES` gives the one CLI spelling of a project-wide meaning (``gamma`` is the design
ridge, ``--design-ridge``; ``n_candidates`` the per-pick random subset, ``--candidates``). Old spellings listed in :data:`RENAMED` fail with a message naming
the new flag.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import types
import typing
from collections.abc import Iterable
from typing import Any, Literal

from sim.registry import Entry, Registry

#: The CLI spelling of option names whose meaning is shared across commands (one meaning per
#: flag: the design ridge and the fit ridge are never both called "gamma").
FLAG_NAMES = {"gamma": "design-ridge", "n_candidates": "candidates"}

#: Old flag -> new flag (refused with a one-line message).
RENAMED = {"--gamma": "--design-ridge (design ridge) or --fit-ridge (ridge of the DPO fits)",
           "--fit-gamma": "--fit-ridge", "--n-candidates": "--candidates"}


def flag(name: str) -> str:
    """The CLI flag of a config field name."""
    return "--" + FLAG_NAMES.get(name, name.replace("_", "-"))


class _Renamed(argparse.Action):
    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        parser.error(f"{option_string} was renamed: use {self.const}")


def add_renamed(parser: argparse.ArgumentParser, *olds: str, **new: str) -> None:
    """Make old spellings fail with a message naming the new flag (hidden from --help); the
    new name is :data:`RENAMED`'s unless given, e.g. ``add_renamed(p, "--gamma",
    gamma="--fit-ridge")`` (keyword = the old flag without dashes, ``-`` as ``_``)."""
    for old in olds:
        key = old.lstrip("-").replace("-", "_")
        parser.add_argument(old, action=_Renamed, nargs="?", dest="renamed_flag",
                            const=new.get(key, RENAMED[old]), default=argparse.SUPPRESS,
                            help=argparse.SUPPRESS)


def field_types(entry: Entry) -> dict[str, Any]:
    """Resolved annotations of the entry's config fields (``{}`` without a config)."""
    if entry.config is None:
        return {}
    return typing.get_type_hints(entry.config)


def _members(tp: Any) -> tuple[Any, ...]:
    """The members of a union annotation (``X | None`` -> (X, NoneType)), else (tp,)."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return typing.get_args(tp)
    return (tp,)


def describe_type(tp: Any) -> str:
    """A short human spelling of a field annotation, e.g. ``float | None`` or ``{a, b}``."""
    parts = []
    for m in _members(tp):
        if typing.get_origin(m) is Literal:
            parts.append("{" + ", ".join(map(str, typing.get_args(m))) + "}")
        else:
            parts.append("None" if m is type(None) else getattr(m, "__name__", str(m)))
    return " | ".join(parts)


def converter(tp: Any, name: str) -> Any:
    """Parse a CLI string into a value of annotation ``tp`` (union members tried in order;
    ``none`` means None where allowed), or raise ``argparse.ArgumentTypeError``."""
    members = _members(tp)

    def parse(text: str) -> Any:
        for m in members:
            if m is type(None):
                if text.lower() == "none":
                    return None
            elif typing.get_origin(m) is Literal:
                if text in map(str, typing.get_args(m)):
                    return next(a for a in typing.get_args(m) if str(a) == text)
            elif m in (int, float):
                try:
                    return m(text)
                except ValueError:
                    pass
            elif m is str:
                return text
        if any(typing.get_origin(m) is Literal for m in members):
            raise argparse.ArgumentTypeError(f"{flag(name)}: expected {describe_type(tp)}, got "
                                             f"{text!r}")
        return text  # e.g. 'all' for an int | None field: the config validates (and names) it

    parse.__name__ = describe_type(tp)  # argparse names the type in its messages
    return parse


def metavar(name: str) -> str:
    return flag(name)[2:].replace("-", "_").upper()


def _default_text(f: dataclasses.Field) -> str:
    if f.default is not dataclasses.MISSING:
        return repr(f.default)
    if f.default_factory is not dataclasses.MISSING:
        return repr(f.default_factory())
    return "required"


def add_entry_options(parser: argparse.ArgumentParser, entries: Iterable[Entry], *,
                      title: str, skip: Iterable[str] = ()) -> dict[str, list[str]]:
    """Add one flag per distinct option name of ``entries`` to an argument group.

    Flags default to "not given" (``argparse.SUPPRESS``) so that :func:`entry_options` can
    refuse a flag the chosen entry does not take and leave its defaults to its config. Returns
    option name -> names of the entries that take it (for messages and help).
    """
    entries = list(entries)
    takers: dict[str, list[str]] = {}
    first: dict[str, tuple[dataclasses.Field, Any]] = {}
    for e in entries:
        types_ = field_types(e)
        for f in e.option_fields():
            if f.name in skip:
                continue
            takers.setdefault(f.name, []).append(e.name)
            first.setdefault(f.name, (f, types_.get(f.name, str)))
    group = parser.add_argument_group(title)
    for name, (f, tp) in first.items():
        who = takers[name]
        where = "" if len(who) == len(entries) else f" [{', '.join(who)}]"
        text = f"{f.metadata.get('help', '')} (default {_default_text(f)}){where}"
        if tp is bool:
            group.add_argument(flag(name), dest=name, action=argparse.BooleanOptionalAction,
                               default=argparse.SUPPRESS, help=text)
        else:
            group.add_argument(flag(name), dest=name, type=converter(tp, name),
                               default=argparse.SUPPRESS, help=text,
                               metavar=metavar(name) if typing.get_origin(tp) is not Literal
                               else describe_type(tp).replace(' ', ''))
    return takers


def entry_options(args: argparse.Namespace, entry: Entry, takers: dict[str, list[str]]) -> dict:
    """The options given on the command line for ``entry``; a flag it does not take is a
    ``ValueError`` naming the flag and listing the entry's own flags."""
    given = {k: getattr(args, k) for k in takers if hasattr(args, k)}
    own = entry.option_names()
    for k in given:
        if k not in own:
            listed = ", ".join(flag(n) for n in own) or "none"
            raise ValueError(f"{flag(k)}: not an option of {entry.kind} {entry.name!r} (it is "
                             f"one of {', '.join(takers[k])}); its options are: {listed}")
    return given


def register_listing(sub: argparse._SubParsersAction, command: str, registry: Registry,
                     what: str) -> None:
    """Add ``adpo methods`` / ``adpo envs``: every registered entry with its options."""
    p = sub.add_parser(command, help=f"list the registered {what} and their options",
                       description=f"Every registered {what} (built-in and plug-in, through "
                       f"the entry-point group {registry.group}): name, one-line help, aliases, "
                       "tags and options with their flags, types and defaults.")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--tag", default=None, help="only the entries carrying this tag")

    def run(args: argparse.Namespace) -> int:
        entries = list(registry)
        if args.tag is not None:
            tags = sorted({t for e in entries for t in e.tags})
            entries = [e for e in entries if args.tag in e.tags]
            if not entries:
                raise ValueError(f"tag: no {registry.kind} has tag {args.tag!r}; tags in use: "
                                 f"{', '.join(tags) or 'none'}")
        items = listing(entries)
        print(json.dumps(items, indent=2) if args.json else format_listing(items))
        return 0

    p.set_defaults(func=run)


def make_config(entry: Entry, options: dict) -> Any:
    """``entry.make_config(options)`` with messages naming the CLI flag: a ``ValueError`` that
    starts with a field name (``gamma: must be > 0``) is re-worded (``--design-ridge (gamma):
    must be > 0``)."""
    try:
        return entry.make_config(options)
    except ValueError as exc:
        msg = str(exc)
        for name in sorted(entry.option_names(), key=len, reverse=True):
            if msg.startswith(name) and msg[len(name):len(name) + 1] in (":", " "):
                spelled = flag(name) if flag(name) == "--" + name.replace("_", "-") \
                    else f"{flag(name)} ({name})"
                raise ValueError(f"{spelled}{msg[len(name):]}") from None
        raise


def listing(entries: Iterable[Entry]) -> list[dict]:
    """Name, help, aliases, tags and options (flag, type, default, help) of each entry."""
    out = []
    for e in entries:
        types_ = field_types(e)
        out.append({
            "name": e.name, "help": e.help, "aliases": list(e.aliases), "tags": sorted(e.tags),
            "options": [{"name": f.name, "flag": flag(f.name),
                         "type": describe_type(types_.get(f.name, str)),
                         "default": _default_text(f), "help": f.metadata.get("help", "")}
                        for f in e.option_fields()]})
    return out


def format_listing(items: list[dict]) -> str:
    """The text of ``adpo methods`` / ``adpo envs``."""
    lines = []
    for it in items:
        extra = []
        if it["aliases"]:
            extra.append("aliases: " + ", ".join(it["aliases"]))
        if it["tags"]:
            extra.append("tags: " + ", ".join(it["tags"]))
        lines.append(f"{it['name']}: {it['help']}" + (f" ({'; '.join(extra)})" if extra else ""))
        for o in it["options"]:
            lines.append(f"  {o['flag']:<22} {o['type']:<22} default {o['default']:<10} "
                         f"{o['help']}")
    return "\n".join(lines)
