"""Tests of sim.runner and `adpo sweep`: TOML parsing, keys, the atomic resumable store, the
local pool and a Dask LocalCluster against the in-process run.

Nothing here is statistical: every expected value is either a closed form of the configuration
(the toy cell function below) or a second, independent run of the same cells.
"""

import json
import os
import pathlib

import numpy as np
import pandas as pd
import pytest

from sim import io as sim_io
from sim import runner
from adpo.cli import main as cli_main
from sim.runner import (Cell, CellStore, load_sweep, make_sweep, parse_budgets, parse_seeds,
                        parse_sweep, read_table, run_sweep)

TINY_TOML = """\
name = "tiny"
seeds = [0, 1]
budgets = [8, 16]
[env]
kind = "gaussian"
N = 48
d = 3
[grid]
beta = [1.0, 2.0]
[[methods]]
name = "adpo"
n_candidates = 8
[[methods]]
name = "uniform"
"""


def toy_rows(env, method, seed, budgets):
    """A closed-form stand-in for run_cell: value = seed + n / N (+ 0.5 for beta 2)."""
    return [{"env": f"{env['kind']}-{env.get('beta', 1.0)}", "method": method["name"],
             "seed": seed, "n": n, "metric": m, "value": seed + n / env["N"] + k * 0.25}
            for n in budgets for k, m in enumerate(("a", "b"))]


class Counter:
    """A cell function that counts its calls and can raise KeyboardInterrupt after k cells."""

    def __init__(self, interrupt_after=None):
        self.calls, self.interrupt_after = [], interrupt_after

    def __call__(self, env, method, seed, budgets):
        if self.interrupt_after is not None and len(self.calls) == self.interrupt_after:
            raise KeyboardInterrupt
        self.calls.append((json.dumps(env, sort_keys=True), method["name"], seed))
        return toy_rows(env, method, seed, budgets)


def tiny_sweep(**kw):
    return parse_sweep(__import__("tomllib").loads(TINY_TOML), **kw)


def no_temp(root) -> bool:
    return not [p for p in pathlib.Path(root).rglob("*") if p.name.endswith(".tmp")]


# --------------------------------------------------------------------------- parsing
def test_expansion_of_grid_methods_seeds_and_budgets():
    sw = tiny_sweep()
    assert [e["beta"] for e in sw.envs] == [1.0, 2.0]
    assert [m["name"] for m in sw.methods] == ["adpo", "uniform"]
    assert sw.seeds == (0, 1) and sw.budgets == ((8, 16), (8, 16))
    cells = sw.cells()
    assert len(cells) == 2 * 2 * 2
    assert [(c.env["beta"], c.method["name"], c.seed) for c in cells[:3]] == [
        (1.0, "adpo", 0), (1.0, "adpo", 1), (1.0, "uniform", 0)]


def test_method_grid_and_labels():
    sw = make_sweep({"kind": "gaussian", "N": 64, "d": 2, "label": "g"},
                    [{"name": "adpo", "grid": {"alpha": [0.0, 3.0]}, "label": "A"}, "uniform"],
                    seeds={"start": 5, "count": 3}, budgets="pow2:2:4")
    assert [m.get("alpha") for m in sw.methods] == [0.0, 3.0, None]
    assert [m.get("label") for m in sw.methods] == ["A[alpha=0.0]", "A[alpha=3.0]", None]
    assert sw.seeds == (5, 6, 7) and sw.budgets == ((4, 8, 16),)


def test_seed_forms():
    assert parse_seeds([3, 1]) == [3, 1]
    assert parse_seeds({"count": 2}) == [0, 1]
    assert parse_seeds({"start": 4, "count": 2}) == [4, 5]
    assert parse_seeds(3) == [0, 1, 2]


def test_budget_forms():
    assert parse_budgets("pow2:4:6", 100) == (16, 32, 64)
    assert parse_budgets([30, 10, 20], 100) == (10, 20, 30)
    # default: powers of two from 16 up to the largest 2^k <= N/2 (the paper's n_max = N/2)
    assert parse_budgets(None, 1000) == (16, 32, 64, 128, 256)
    assert parse_budgets(None, 1000, n_min=5, n_max=40) == (8, 16, 32)
    assert parse_budgets(None, 20) == (8,)
    # every K labels and the whole pool: the checks of sim.stopping.select_until with max_n = N
    assert parse_budgets("every:8", 30) == (8, 16, 24, 30)
    assert parse_budgets("every:10", 30) == (10, 20, 30)
    assert parse_budgets("every:50", 30) == (30,)
    assert parse_budgets("every:8:20", 30) == (8, 16, 20)  # capped at MAX (select_until's max_n)


