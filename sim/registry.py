"""Registries of selection methods and environment kinds.

One registration feeds everything that lists or builds a method or an environment: the CLI
(choices, flags, ``adpo methods`` / ``adpo envs``), sweep and figure TOML validation, plot
styles, and the conformance suite (:mod:`sim.testing`). Nothing else keeps a list of names.

A method (or environment) is a factory registered with a small **config dataclass** whose
fields are its options; the dataclass validates its own values in ``__post_init__`` and the
registry refuses unknown option names with the list of valid ones::

    @dataclass(frozen=True)
    class MyConfig:
        gamma: float = 1.0
        def __post_init__(self): ...           # raise ValueError("gamma: ...") on bad values

    @register_method("my-rule", config=MyConfig, help="one line for `adpo methods`")
    class MyRule(Selector): ...

Third-party packages register through Python entry points in the groups ``adpo.methods`` and
``adpo.envs``: each entry point names a module (or an object in it) whose import performs the
registrations, e.g. in the plug-in's ``pyproject.toml``::

    [project.entry-points."adpo.methods"]
    my-rule = "my_package.rule"

This module imports nothing from the rest of ``sim`` at import time (it sits at the bottom of
the layers); the built-in modules are imported lazily, on the first look-up.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from .validation import RENAMED_OPTIONS


def normalize(name: str) -> str:
    """Canonical spelling of a registered name: lower case, ``_`` and spaces as ``-``."""
    return str(name).strip().lower().replace("_", "-").replace(" ", "-")


@dataclass(frozen=True)
class Entry:
    """One registered method or environment kind.

    ``factory(*args, **options)`` builds it; ``config`` is the dataclass of its options (or
    ``None`` when it takes none); ``tags`` are free-form facts other code may filter on (e.g.
    ``"online"``, ``"offline"``, ``"reads-logged-labels"``); ``style`` is an optional plot
    style (``color``, ``marker``, ``linestyle``, ``label``).
    """

    name: str
    factory: Callable[..., Any]
    config: type | None
    help: str
    kind: str
    aliases: tuple[str, ...] = ()
    tags: frozenset[str] = frozenset()
    style: Mapping[str, Any] = field(default_factory=dict)

    def option_fields(self) -> tuple[dataclasses.Field, ...]:
        """The config dataclass's fields (its options), in declaration order."""
        return () if self.config is None else dataclasses.fields(self.config)

    def option_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.option_fields())

    def make_config(self, options: Mapping[str, Any] | None = None) -> Any:
        """Validate ``options`` into the config dataclass; unknown names are refused.

        Raises ``ValueError`` naming the first unknown option and listing the valid ones; the
        dataclass's own ``__post_init__`` checks the values.
        """
        options = dict(options or {})
        valid = self.option_names()
        unknown = [k for k in options if k not in valid]
        if unknown:
            listed = ", ".join(valid) if valid else "none"
            new = RENAMED_OPTIONS.get(unknown[0])
            hint = f" (renamed {new!r}: gamma is only the design ridge)" if new in valid else ""
            raise ValueError(f"{unknown[0]}: not an option of {self.kind} {self.name!r}{hint}; "
                             f"its options are: {listed}")
        if self.config is None:
            return None
        missing = [f.name for f in self.option_fields() if f.name not in options
                   and f.default is dataclasses.MISSING
                   and f.default_factory is dataclasses.MISSING]
        if missing:
            raise ValueError(f"{missing[0]}: required option of {self.kind} {self.name!r} "
                             f"(required: {', '.join(missing)})")
        return self.config(**options)


