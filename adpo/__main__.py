"""``python -m adpo``: the ``adpo`` console script."""

import sys

from .cli import main

sys.exit(main())
