"""The stopping rule (sim.stopping) against an explicit-inverse reference and its trace."""

from __future__ import annotations

import json

import numpy as np
import pytest

from adpo.cli import main
from sim.dpo import fit_dpo, logistic_weight
from sim.envs import gaussian_env
from sim.selectors import LabelOracle, make_selector
from sim.stopping import max_logit_sd, select_until


def _reference_sd(data, idx, s, gamma, fit_gamma):
    theta = fit_dpo(data.phi[idx], data.b[idx], data.beta, s, fit_ridge=fit_gamma).theta
    X = data.phi[idx]
    w = data.beta**2 * logistic_weight(data.beta * (X @ theta - data.b[idx]))
    Hinv = np.linalg.inv(gamma * np.eye(data.d) + (X * w[:, None]).T @ X)
    return data.beta * np.sqrt(np.max(np.einsum("id,de,ie->i", data.phi, Hinv, data.phi)))


def _agrees(data, idx, gamma):
    return max_logit_sd(data, idx, data.s[idx], gamma=gamma) == pytest.approx(
        _reference_sd(data, idx, data.s[idx], gamma, 1e-3), rel=1e-8)


def test_max_logit_sd_matches_an_explicit_inverse_and_scales_with_beta(monkeypatch):
    data = gaussian_env(300, 4, seed=0, beta=2.0)
    idx = np.arange(0, 300, 3)
    assert _agrees(data, idx, 0.5)
    # mutants of sim.stopping, each seen to fail the same check: (1) sd without beta
    # (sqrt(phi^T H^{-1} phi): the variances divided by beta^2 = 4); (2) the Hessian without
    # Lemma 1's weights beta^2 mu (1 - mu) (H = gamma I + X^T X).
    import sim.stopping as S
    real = S.variances
    monkeypatch.setattr(S, "variances", lambda phi, L: real(phi, L) / data.beta**2)
    assert not _agrees(data, idx, 0.5)
    monkeypatch.setattr(S, "variances", real)
    monkeypatch.setattr(S, "dpo_hessian", lambda theta, X, b, beta, ridge: ridge * np.eye(
        X.shape[1]) + X.T @ X)
    assert not _agrees(data, idx, 0.5)
    monkeypatch.undo()
    assert _agrees(data, idx, 0.5)
    assert max_logit_sd(data, np.array([], dtype=np.int64), np.array([], dtype=np.int8),
                        gamma=4.0) == pytest.approx(2.0 * np.sqrt(
                            np.max(np.sum(data.phi**2, axis=1)) / 4.0))


def test_select_until_stops_at_the_first_check_below_target():
    data = gaussian_env(400, 3, seed=1)
    sel = make_selector("apo", data, seed=0)
    res = select_until(sel, LabelOracle(data.s), target=0.9, max_n=300, check_every=8)
    assert res.stopped
    n_last, sd_last = res.trace[-1]
    assert sd_last < 0.9 and all(sd >= 0.9 for _, sd in res.trace[:-1])
    assert n_last == len(res.indices) and n_last % 8 == 0
    idx = res.indices
    assert sd_last == pytest.approx(_reference_sd(data, idx, data.s[idx], 1.0, 1e-3), rel=1e-8)
    # an unreachable target runs out the budget and says so
    sel2 = make_selector("uniform", data, seed=0)
    res2 = select_until(sel2, LabelOracle(data.s), target=1e-3, max_n=40, check_every=20)
    assert not res2.stopped and len(res2.indices) == 40 and len(res2.trace) == 2
    with pytest.raises(ValueError, match="stop_below"):
        select_until(sel2, LabelOracle(data.s), target=0.0, max_n=5)


def test_a_design_reaches_the_target_with_fewer_labels_than_uniform():
    """The rule rewards designs that shrink the worst-case variance: on a Gaussian env APO
    (D-optimal on phi) reaches sd < 0.8 before Uniform in each of 3 seeds (measured n: see the
    assertion's message); a rule that ignored the design would not separate them."""
    for seed in range(3):
        data = gaussian_env(600, 4, seed=seed)
        n = {m: len(select_until(make_selector(m, data, seed=seed), LabelOracle(data.s), 0.8,
                                 600, check_every=10).indices) for m in ("apo", "uniform")}
        assert n["apo"] < n["uniform"], n