class Registry:
    """Name → :class:`Entry`, with aliases, lazy built-ins and entry-point plug-ins.

    ``kind`` is the word used in messages ("method", "environment"); ``group`` the entry-point
    group; ``builtins`` the modules whose import registers the built-in entries.
    """

    def __init__(self, kind: str, group: str, builtins: tuple[str, ...] = ()):
        self.kind = kind
        self.group = group
        self._builtins = builtins
        self._entries: dict[str, Entry] = {}
        self._aliases: dict[str, str] = {}
        self._loaded = False
        self._loading = False

    # ------------------------------------------------------------------ registration
    def register(self, name: str, *, config: type | None = None, help: str = "",
                 aliases: tuple[str, ...] = (), tags: tuple[str, ...] | frozenset[str] = (),
                 style: Mapping[str, Any] | None = None) -> Callable[[Any], Any]:
        """Decorator registering a class or function under ``name``; returns it unchanged."""
        key = normalize(name)
        if config is not None and not dataclasses.is_dataclass(config):
            raise TypeError(f"config of {self.kind} {name!r} must be a dataclass type")

        def deco(factory: Any) -> Any:
            taken = self._entries.get(key)
            if taken is not None and taken.factory is not factory:
                raise ValueError(f"{self.kind} {key!r} is registered twice "
                                 f"({_where(taken.factory)} and {_where(factory)})")
            doc = help or (factory.__doc__ or "").strip().splitlines()[0:1]
            self._entries[key] = Entry(
                name=key, factory=factory, config=config,
                help=doc if isinstance(doc, str) else (doc[0] if doc else ""), kind=self.kind,
                aliases=tuple(normalize(a) for a in aliases), tags=frozenset(tags),
                style=dict(style or {}))
            for a in aliases:
                self._aliases[normalize(a)] = key
            return factory

        return deco

    def unregister(self, name: str) -> None:
        """Remove an entry (for tests that register throw-away entries)."""
        key = normalize(name)
        entry = self._entries.pop(key, None)
        if entry is not None:
            for a in entry.aliases:
                self._aliases.pop(a, None)

    # ------------------------------------------------------------------ look-up
    def _ensure_loaded(self) -> None:
        if self._loaded or self._loading:
            return
        self._loading = True
        try:
            for mod in self._builtins:
                importlib.import_module(mod)
            for ep in metadata.entry_points(group=self.group):
                try:
                    ep.load()
                except Exception as exc:  # a broken plug-in is named, never silently skipped
                    raise ImportError(f"{self.kind} plug-in {ep.name!r} ({ep.value}, entry-point "
                                      f"group {self.group}) failed to load: {exc}") from exc
            self._loaded = True
        finally:
            self._loading = False

    def get(self, name: str) -> Entry:
        """The entry for ``name`` (or an alias); unknown names raise a one-line ``ValueError``."""
        self._ensure_loaded()
        key = normalize(name)
        key = self._aliases.get(key, key)
        if key not in self._entries:
            close = difflib.get_close_matches(key, list(self._entries), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"{self.kind}: unknown {self.kind} {name!r}{hint}; choose one of "
                             f"{', '.join(self.names())}")
        return self._entries[key]

    def names(self) -> tuple[str, ...]:
        """Registered names in registration order (built-ins first, then plug-ins)."""
        self._ensure_loaded()
        return tuple(self._entries)

    def __contains__(self, name: object) -> bool:
        self._ensure_loaded()
        key = normalize(str(name))
        return self._aliases.get(key, key) in self._entries

    def __iter__(self) -> Iterator[Entry]:
        self._ensure_loaded()
        return iter(list(self._entries.values()))

    def entry_at(self, name: Any, where: str) -> Entry:
        """``get(name)`` for a name read from a config table at ``where`` (e.g.
        ``methods[0].name``): a missing or unknown name is a one-line ``ValueError`` naming
        ``where`` and listing the registered names."""
        if name is None:
            raise ValueError(f"{where}: missing; choose one of {', '.join(self.names())}")
        try:
            return self.get(str(name))
        except ValueError as exc:
            raise ValueError(f"{where}: {str(exc).split(': ', 1)[-1]}") from None

    def build(self, name: str, *args: Any, **options: Any) -> Any:
        """``get(name)``, validate ``options`` against its config, then call the factory."""
        entry = self.get(name)
        entry.make_config(options)  # refuses unknown names before any work
        return entry.factory(*args, **options)


def _where(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


METHODS = Registry("method", "adpo.methods", builtins=("sim.selectors",))
ENVS = Registry("environment", "adpo.envs", builtins=("sim.envs",))
register_method = METHODS.register
register_env = ENVS.register
