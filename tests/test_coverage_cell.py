"""Theorem 3's coverage as a runner cell kind (``cell = "coverage"``, theory.coverage).

One cell is one trial: fresh labels on the features of the env table's fixed ``seed``. Checked:
the cells run, cache and resume through sim.runner; each cell's norm equals a literal
re-implementation (scipy's minimizer for the unregularized MLE, Sigma_n written out), which
rejects a ridge in the estimator, labels reused across trials and a Sigma_n without gamma; the
cells repeat coverage_study's trials (whose coverage statistic tests/test_theory_coverage.py
checks statistically); bad tables fail in one line naming the key.
"""

from importlib import metadata

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.special import expit, log_expit

from sim import fingerprint
from sim.envs import make_env
from sim.runner import cell_kind, env_config, make_sweep, parse_sweep, run_sweep
from sim.validation import rng_for
from theory import coverage

ENV = {"kind": "gaussian", "N": 200, "d": 2, "seed": 3, "theta_norm": 0.5, "ref_norm": 1.0,
       "assumption2": True, "label": "g"}
METHODS = [{"name": "uniform", "label": "uniform"},
           {"name": "adpo", "label": "adpo", "gamma": 1.0, "n_candidates": 16}]


def env_data(env=ENV):
    opts = {k: v for k, v in env.items() if k not in ("kind", "label", "seed")}
    return make_env(env["kind"], seed=env["seed"], **opts)


def test_coverage_cells_run_cache_and_resume_through_the_runner(tmp_path):
    sweep = make_sweep(ENV, METHODS, [0, 1, 2], budgets=[40, 80], cell="coverage")
    first = run_sweep(sweep, tmp_path)
    assert first.n_ran == 6 and first.n_skipped == 0
    again = run_sweep(sweep, tmp_path)
    assert again.n_ran == 0 and again.n_skipped == 6
    assert again.table.equals(first.table)
    t = first.table
    assert set(t.metric) == set(coverage.COVERAGE_METRICS) and set(t.n) == {40, 80}
    assert len(t) == 2 * 3 * 2 * len(coverage.COVERAGE_METRICS)
    # The cells are coverage_study's trials: trial r on the stream (env seed + 1, r). Mutant
    # rejected: a stream from the cell seed alone (rng_for(r)) gives other norms.
    data = env_data()
    for m in METHODS:
        kw = {} if m["name"] == "uniform" else {"selector_kwargs": {"n_candidates": 16}}
        study = coverage.coverage_study(data, 80, trials=3, seed=ENV["seed"] + 1,
                                        method=m["name"], **kw)
        got = t[(t.method == m["label"]) & (t.metric == "norm") & (t.n == 80)].sort_values("seed")
        np.testing.assert_array_equal(got.value.to_numpy(), study.norms)


def reference_trial(data, n, trial, gamma=1.0):
    """Literal Theorem 3 trial for uniform S_n: labels and S_n from the stream (f + 1, trial),
    theta_hat = scipy's minimizer of the unregularized sum of -log-likelihoods (interior of
    the unit ball here), Sigma_n = gamma I + beta^2 sum mu(1 - mu) phi phi^T at theta_*."""
    rng = np.random.default_rng(np.random.SeedSequence([ENV["seed"] + 1, trial]))
    th, beta = data.theta_true, data.beta
    s = (rng.random(data.N) < expit(beta * (data.phi @ th - data.b))).astype(float)
    idx = rng.choice(data.N, size=n, replace=False)
    phi, b, y = data.phi[idx], data.b[idx], s[idx]

    def nll(t):
        z = beta * (phi @ t - b)
        p = expit(z)
        return (-np.sum(y * log_expit(z) + (1 - y) * log_expit(-z)),
                beta * phi.T @ (p - y),
                beta ** 2 * (phi * (p * (1 - p))[:, None]).T @ phi)

    res = minimize(lambda t: nll(t)[0], np.zeros(data.d), jac=lambda t: nll(t)[1],
                   hess=lambda t: nll(t)[2], method="trust-exact", options={"gtol": 1e-12})
    assert np.linalg.norm(res.x) < 1  # the ball constraint is inactive: this is its minimizer
    w = expit(beta * (phi @ th - b))
    sigma = gamma * np.eye(data.d) + beta ** 2 * (phi * (w * (1 - w))[:, None]).T @ phi
    e = res.x - th
    return float(np.sqrt(e @ sigma @ e))


