"""Repeated labels (issue 14, item 3): designs with replacement.

References: exhaustive search over multisets (greedy steps and tiny optima), explicit slogdet
of the multiset's matrix, exact binomial tails for the independence of repeated labels, and
mutants (replacement ignored, first label reused, repeated rows collapsed in the MLE).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.stats import binom

from adpo.cli import main
from sim.data import PreferenceData
from sim.design.greedy import greedy_select
from sim.dpo import fit_dpo
from sim.envs import make_env
from sim.experiment import run_cell
from sim.runner import parse_sweep
from sim.selectors import LabelOracle, make_selector, method_names
from sim.selectors import base as selector_base

ENGINES = ("naive", "maintained", "blocked")


def _logdet(V, rows, gamma) -> float:
    X = V[list(rows)]
    return float(np.linalg.slogdet(gamma * np.eye(V.shape[1]) + X.T @ X)[1])


def _best_multiset(V, n, gamma):
    return max(itertools.combinations_with_replacement(range(V.shape[0]), n),
               key=lambda S: _logdet(V, S, gamma))


# ------------------------------------------------------------------ greedy with replacement
def test_greedy_with_replacement_equals_brute_force_over_multisets() -> None:
    """A pool whose optimal multiset repeats one pair: (0, 0) has det 19 x 1, (0, 1) only
    10 x 1.01. Greedy with replacement finds the optimum at n = 1..4; without replacement it
    cannot (the mutant 'replacement ignored' would be red here)."""
    V = np.array([[3.0, 0.0], [0.0, 0.1], [0.1, 0.1]])
    for n in range(1, 5):
        best = _best_multiset(V, n, 1.0)
        for m in ENGINES:
            got = greedy_select(V, n, method=m, replace=True).indices
            assert sorted(got.tolist()) == sorted(best), (m, n)
    assert greedy_select(V, 2).indices.tolist() != [0, 0]
    assert _logdet(V, (0, 0), 1.0) > _logdet(V, greedy_select(V, 2).indices, 1.0) + 0.5


@pytest.mark.parametrize("seed", range(4))
def test_greedy_with_replacement_is_step_optimal_over_multisets(seed: int) -> None:
    """Each pick maximizes log det over all one-row extensions of the multiset so far (repeats
    included), and the reported gains/logdet equal slogdet of the multiset's matrix."""
    rng = np.random.default_rng(seed)
    V, w = rng.standard_normal((5, 2)), rng.random(5)
    Vw = V * np.sqrt(w)[:, None]
    picks = [greedy_select(V, 8, weights=w, gamma=0.3, method=m, replace=True, active=2,
                           block=2) for m in ENGINES]
    picks.append(greedy_select(V, 8, weights=w, gamma=0.3, candidates=5, seed=0, replace=True))
    for r in picks[1:]:
        np.testing.assert_array_equal(r.indices, picks[0].indices)
    S = picks[0].indices.tolist()
    assert len(set(S)) < len(S)  # repeats happen on this pool
    for t, i in enumerate(S):
        vals = [_logdet(Vw, S[:t] + [j], 0.3) for j in range(5)]
        assert vals[i] >= max(vals) - 1e-9
        assert picks[0].gains[t] == pytest.approx(vals[i] - _logdet(Vw, S[:t], 0.3))
    assert picks[0].logdet == pytest.approx(_logdet(Vw, S, 0.3))
    # the tiny optimum over all C(5 + 4 - 1, 4) multisets bounds greedy's prefix
    assert _logdet(Vw, S[:4], 0.3) <= _logdet(Vw, _best_multiset(Vw, 4, 0.3), 0.3) + 1e-9


def test_without_replacement_nothing_changes() -> None:
    data = make_env("gaussian", seed=2, N=300, d=6)
    for name in ("adpo", "adpo+", "apo", "uniform", "dope"):
        a = make_selector(name, data, seed=5).select(40)
        b = make_selector(name, data, seed=5, replace=False).select(40)
        np.testing.assert_array_equal(a, b)
    rows = run_cell({"kind": "gaussian", "N": 200, "d": 4}, {"name": "adpo"}, 0, [16, 32])
    again = run_cell({"kind": "gaussian", "N": 200, "d": 4}, {"name": "adpo", "replace": False},
                     0, [16, 32])
    assert [r["value"] for r in rows if r["metric"] != "seconds"] == \
        [r["value"] for r in again if r["metric"] != "seconds"]


@pytest.mark.parametrize("name", [n for n in method_names() if n not in method_names("ranking")])
def test_every_selector_takes_replace_or_refuses_in_one_line(name: str) -> None:
    data = make_env("gaussian", seed=0, N=30, d=3)
    try:
        sel = make_selector(name, data, seed=0, replace=True)
    except ValueError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("replace: method")
        return
    idx = sel.select(45)  # more picks than pairs
    assert idx.size == 45 and np.unique(idx).size < 45


# ------------------------------------------------------------------ fresh labels
def _coin_data(N: int = 40) -> PreferenceData:
    """Every pair has P(s = 1) = 1/2 exactly (b = phi^T theta_true)."""
    rng = np.random.default_rng(0)
    phi, th = rng.standard_normal((N, 3)), rng.standard_normal(3)
    return PreferenceData(phi=phi, b=phi @ th, s=rng.integers(0, 2, N), theta_true=th)


ALPHA = 1e-6 / 6  # three statistics, two-sided: union bound <= 1e-6


