"""The design cell kind of the runner (sim.experiment.run_design_cell, ``cell = "design"``):
scores checked against independent enumerations and closed forms, timings by the timing rule
and never served from the store, declarations validated through the one solver table."""

import itertools
import types

import numpy as np
import pytest

import sim.timing
from sim import runner
from sim.data import PreferenceData
from sim.experiment import d_efficiency, design_config, run_design_cell

ENV = {"kind": "gaussian", "N": 9, "d": 3, "label": "pool"}


def _pool(V):
    return PreferenceData(phi=np.asarray(V, float), b=np.zeros(len(V)))


def _by_metric(rows):
    return {(r["n"], r["metric"]): r["value"] for r in rows}


def test_scores_match_an_independent_enumeration():
    """brute's logdet is the best log det(gamma I + V_S^T V_S) over every n-subset (enumerated
    here with slogdet), greedy's and random's are those of some n-subset and no larger; the
    rounded relaxed design sits below the relaxed bound: log det <= d log n + log det M*.
    Mutants rejected: scoring without the subset (the full pool), a wrong d log n term."""
    V = np.random.default_rng(5).standard_normal((9, 3))
    data, gamma = _pool(V), 1e-9
    every = {n: sorted(np.linalg.slogdet(gamma * np.eye(3) + V[list(S)].T @ V[list(S)])[1]
                       for S in itertools.combinations(range(9), n)) for n in (3, 5)}
    got = {m: _by_metric(run_design_cell(ENV, {"name": m, "gamma": gamma}, 0, [3, 5], data=data))
           for m in ("brute", "greedy", "random")}
    fw = _by_metric(run_design_cell(ENV, {"name": "fw", "gamma": gamma, "round": True,
                                          "efficiency": 1 - 1e-9}, 0, [3, 5], data=data))
    for n in (3, 5):
        assert got["brute"][n, "logdet"] == pytest.approx(every[n][-1], abs=1e-10)
        for m in ("greedy", "random"):
            assert min(abs(np.array(every[n]) - got[m][n, "logdet"])) < 1e-10
            assert got[m][n, "logdet"] <= every[n][-1] + 1e-10
        assert fw[n, "certificate"] >= 1 - 1e-9
        eff = d_efficiency(got["brute"][n, "logdet"], fw[n, "relaxed_logdet"], n, 3)
        assert eff <= 1 + 1e-9 and eff > 0.5
        assert fw[n, "logdet"] <= got["brute"][n, "logdet"] + 1e-10


def test_d_efficiency_closed_form():
    """V = I_d: M* = I/d (log det = -d log d); the n = d design of all rows has efficiency 1,
    and one row taken twice as often (n = 2d, logdet of 2I) also 1; a half-scaled row set 1/2."""
    d = 4
    V = np.eye(d)
    rows = run_design_cell({"kind": "gaussian", "N": d, "d": d},
                           {"name": "fw", "gamma": 1e-12}, 0, [d], data=_pool(V))
    ld_star = _by_metric(rows)[d, "relaxed_logdet"]
    assert ld_star == pytest.approx(-d * np.log(d), abs=1e-9)
    assert d_efficiency(0.0, ld_star, d, d) == pytest.approx(1.0)
    assert d_efficiency(d * np.log(2.0), ld_star, 2 * d, d) == pytest.approx(1.0)
    assert d_efficiency(d * np.log(0.25), ld_star, d, d) == pytest.approx(0.25)


def test_seeds_and_streams():
    """Same seed, same rows; the solver's stream is not the env's: the random design differs
    across seeds on one fixed pool (data given), and the pool differs across seeds."""
    m = {"name": "random", "gamma": 1.0}
    a = run_design_cell(ENV, m, 3, [4])
    assert a == run_design_cell(ENV, m, 3, [4])
    data = _pool(np.random.default_rng(0).standard_normal((9, 3)))
    picks = {run_design_cell(ENV, m, s, [4], data=data)[0]["value"] for s in range(6)}
    assert len(picks) > 1
    assert run_design_cell(ENV, m, 4, [4])[0]["value"] != a[0]["value"]


