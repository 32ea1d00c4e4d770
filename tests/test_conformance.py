"""The conformance suite (sim.testing) over every registered method and environment kind, the
golden trajectories of the built-ins, and one deliberately broken selector per contract (each
contract must be seen to fail)."""

import copy
import importlib.util
import json
import pathlib
import inspect
import pickle
import warnings
from dataclasses import dataclass

import numpy as np
import pytest

from sim.envs import gaussian_env
from sim.registry import ENVS, METHODS
from sim.selectors.base import FitOptions, Selector
from sim.testing import ContractError, check_env, check_selector

GOLDEN = pathlib.Path(__file__).parent / "golden"


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. Dope's design-exhausted warning at N = 40
        yield


@pytest.fixture(scope="module")
def npz(tmp_path_factory):
    path = tmp_path_factory.mktemp("conf") / "g.npz"
    gaussian_env(60, 3, seed=4).save(str(path))
    return str(path)


ENV_OPTIONS = {"gaussian": {"N": 40, "d": 3}, "digits": {"N": 40}, "file": {"rows": 30},
               "llm-truth": {"rows": 30}, "prompts": {"M": 12, "K": 4, "d": 3}}
#: The option naming the data file of the kinds that read one.
FILE_OPTION = {"file": "path", "llm-truth": "features"}


PAIRWISE = [n for n in METHODS.names() if "ranking" not in METHODS.get(n).tags]
PAIRWISE_ENVS = [k for k in ENVS.names() if "ranking" not in ENVS.get(k).tags]


@pytest.mark.parametrize("name", PAIRWISE)  # ranking methods: tests/test_ranking_cli.py
def test_every_registered_method_conforms(name):
    assert len(check_selector(name)) == 9


@pytest.mark.parametrize("kind", PAIRWISE_ENVS)
def test_every_registered_env_conforms(kind, npz):
    opts = dict(ENV_OPTIONS.get(kind, {}), **({FILE_OPTION[kind]: npz} if kind in FILE_OPTION
                                              else {}))
    assert len(check_env(kind, options=opts)) == 6


