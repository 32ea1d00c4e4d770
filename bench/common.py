"""The one results writer and timing helper of the benchmarks.

Every benchmark ``bench/bench_<name>.py`` records what it measured through :class:`Results` and
writes ONE JSON file, ``bench/results/<name>.json`` (committed; ``--quick`` runs write
``results/bench/<name>.json`` instead, which git ignores), so that every timing in the README can
be checked against the run that produced it. The README's benchmark table is rendered from these
files by ``python -m bench.readme --write`` (a test fails when they disagree).

API::

    from bench.common import Results, median_time

    res = Results("mle", quick=args.quick, params={"N": n, "d": d})   # load average + clock start
    t = median_time(fit, X, y, repeat=3)          # warm-up call, then the median of 3 timed calls
    res.add("rows", solver="ours", seconds=t.seconds, max_abs_err=1e-14)  # any table, any row
    res.headline("DPO MLE, N = 2^16, d = 384", ours="0.30 s", reference="sklearn 0.74 s (2.5x)")
    path = res.write()                            # machine description + load average at the end

JSON schema (``format = "adpo-bench/1"``)::

    {"format", "name", "quick", "started", "finished" (UTC ISO dates), "git_commit",
     "machine": {"cpu", "cores", "ram_gb", "python", "numpy", "scipy", "torch", "sklearn",
                 "blas": [{"api", "version", "threads", "core_type"}], "OPENBLAS_CORETYPE",
                 "kernel"},
     "load_average": {"start": [1, 5, 15 min], "end": [...]},
     "params": {...}, "tables": {table: [row, ...]}, "headlines": [{"benchmark", "ours",
     "reference"}, ...]}

Timing rule (:func:`median_time`): one untimed warm-up call (page faults, imports, BLAS thread
start-up, JIT-like caches), then the MEDIAN wall time of ``repeat >= 3`` calls; every repeat's
seconds are kept in the result so the spread can be read.
"""

from __future__ import annotations

import datetime
import json
import os
import pathlib
import platform
import subprocess

import numpy as np

from sim.timing import Timing, median_time  # noqa: F401  (the timing rule; public here)

ROOT = pathlib.Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"  # committed
QUICK_DIR = pathlib.Path("results") / "bench"  # ignored: smoke runs never clobber the record
FORMAT = "adpo-bench/1"


def _cpu_model() -> str:
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(dist: str) -> str | None:
    """Installed version of a distribution (without importing it: torch takes seconds)."""
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def machine_info() -> dict:
    """CPU model, cores, RAM, library versions, BLAS (threadpoolctl) and kernel of this run."""
    import scipy.linalg  # noqa: F401  (loads the BLAS libraries threadpoolctl reports)
    from threadpoolctl import threadpool_info

    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    blas = [{"api": i.get("internal_api"), "version": i.get("version"),
             "threads": i.get("num_threads"), "core_type": i.get("architecture")}
            for i in threadpool_info()]
    return {"cpu": _cpu_model(), "cores": os.cpu_count(), "ram_gb": round(ram, 1),
            "python": platform.python_version(), "numpy": np.__version__,
            "scipy": _version("scipy"), "sklearn": _version("scikit-learn"),
            "torch": _version("torch"), "blas": blas,
            "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
            "kernel": f"{platform.system()} {platform.release()}"}


def machine() -> str:
    """One line for the console: CPU, cores, BLAS."""
    m = machine_info()
    blas = ", ".join(f"{b['api']} {b['version']} x{b['threads']} ({b['core_type']})"
                     for b in m["blas"])
    return f"{m['cpu']}, {m['cores']} cores, {blas}"


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                             text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=ROOT, capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() + ("-dirty" if dirty.strip() else "") if out.returncode == 0 else None


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _jsonable(x):
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, pathlib.Path):
        return str(x)
    raise TypeError(f"not JSON-serialisable: {type(x).__name__}")


class Results:
    """What one benchmark measured; :meth:`write` stores it with the machine description.

    Create it before the first measurement (it records the load average and the start time).
    """

    def __init__(self, name: str, *, quick: bool = False, params: dict | None = None):
        if not name or not name.replace("_", "").isalnum():
            raise ValueError(f"name: letters, digits and '_' only, got {name!r}")
        self.name, self.quick = name, bool(quick)
        self.params = dict(params or {})
        self.tables: dict[str, list] = {}
        self.headlines: list[dict] = []
        self.started = _now()
        self.load_start = list(os.getloadavg())

    def add(self, table: str, **row) -> dict:
        """Append ``row`` to ``tables[table]`` and return it."""
        self.tables.setdefault(table, []).append(row)
        return row

    def headline(self, benchmark: str, *, ours: str, reference: str) -> None:
        """One row of the README's benchmark table (text cells, numbers formatted by the caller
        from values stored in ``tables``)."""
        self.headlines.append({"benchmark": benchmark, "ours": ours, "reference": reference})

    def payload(self) -> dict:
        return {"format": FORMAT, "name": self.name, "quick": self.quick,
                "started": self.started, "finished": _now(), "git_commit": git_commit(),
                "machine": machine_info(),
                "load_average": {"start": self.load_start, "end": list(os.getloadavg())},
                "params": self.params, "tables": self.tables, "headlines": self.headlines}

    def write(self, directory=None) -> pathlib.Path:
        """Write ``<directory>/<name>.json`` atomically (default: ``bench/results/``, or
        ``results/bench/`` for a quick run)."""
        from sim.io import atomic_write_text

        out = pathlib.Path(directory) if directory is not None else (
            QUICK_DIR if self.quick else RESULTS_DIR)
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"{self.name}.json"
        atomic_write_text(path, json.dumps(self.payload(), indent=1, default=_jsonable) + "\n")
        return path


def load(path) -> dict:
    """Read a results file written by :meth:`Results.write`; ValueError if it is not one."""
    try:
        rec = json.loads(pathlib.Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"bench results {str(path)!r}: unreadable ({exc})") from None
    if not isinstance(rec, dict) or rec.get("format") != FORMAT:
        raise ValueError(f"bench results {str(path)!r}: not an {FORMAT} file; rerun the benchmark")
    return rec


def save(name: str, payload: dict, *, quick: bool = False) -> pathlib.Path:
    """Write a finished ``payload`` dict through :class:`Results` (for benchmarks written before
    it): list values become tables, the rest ``params``. Prefer :class:`Results` created before
    the first measurement: here the start load average is the one at write time."""
    rec = Results(name.replace("-", "_"), quick=quick or bool(payload.get("quick")))
    for k, v in payload.items():
        if isinstance(v, list) and all(isinstance(r, dict) for r in v):
            rec.tables[k] = v
        else:
            rec.params[k] = v
    return rec.write()