@pytest.mark.parametrize("mutate, key", [
    (lambda c: c.update(bogus=1), "bogus"),
    (lambda c: c["env"].update(foo=1), "foo"),
    (lambda c: c["env"].update(seed=1), "seed"),
    (lambda c: c["env"].update(kind="cifar"), "env.kind"),
    (lambda c: c["env"].pop("N"), "env.N"),
    (lambda c: c["methods"][0].update(name="nope"), "methods[0].name"),
    (lambda c: c["methods"][0].update(colour="red"), "colour"),
    (lambda c: c["methods"][0].update(n_candidates=0), "n_candidates"),  # m < 1
    (lambda c: c["methods"][0].update(alpha=-1.0), "alpha"),            # negative alpha
    (lambda c: c["methods"][1].update(refit="sometimes"), "refit"),
    (lambda c: c.update(budgets=[8, 64]), "exceeds"),                    # n > N
    (lambda c: c.update(budgets="pow2:5:2"), "budgets"),
    (lambda c: c.update(budgets="log:1:2"), "budgets"),
    (lambda c: c.update(budgets=[8, 8]), "budgets"),
    (lambda c: c.update(budgets="every:0"), "budgets"),
    (lambda c: c.update(budgets="every:x"), "budgets"),
    (lambda c: c.update(budgets="every:4:0"), "budgets"),
    (lambda c: c.update(budgets="every:4:64"), "exceeds"),               # MAX > N
    (lambda c: c.update(budgets=[0, 8]), "budgets"),
    (lambda c: c.update(n_max=16), "n_min/n_max"),
    (lambda c: c.update(seeds=[1, 1]), "seeds"),
    (lambda c: c.update(seeds=[-1]), "seeds"),
    (lambda c: c.update(seeds={"start": 0}), "seeds"),
    (lambda c: c.pop("seeds"), "seeds"),
    (lambda c: c.pop("methods"), "methods"),
    (lambda c: c.pop("env"), "env"),
    (lambda c: c["grid"].update(d=[2, 3]), "grid.d"),   # d also fixed in [env]
    (lambda c: c["grid"].update(N=[]), "grid.N"),
    (lambda c: c["methods"].append({"name": "uniform"}), "duplicates"),
    (lambda c: c["methods"].append({"name": "uniform", "gamma": 2.0, "label": "uniform"}),
     "label"),
    (lambda c: c["env"].update(feature_scale="huge"), "feature_scale"),  # not a gaussian knob
])
def test_bad_configs_name_the_key(mutate, key):
    cfg = __import__("tomllib").loads(TINY_TOML)
    mutate(cfg)
    with pytest.raises(ValueError, match=__import__("re").escape(key)):
        parse_sweep(cfg)


def test_digits_knob_values_checked_before_running():
    with pytest.raises(ValueError, match="feature_scale"):
        make_sweep({"kind": "digits", "N": 128, "feature_scale": "huge"}, ["uniform"], [0], [8])


