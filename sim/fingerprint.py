"""The one cache key of the project: a configuration plus a fingerprint of the code computing it.

Cached results (the runner's cells, ``figures.common.cached``) are valid only for the code that
produced them, so every key covers both::

    key = cache_key(config, code=source_fingerprint(sim_dir, extra_module_file))

Choice (simplest robust): the fingerprint hashes the bytes of EVERY ``.py`` file under the given
package directories (``sim/`` for runner cells, plus the package of a cell function defined
outside ``sim``, e.g. ``theory/``; ``sim/`` and ``theory/`` plus the figure script for the
figures' own caches) together with their paths relative to the package's parent, so any
edit to the library, even a comment, invalidates the caches that depend on it, while an edit to a
figure script does not touch the runner's cells. Cost: hashing the ~0.5 MB of ``sim/`` takes a
few milliseconds once per process (files are re-hashed only when their size or mtime changes);
the price is that any library edit recomputes every cached cell on the next ``make figures``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import pathlib
import sys
from collections.abc import Iterable
from typing import Any

SIM_DIR = pathlib.Path(__file__).resolve().parent


def source_files(*roots: os.PathLike | str) -> list[tuple[str, pathlib.Path]]:
    """(name, path) of every ``.py`` under each root directory (or the root file itself), the
    name relative to the root's parent, sorted by name. ValueError if a root does not exist."""
    out = {}
    for root in roots:
        root = pathlib.Path(root).resolve()
        if root.is_file():
            out[root.name] = root
        elif root.is_dir():
            for p in root.rglob("*.py"):
                if "__pycache__" not in p.parts:
                    out[p.relative_to(root.parent).as_posix()] = p
        else:
            raise ValueError(f"fingerprint: no such source file or directory {str(root)!r}")
    return sorted(out.items())


@functools.lru_cache(maxsize=4096)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


def source_fingerprint(*roots: os.PathLike | str) -> str:
    """SHA-256 hex over the names and contents of :func:`source_files` of ``roots``."""
    h = hashlib.sha256()
    for name, p in source_files(*roots):
        st = p.stat()
        h.update(f"{name}\0{_file_digest(str(p), st.st_size, st.st_mtime_ns)}\0".encode())
    return h.hexdigest()


def module_file(obj: Any) -> pathlib.Path | None:
    """The source file of the module defining ``obj`` (a function, class or module)."""
    mod = obj if isinstance(obj, type(sys)) else sys.modules.get(getattr(obj, "__module__", ""))
    f = getattr(mod, "__file__", None)
    return pathlib.Path(f).resolve() if f else None


def package_source(obj: Any) -> pathlib.Path | None:
    """The source a cell function ``obj`` may run besides ``sim/``: the directory of the
    top-level package of its module (``theory/`` for ``theory.coverage.run_coverage_cell``,
    whose module imports ``theory.bounds`` and ``theory.constants``), or its module file when
    that module is in no package (e.g. a test file). None for ``sim`` itself or unknown code."""
    name = obj.__name__ if isinstance(obj, type(sys)) else getattr(obj, "__module__", None)
    top = sys.modules.get(str(name).split(".")[0])
    if top is None or top.__name__ == "sim":
        return None
    init = getattr(top, "__file__", None)
    if hasattr(top, "__path__") and init is not None:  # a regular package: its directory
        return pathlib.Path(init).resolve().parent
    return module_file(obj)


def code_fingerprint(*extra: Any, packages: Iterable[str] | None = None) -> str:
    """Fingerprint of ``packages`` (default: ``sim/``) plus the module files of ``extra``
    objects (functions, modules or paths) that live outside them."""
    roots = [pathlib.Path(p) for p in (packages if packages is not None else (SIM_DIR,))]
    for obj in extra:
        f = pathlib.Path(obj) if isinstance(obj, (str, os.PathLike)) else module_file(obj)
        if f is not None and not any(f.is_relative_to(r.resolve()) for r in roots):
            roots.append(f)
    return source_fingerprint(*roots)


def cache_key(config: Any, *, code: str) -> str:
    """SHA-256 hex of the canonical JSON (sorted keys, no NaN) of ``config`` and ``code``."""
    text = json.dumps({"config": config, "code": code}, sort_keys=True, separators=(",", ":"),
                      allow_nan=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()