def test_repeats_time_by_the_timing_rule(monkeypatch):
    """Fake clock: a warm-up, then the median of 3 timed solves (1, 7, 2 s) -> 2 s; without
    repeats no time is recorded. Mutants rejected: the mean (3.33), no warm-up (3 solves)."""
    import sim.design.greedy as greedy

    ticks = iter([0, 1, 10, 17, 20, 22])
    monkeypatch.setattr(sim.timing, "time", types.SimpleNamespace(perf_counter=lambda: next(ticks)))
    solves = []
    real = greedy.greedy_select
    monkeypatch.setattr(greedy, "greedy_select", lambda *a, **k: solves.append(1) or real(*a, **k))
    rows = _by_metric(run_design_cell(ENV, {"name": "greedy", "repeats": 3}, 0, [4]))
    assert rows[4, "seconds"] == 2 and len(solves) == 4
    assert (4, "seconds") not in _by_metric(run_design_cell(ENV, {"name": "greedy"}, 0, [4]))


def test_max_size_gives_no_rows():
    assert run_design_cell(ENV, {"name": "greedy", "max_N": 8}, 0, [3]) == []
    assert run_design_cell(ENV, {"name": "greedy", "max_d": 2}, 0, [3]) == []
    assert run_design_cell(ENV, {"name": "greedy", "max_N": 9, "max_d": 3}, 0, [3])


def _sweep(**extra):
    cfg = {"cell": "design", "seeds": [0, 1], "env": dict(ENV, budgets=[3]),
           "methods": [{"name": "greedy"}, {"name": "fw", "label": "timed", "repeats": 3}]}
    return runner.parse_sweep({**cfg, **extra})


def test_runner_reruns_measurements_and_serves_results(tmp_path, monkeypatch):
    """Results come from the store on a rerun; timed cells (repeats) are recomputed every run,
    Mutant rejected: a runner that serves timed cells from the store."""
    sweep = _sweep()
    assert sweep.cell == "design" and sweep.budgets == ((3,),)
    first = runner.run_sweep(sweep, tmp_path)
    assert first.n_ran == 4
    again = runner.run_sweep(sweep, tmp_path)
    assert (again.n_ran, again.n_skipped) == (2, 2)
    t = again.table
    assert set(t[t.metric == "seconds"].method) == {"timed"}
    same = lambda df: df[df.metric != "seconds"].reset_index(drop=True)  # noqa: E731
    assert same(first.table).equals(same(t))


@pytest.mark.parametrize("edit, msg", [
    ({"cell": "desing"}, "cell: one of select, design"),
    ({"methods": [{"name": "gredy"}]}, r"methods\[0\].name: .*did you mean 'greedy'.*choose one of"),
    ({"methods": [{"name": "greedy", "alpha": 1}]}, r"methods\[0\] \(greedy\).alpha: not an "
     r"option.*its options are: gamma, candidates"),
    ({"methods": [{"name": "greedy", "round": True}]}, r"round: .*'greedy' is exact"),
    ({"methods": [{"name": "fw", "repeats": 2}]}, r"methods\[0\] \(fw\).repeats"),
    ({"methods": [{"name": "fw", "efficiency": 1.5}]}, r"efficiency: a float in \(0, 1\)"),
    ({"methods": [{"name": "brute", "backend": "torch"}]}, "backend"),
    ({"env": dict(ENV, budgets=[10])}, "exceeds the environment's N = 9"),
])
def test_declarations_are_validated_before_work(edit, msg):
    with pytest.raises(ValueError, match=msg):
        _sweep(**edit)


def test_env_budgets_override_the_top_level():
    sweep = runner.parse_sweep({"cell": "design", "seeds": [0], "budgets": [2], "methods":
                                [{"name": "greedy"}],
                                "env": [dict(ENV, budgets=[3, 4]), dict(ENV, label="b")]})
    assert sweep.budgets == ((3, 4), (2,)) and all("budgets" not in e for e in sweep.envs)


def test_design_config_reads_the_solver_table():
    entry, opts, keys = design_config({"name": "fw", "efficiency": 0.9, "round": True,
                                       "dtype": "float32"})
    assert entry.name == "fw" and opts.efficiency == 0.9 and opts.dtype is np.float32
    assert keys == {"round": True}


@pytest.mark.parametrize("name, options", [("design_quality", {}),
                                           ("design_scaling", {"Ns": [], "d_fixed": 0, "ds": [],
                                                               "N_fixed": 0})])
def test_design_figures_declare_valid_design_sweeps(name, options):
    """Every scale of both design figures parses as a design sweep, each method in its own
    registered colour/marker (the solver table's styles, distinct, none the black default)."""
    from figures import common

    for scale in common.SCALES:
        sweep, _ = common.load_sweep_config(name, scale, options)
        assert sweep.cell == "design" and sweep.cells()
        styles = common.sweep_styles(sweep)
        assert len(set(styles.values())) == len(styles) and ("black", ".") not in styles.values()
