"""Every output the testbed writes goes through this module.

Rules (the same for the CLI, the runner, the figures and the benchmarks):

* **Validate before work.** :func:`check_output` refuses an output path whose folder is missing or
  is a file, that names a folder, whose suffix does not match the format, or that is the same file
  as any input (compared with :func:`os.path.samefile` when both exist, else by resolved path), so
  a long run never ends in an error it could have given at the start, and an input is never
  overwritten. ``-`` means stdout only where the output is a single text stream
  (``allow_stdout=True``); elsewhere it is refused.
* **Atomic writes.** Every file is written to a unique temp file ``.NAME.XXXX.tmp`` in the same
  folder, flushed and ``fsync``-ed, then moved over the target with :func:`os.replace`: the target
  holds either its old content or the complete new one. On any failure, including
  ``KeyboardInterrupt``, the temp file is removed and the target is untouched.
* **All or none.** :class:`OutputGroup` stages several files and moves them into place only when
  every one was written; if any write fails, none of the targets changes.
* **Strict JSON.** :func:`dumps_json` never writes ``NaN``/``Infinity`` (invalid JSON that most
  parsers reject): a non-finite float is refused with a ``ValueError`` naming its key path, e.g.
  ``metrics.max_logit_error``. Callers that have a meaning for a missing value put ``None``
  (JSON ``null``) there themselves. numpy scalars and arrays are converted to Python numbers and
  lists.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import pathlib
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from types import TracebackType
from typing import IO, Any, TypeAlias

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["STDOUT", "check_output", "check_output_dir", "check_outputs", "atomic_open",
           "atomic_write_text", "atomic_write_bytes", "atomic_savez", "dumps_json", "write_json",
           "OutputGroup", "temp_files", "same_file", "read_json", "StrPath"]

#: A file-system path as the API accepts it (``str`` or ``pathlib.Path``-like).
StrPath: TypeAlias = str | os.PathLike[str]

STDOUT = "-"
_UMASK = os.umask(0)
os.umask(_UMASK)


# --------------------------------------------------------------------------- validation
def same_file(a: StrPath, b: StrPath) -> bool:
    """True when paths ``a`` and ``b`` name the same file (hard links and symlinks included)."""
    a, b = os.fspath(a), os.fspath(b)
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet): compare the resolved paths
        return pathlib.Path(a).resolve() == pathlib.Path(b).resolve()


def check_output(path: StrPath | None, *, suffix: str | tuple[str, ...] | None = None,
                 inputs: Iterable[StrPath | None] = (), field: str = "out",
                 allow_stdout: bool = False) -> pathlib.Path | None:
    """Validate an output path before any work; return it as a Path (None for stdout).

    Args:
        path: the path the user gave (``-`` = stdout, only with ``allow_stdout``).
        suffix: the required suffix(es), e.g. ``".npz"`` or ``(".json",)``; None = any.
        inputs: paths read by the same run; the output may not be any of them.
        field: the option's name for messages (``out``, ``emit-jsonl``, ...).

    Raises:
        ValueError: ``"<field>: <path>: <what is wrong>; <fix>"``.
    """
    if path is None:
        raise ValueError(f"{field}: an output path is required")
    text = os.fspath(path)
    if text == STDOUT:
        if allow_stdout:
            return None
        raise ValueError(f"{field}: '-' (stdout) is not accepted for this output (only single "
                         f"JSON outputs go to stdout); give a file path")
    if not text:
        raise ValueError(f"{field}: empty path; give a file path")
    p = pathlib.Path(text)
    if p.is_dir():
        raise ValueError(f"{field}: {text!r} is a folder; give a file path inside it")
    if suffix is not None:
        suffixes = (suffix,) if isinstance(suffix, str) else tuple(suffix)
        if not any(p.name.endswith(s) for s in suffixes) or p.name in suffixes:
            raise ValueError(f"{field}: {text!r} must end in {' or '.join(suffixes)}; "
                             f"rename it (e.g. {p.stem or 'out'}{suffixes[0]})")
    _check_parent(p, field)
    if p.exists() and not p.is_file():
        raise ValueError(f"{field}: {text!r} exists and is not a regular file; choose another path")
    for inp in inputs:
        if inp is not None and os.fspath(inp) != STDOUT and same_file(p, inp):
            raise ValueError(f"{field}: {text!r} is the same file as the input {os.fspath(inp)!r}; "
                             f"choose another output path (inputs are never overwritten)")
    return p


def check_output_dir(path: StrPath | None, *, field: str = "out",
                     inputs: Iterable[StrPath | None] = ()) -> pathlib.Path:
    """Validate an output folder (created later by the run): it is a folder or does not exist yet,
    and its parent folder exists. Missing parents are not created silently."""
    if path is None or os.fspath(path) in ("", STDOUT):
        raise ValueError(f"{field}: give a folder path")
    p = pathlib.Path(os.fspath(path))
    if p.exists() and not p.is_dir():
        raise ValueError(f"{field}: {str(p)!r} exists and is not a folder; choose a folder path")
    if not p.exists():
        _check_parent(p, field)
    for inp in inputs:
        if inp is not None and same_file(p, inp):
            raise ValueError(f"{field}: {str(p)!r} is the same path as the input "
                             f"{os.fspath(inp)!r}; choose another folder")
    return p


def check_outputs(paths: Mapping[str, StrPath | None], *,
                  inputs: Iterable[StrPath | None] = ()) -> None:
    """Several outputs of one run: each may not equal an input nor another output.

    ``paths`` maps a field name to a path (None entries are skipped; ``-`` is not compared)."""
    seen: dict[str, StrPath] = {}
    given = [i for i in inputs if i is not None]
    for field, path in paths.items():
        if path is None or os.fspath(path) == STDOUT:
            continue
        for other, q in seen.items():
            if same_file(path, q):
                raise ValueError(f"{field}: {os.fspath(path)!r} is also the {other} output; "
                                 f"give each output its own path")
        for inp in given:
            if same_file(path, inp):
                raise ValueError(f"{field}: {os.fspath(path)!r} is the same file as the input "
                                 f"{os.fspath(inp)!r}; choose another output path (inputs are "
                                 f"never overwritten)")
        seen[field] = path


def _check_parent(p: pathlib.Path, field: str) -> None:
    parent = p.parent if str(p.parent) else pathlib.Path(".")
    for anc in [parent, *parent.parents]:  # the deepest existing ancestor decides
        if anc.exists():
            if not anc.is_dir():
                raise ValueError(f"{field}: {str(p)!r} lies under {str(anc)!r}, which is a file, "
                                 f"not a folder; choose another path")
            break
    if not parent.is_dir():
        raise ValueError(f"{field}: folder {str(parent)!r} does not exist; create it first "
                         f"(mkdir -p {parent})")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"{field}: folder {str(parent)!r} is not writable; choose another folder")


# --------------------------------------------------------------------------- atomic writes
def _fsync_dir(folder: pathlib.Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _temp_for(path: pathlib.Path) -> tuple[int, str]:
    fd, tmp = tempfile.mkstemp(dir=path.parent if str(path.parent) else ".",
                               prefix=f".{path.name}.", suffix=".tmp")
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; outputs are for sharing
    return fd, tmp


@contextlib.contextmanager
def atomic_open(path: StrPath, mode: str = "w", *, encoding: str | None = "utf-8",
                replace: Callable[[str, pathlib.Path], None] | None = None
                ) -> Iterator[IO[Any]]:
    """``with atomic_open(p) as f: f.write(...)``: the target appears complete or not at all.

    ``mode`` is ``"w"`` (text, ``encoding``) or ``"wb"``. The temp file lives in the target's
    folder; it is removed on any exception (KeyboardInterrupt included), which propagates.
    ``replace(tmp, path)`` defaults to :func:`os.replace` (:class:`OutputGroup` defers it).
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode: expected 'w' or 'wb', got {mode!r}")
    target = pathlib.Path(os.fspath(path))
    fd, tmp = _temp_for(target)
    try:
        with os.fdopen(fd, mode, encoding=None if mode == "wb" else encoding,
                       newline=None if mode == "wb" else "") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        if replace is None:
            os.replace(tmp, target)
            _fsync_dir(target.parent if str(target.parent) else pathlib.Path("."))
        else:
            replace(tmp, target)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: StrPath, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_open(path, "w") as f:
        f.write(text)


