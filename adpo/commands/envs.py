"""``adpo envs``: the registered environment kinds (:data:`sim.registry.ENVS`) and their options."""

import argparse

from sim.registry import ENVS

from ..options import register_listing


def register(sub: argparse._SubParsersAction) -> None:
    register_listing(sub, "envs", ENVS, "environment kinds")
