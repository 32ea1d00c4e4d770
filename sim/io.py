"""Reading and writing the JSON files of the CLI and the library (atomic writes)."""

from __future__ import annotations

import json
import os


def write_json(obj, path) -> None:
    """Write JSON atomically (``-`` or None prints to stdout)."""
    text = json.dumps(obj, indent=2, sort_keys=False)
    if path in (None, "-"):
        print(text)
        return
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        f.write(text + "\n")
    os.replace(tmp, path)


def read_json(path, what: str):
    """Read a JSON file, turning any failure into a ValueError naming the file."""
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise ValueError(f"{what} {path!r}: no such file") from None
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{what} {path!r}: not readable JSON ({exc})") from None
