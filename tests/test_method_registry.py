"""Every built-in method through sim.registry.METHODS: options, tags, styles, hooks, fallbacks."""

import dataclasses
import warnings

import numpy as np
import pytest

from sim.envs import gaussian_env
from sim.registry import ENVS, METHODS
from sim.selectors import make_selector, method_names, method_options
from sim.selectors.dope import DesignExhaustedWarning


@pytest.fixture(scope="module")
def env():
    return gaussian_env(120, 4, seed=2)


BUILTINS = ("adpo", "adpo+", "oracle", "apo", "apo-logistic", "pmc", "uncertainty", "dope",
            "uniform")


def test_the_registry_lists_every_builtin_once():
    assert set(BUILTINS) <= set(METHODS.names())
    assert method_names() == METHODS.names()
    assert METHODS.get("adpo-plus").name == "adpo+" and METHODS.get("random").name == "uniform"


@pytest.mark.parametrize("name", BUILTINS)
def test_constructible_with_defaults_and_described(env, name):
    entry = METHODS.get(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DesignExhaustedWarning)
        sel = make_selector(name, env, seed=0)
        assert len(set(sel.select(10).tolist())) == 10
    assert entry.help and {"color", "marker", "label"} <= set(entry.style)
    assert len({"online", "offline"} & entry.tags) == 1
    assert ("online" in entry.tags) == type(sel).uses_labels
    # the options dataclass is frozen and every default passes its own validation
    cfg = entry.config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(cfg, "gamma", 2.0)


def test_tags_mark_what_reads_labels_or_theta_star():
    assert {n for n in BUILTINS if "reads-logged-labels" in METHODS.get(n).tags} == \
        {"adpo+", "oracle"}
    assert {n for n in BUILTINS if "needs-theta-star" in METHODS.get(n).tags} == {"oracle"}
    assert set(method_names("greedy-design")) >= {"adpo", "adpo+", "oracle", "apo"}


def test_unknown_options_are_refused_with_the_valid_list(env):
    with pytest.raises(ValueError, match=r"^alpha: not an option of method 'uniform'; its "
                                         r"options are: replace, max_per_prompt$"):
        make_selector("uniform", env, alpha=3.0)
    with pytest.raises(ValueError, match="refit: not an option of method 'adpo\\+'.*"
                                         "replace, max_per_prompt, n_candidates, gamma, "
                                         "criterion, record_kappa, fit_ridge, radius, "
                                         "alpha$"):
        make_selector("adpo+", env, refit="pow2")
    with pytest.raises(ValueError, match="gamma: not an option of method 'pmc'"):
        make_selector("pmc", env, gamma=1.0)
    with pytest.raises(ValueError, match="unknown method 'nope'"):
        make_selector("nope", env)
    assert method_options("uniform", {"alpha": 3.0, "gamma": 1.0}) == {}
    assert method_options("apo", {"alpha": 3.0, "gamma": 2.0}) == {"gamma": 2.0}


@pytest.mark.parametrize("name,opts,field", [
    ("adpo", dict(gamma=0.0), "gamma"), ("adpo", dict(fit_ridge=-1.0), "fit_ridge"),
    ("adpo", dict(radius=0.0), "radius"), ("adpo", dict(n_candidates=0), "n_candidates"),
    ("adpo", dict(alpha=-1.0), "alpha"), ("adpo", dict(refit="sometimes"), "refit"),
    ("adpo", dict(batch_size=0), "batch_size"), ("apo", dict(record_kappa="yes"), "record_kappa"),
    ("dope", dict(weights="x"), "weights"), ("dope", dict(design_tol=1.5), "design_tol"),
    ("dope", dict(on_exhausted="silently"), "on_exhausted"),
])
def test_bad_option_values_name_their_field(env, name, opts, field):
    with pytest.raises(ValueError, match=f"^{field}"):
        make_selector(name, env, **opts)


