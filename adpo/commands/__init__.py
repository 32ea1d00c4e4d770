"""Subcommands of the ``adpo`` console script (see :mod:`adpo.cli`): one module per command,
each defining ``register(subparsers)``."""