def atomic_write_bytes(path: StrPath, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_open(path, "wb") as f:
        f.write(data)


#: Keywords of ``numpy.savez`` itself: an array given under one of these names would not be
#: stored (``allow_pickle=array`` is silently taken as the flag), so they are refused.
_SAVEZ_RESERVED = ("file", "allow_pickle")


def _storable(arrays: Mapping[str, ArrayLike]) -> dict[str, np.ndarray]:
    """``arrays`` as numpy arrays ``numpy.savez`` stores without pickle, or a ValueError."""
    plain = {}
    for k, v in arrays.items():
        if k in _SAVEZ_RESERVED:
            raise ValueError(f"{k}: is a keyword of numpy.savez, not storable as an array name; "
                             f"rename the array")
        a = np.asarray(v)
        if a.dtype.hasobject:
            raise ValueError(f"{k}: object arrays cannot be stored without pickle; store numbers")
        plain[k] = a
    return plain


def atomic_savez(path: StrPath, **arrays: ArrayLike) -> None:
    """``numpy.savez`` to ``path`` atomically (plain arrays only; nothing pickled)."""
    plain = _storable(arrays)
    with atomic_open(path, "wb") as f:
        np.savez(f, allow_pickle=False, **plain)


def temp_files(folder: StrPath) -> list[pathlib.Path]:
    """Temp files of this module left in ``folder`` by a process killed mid-write."""
    where = pathlib.Path(folder)
    return sorted(where.glob(".*.tmp")) if where.is_dir() else []


class OutputGroup:
    """All-or-none writes of several files.

    ``with OutputGroup() as g: g.text(p1, ...); g.savez(p2, ...)``: each file is written to its
    temp file; only when the block ends without an exception are all of them moved into place
    (in the order written). On an exception every temp file is removed and no target changes.
    (The final moves are separate ``os.replace`` calls: a power cut between two of them can
    leave the first file new and the second old, never a partial file.)
    """

    def __init__(self) -> None:
        self._staged: list[tuple[str, pathlib.Path]] = []

    def __enter__(self) -> "OutputGroup":
        return self

    def _stage(self, tmp: str, path: StrPath) -> None:
        self._staged.append((tmp, pathlib.Path(path)))

    def open(self, path: StrPath, mode: str = "w") -> contextlib.AbstractContextManager[IO[Any]]:
        """A context manager like :func:`atomic_open`, staged until the group commits."""
        return atomic_open(path, mode, replace=self._stage)

    def text(self, path: StrPath, text: str) -> None:
        with self.open(path, "w") as f:
            f.write(text)

    def json(self, path: StrPath, obj: Any) -> None:
        self.text(path, dumps_json(obj) + "\n")

    def savez(self, path: StrPath, **arrays: ArrayLike) -> None:
        plain = _storable(arrays)
        with self.open(path, "wb") as f:
            np.savez(f, allow_pickle=False, **plain)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is not None:
            for tmp, _ in self._staged:
                pathlib.Path(tmp).unlink(missing_ok=True)
            self._staged.clear()
            return
        try:
            for i, (tmp, path) in enumerate(self._staged):
                os.replace(tmp, path)
        except BaseException:
            for tmp, _ in self._staged[i:]:
                pathlib.Path(tmp).unlink(missing_ok=True)
            raise
        for folder in {p.parent for _, p in self._staged}:
            _fsync_dir(folder if str(folder) else pathlib.Path("."))
        self._staged.clear()


# --------------------------------------------------------------------------- strict JSON
def _plain(obj: Any, where: str) -> Any:
    """``obj`` with numpy types converted; ValueError at the first non-finite float."""
    if isinstance(obj, dict):
        return {str(k): _plain(v, f"{where}.{k}" if where else str(k)) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, np.ndarray):
        return _plain(obj.tolist(), where)
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        x = float(obj)
        if not math.isfinite(x):
            raise ValueError(f"{where or 'value'}: is {x}, which JSON cannot represent; the "
                             f"result is not finite (check the inputs' scale and ridges)")
        return x
    if obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise ValueError(f"{where or 'value'}: {type(obj).__name__} is not JSON data")


def dumps_json(obj: Any, *, indent: int | None = 2, sort_keys: bool = False) -> str:
    """Strict JSON text of ``obj`` (no NaN/Infinity; numpy values converted)."""
    return json.dumps(_plain(obj, ""), indent=indent, sort_keys=sort_keys, allow_nan=False)


def write_json(obj: Any, path: StrPath | None) -> None:
    """Strict JSON to ``path`` atomically, or to stdout for ``-``/None (one stream)."""
    text = dumps_json(obj)
    if path is None or os.fspath(path) == STDOUT:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
        return
    atomic_write_text(path, text + "\n")


def read_json(path: StrPath, what: str) -> Any:
    """Read a JSON file; any failure becomes a DataError naming the file (CLI exit code 3)."""
    from .validation import DataError

    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise DataError(f"{what} {os.fspath(path)!r}: no such file") from None
    except (OSError, ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise DataError(f"{what} {os.fspath(path)!r}: not readable JSON ({exc})") from None
