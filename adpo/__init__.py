"""The ``adpo`` command-line interface over the :mod:`sim` testbed and :mod:`theory` checks.

It sits above both (``sim`` never imports ``adpo`` nor ``theory``); ``python -m adpo`` and the
``adpo`` console script run :func:`adpo.cli.main`.
"""