def test_unreadable_configs(tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        load_sweep(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("seeds = [0,\n[env\n")
    with pytest.raises(ValueError, match="not readable TOML"):
        load_sweep(bad)
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ValueError, match="not readable TOML"):
        load_sweep(binary)


def test_cell_key_is_canonical():
    a = Cell({"kind": "gaussian", "N": 10, "d": 2}, {"name": "uniform"}, 0, (4, 8))
    b = Cell({"d": 2, "N": 10, "kind": "gaussian"}, {"name": "uniform"}, 0, (4, 8))
    assert a.key(toy_rows) == b.key(toy_rows)
    assert len(a.key(toy_rows)) == 64 and int(a.key(toy_rows), 16) >= 0
    variants = [Cell({"kind": "gaussian", "N": 11, "d": 2}, {"name": "uniform"}, 0, (4, 8)),
                Cell(a.env, {"name": "adpo"}, 0, (4, 8)), Cell(a.env, a.method, 1, (4, 8)),
                Cell(a.env, a.method, 0, (4, 16))]
    keys = {a.key(toy_rows), a.key(Counter())} | {v.key(toy_rows) for v in variants}
    assert len(keys) == 6  # every field of the configuration, and the cell function, counts


# --------------------------------------------------------------------------- store and resume
def test_toy_sweep_table(tmp_path):
    res = run_sweep(tiny_sweep(), tmp_path, cell_fn=toy_rows)
    t = res.table
    assert list(t.columns) == list(runner.COLUMNS)
    assert len(t) == 8 * 2 * 2 and res.n_ran == 8 and res.n_skipped == 0
    want = t.seed + t.n / 48 + np.where(t.metric == "b", 0.25, 0.0)
    assert np.array_equal(t.value.to_numpy(), want.to_numpy())
    assert read_table(tmp_path).equals(t)  # the CSV round-trips every value exactly
    manifest = json.loads((tmp_path / "sweep.json").read_text())
    assert len(manifest["cells"]) == 8
    assert sorted(p.stem for p in (tmp_path / "cells").glob("*.json")) == sorted(
        c["key"] for c in manifest["cells"])


def test_interrupt_then_resume_runs_only_missing_cells(tmp_path):
    sweep = tiny_sweep()
    reference = run_sweep(sweep, tmp_path / "ref", cell_fn=toy_rows).table

    stop = Counter(interrupt_after=3)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(sweep, tmp_path / "run", cell_fn=stop)
    assert len(list((tmp_path / "run" / "cells").glob("*.json"))) == 3
    assert no_temp(tmp_path / "run") and not (tmp_path / "run" / "results.csv").exists()

    again = Counter()
    res = run_sweep(sweep, tmp_path / "run", cell_fn=again)
    assert res.n_skipped == 3 and res.n_ran == 5 and len(again.calls) == 5
    assert not set(again.calls) & set(stop.calls)  # none of the finished cells ran again
    assert res.table.equals(reference)

    # delete two cell files: exactly those two run on the next pass
    files = sorted((tmp_path / "run" / "cells").glob("*.json"))
    gone = [json.loads(f.read_text()) for f in files[:2]]
    for f in files[:2]:
        f.unlink()
    third = Counter()
    res = run_sweep(sweep, tmp_path / "run", cell_fn=third)
    assert res.n_ran == 2 and sorted(third.calls) == sorted(
        (json.dumps(g["env"], sort_keys=True), g["method"]["name"], g["seed"]) for g in gone)
    assert res.table.equals(reference) and no_temp(tmp_path / "run")


def test_interrupt_during_write_leaves_no_file(tmp_path, monkeypatch):
    store = CellStore(tmp_path)
    cell = Cell({"kind": "gaussian", "N": 8}, {"name": "uniform"}, 0, (4,))
    real_replace = os.replace

    def killed(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(sim_io.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        store.save("k", cell, toy_rows, toy_rows(cell.env, cell.method, 0, [4]), 0.1)
    assert not store.finished("k") and no_temp(tmp_path)
    monkeypatch.setattr(sim_io.os, "replace", real_replace)
    # a temp file left by a process killed with SIGKILL is removed by the next run
    (store.dir / ".abc.json.123.tmp").write_text("{half")
    run_sweep(tiny_sweep(), tmp_path, cell_fn=toy_rows)
    assert no_temp(tmp_path)


def test_corrupt_cell_file_is_reported(tmp_path):
    run_sweep(tiny_sweep(), tmp_path, cell_fn=toy_rows)
    f = next((tmp_path / "cells").glob("*.json"))
    f.write_text("{not json")
    with pytest.raises(ValueError, match="delete it and rerun"):
        run_sweep(tiny_sweep(), tmp_path, cell_fn=toy_rows)


def test_cell_errors_keep_finished_cells_and_name_the_cell(tmp_path):
    def flaky(env, method, seed, budgets):
        if method["name"] == "uniform" and seed == 1:
            raise RuntimeError("boom")
        return toy_rows(env, method, seed, budgets)

    with pytest.raises(RuntimeError, match="boom") as err:
        run_sweep(tiny_sweep(), tmp_path, cell_fn=flaky)
    assert any("seed=1" in n for n in err.value.__notes__)
    assert len(list((tmp_path / "cells").glob("*.json"))) == 3
    with pytest.raises(ValueError, match="cell_fn"):
        run_sweep(tiny_sweep(), tmp_path / "b", cell_fn=lambda *a: "rows")


def test_progress_bar(tmp_path, capsys):
    run_sweep(tiny_sweep(), tmp_path, cell_fn=toy_rows, progress=True)
    assert "8/8" in capsys.readouterr().err
    run_sweep(tiny_sweep(), tmp_path / "q", cell_fn=toy_rows, progress=False)
    assert capsys.readouterr().err == ""


# --------------------------------------------------------------------------- real cells
def without_seconds(t: pd.DataFrame) -> pd.DataFrame:
    return t[t.metric != "seconds"].reset_index(drop=True)


@pytest.fixture(scope="module")
def real_local(tmp_path_factory):
    """The tiny real sweep (run_cell: adpo and uniform on a Gaussian env), in process."""
    out = tmp_path_factory.mktemp("local")
    return run_sweep(tiny_sweep(), out, jobs=1).table


def test_real_cells_identical_seeds_identical_tables(real_local, tmp_path):
    t = real_local
    assert set(t.metric) >= {"max_logit_error", "mean_logit_error", "error_rate", "theta_norm",
                             "max_logit_error_beta", "seconds"}
    assert sorted(set(t.n)) == [8, 16] and sorted(set(t.seed)) == [0, 1]
    again = run_sweep(tiny_sweep(), tmp_path, jobs=1).table
    pd.testing.assert_frame_equal(without_seconds(again), without_seconds(real_local))
    # and a different seed gives different numbers (the comparison above can fail)
    other = run_sweep(make_sweep({"kind": "gaussian", "N": 48, "d": 3, "beta": 1.0},
                                 [{"name": "uniform"}], [7], [8, 16]), tmp_path / "o").table
    mine = real_local[(real_local.method == "uniform") & (real_local.seed == 0)
                      & real_local.env.str.contains("beta=1.0")]
    assert not np.array_equal(without_seconds(other).value, without_seconds(mine).value)


def pinned_threads(env, method, seed, budgets):
    """A cell function reporting how many BLAS threads it sees."""
    from threadpoolctl import threadpool_info

    n = max((p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"), default=1)
    return [{"env": "e", "method": method["name"], "seed": seed, "n": b, "metric": "threads",
             "value": float(n)} for b in budgets]


def test_local_pool_equals_in_process_and_pins_blas(real_local, tmp_path):
    pooled = run_sweep(tiny_sweep(), tmp_path / "pool", jobs=2).table
    pd.testing.assert_frame_equal(without_seconds(pooled), without_seconds(real_local))
    threads = run_sweep(tiny_sweep(), tmp_path / "threads", jobs=2, cell_fn=pinned_threads).table
    assert set(threads.value) == {1.0}


def test_dask_local_cluster_equals_local_run(real_local, tmp_path, monkeypatch):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        res = run_sweep(tiny_sweep(), tmp_path / "dask", scheduler=cluster.scheduler_address)
        assert res.n_ran == 8
        pd.testing.assert_frame_equal(without_seconds(res.table), without_seconds(real_local))
        threads = run_sweep(tiny_sweep(), tmp_path / "threads", scheduler=cluster.scheduler_address,
                            cell_fn=pinned_threads).table
        assert set(threads.value) == {1.0}
        # the CLI takes the address from ADPO_SCHEDULER; finished cells are not resubmitted
        cfg = tmp_path / "tiny.toml"
        cfg.write_text(TINY_TOML)
        monkeypatch.setenv("ADPO_SCHEDULER", cluster.scheduler_address)
        assert cli_main(["sweep", str(cfg), "--out", str(tmp_path / "dask"), "--quiet"]) == 0
    pd.testing.assert_frame_equal(without_seconds(read_table(tmp_path / "dask")),
                                  without_seconds(real_local))


# --------------------------------------------------------------------------- the CLI
def test_cli_sweep(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("ADPO_SCHEDULER", raising=False)
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(TINY_TOML.replace('name = "adpo"\nn_candidates = 8', 'name = "apo"'))
    out = tmp_path / "out"
    assert cli_main(["sweep", str(cfg), "--out", str(out), "--dry-run"]) == 0
    assert "8 cells; 8 to run" in capsys.readouterr().out
    assert cli_main(["sweep", str(cfg), "--out", str(out), "--quiet"]) == 0
    msg = capsys.readouterr().out
    assert "8 cell(s) run" in msg and str(out / "results.csv") in msg
    assert cli_main(["sweep", str(cfg), "--out", str(out), "--quiet"]) == 0
    assert "0 cell(s) run, 8 already finished" in capsys.readouterr().out
    exp = __import__("sim.experiment").experiment
    # gaussian: theta_true known, so the logit errors against it are recorded too
    assert len(read_table(out)) == 8 * 2 * (len(exp.METRICS) + len(exp.TRUE_METRICS)
                                            + len(exp.ENV_FACTS))


@pytest.mark.parametrize("args, msg", [
    (["--jobs", "0"], "jobs"),
    (["--config-is", "missing"], None),
])
def test_cli_sweep_errors(tmp_path, capsys, args, msg):
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(TINY_TOML.replace("N = 48", "N = 12"))  # budgets 16 > N
    if msg is None:
        assert cli_main(["sweep", str(cfg), "--out", str(tmp_path / "o"), *args]) == 2
        return
    assert cli_main(["sweep", str(cfg), "--out", str(tmp_path / "o"), *args]) == 2
    assert msg in capsys.readouterr().err
    assert cli_main(["sweep", str(cfg), "--out", str(tmp_path / "o")]) == 2
    assert "exceeds" in capsys.readouterr().err
    assert cli_main(["sweep", str(tmp_path / "none.toml"), "--out", str(tmp_path / "o")]) == 3
    assert "no such file" in capsys.readouterr().err


def test_example_sweeps_are_valid():
    files = sorted(pathlib.Path(__file__).parent.parent.glob("sweeps/*.toml"))
    assert files, "sweeps/ holds example sweep files"
    for f in files:
        sw = load_sweep(f)
        assert sw.cells()


SLOW_SCRIPT = """
import signal, sys, time
# A child started from a non-interactive shell's background job inherits SIGINT as ignored;
# restore Python's Ctrl-C handler so the test sends what a user's Ctrl-C would.
signal.signal(signal.SIGINT, signal.default_int_handler)
from sim.runner import make_sweep, run_sweep

def slow(env, method, seed, budgets):
    time.sleep(0.1)
    return [{"env": "e", "method": method["name"], "seed": seed, "n": n, "metric": "m",
             "value": seed + n / 1000} for n in budgets]
slow.__module__ = "slow_cells"

sweep = make_sweep({"kind": "gaussian", "N": 64, "d": 2}, ["uniform"], {"count": 24}, [4, 8],
                   check=False)
print("started", flush=True)
run_sweep(sweep, sys.argv[1], cell_fn=slow, jobs=int(sys.argv[2]))
print("done", flush=True)
"""


@pytest.mark.parametrize("sig, jobs", [("SIGINT", 1), ("SIGKILL", 1), ("SIGINT", 2)])
def test_real_signal_keeps_finished_cells(tmp_path, sig, jobs):
    """Ctrl-C (SIGINT; in process or with a loky pool) or kill -9 of a running sweep: every
    stored cell file is complete, no temp file survives the next run, and the rerun finishes
    only the missing cells."""
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "slow.py"
    script.write_text(SLOW_SCRIPT)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, str(script), str(out), str(jobs)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "started"
    cells = out / "cells"
    deadline = time.monotonic() + 30
    while len(list(cells.glob("*.json"))) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(getattr(signal, sig))
    _, err = proc.communicate(timeout=30)
    assert proc.returncode != 0, "the sweep finished before the signal; slow the cells down"
    if sig == "SIGINT":
        assert "KeyboardInterrupt" in err
    done = sorted(cells.glob("*.json"))
    assert 3 <= len(done) < 24
    for f in done:  # complete JSON records, never a truncated one
        assert json.loads(f.read_text())["format"] == runner.CELL_FORMAT
    rerun = subprocess.run([sys.executable, str(script), str(out), "1"], capture_output=True,
                           text=True, timeout=60)
    assert rerun.returncode == 0 and "done" in rerun.stdout, rerun.stderr
    t = read_table(out)
    assert len(t) == 24 * 2 and sorted(set(t.seed)) == list(range(24))
    assert np.array_equal(t.value, t.seed + t.n / 1000) and no_temp(out)


@pytest.mark.parametrize("name", ["adpo+", "adpo"])
def test_run_cell_kappa_max_is_the_running_max_of_the_selectors_kappa(name):
    """``kappa_max`` at n = max_{t <= n} kappa_t of a second selector run on the same streams
    (one select call instead of run_cell's increments). kappa_t is not monotone here (checked),
    so the last, the first or the mean kappa_t would fail; no row without ``record_kappa``."""
    from sim.experiment import SELECTOR_STREAM, build_env, run_cell
    from sim.selectors import make_selector
    from sim.validation import rng_for

    env = {"kind": "gaussian", "N": 200, "d": 3, "assumption2": True, "theta_norm": 1.0}
    method, budgets, seed = {"name": name, "n_candidates": 16}, [2, 4, 8, 16], 0
    rows = run_cell(env, {**method, "record_kappa": True}, seed, budgets)
    got = [r["value"] for r in rows if r["metric"] == "kappa_max"]
    data = build_env(env, seed)
    sel = make_selector(name, data, seed=rng_for(seed, SELECTOR_STREAM), record_kappa=True,
                        n_candidates=16, fit_ridge=data.info["fit_ridge"],
                        radius=data.info["radius"])
    sel.select(budgets[-1])
    kappa = sel.kappa_
    assert [kappa[n - 1] for n in budgets] != [kappa[:n].max() for n in budgets]  # not monotone
    assert got == [kappa[:n].max() for n in budgets]
    for plain in (method, {"name": "uniform"}):
        assert not any(r["metric"] == "kappa_max" for r in run_cell(env, plain, seed, budgets))


def test_run_cell_traces_kappa_t_and_theorem4_against_a_brute_force_replay():
    """With ``record_kappa``: ``kappa_t`` rows at every round t = 1..max(budgets) equal the
    kappa_ of a second selector run on the same streams (an off-by-one round or a truncation
    fails: kappa_t varies); ``max_design_variance`` at n = max over ALL N rows of phi^T
    Sigma_n^{-1} phi with Sigma_n = gamma I + sum over the first n picks of beta^2 mu(1 - mu) phi
    phi^T at theta_star, by np.linalg.solve (independent of the Cholesky path); the mutants
    "max over unpicked rows only", "Hessian at theta_true" and "ridge 1 instead of gamma" give
    other values (checked); ``design_variance_ceiling`` = max ||phi||^2 / gamma (theory.bounds),
    above every measured value. None of these rows without ``record_kappa``."""
    from sim.dpo import sigmoid
    from sim.experiment import SELECTOR_STREAM, build_env, run_cell
    from sim.selectors import make_selector
    from sim.validation import rng_for
    from theory.bounds import theorem4_ceiling

    env = {"kind": "gaussian", "N": 150, "d": 3, "beta": 0.5, "theta_norm": 1.0}  # ||phi|| ~ 1
    method, budgets, seed, gamma = {"name": "adpo", "n_candidates": 8, "gamma": 0.3}, [2, 8, 24], 1, 0.3
    rows = run_cell(env, {**method, "record_kappa": True, "series": ["kappa_t"]}, seed, budgets)
    got = {k: {r["n"]: r["value"] for r in rows if r["metric"] == k}
           for k in ("kappa_t", "kappa_max", "max_design_variance", "design_variance_ceiling")}
    data = build_env(env, seed)
    sel = make_selector("adpo", data, seed=rng_for(seed, SELECTOR_STREAM), record_kappa=True,
                        n_candidates=8, gamma=gamma, fit_ridge=data.info["fit_ridge"],
                        radius=data.info["radius"])
    idx = sel.select(budgets[-1])
    kappa = sel.kappa_
    assert len(set(np.round(kappa, 12))) > 2  # varies: a shifted series would not match
    assert got["kappa_t"] == {t: kappa[t - 1] for t in range(1, budgets[-1] + 1)}
    assert got["kappa_max"] == {n: max(got["kappa_t"][t] for t in range(1, n + 1)) for n in budgets}

    def variance(n, theta=data.theta_star, rows_=slice(None), ridge=gamma):
        p, s = data.phi, idx[:n]
        w = data.beta**2 * sigmoid(data.beta * (p[s] @ theta - data.b[s]))
        w = w * (1 - sigmoid(data.beta * (p[s] @ theta - data.b[s])))
        sigma = ridge * np.eye(data.d) + (p[s] * w[:, None]).T @ p[s]
        q = np.einsum("ij,ji->i", p, np.linalg.solve(sigma, p.T))
        return q[rows_].max()

    measured = np.array([got["max_design_variance"][n] for n in budgets])
    assert measured == pytest.approx([variance(n) for n in budgets], rel=1e-10)
    mutants = {"unpicked rows only": [variance(n, rows_=np.setdiff1d(np.arange(data.N), idx[:n]))
                                      for n in budgets],
               "theta_true": [variance(n, theta=data.theta_true) for n in budgets],
               "ridge 1": [variance(n, ridge=1.0) for n in budgets]}
    for name, values in mutants.items():
        assert np.abs(np.array(values) / measured - 1).max() > 1e-6, name
    for n in budgets:
        ceiling = theorem4_ceiling(gamma, float(np.linalg.norm(data.phi, axis=1).max()))
        assert got["design_variance_ceiling"][n] == pytest.approx(ceiling, rel=1e-12)
        assert got["max_design_variance"][n] < ceiling
    assert abs(np.linalg.norm(data.phi, axis=1).max() - 1) > 0.1  # so ||phi|| vs ||phi||^2 shows
    plain = run_cell(env, method, seed, budgets)
    assert not {r["metric"] for r in plain} & set(got)
    unasked = run_cell(env, {**method, "record_kappa": True}, seed, budgets)  # no series asked
    assert {r["metric"] for r in unasked} & set(got) == set(got) - {"kappa_t"}
    with pytest.raises(ValueError, match="method.series: 'adpo' did not record 'kappa_t'"):
        run_cell(env, {**method, "series": ["kappa_t"]}, seed, budgets)


@pytest.mark.parametrize("series, msg", [("kappa_t", "expected a list"),
                                         (["kappa"], "'kappa' - list each series once"),
                                         (["kappa_t", "kappa_t"], "'duplicates'")])
def test_sweep_refuses_bad_series_before_running(series, msg):
    """A method's ``series`` is checked against sim.experiment.SELECTOR_SERIES when the sweep is
    parsed (nothing runs); it is not passed to the selector as an option."""
    cfg = {"seeds": [0], "budgets": [4], "env": {"kind": "gaussian", "N": 16, "d": 2},
           "methods": [{"name": "adpo", "record_kappa": True, "series": series}]}
    with pytest.raises(ValueError, match=rf"methods\[0\]\.series: .*{msg}"):
        parse_sweep(cfg)
    assert parse_sweep({**cfg, "methods": [{**cfg["methods"][0], "series": ["kappa_t"]}]}).cells()


def test_run_cell_without_fit_keeps_every_selector_row_and_fits_nothing(monkeypatch):
    """``fit = false``: the rows are exactly those of the default cell whose metrics need no
    theta_hat_n (env facts, the selector's metrics and series; ``seconds`` aside, a wall time),
    and no fit runs (fit_dpo replaced by a raising stub: the default cell goes red on it, so the
    stub is reached when a cell fits). Bad values and fit metrics without a fit are refused."""
    from sim import experiment
    from sim.experiment import run_cell

    env = {"kind": "gaussian", "N": 150, "d": 3, "beta": 0.5, "theta_norm": 1.0}
    method = {"name": "adpo", "n_candidates": 8, "record_kappa": True, "series": ["kappa_t"]}
    full = run_cell(env, method, 1, [2, 8, 24])

    def no_fit(*args, **kwargs):
        raise AssertionError("fit_dpo called")

    monkeypatch.setattr(experiment, "fit_dpo", no_fit)
    with pytest.raises(AssertionError, match="fit_dpo called"):
        run_cell(env, method, 1, [2, 8, 24])
    lean = run_cell(env, {**method, "fit": False}, 1, [2, 8, 24])
    fitted = set(experiment.METRICS + experiment.TRUE_METRICS) - {"seconds"}
    assert fitted <= {r["metric"] for r in full}
    keep = [r for r in full if r["metric"] not in fitted | {"seconds"}]
    assert [r for r in lean if r["metric"] != "seconds"] == keep
    assert {r["n"] for r in lean if r["metric"] == "seconds"} == {2, 8, 24}
    with pytest.raises(ValueError, match="method.fit: expected true or false"):
        run_cell(env, {**method, "fit": "no"}, 1, [2])
    with pytest.raises(ValueError, match="fit_metrics"):
        run_cell(env, {**method, "fit": False}, 1, [2], fit_metrics=("max_logit_sd",))
    with pytest.raises(ValueError, match=r"methods\[0\].fit"):
        make_sweep(env, [{**method, "fit": 0}], [0], budgets=[2])
