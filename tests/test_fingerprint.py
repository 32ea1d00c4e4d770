"""Caches that know the code: sim.fingerprint keys for runner cells and figure caches, and the
loud (not silent) config-check fallback of the runner."""

import shutil
import tomllib
import warnings

import numpy as np
import pytest

from sim import fingerprint, runner
from sim.experiment import run_cell
from sim.runner import Cell, make_sweep, parse_sweep, run_sweep

CELL = Cell({"kind": "gaussian", "N": 48, "d": 3}, {"name": "adpo"}, 0, (8, 16))


def toy(env, method, seed, budgets):
    return [{"env": env["kind"], "method": method["name"], "seed": seed, "n": n, "metric": "m",
             "value": float(n)} for n in budgets]


@pytest.fixture
def sim_copy(tmp_path, monkeypatch):
    """A throw-away copy of the sim package that the fingerprint reads instead of sim/."""
    copy = tmp_path / "src" / "sim"
    shutil.copytree(fingerprint.SIM_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(fingerprint, "SIM_DIR", copy)
    return copy


def _selector_file(pkg):
    """The file defining the selectors (a module today; a package after the engine refactor)."""
    return next(p for p in (pkg / "selectors" / "greedy.py", pkg / "selectors.py") if p.exists())


def test_copy_has_the_same_fingerprint_and_editing_a_selector_changes_it(sim_copy):
    before = CELL.key(run_cell)
    real = fingerprint.pathlib.Path(runner.__file__).parent
    assert fingerprint.source_fingerprint(sim_copy) == fingerprint.source_fingerprint(real)
    f = _selector_file(sim_copy)
    f.write_text(f.read_text().replace("return", "return  ", 1))  # a one-token source edit
    assert CELL.key(run_cell) != before
    # the configuration part still matters on its own
    assert Cell(CELL.env, CELL.method, 1, CELL.budgets).key(run_cell) != CELL.key(run_cell)


def test_editing_a_selector_reruns_the_cells(sim_copy, tmp_path):
    """End to end: a second run skips every cell; after a selector edit it recomputes all.
    Mutant rejected: a key of the configuration only (the old scheme) skips them."""
    sweep = make_sweep({"kind": "gaussian", "N": 48, "d": 3}, ["uniform", "adpo"], [0, 1],
                       budgets=[8])
    out = tmp_path / "out"
    assert run_sweep(sweep, out, cell_fn=toy).n_ran == 4
    assert run_sweep(sweep, out, cell_fn=toy).n_ran == 0
    f = _selector_file(sim_copy)
    f.write_text(f.read_text() + "\n# edited\n")
    assert run_sweep(sweep, out, cell_fn=toy).n_ran == 4


def test_figure_script_edit_changes_figure_cache_not_runner_cells(tmp_path, monkeypatch):
    from figures import common

    figs = tmp_path / "figures"
    figs.mkdir()
    script = figs / "fig_design_quality.py"
    shutil.copy(common.HERE / "fig_design_quality.py", script)
    monkeypatch.setattr(common, "HERE", figs)
    monkeypatch.setattr(common, "CACHE_ROOT", tmp_path / "cache")
    calls = []

    def compute():
        calls.append(1)
        return {"x": np.arange(2.0)}

    cell_key = CELL.key(run_cell)
    common.cached("design_quality", {"n": 1}, compute)
    common.cached("design_quality", {"n": 1}, compute)
    assert len(calls) == 1
    script.write_text(script.read_text() + "\n# edited\n")
    common.cached("design_quality", {"n": 1}, compute)
    assert len(calls) == 2  # the figure's own cache follows its script
    assert CELL.key(run_cell) == cell_key  # the runner's cells do not


def test_cell_function_outside_sim_is_fingerprinted(tmp_path, monkeypatch):
    mod = tmp_path / "mycells.py"
    mod.write_text(
        "def cell(env, method, seed, budgets):\n    return []\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import mycells

    k1 = CELL.key(mycells.cell)
    mod.write_text(mod.read_text() + "# edited\n")
    assert CELL.key(mycells.cell) != k1


def test_fingerprint_names_missing_sources():
    with pytest.raises(ValueError, match="no such source"):
        fingerprint.source_fingerprint("/nonexistent/pkg")


def test_config_check_builds_nothing(monkeypatch):
    """The config check validates each env's options through its registry config and builds
    no environment (so no proxy-size build can fail or be skipped): a make_env that raises is
    never reached by parse_sweep, while a bad option is still refused."""
    import sim.envs

    def broken(kind, **kw):
        raise RuntimeError("no convergence at N = 64")

    monkeypatch.setattr(sim.envs, "make_env", broken)
    cfg = tomllib.loads('seeds = [0]\nbudgets = [8]\n[env]\nkind = "gaussian"\nN = 48\nd = 3\n'
                        '[[methods]]\nname = "uniform"\n')
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert parse_sweep(cfg).check_warnings == ()
    cfg["env"]["d"] = 0
    with pytest.raises(ValueError, match="env.d: must be >= 1"):
        parse_sweep(cfg)