def cell_norms(trials=(0, 1), n=80):
    return [coverage.run_coverage_cell(ENV, METHODS[0], r, [n]) for r in trials]


def _norm(rows):
    return next(r["value"] for r in rows if r["metric"] == "norm")


def test_cell_norms_match_a_literal_reimplementation():
    data = env_data()
    for r, rows in zip((0, 1), cell_norms()):
        assert _norm(rows) == pytest.approx(reference_trial(data, 80, r), rel=1e-7)


def _ridged(phi, b, beta, s):
    from sim.dpo import fit_dpo

    return fit_dpo(phi, b, beta, s, fit_ridge=1e-3, radius=1.0).theta, False


@pytest.mark.parametrize("mutant", ["fit_ridge 1e-3", "labels reused", "Sigma without gamma"])
def test_the_reference_rejects_mutant_cells(monkeypatch, mutant):
    if mutant == "fit_ridge 1e-3":
        monkeypatch.setattr(coverage, "fit_unit_ball", _ridged)
    elif mutant == "labels reused":  # every trial on trial 0's stream
        monkeypatch.setattr(coverage, "trial_stream",
                            lambda env, seed: rng_for(int(env["seed"]) + 1, 0))
    else:
        real = coverage.dpo_hessian
        monkeypatch.setattr(coverage, "dpo_hessian",
                            lambda *a, ridge=0.0: real(*a))
    data = env_data()
    diffs = [abs(_norm(rows) / reference_trial(data, 80, r) - 1)
             for r, rows in zip((0, 1), cell_norms())]
    assert max(diffs) > 1e-5, diffs


def test_registered_from_theory_and_found_through_the_entry_point():
    assert cell_kind("coverage").fn is coverage.run_coverage_cell
    eps = {ep.name: ep.value for ep in metadata.entry_points(group="adpo.cells")}
    assert eps.get("coverage") == "theory.coverage"
    # Its cells' code covers the whole theory package it imports (constants, bounds), not
    # only theory/coverage.py. Mutant rejected: the module file alone.
    names = {n for n, _ in fingerprint.source_files(
        fingerprint.package_source(coverage.run_coverage_cell))}
    assert {"theory/coverage.py", "theory/constants.py", "theory/bounds.py"} <= names


def test_only_coverage_cells_take_an_env_seed():
    """The env table's seed fixes the features of every trial (the cells' agreement with
    coverage_study on env seed 3 above checks that build_env uses it); a selection sweep,
    whose cell seed is the environment's draw, still refuses the key."""
    cfg = {"seeds": 2, "budgets": [8], "env": dict(ENV), "methods": [{"name": "uniform"}]}
    assert parse_sweep(dict(cfg, cell="coverage")).envs[0]["seed"] == 3
    with pytest.raises(ValueError, match=r"env\.seed: not an option"):
        parse_sweep(cfg)
    assert env_config(ENV, env_seed=True).N == 200
    from sim.experiment import build_env

    np.testing.assert_array_equal(build_env(ENV, 99).phi, env_data().phi)  # not seed 99


def _sweep(method=None, env=None, **top):
    cfg = {"cell": "coverage", "seeds": 2, "budgets": [8], "env": env or dict(ENV),
           "methods": [method or {"name": "uniform"}], **top}
    return parse_sweep(cfg)


