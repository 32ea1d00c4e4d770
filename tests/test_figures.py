"""Every figure script runs at the tiny scale and writes a non-empty PNG, PDF and sidecar."""

import importlib
import json

import numpy as np
import pytest

from figures.__main__ import discover


@pytest.mark.parametrize("name", discover())
def test_figure_script_tiny(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # caches go to tmp_path/results, not the checkout
    mod = importlib.import_module(f"figures.fig_{name}")
    paths = mod.main(scale="tiny", out_dir=tmp_path / "out", jobs=1)
    suffixes = {p.suffix for p in paths}
    assert {".png", ".pdf", ".json"} <= suffixes
    for p in paths:
        assert p.exists() and p.stat().st_size > 0, p
    sidecar = json.loads(next(p for p in paths if p.suffix == ".json").read_text())
    assert sidecar.get("scale") == "tiny" and sidecar.get("figure") == name
    # every README claim that reads this figure renders from the new sidecar (no placeholder)
    from figures import claims

    sc = claims.Sidecars(tmp_path / "out")
    claims.load_providers()
    for claim in claims.CLAIMS:
        assert f"not yet computed: figures/{name}.json" not in claims.render(claim, sc), claim


def test_unknown_scale_is_refused():
    from figures import common

    with pytest.raises(ValueError, match="scale"):
        common.load_config("paper_fig1", "huge")


def test_cached_computes_once(tmp_path, monkeypatch):
    import numpy as np

    from figures import common

    monkeypatch.setattr(common, "CACHE_ROOT", tmp_path)
    calls = []

    def compute():
        calls.append(1)
        return {"x": np.arange(3.0)}

    a = common.cached("design_quality", {"n": 3}, compute)
    b = common.cached("design_quality", {"n": 3}, compute)
    c = common.cached("design_quality", {"n": 4}, compute)
    assert len(calls) == 2 and np.array_equal(a["x"], b["x"]) and np.array_equal(a["x"], c["x"])
    assert not list(tmp_path.rglob("*.tmp.npz"))


SELECTION_FIGURES = ("paper_fig3_beta", "paper_fig4_alpha", "theory_bound", "theory_kappa")


@pytest.mark.parametrize("name", SELECTION_FIGURES)
def test_selection_figures_declare_valid_runner_sweeps(name):
    """Every scale of every selection figure parses and validates in the runner's schema, with
    one shared budget grid per figure (a script's own ``OPTIONS``, else SELECTION_OPTIONS)."""
    from figures import common
    options = getattr(importlib.import_module(f"figures.fig_{name}"), "OPTIONS",
                      common.SELECTION_OPTIONS)
    for scale in common.SCALES:
        sweep, opts = common.load_sweep_config(name, scale, options)
        assert sweep.cells() and set(opts) == set(options)
        budgets = common.sweep_budgets(sweep)
        assert budgets == [b for b in budgets if b & (b - 1) == 0] and len(budgets) >= 4


def _fake_figure(tmp_path, monkeypatch, text):
    from figures import common

    (tmp_path / "fig_fake.toml").write_text(text)
    monkeypatch.setattr(common, "HERE", tmp_path)
    return common


FAKE = """[figure]
metrics = ["error_rate"]
[[methods]]
name = "uniform"
[tiny]
seeds = 2
budgets = [4, 8]
[[tiny.env]]
kind = "gaussian"
N = 32
d = 2
"""


@pytest.mark.parametrize("edit, msg", [
    (("", ""), None),
    (('metrics = ["error_rate"]', 'metric = ["error_rate"]'), r"\[figure\]: unknown key.*metric"),
    (("seeds = 2", "seed = 2"), r"fig_fake.toml \[tiny\].*unknown key.*'seed'"),
    (('name = "uniform"', 'name = "uniform"\nalfa = 1.0'), r"methods\[0\].*alfa"),
    (("budgets = [4, 8]", "budgets = [4, 64]"), "exceeds the environment's N = 32"),
])
def test_figure_config_refuses_unknown_keys(tmp_path, monkeypatch, edit, msg):
    common = _fake_figure(tmp_path, monkeypatch, FAKE.replace(*edit))
    if msg is None:
        sweep, opts = common.load_sweep_config("fake", "tiny", {"metrics": []})
        assert opts == {"metrics": ["error_rate"]} and len(sweep.cells()) == 2
    else:
        with pytest.raises(ValueError, match=msg):
            common.load_sweep_config("fake", "tiny", {"metrics": []})


def test_load_config_with_keys(tmp_path, monkeypatch):
    common = _fake_figure(tmp_path, monkeypatch, "a = 1\n[tiny]\nb = 2\n")
    assert common.load_config("fake", "tiny", keys=("a", "b")) == {"a": 1, "b": 2,
                                                                   "scale": "tiny"}
    with pytest.raises(ValueError, match="unknown key.*'b'"):
        common.load_config("fake", "tiny", keys=("a",))
    with pytest.raises(ValueError, match="missing key.*'c'"):
        common.load_config("fake", "tiny", keys=("a", "b", "c"))


def test_every_method_has_a_style():
    from figures import common
    from sim.registry import METHODS

    styles = {m: common.method_style(m) for m in METHODS.names()}
    assert all(s != ("black", ".") for s in styles.values()), styles
    assert len(set(styles.values())) == len(styles)  # distinct per method
    assert common.method_style("adpo(n_candidates=256)") == styles["adpo"]


def test_theory_bound_setting_comes_from_the_sweep_and_is_pinned_down():
    """theory_bound evaluates Theorem 2 at the env's d, N, beta, the kappa methods' one gamma and
    [figure] delta; a sweep that leaves gamma ambiguous, or an env outside Assumption 2, is
    refused with the key named."""
    import dataclasses

    from figures import common, fig_theory_bound as fig

    sweep, opts = common.load_sweep_config(fig.NAME, "default", fig.OPTIONS)
    cfg = fig.bound_setting(sweep, {**opts, "delta": 0.01})
    assert (cfg["N"], cfg["d"], cfg["beta"], cfg["gamma"], cfg["delta"]) == (8192, 8, 1.0, 1.0, 0.01)
    assert cfg["n_grid"] == [2**k for k in range(4, 13)] and cfg["seeds"] == [0, 1, 2, 3, 4]
    methods = list(sweep.methods)
    methods[0] = {**methods[0], "gamma": 2.0}
    with pytest.raises(ValueError, match="methods.gamma"):
        fig.bound_setting(dataclasses.replace(sweep, methods=tuple(methods)), opts)
    methods = [{k: v for k, v in m.items() if k != "gamma"} for m in methods]  # none states it
    with pytest.raises(ValueError, match="methods.gamma"):
        fig.bound_setting(dataclasses.replace(sweep, methods=tuple(methods)), opts)
    env = {**sweep.envs[0], "assumption2": False}
    with pytest.raises(ValueError, match="env: .*assumption2"):
        fig.bound_setting(dataclasses.replace(sweep, envs=(env,)), opts)


def test_theory_bound_kappa_is_the_largest_recorded_kappa_max_at_each_n():
    """A closed-form table: kappa at n = max over cells of kappa_max at n, floored at 1, 1 where
    no cell recorded it; other metrics are ignored (a mean, a min or a last-cell read fails)."""
    import pandas as pd

    from figures.fig_theory_bound import kappa_at

    rows = [("adpo", 0, 8, "kappa_max", 1.5), ("adpo", 1, 8, "kappa_max", 2.5),
            ("adpo+", 0, 8, "kappa_max", 1.2), ("adpo+", 0, 16, "kappa_max", 0.9),
            ("uniform", 0, 8, "max_logit_error", 9.0), ("uniform", 0, 32, "max_logit_error", 9.0)]
    df = pd.DataFrame(rows, columns=["method", "seed", "n", "metric", "value"])
    assert kappa_at(df, [8, 16, 32]).tolist() == [2.5, 1.0, 1.0]


def test_beyond_pairs_panels_are_runner_sweeps_at_every_scale():
    """Each panel of beyond_pairs parses and validates as a runner sweep at every scale (ranking
    methods on the ranking pool, the stop panel's budgets every K labels up to N)."""
    from figures import common
    from figures.fig_beyond_pairs import OPTIONS, PANELS
    for scale in common.SCALES:
        sweeps, opts = common.load_panel_sweeps("beyond_pairs", scale, PANELS, OPTIONS)
        assert set(sweeps) == set(PANELS) and opts["stop_targets"]
        assert {m["name"] for m in sweeps["ranking"].methods} == {
            "rank-adpo", "rank-adpo+", "rank-oracle", "rank-d-opt", "rank-uniform"}
        stop = common.sweep_budgets(sweeps["stop"])
        assert stop[-1] <= sweeps["stop"].envs[0]["N"] and len(set(np.diff(stop[:-1]))) == 1
        assert len({len(s.seeds) for s in sweeps.values()}) == 1  # one seed count per scale


PANELS_FAKE = """seeds = 3
[figure]
metrics = ["error_rate"]
[a]
[[a.methods]]
name = "uniform"
[b]
seeds = 1
[[b.methods]]
name = "apo"
[tiny]
budgets = [4]
[tiny.a]
env = {kind = "gaussian", N = 32, d = 2}
[tiny.b]
budgets = [8]
env = {kind = "gaussian", N = 16, d = 2}
"""


@pytest.mark.parametrize("edit, msg", [
    (("", ""), None),
    (("[tiny.b]\nbudgets = [8]", "[tiny.b]\nbudget = [8]"), r"\[tiny\] b: .*unknown key.*'budget'"),
    (("[[b.methods]]", "[[b.method]]"), r"\[tiny\] b: .*unknown key.*'method'"),
])
def test_panel_sweeps_merge_shared_keys_then_panel_tables(tmp_path, monkeypatch, edit, msg):
    """A panel's keys override the shared ones at each level, the scale over the top level
    (b: its own seeds and budgets; a: the shared seeds and the scale's budgets)."""
    common = _fake_figure(tmp_path, monkeypatch, PANELS_FAKE.replace(*edit))
    if msg is not None:
        with pytest.raises(ValueError, match=msg):
            common.load_panel_sweeps("fake", "tiny", ("a", "b"), {"metrics": []})
        return
    sweeps, opts = common.load_panel_sweeps("fake", "tiny", ("a", "b"), {"metrics": []})
    assert opts == {"metrics": ["error_rate"]}
    assert sweeps["a"].seeds == (0, 1, 2) and sweeps["a"].budgets == ((4,),)
    assert sweeps["b"].seeds == (0,) and sweeps["b"].budgets == ((8,),)
    assert sweeps["b"].methods[0]["name"] == "apo" and sweeps["a"].name == "fake-a"


@pytest.mark.parametrize("scale, steps", [("tiny", 2), ("default", 2), ("paper", 40)])
def test_llm_dpo_is_a_dpo_train_sweep_at_every_scale(scale, steps, tmp_path, monkeypatch):
    """llm_dpo's TOML is a runner sweep of dpo_train cells at every scale: its methods, seeds,
    budgets and the env's train table are validated by the runner, and the two files the
    script writes first replace ``@features`` and ``@cache``, also inside ``[env.train]``
    (mutant: the substitution not reaching sub-tables -> the train table's cache is refused).
    The files here are stand-ins of the declared N (no network is run)."""
    from figures import fig_llm_dpo as fig
    from sim.data import PreferenceData

    def fake_files(opts, root):
        n = opts["N"]
        feat, cache = tmp_path / "features.npz", tmp_path / "cache.npz"
        PreferenceData(phi=np.ones((n, 2)), b=np.zeros(n), beta=opts["beta"],
                       s=np.arange(n) % 2, group=np.arange(n)).save(feat)
        np.savez(cache, ref_logp=np.zeros(2 * n), phi=np.zeros((2 * n, 3)),
                 model_name=np.str_("stand-in"), n_truncated=np.int64(0))
        return feat, cache

    monkeypatch.setattr(fig, "build_files", fake_files)
    sweep, opts, facts = fig.load(scale)
    assert sweep.cell == "dpo_train" and facts == {"N": opts["N"], "d": 3, "model": "stand-in",
                                                   "n_truncated": 0}
    assert [m["label"] for m in sweep.methods] == ["adpo+", "adpo+fair", "adpo", "apo", "uniform"]
    (env,) = sweep.envs
    assert env["path"] == str(tmp_path / "features.npz") and env["holdout"] == 0.3
    assert env["train"] == {"cache": str(tmp_path / "cache.npz"), "steps": steps, "lr": 3e-4,
                            "batch_size": 8}
    assert len(sweep.seeds) == {"tiny": 1, "default": 2, "paper": 5}[scale]
    assert max(sweep.budgets[0]) <= opts["N"]


def test_theory_kappa_setting_is_pinned_down_by_the_sweep():
    """theory_kappa states one environment's N, d, beta and the methods' one gamma and alpha;
    a method without record_kappa, or two gammas, is refused with the key named."""
    import dataclasses

    from figures import common, fig_theory_kappa as fig

    sweep, _ = common.load_sweep_config(fig.NAME, "default", fig.OPTIONS)
    cfg = fig.kappa_setting(sweep)
    assert (cfg["kind"], cfg["N"], cfg["d"], cfg["beta"], cfg["gamma"], cfg["alpha"], cfg["n"]) == (
        "gaussian", 8192, 16, 0.25, 0.015625, 3.0, 2048)
    assert cfg["n_grid"] == [2**k for k in range(12)] and cfg["seeds"] == [0, 1, 2]
    methods = list(sweep.methods)
    for bad, key in (({**methods[0], "gamma": 1.0}, "methods.gamma"),
                     ({k: v for k, v in methods[0].items() if k != "record_kappa"},
                      "methods.record_kappa"),
                     ({k: v for k, v in methods[0].items() if k != "series"},
                      "methods.record_kappa.*series")):
        with pytest.raises(ValueError, match=key):
            fig.kappa_setting(dataclasses.replace(sweep, methods=(bad, *methods[1:])))


def test_theory_kappa_summary_counts_checks_where_the_corrected_bound_is_informative():
    """A hand-made table (2 seeds x 3 checkpoints): 'informative' is corrected < ceiling, and the
    failures, the margin and the printed failures are counted among those checkpoints only
    (counting every checkpoint, or calling printed < ceiling informative, gives other numbers);
    the bounds use max(1, kappa_max) of each seed (kappa_max = 0.5 reads as 1)."""
    from figures import fig_theory_kappa as fig
    from theory import bounds

    cfg = {"n": 8, "d": 2, "beta": 0.25, "gamma": 0.015625}
    kappa = np.array([[1.0, 1.0, 1.5, 1.0, 1.1, 1.0, 1.0, 1.2],
                      [1.0, 2.0, 1.0, 1.0, 1.0, 1.0, 1.3, 1.0]])
    meas = np.array([[5.0, 2.0, 1.0], [5.0, 3.0, 0.5]])
    ceiling = np.full((2, 3), 4.0)
    bnd = {"printed": np.array([[3.0, 1.0, 2.0], [3.0, 1.0, 0.4]]),
           "corrected": np.array([[4.5, 2.5, 1.5], [4.0, 2.5, 0.4]])}
    row = fig.summary_row(cfg, kappa, meas, bnd, ceiling)
    assert (row["max"], row["median"], row["max_after_n_over_4"]) == (2.0, 1.0, 1.5)
    assert row["theorem4_checks"] == 6 and row["theorem4_informative_checks"] == 4
    assert row["theorem4_corrected_failures"] == 4  # 5 > 4.5, 5 > 4, 3 > 2.5, 0.5 > 0.4
    assert row["theorem4_corrected_failures_informative"] == 2  # 3 > 2.5 and 0.5 > 0.4 only
    assert row["theorem4_printed_failures"] == 5 and row["theorem4_printed_failures_informative"] == 3
    assert row["theorem4_min_corrected_over_measured_informative"] == pytest.approx(0.4 / 0.5)
    assert row["theorem4_max_corrected_over_ceiling"] == pytest.approx(4.5 / 4.0)
    got = fig.theorem4_bounds(cfg, [2, 8], np.array([[0.5, 1.5], [2.0, 2.0]]))
    for form in bounds.FORMS:
        want = [[bounds.theorem4_bound(2, n, 0.25, 0.015625, k, form=form) for n, k in zip((2, 8), ks)]
                for ks in ((1.0, 1.5), (2.0, 2.0))]
        assert got[form].tolist() == want
