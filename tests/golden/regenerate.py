"""Golden trajectories of every built-in method and environment kind (tests/test_conformance.py).

Run ONLY when a change of results is intended and explained (commit message / closing note):

    .venv/bin/python tests/golden/regenerate.py

It rewrites tests/golden/trajectories.json: for each registered method, the picks of
``select(12)`` on a fixed labelled gaussian environment and the metrics of the runner's cell at
budgets 8 and 16; for each environment kind, summary numbers of a fixed draw.
"""

from __future__ import annotations

import json
import pathlib
import sys
import tempfile
import warnings

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
PATH = HERE / "trajectories.json"
ENV_CASES = {"gaussian": {"N": 48, "d": 3, "beta": 1.5},
             "digits": {"N": 48, "positive_class": 3},
             "file": {"rows": 30, "scale": "rms"},  # path: a gaussian file written on the fly
             "llm-truth": {"rows": 30}}             # features: the same file
FILE_OPTION = {"file": "path", "llm-truth": "features"}
METHOD_ENV = {"kind": "gaussian", "N": 64, "d": 3, "theta_norm": 2.0}


def _summary(data) -> dict:
    out = {"N": data.N, "d": data.d, "beta": data.beta, "phi_sum": float(data.phi.sum()),
           "phi_sq": float((data.phi ** 2).sum()), "b_sum": float(data.b.sum())}
    for key in ("s", "theta_star", "theta_true"):
        v = getattr(data, key)
        out[key] = None if v is None else [float(x) for x in np.atleast_1d(v)[:64]]
    return out


def record() -> dict:
    """The golden record, computed now (what the stored file must equal)."""
    from sim.envs import gaussian_env, make_env
    from sim.experiment import build_env, run_cell
    from sim.registry import ENVS, METHODS
    from sim.selectors import make_selector

    warnings.simplefilter("ignore")
    data = build_env(METHOD_ENV, 0)
    methods = {}
    for name in METHODS.names():
        if "ranking" in METHODS.get(name).tags:  # ranking pools: tests/test_ranking_cli.py
            continue
        picks = make_selector(name, data, seed=0).select(12)
        rows = run_cell(METHOD_ENV, {"name": name}, 0, [8, 16], data=data)
        methods[name] = {"picks": picks.tolist(),
                         "metrics": {f"{r['metric']}@{r['n']}": r["value"] for r in rows
                                     if r["metric"] != "seconds"}}
    envs = {}
    with tempfile.TemporaryDirectory() as tmp:
        src = str(pathlib.Path(tmp) / "src.npz")
        gaussian_env(60, 3, seed=4).save(src)
        for kind in ENVS.names():
            if kind not in ENV_CASES:
                continue
            opts = dict(ENV_CASES[kind], **({FILE_OPTION[kind]: src} if kind in FILE_OPTION
                                            else {}))
            envs[kind] = _summary(make_env(kind, seed=1, **opts))
    return {"methods": methods, "envs": envs}


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parents[1]))
    PATH.write_text(json.dumps(record(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {PATH}")