@pytest.mark.parametrize("method, env, msg", [
    ({"name": "adpo", "fit_ridge": 0.1}, None, r"methods\[0\]\.fit_ridge: not a coverage"),
    ({"name": "adpo", "radius": 2.0}, None, r"methods\[0\]\.radius: not a coverage"),
    ({"name": "apo", "replace": True}, None, r"methods\[0\]\.replace: not a coverage"),
    ({"name": "uniform", "n_candidates": 8}, None, r"methods\[0\]\.n_candidates: uniform"),
    ({"name": "adpo", "gamma": -1.0}, None, r"methods\[0\]\.gamma: must be > 0"),
    ({"name": "adpo", "alpah": 1.0}, None, r"methods\[0\] \(adpo\)\.alpah: not an option"),
    ({"name": "rank-uniform"}, None, r"methods\[0\]\.name: 'rank-uniform' ranks prompts"),
    (None, dict(ENV, seed=-1), r"env\.seed: expected an integer"),
    (None, dict(ENV, seed="0"), r"env\.seed: expected an integer"),
])
def test_bad_coverage_tables_fail_in_one_line(method, env, msg):
    with pytest.raises(ValueError, match=msg) as exc:
        _sweep(method, env)
    assert "\n" not in str(exc.value)


def test_cells_refuse_environments_they_cannot_score():
    data = env_data()
    with pytest.raises(ValueError, match="theta_true"):
        coverage.run_coverage_cell(ENV, {"name": "uniform"}, 0, [8],
                                   data=data.with_(theta_true=None))
    with pytest.raises(ValueError, match="env.holdout"):
        coverage.run_coverage_cell(dict(ENV, holdout=0.5), {"name": "uniform"}, 0, [8])


def test_the_figure_declares_its_trials_in_the_runner_schema_at_every_scale():
    import dataclasses

    from figures import common
    from figures import fig_theory_coverage as fig

    for scale in common.SCALES:
        sweep, opts = common.load_sweep_config(fig.NAME, scale, fig.OPTIONS)
        cfg = fig.coverage_setting(sweep, opts)
        assert sweep.cell == "coverage" and cfg["seed"] == 0 and cfg["gamma"] == 1.0
        assert cfg["methods"] == ["uniform", "adpo"] and cfg["trials"] == len(sweep.cells()) // 2
    # the default scale is the setting of the committed sidecar (before the runner)
    sweep, opts = common.load_sweep_config(fig.NAME, "default", fig.OPTIONS)
    cfg = fig.coverage_setting(sweep, opts)
    assert {k: cfg[k] for k in ("N", "d", "beta", "n", "trials")} == {
        "N": 2000, "d": 2, "beta": 1.0, "n": 1000, "trials": 50}
    with pytest.raises(ValueError, match="budgets: the figure shows one budget"):
        fig.coverage_setting(dataclasses.replace(sweep, budgets=((500, 1000),)), opts)
    with pytest.raises(ValueError, match="figure.deltas"):
        fig.coverage_setting(sweep, {"deltas": [0.0, 0.5]})


def test_cli_sweep_runs_coverage_cells_and_dry_run_counts_them(tmp_path, capsys):
    """``adpo sweep`` on a coverage sweep; the dry run counts finished cells by the keys of
    the sweep's kind (it used run_cell's keys for every kind, so finished coverage, design and
    stop cells were reported as still to run)."""
    from adpo.cli import main as cli_main

    cfg = tmp_path / "cov.toml"
    cfg.write_text('cell = "coverage"\nseeds = 2\nbudgets = [16]\n[env]\nkind = "gaussian"\n'
                   'seed = 0\nN = 64\nd = 2\nassumption2 = true\ntheta_norm = 1.0\n'
                   '[[methods]]\nname = "uniform"\n')
    out = str(tmp_path / "out")
    assert cli_main(["sweep", str(cfg), "--out", out, "--quiet"]) == 0
    assert "2 cell(s) run" in capsys.readouterr().out
    assert cli_main(["sweep", str(cfg), "--out", out, "--dry-run"]) == 0
    assert "2 cells; 0 to run, 2 finished" in capsys.readouterr().out