def _independence(rows, labels) -> None:
    """Under independent fair repeats, three counts are each exactly Binomial(T, 1/2): the
    repeats equal to 1, the repeats equal to the pair's first label, and the repeats equal to
    the pair's previous label (each repeat is a fresh fair coin, independent of the history, so
    the indicators are i.i.d.). Each is checked against its two-sided exact quantile at
    ALPHA (false failure <= 1e-6 in all). Power: a reused first label makes the second count
    T (and a label reused from the previous pick the third), far above the quantile."""
    first, prev = {}, {}
    ones = same_first = same_prev = T = 0
    for r, s in zip(rows, labels):
        if r in first:
            T += 1
            ones += s
            same_first += s == first[r]
            same_prev += s == prev[r]
        else:
            first[r] = s
        prev[r] = s
    assert T >= 2000, T
    lo, hi = binom.ppf(ALPHA, T, 0.5), binom.isf(ALPHA, T, 0.5)
    for name, k in (("ones", ones), ("same as first", same_first), ("same as previous",
                                                                    same_prev)):
        assert lo <= k <= hi, f"{name}: {k} of {T} outside [{lo}, {hi}]"


def test_repeated_labels_are_independent_draws() -> None:
    data = _coin_data()
    rng = np.random.default_rng(1)
    oracle = LabelOracle(data.s, draw=lambda r: data.draw_labels(r, rng))
    seq = np.random.default_rng(2).integers(0, data.N, 4000)
    for batch in np.array_split(seq, 400):  # batches with repeats inside them too
        oracle(batch)
    assert oracle.revealed == seq.tolist()
    first = {}
    for r, s in zip(oracle.revealed, oracle.labels):
        first.setdefault(r, s)
        assert first[r] == data.s[r] or r not in first  # first ask = the logged label
    _independence(oracle.revealed, oracle.labels)


def test_a_selector_with_replacement_tells_fresh_labels_and_fits_on_all() -> None:
    data = _coin_data(12)
    sel = make_selector("adpo", data, seed=3, replace=True)
    idx = sel.select(2500)
    rows, labels = sel._told()
    np.testing.assert_array_equal(rows, idx)
    _independence(rows.tolist(), labels.tolist())
    # the MLE takes every repeated row with its own label (eq. 6's sum over labels)
    th = fit_dpo(data.phi[rows], data.b[rows], 1.0, labels, fit_ridge=sel.cfg.fit_ridge).theta
    np.testing.assert_allclose(sel._fit_told(), th, atol=1e-10)
    last = np.array([sel.labels_[r] for r in rows])  # the mutant: one label per pair
    collapsed = fit_dpo(data.phi[rows], data.b[rows], 1.0, last, fit_ridge=sel.cfg.fit_ridge).theta
    assert np.abs(collapsed - th).max() > 1e-3


def test_mutant_reusing_the_first_label_is_caught(monkeypatch) -> None:
    def reuse_first(self, indices):  # the old oracle: s[i] on every ask
        idx = np.asarray(indices, dtype=np.int64)
        self.revealed.extend(idx.tolist())
        self.labels.extend(self._s[idx].tolist())
        return self._s[idx]

    monkeypatch.setattr(selector_base.LabelOracle, "__call__", reuse_first)
    data = _coin_data(12)
    sel = make_selector("adpo", data, seed=3, replace=True)
    sel.select(2500)
    with pytest.raises(AssertionError, match="outside"):
        _independence(*[a.tolist() for a in sel._told()])


def test_fresh_labels_need_theta_true() -> None:
    data = make_env("gaussian", seed=0, N=20, d=2)
    real = data.with_(theta_true=None)
    with pytest.raises(ValueError, match="theta_true: fresh labels"):
        real.draw_labels([0, 0], np.random.default_rng(0))
    with pytest.raises(ValueError, match="replace: repeated picks need fresh labels"):
        make_selector("adpo", real, replace=True).select(5)


# ------------------------------------------------------------------ runner and CLI
def test_runner_accepts_both_regimes() -> None:
    cfg = {"seeds": [0], "budgets": [8, 96], "env": {"kind": "prompts", "M": 16, "K": 3,
                                                     "d": 3},
           "methods": [{"name": "apo", "replace": True}, {"name": "uniform", "replace": True}]}
    sweep = parse_sweep(cfg)
    assert sweep.budgets[0][-1] == 96 > 48  # more labels than pairs, with replacement only
    with pytest.raises(ValueError, match="replace = true"):
        parse_sweep({**cfg, "methods": [{"name": "apo"}, {"name": "uniform", "replace": True}]})
    rows = run_cell(sweep.envs[0], {"name": "apo", "replace": True}, 0, [8, 96])
    assert {r["n"] for r in rows} == {8, 96}
    capped = run_cell(sweep.envs[0], {"name": "adpo", "max_per_prompt": 1}, 0, [16])
    assert capped and all(np.isfinite(r["value"]) for r in capped)


def test_cli_select_replace(tmp_path, capsys) -> None:
    p, out = tmp_path / "g.npz", tmp_path / "s.json"
    assert main(["env", "--kind", "gaussian", "--N", "20", "--d", "2", "--seed", "0",
                 "--out", str(p)]) == 0
    assert main(["select", "--data", str(p), "--method", "adpo", "--n", "50", "--replace",
                 "--out", str(out)]) == 0
    import json
    got = json.loads(out.read_text())
    assert len(got["indices"]) == 50 and got["options"]["replace"] is True
    assert main(["select", "--data", str(p), "--method", "adpo", "--n", "50"]) != 0
    assert "--replace" in capsys.readouterr().err
    assert main(["select", "--data", str(p), "--method", "pmc", "--n", "5", "--replace"]) != 0
    assert "cannot use designs with replacement" in capsys.readouterr().err
