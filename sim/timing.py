"""The one timing rule of the project (benchmarks, measured figure cells): one untimed warm-up
call (page faults, imports, BLAS thread start-up, caches), then the MEDIAN wall time of
``repeat >= 3`` timed calls, every repeat kept so the spread can be read."""

from __future__ import annotations

import dataclasses
import statistics
import time
from typing import Any, Callable


@dataclasses.dataclass
class Timing:
    """Median wall seconds of the timed repeats, all repeats, and the last call's result."""

    seconds: float
    runs: list
    result: Any


def median_time(fn: Callable, *args: Any, repeat: int = 3, warmup: int = 1, **kw: Any) -> Timing:
    """Call ``fn(*args, **kw)`` ``warmup`` times untimed, then ``repeat`` (>= 3) times timed.

    Returns the median seconds (the robust centre on a shared machine), every repeat, and the
    result of the last call.
    """
    if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 3:
        raise ValueError(f"repeat: the median needs at least 3 runs, got {repeat!r}")
    for _ in range(warmup):
        fn(*args, **kw)
    runs, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn(*args, **kw)
        runs.append(time.perf_counter() - t0)
    return Timing(statistics.median(runs), runs, out)
