"""Ranking pools through the registries and the CLI: ``adpo env --kind ranking``, ``adpo select``
with the rank-* methods (and the refusals across data kinds), ``adpo fit`` (Plackett-Luce)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from adpo.cli import main
from sim.envs import gaussian_env, make_env
from sim.ranking import RANKING_NPZ_KEYS, RankingData, fit_pl, load_pool, ranking_env
from sim.ranking_select import RankingSelector, ranking_logit_errors
from sim.registry import METHODS


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    path = tmp_path_factory.mktemp("rank") / "r.npz"
    assert main(["env", "--kind", "ranking", "--M", "60", "--K", "3", "--d", "3", "--seed", "4",
                 "--out", str(path)]) == 0
    return path


def test_env_writes_the_documented_keys_and_equals_the_library_env(pool):
    with np.load(pool) as f:
        assert sorted(f.files) == sorted(RANKING_NPZ_KEYS)
        assert f["psi"].shape == (60, 3, 3) and f["rankings"].shape == (60, 3)
    data = load_pool(str(pool))
    ref = ranking_env(60, 3, 3, seed=4)
    assert isinstance(data, RankingData)
    for key in RANKING_NPZ_KEYS[:1] + RANKING_NPZ_KEYS[3:]:
        np.testing.assert_array_equal(getattr(data, key), getattr(ref, key))
    # determinism and refusals (the env contracts that apply to a ranking pool)
    a, b = make_env("ranking", seed=1, M=20, K=2, d=2), make_env("ranking", seed=1, M=20, K=2, d=2)
    np.testing.assert_array_equal(a.rankings, b.rankings)
    with pytest.raises(ValueError, match="K"):
        make_env("ranking", seed=0, M=20, K=1, d=2)
    with pytest.raises(ValueError, match="nope"):
        make_env("ranking", seed=0, M=20, nope=1)


@pytest.mark.parametrize("rule", ["adpo", "adpo+", "oracle", "d-opt"])
def test_select_runs_the_registered_ranking_selector(pool, tmp_path, rule):
    out = tmp_path / "s.json"
    assert main(["select", "--data", str(pool), "--method", f"rank-{rule}", "--n", "8",
                 "--design-ridge", "0.5", "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    data = load_pool(str(pool))
    ref = RankingSelector(data, rule, seed=0, gamma=0.5)
    assert res["indices"] == ref.select(8, rankings=data.rankings).tolist()
    assert res["logdet"] is None and res["weighted_logdet"] == pytest.approx(ref.logdet_)
    assert res["options"]["gamma"] == 0.5


def test_methods_of_the_other_data_kind_are_refused_in_one_line(pool, tmp_path, capsys):
    pairs = tmp_path / "g.npz"
    gaussian_env(40, 3, seed=0).save(str(pairs))
    assert main(["select", "--data", str(pool), "--method", "adpo", "--n", "3"]) != 0
    err = capsys.readouterr().err.strip()
    assert "ranking pool" in err and "rank-adpo" in err and len(err.splitlines()) == 1
    assert main(["select", "--data", str(pairs), "--method", "rank-adpo", "--n", "3"]) != 0
    err = capsys.readouterr().err.strip()
    assert "pairwise method" in err and len(err.splitlines()) == 1
    assert main(["select", "--data", str(pool), "--method", "rank-adpo", "--n", "3",
                 "--stop-below", "0.5"]) != 0
    assert {e.name for e in METHODS if "ranking" in e.tags} == {
        "rank-adpo", "rank-adpo+", "rank-oracle", "rank-d-opt", "rank-uniform"}


def test_fit_is_the_plackett_luce_mle_on_the_selected_prompts(pool, tmp_path):
    sub = tmp_path / "sub.json"
    sub.write_text(json.dumps({"indices": list(range(0, 60, 3))}))
    out = tmp_path / "f.json"
    assert main(["fit", "--data", str(pool), "--subset", str(sub), "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    data = load_pool(str(pool))
    idx = np.arange(0, 60, 3)
    theta = fit_pl(data.psi[idx], data.b[idx], data.beta, data.rankings[idx], fit_ridge=1e-3).theta
    np.testing.assert_allclose(res["theta_hat"], theta, rtol=1e-10, atol=1e-12)
    # the subset is honoured: the fit on all rows (a mutant ignoring --subset) differs
    every = fit_pl(data.psi, data.b, data.beta, data.rankings, fit_ridge=1e-3).theta
    assert np.max(np.abs(every - theta)) > 1e-3
    assert res["n"] == 20 and res["model"] == "plackett-luce" and res["converged"]
    mx, mean = ranking_logit_errors(data, theta, data.theta_star)
    assert res["metrics"]["max_logit_error_theta_star"] == pytest.approx(mx, rel=1e-10)
    assert main(["fit", "--data", str(pool), "--radius", "1"]) != 0


def test_sweeps_run_ranking_pools_and_refuse_mixed_kinds_in_one_line():
    from sim.runner import parse_sweep
    base = {"seeds": 1, "budgets": [4]}
    sweep = parse_sweep(dict(base, env={"kind": "ranking", "M": 10, "K": 3, "d": 2},
                             methods=[{"name": "rank-adpo"}, {"name": "rank-uniform"}]))
    assert len(sweep.cells()) == 2
    with pytest.raises(ValueError, match=r"^methods\[0\].name: 'adpo' selects pairs but env\[0\] "
                                         r"\(kind 'ranking'\) is a ranking pool"):
        parse_sweep(dict(base, env={"kind": "ranking", "M": 10}, methods=[{"name": "adpo"}]))
    with pytest.raises(ValueError, match=r"^methods\[1\].name: 'rank-adpo' selects prompts of a "
                                         r"ranking pool but env\[0\] \(kind 'gaussian'\)"):
        parse_sweep(dict(base, env={"kind": "gaussian", "N": 10, "d": 2},
                         methods=[{"name": "uniform"}, {"name": "rank-adpo"}]))
    with pytest.raises(ValueError, match=r"exceeds the environment's N = 10"):  # N: M prompts
        parse_sweep(dict(base, budgets=[16], env={"kind": "ranking", "M": 10},
                         methods=[{"name": "rank-adpo"}]))


def test_ranking_cell_is_the_pl_fit_on_the_selected_prompts():
    """run_cell on a ranking pool: the rank-* selector's picks (seeded like every cell), the PL
    MLE on each prefix, the K-wise eq. 7 against theta_star — recomposed here by hand."""
    from sim.experiment import SELECTOR_STREAM, run_cell
    from sim.validation import rng_for
    env = {"kind": "ranking", "M": 40, "K": 3, "d": 2}
    data = make_env("ranking", seed=3, M=40, K=3, d=2)
    for rule in ("adpo", "uniform"):
        rows = run_cell(env, {"name": f"rank-{rule}"}, 3, [4, 12])
        got = {(r["n"], r["metric"]): r["value"] for r in rows}
        picks = RankingSelector(data, rule, seed=rng_for(3, SELECTOR_STREAM)).select(12)
        for n in (4, 12):
            theta = fit_pl(data.psi[picks[:n]], data.b[picks[:n]], data.beta,
                           data.rankings[picks[:n]], fit_ridge=1e-3).theta
            mx, mean = ranking_logit_errors(data, theta, data.theta_star)
            assert got[(n, "max_logit_error")] == pytest.approx(mx, rel=1e-12)
            assert got[(n, "mean_logit_error")] == pytest.approx(mean, rel=1e-12)
        # mutant: the same method seeded by the env's seed (not the cell's selector stream)
        # picks other prompts for uniform; the rows above would not match it
        if rule == "uniform":
            other = RankingSelector(data, rule, seed=3).select(12)
            assert not np.array_equal(other, picks)
    with pytest.raises(ValueError, match=r"^budgets: largest budget 41 exceeds the 40 prompts"):
        run_cell(env, {"name": "rank-adpo"}, 0, [41])


def test_ranking_methods_refuse_unknown_options_and_pairs_in_one_line():
    data = make_env("ranking", seed=0, M=20, K=3, d=2)
    from sim.selectors import make_selector
    with pytest.raises(ValueError, match=r"^replace: not an option of method 'rank-adpo'"):
        make_selector("rank-adpo", data, replace=True)
    with pytest.raises(ValueError, match=r"^data: ranking method 'adpo\+' selects prompts"):
        make_selector("rank-adpo+", gaussian_env(20, 2, seed=0))