# ------------------------------------------------------------------------------- golden
def _regenerate():
    spec = importlib.util.spec_from_file_location("golden_regenerate", GOLDEN / "regenerate.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def compare_golden(stored, now):
    """AssertionError unless picks are equal and metrics / env summaries agree to 1e-9."""
    assert sorted(now["methods"]) == sorted(stored["methods"]), "a built-in method was added " \
        "or removed: regenerate tests/golden/trajectories.json (tests/golden/regenerate.py)"
    for name, ref in stored["methods"].items():
        got = now["methods"][name]
        assert got["picks"] == ref["picks"], f"{name}: picks changed"
        assert got["metrics"].keys() == ref["metrics"].keys()
        for k, v in ref["metrics"].items():
            assert got["metrics"][k] == pytest.approx(v, rel=1e-9, abs=1e-9), f"{name}: {k}"
    for kind, ref in stored["envs"].items():
        got = now["envs"][kind]
        for k, v in ref.items():
            if v is None:
                assert got[k] is None, f"{kind}: {k}"
            elif isinstance(v, list):
                np.testing.assert_allclose(got[k], v, rtol=1e-9, atol=1e-12, err_msg=f"{kind} {k}")
            else:
                assert got[k] == pytest.approx(v, rel=1e-9, abs=1e-12), f"{kind}: {k}"


@pytest.fixture(scope="module")
def golden():
    return (json.loads((GOLDEN / "trajectories.json").read_text()), _regenerate().record())


def test_golden_trajectories_unchanged(golden):
    compare_golden(*golden)


@pytest.mark.parametrize("mutate", [
    lambda g: g["methods"]["adpo"]["picks"].reverse(),
    lambda g: g["methods"]["uniform"]["picks"].__setitem__(0, -1),
    lambda g: g["methods"]["pmc"]["metrics"].update(
        {"nll@16": g["methods"]["pmc"]["metrics"]["nll@16"] * (1 + 1e-7)}),
    lambda g: g["envs"]["gaussian"].update(phi_sum=g["envs"]["gaussian"]["phi_sum"] + 1e-6),
    lambda g: g["envs"]["digits"]["theta_star"].__setitem__(10, 0.0),
    lambda g: g["methods"].pop("dope"),
])
def test_golden_comparison_rejects_a_changed_record(golden, mutate):
    stored, now = golden
    changed = copy.deepcopy(stored)
    mutate(changed)
    with pytest.raises(AssertionError):
        compare_golden(changed, now)


# ------------------------------------------------------------------ broken selectors (mutants)
@dataclass(frozen=True)
class ToyConfig(FitOptions):
    """The fit options (batch_size among them: the base honours it only for FitOptions; a
    config declaring batch_size on plain Options was caught by the batch-size contract)."""


class Toy(Selector):
    """A correct toy online method: a seeded random unselected row per pick."""

    name = "toy"
    Config = ToyConfig
    uses_labels = True

    def _pick_one(self):
        i = int(self.rng.choice(self._eligible()))
        return i, self.data.phi[i]


class Short(Toy):  # shapes: one row short
    def select(self, n, labels=None):
        return super().select(n, labels)[:-1]


class Duplicates(Toy):  # no-duplicates: draws from every row, selected ones included
    def _pick_one(self):
        i = int(self.rng.integers(self.data.N))
        return i, self.data.phi[i]


class Unseeded(Toy):  # determinism: fresh OS entropy
    def _pick_one(self):
        i = int(np.random.default_rng().choice(self._eligible()))
        return i, self.data.phi[i]


class NoBudgetCheck(Toy):  # budget-errors: silently returns fewer rows
    def select(self, n, labels=None):
        return super().select(max(1, min(n, self.data.N - len(self.selected_))), labels)


class SelectDrawsExtra(Toy):  # ask-tell: select consumes an extra draw of the stream
    def select(self, n, labels=None):
        self.rng.random()
        return super().select(n, labels)


class IgnoresBatchSize(Toy):  # batch-size: tells after every pick whatever batch_size says
    def select(self, n, labels=None):
        if not 1 <= n <= self.data.N - len(self.selected_):
            raise ValueError(f"n: out of range, got {n}")
        out = []
        for _ in range(n):
            idx = self.ask(1)
            self.tell(idx, labels(idx))
            out.extend(idx.tolist())
        return np.asarray(out)


class ReadsLabelsEarly(Toy):  # labels-after-selection: peeks at every label first
    def select(self, n, labels=None):
        if labels is not None:
            labels(np.arange(self.data.N))
        return super().select(n, labels)


class SwallowsOptions(Toy):  # unknown-options: drops what it does not know
    def __init__(self, data, *, seed=0, **options):
        super().__init__(data, seed=seed, **{k: v for k, v in options.items()
                                             if k in ("batch_size",)})


class Unpicklable(Toy):  # picklable: holds a lambda
    def __init__(self, data, **kw):
        super().__init__(data, **kw)
        self.score = lambda i: i


def _factory(cls):
    def build(data, seed=0, **options):
        return cls(data, seed=seed, **options)
    build.__qualname__ = cls.__name__
    return build


def test_the_correct_toy_passes_every_contract():
    assert len(check_selector(_factory(Toy), option_names=("batch_size",))) == 9


@pytest.mark.parametrize("cls, contract", [
    (Short, "shapes"), (Duplicates, "no-duplicates"), (Unseeded, "determinism"),
    (NoBudgetCheck, "budget-errors"), (SelectDrawsExtra, "ask-tell"),
    (IgnoresBatchSize, "batch-size"), (ReadsLabelsEarly, "labels-after-selection"),
    (SwallowsOptions, "unknown-options"), (Unpicklable, "picklable"),
])
def test_each_contract_rejects_its_mutant(cls, contract):
    with pytest.raises(ContractError, match=f"^{contract}:"):
        check_selector(_factory(cls), option_names=("batch_size",))


def test_env_contracts_reject_their_mutants():
    def good(*, seed, N=20, d=2):
        return gaussian_env(N, d, seed=seed)

    assert len(check_env(good, options={"N": 20})) == 6
    with pytest.raises(ContractError, match="^returns-data:"):
        check_env(lambda *, seed, N=20: gaussian_env(N + 1, 2, seed=seed), options={"N": 20})
    with pytest.raises(ContractError, match="^determinism:"):
        check_env(lambda *, seed, N=20: gaussian_env(N, 2, seed=np.random.default_rng()),
                  options={"N": 20})
    with pytest.raises(ContractError, match="^unknown-options:"):
        check_env(lambda *, seed, N=20, **_: gaussian_env(N, 2, seed=seed), options={"N": 20})

    def wrong_star(*, seed, N=20):
        d = gaussian_env(N, 2, seed=seed)
        return d.with_(theta_star=d.theta_star + 0.1)
    with pytest.raises(ContractError, match="^theta-star:"):
        check_env(wrong_star, options={"N": 20})


def test_env_config_defaults_contract_rejects_drift(monkeypatch):
    from sim import envs

    entry = ENVS.get("gaussian")
    fn = inspect.unwrap(entry.factory)  # under sim.validation.renamed_keywords' wrapper
    drifted = dict(inspect.unwrap(envs.gaussian_env).__kwdefaults__, theta_norm=2.5)
    monkeypatch.setattr(fn, "__kwdefaults__", drifted)
    with pytest.raises(ContractError, match="^config-defaults: theta_norm"):
        check_env("gaussian", options={"N": 20, "d": 2})


def test_env_picklable_contract_rejects_an_unpicklable_config(monkeypatch):
    from sim.envs import GaussianConfig

    def refuse(self):
        raise TypeError("cannot pickle this config")
    monkeypatch.setattr(GaussianConfig, "__reduce__", refuse)
    with pytest.raises(ContractError, match="^picklable:"):
        check_env("gaussian", options={"N": 20, "d": 2})
    assert pickle.dumps(gaussian_env(5, 2, seed=0))