def test_dope_exhaustion_is_explicit(env):
    sel = make_selector("dope", env, seed=0)
    with pytest.warns(DesignExhaustedWarning, match="support is used up"):
        idx = sel.select(60)
    support = int((sel.pi_ > 0).sum())
    assert sel.exhausted_at_ == support < 60 and len(set(idx.tolist())) == 60
    assert set(idx[:support].tolist()) == set(np.flatnonzero(sel.pi_ > 0).tolist())
    strict = make_selector("dope", env, seed=0, on_exhausted="error")
    with pytest.raises(ValueError, match="support"):
        strict.select(60)
    theta = make_selector("dope", env, seed=0, weights="theta_star", design_tol=1e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        theta.select(3)  # within the support: no warning
    assert not np.allclose(theta.pi_, sel.pi_)


def test_observation_hooks(env):
    sel = make_selector("adpo", env, seed=0, refit="pow2")
    picks, refits = [], []
    sel.observe(on_pick=lambda i, v: picks.append((i, v)),
                on_refit=lambda t, th: refits.append((t, th.copy())))
    idx = sel.select(20)
    assert [i for i, _ in picks] == idx.tolist()
    assert [t for t, _ in refits] == [1, 2, 4, 8, 16]
    np.testing.assert_array_equal(refits[-1][1], sel.theta_)
    V = np.array([v for _, v in picks])  # the design vectors: H_n = gamma I + V^T V
    assert sel.logdet_ == pytest.approx(np.linalg.slogdet(np.eye(env.d) + V.T @ V)[1], rel=1e-12)
    seen = []
    make_selector("uniform", env, seed=0).observe(on_pick=lambda i, v: seen.append(v)).select(3)
    assert len(seen) == 3


def test_a_new_greedy_rule_writes_only_its_weights(env):
    from sim.design import greedy_select
    from sim.registry import register_method
    from sim.selectors.greedy import GreedyOptions, GreedySelector

    @register_method("test-half-weights", config=GreedyOptions, tags=("offline",),
                     style={"color": "k", "marker": ".", "label": "half"})
    class Half(GreedySelector):
        name = "test-half-weights"

        def weights(self):
            return np.linspace(0.1, 1.0, self.data.N)

    try:
        got = make_selector("test-half-weights", env, seed=0, n_candidates=8).select(15)
        ref = greedy_select(env.phi, 15, weights=np.linspace(0.1, 1.0, env.N), candidates=8,
                            seed=0)
        assert got.tolist() == ref.indices.tolist()
        with pytest.raises(ValueError, match="alpha: not an option of method 'test-half-weights'"):
            make_selector("test-half-weights", env, alpha=1.0)
    finally:
        METHODS.unregister("test-half-weights")
    assert "test-half-weights" not in METHODS


def test_every_module_of_the_package_registers_itself():
    # a new built-in method is one file: sim/selectors/__init__.py imports every module
    import pkgutil

    import sim.selectors as pkg

    modules = {m.name for m in pkgutil.iter_modules(pkg.__path__)} - {"base"}
    registered = {METHODS.get(n).factory.__module__.rsplit(".", 1)[1] for n in METHODS.names()
                  if METHODS.get(n).factory.__module__.startswith("sim.selectors.")}
    assert modules == registered


def _old_keyword_calls():
    """(call, new name): every public entry point that once took the fit ridge as ``gamma`` /
    ``fit_gamma`` (API rename: ``gamma`` is only the design ridge)."""
    from sim.dpo import dpo_gradient, dpo_hessian, dpo_loss, fit_dpo
    from sim.dpo_torch import fit_dpo_torch
    from sim.envs import DigitsConfig, FileConfig, GaussianConfig, digits_env, file_env
    from sim.selectors.greedy import ADPOConfig, ADPOPlusConfig
    phi, b, s, th = np.eye(3), np.zeros(3), np.array([0, 1, 1]), np.zeros(3)
    return [
        (lambda: fit_dpo(phi, b, 1.0, s, gamma=1.0), "fit_ridge"),
        (lambda: fit_dpo_torch(phi, b, 1.0, s, gamma=1.0), "fit_ridge"),
        (lambda: dpo_loss(th, phi, b, 1.0, s, gamma=1.0), "fit_ridge"),
        (lambda: dpo_gradient(th, phi, b, 1.0, s, gamma=1.0), "fit_ridge"),
        (lambda: dpo_hessian(th, phi, b, 1.0, gamma=1.0), "ridge"),
        (lambda: gaussian_env(10, 2, seed=0, fit_gamma=1.0), "fit_ridge"),
        (lambda: digits_env(10, seed=0, fit_gamma=1.0), "fit_ridge"),
        (lambda: file_env("x.npz", seed=0, fit_gamma=1.0), "fit_ridge"),
        (lambda: GaussianConfig(N=10, d=2, fit_gamma=1.0), "fit_ridge"),
        (lambda: DigitsConfig(N=10, fit_gamma=1.0), "fit_ridge"),
        (lambda: FileConfig(path="x.npz", fit_gamma=1.0), "fit_ridge"),
        (lambda: ADPOConfig(fit_gamma=1.0), "fit_ridge"),
        (lambda: ADPOPlusConfig(fit_gamma=1.0), "fit_ridge"),
    ]


@pytest.mark.parametrize("case", range(len(_old_keyword_calls())))
def test_old_fit_ridge_keywords_fail_naming_the_new_one(case):
    call, new = _old_keyword_calls()[case]
    with pytest.raises(TypeError, match=f"was renamed '{new}'") as err:
        call()
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("registry,name,opts", [
    (METHODS, "adpo", {"fit_gamma": 1.0}), (METHODS, "adpo+", {"fit_gamma": 1.0}),
    (ENVS, "gaussian", {"N": 10, "d": 2, "fit_gamma": 1.0}),
])
def test_registry_refuses_old_fit_gamma_naming_fit_ridge(registry, name, opts):
    with pytest.raises(ValueError, match="^fit_gamma: .*renamed 'fit_ridge'"):
        registry.get(name).make_config(opts)