def test_stopping_keeps_the_selectors_picks_and_batches():
    """ADPO's picks with the rule are the prefix of select(n) (its refits see the same labels),
    also with batches that straddle the checks; a loop asking check_every rows at a time (the
    old one) would batch ADPO's picks differently and fails this."""
    data = gaussian_env(200, 3, seed=2)
    for batch, every in ((1, 5), (4, 6)):
        full = make_selector("adpo", data, seed=0, batch_size=batch).select(60)
        res = select_until(make_selector("adpo", data, seed=0, batch_size=batch),
                           LabelOracle(data.s), 1e-6, 60, check_every=every)
        assert res.indices.tolist() == full.tolist() and not res.stopped
        ends = list(range(batch, 61, batch))  # checks: the first batch end >= each multiple
        want = sorted({min(e for e in ends if e >= k) for k in range(every, 61, every)} | {60})
        assert [n for n, _ in res.trace] == want
        assert "budget" in res.reason


def test_select_command_stop_below(tmp_path):
    path, data = tmp_path / "g.npz", gaussian_env(300, 3, seed=1)
    data.save(str(path))
    out = tmp_path / "s.json"
    assert main(["select", "--data", str(path), "--method", "apo", "--n", "250",
                 "--stop-below", "0.9", "--check-every", "4", "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    ref = select_until(make_selector("apo", data, seed=0), LabelOracle(data.s), 0.9, 250,
                       check_every=4)
    assert res["stop"]["stopped"] and res["n"] == len(res["indices"]) == len(ref.indices) < 250
    assert res["indices"] == ref.indices.tolist() and res["n"] % 4 == 0
    assert res["stop"]["trace"][-1][1] < 0.9 <= res["stop"]["trace"][-2][1]
    assert "target met" in res["stop"]["reason"] and res["stop"]["budget"] == 250
    assert main(["select", "--data", str(path), "--method", "apo", "--n", "5",
                 "--stop-below", "0"]) == 2
    unlabelled = tmp_path / "u.npz"
    data.with_(s=None).save(str(unlabelled))
    assert main(["select", "--data", str(unlabelled), "--method", "apo", "--n", "5",
                 "--stop-below", "0.5"]) == 3


def test_stop_cells_record_the_rules_trace_and_the_figure_stops_where_the_rule_does():
    """sim.experiment.run_stop_cell at the budgets "every:8" up to N records ``max_logit_sd``
    equal to select_until's trace (same picks: the cell's selector stream; same checks: every 8
    labels and N), and figures.fig_beyond_pairs.stop_n reads the rule's stop off it for every
    target. Mutants, each seen to fail: the statistic at H = gamma I (no labels' information);
    a stop at ``sd <= target`` (checked on a trace that hits a target exactly)."""
    import pandas as pd

    from figures.fig_beyond_pairs import stop_n
    from sim.experiment import SELECTOR_STREAM, run_cell, run_stop_cell
    from sim.runner import parse_budgets
    from sim.stopping import logit_sd_at
    from sim.validation import rng_for

    env = {"kind": "gaussian", "N": 100, "d": 3}
    data = gaussian_env(100, 3, seed=4)
    budgets = parse_budgets("every:8", data.N)
    assert budgets[-2:] == (96, 100)
    for method in ("adpo", "uniform"):  # refits on the told labels; the selector's stream
        df = pd.DataFrame(run_stop_cell(env, {"name": method}, 4, budgets))
        sd = df[df.metric == "max_logit_sd"].sort_values("n")
        ref = select_until(make_selector(method, data, seed=rng_for(4, SELECTOR_STREAM)),
                           LabelOracle(data.s), 1e-9, data.N, check_every=8)
        assert [n for n, _ in ref.trace] == sd.n.tolist() == list(budgets)
        np.testing.assert_allclose(sd.value, [v for _, v in ref.trace], rtol=1e-6)
        prior = [logit_sd_at(data, np.array([], dtype=np.int64), None)] * len(budgets)
        assert not np.allclose(sd.value, prior, rtol=1e-3)  # mutant: H = gamma I
        targets = [sd.value.iloc[3] * 1.0001, sd.value.min() * 0.5]
        got = stop_n(df, method, targets)[0]
        res = select_until(make_selector(method, data, seed=rng_for(4, SELECTOR_STREAM)),
                           LabelOracle(data.s), targets[0], data.N, check_every=8)
        assert res.stopped and got[0] == len(res.indices) and np.isnan(got[1])
    # strict <, as the rule: a value equal to the target does not stop it (mutant: <=)
    toy = pd.DataFrame({"method": "m", "seed": 0, "n": [8, 16, 24, 32], "metric": "max_logit_sd",
                        "value": [3.0, 0.5, 0.9, 0.4]})
    assert np.array_equal(stop_n(toy, "m", [0.5, 1.0, 0.1]), [[32.0, 16.0, np.nan]],
                          equal_nan=True)
    with pytest.raises(ValueError, match=r"^fit_metrics: unknown \['nope'\]"):
        run_cell(env, {"name": "apo"}, 0, [8], fit_metrics=("nope",))
