"""``python -m figures``: see :mod:`figures.driver` (the figure processes import their functions
from there: a spawned process cannot import them from ``__main__``)."""

import sys

from figures.driver import discover, main

__all__ = ["discover", "main"]

if __name__ == "__main__":
    sys.exit(main())
