"""``adpo methods``: the registered selection methods (:data:`sim.registry.METHODS`) and their options."""

import argparse

from sim.registry import METHODS

from ..options import register_listing


def register(sub: argparse._SubParsersAction) -> None:
    register_listing(sub, "methods", METHODS, "selection methods")
