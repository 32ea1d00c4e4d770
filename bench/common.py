"""Helpers shared by the benchmarks: machine description, timing, JSON output."""

from __future__ import annotations

import json
import os
import pathlib
import platform
import time

from threadpoolctl import threadpool_info

from sim.io import atomic_write_text


def machine() -> str:
    blas = ", ".join(sorted({f"{i['internal_api']} {i.get('version', '')} x{i['num_threads']}"
                             for i in threadpool_info()}))
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {blas}"


def timed(fn, *args, repeat: int = 1, **kw):
    """(best wall seconds over ``repeat`` runs, last result)."""
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn(*args, **kw)
        best = min(best, time.perf_counter() - t0)
    return best, out


def save(name: str, payload: dict) -> pathlib.Path:
    out = pathlib.Path("results/bench")
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    atomic_write_text(path, json.dumps({"machine": machine(), **payload}, indent=2))
    return path
