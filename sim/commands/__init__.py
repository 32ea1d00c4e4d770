"""Subcommands of the ``adpo`` console script (see :mod:`sim.cli`)."""

import json

from ..io import write_json  # noqa: F401  (strict, atomic; ``-`` = stdout)
from ..validation import DataError


def read_json(path, what: str):
    """Read a JSON file, turning any failure into a DataError naming the file."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise DataError(f"{what} {path!r}: no such file") from None
    except (OSError, ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise DataError(f"{what} {path!r}: not readable JSON ({exc})") from None
