"""``adpo select --backend torch`` (adpo/commands/select.py, the GreedySelector hooks
``products`` and ``engine_factory``, sim.design.torch_greedy) on torch-CPU: the D-optimal
greedy methods pick exactly what the numpy engines pick (exact argmax, refitted weights, random
candidate subsets, record_kappa, replace); the others are refused in one line."""

import json

import numpy as np
import pytest

import torch  # (the dev venv and CI install the CPU build)

from adpo.cli import main
from sim.design.torch_greedy import TorchEngine
from sim.envs import gaussian_env
from sim.selectors import make_selector

from helpers import torch_devices  # noqa: E402


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    data = gaussian_env(600, 6, seed=0)
    path = tmp_path_factory.mktemp("backend") / "g.npz"
    data.save(path)
    return path, data


@pytest.mark.parametrize("method", ["oracle", "adpo+", "apo"])
def test_torch_backend_picks_what_numpy_picks(data_file, tmp_path, method):
    path, _ = data_file
    res = {}
    for backend in ("numpy", "torch"):
        out = tmp_path / f"{backend}.json"
        assert main(["select", "--data", str(path), "--method", method, "--n", "80",
                     "--backend", backend, "--out", str(out)]) == 0
        res[backend] = json.loads(out.read_text())
    assert res["torch"]["indices"] == res["numpy"]["indices"]
    assert res["torch"]["weighted_logdet"] == pytest.approx(res["numpy"]["weighted_logdet"],
                                                            abs=1e-9)


def test_engine_hook_runs_torch_and_batches_are_prefixes(data_file):
    """n=7 forces the engine to extend its batch 7 -> 14 -> 28 -> 56 -> 112 picks: the served
    picks must still be the numpy greedy's (the greedy sequence is prefix-stable)."""
    _, data = data_file
    ref = make_selector("oracle", data, seed=0).select(100)
    sel = make_selector("oracle", data, seed=0)
    sel.engine_factory = lambda *a: TorchEngine(*a, n=7)
    assert np.array_equal(sel.select(100), ref)
    assert isinstance(sel._engine, TorchEngine) and sel._engine.picks.size == 112


def test_hook_mutant_without_the_weights_is_caught(data_file):
    """An engine fed the unweighted phi (APO's rows) instead of sqrt(w) phi must pick otherwise:
    the oracle equality above can fail."""
    _, data = data_file
    ref = make_selector("oracle", data, seed=0).select(60)
    sel = make_selector("oracle", data, seed=0)
    sel.engine_factory = lambda V, *a: TorchEngine(data.phi, *a, n=60)
    assert not np.array_equal(sel.select(60), ref)


@pytest.mark.parametrize("extra", [
    ["--method", "adpo+", "--candidates", "64"],                  # incremental: random subsets
    ["--method", "oracle", "--record-kappa"],                     # incremental: maintained
    ["--method", "adpo", "--candidates", "32"],                   # ... with refitted weights
    ["--method", "adpo"],                                         # blocked, reweighted
    ["--method", "apo", "--replace"],                             # blocked, with replacement
])
def test_every_greedy_engine_mode_runs_on_torch_with_numpy_picks(data_file, tmp_path, extra,
                                                                 monkeypatch):
    from sim.design.torch_greedy import TorchProducts, TorchRowProducts
    calls = {"numpy": 0, "torch": 0}
    backend = "numpy"
    for cls, name in [(TorchProducts, "rowsq"), (TorchRowProducts, "scores"),
                      (TorchRowProducts, "downdate")]:   # count the torch products' calls
        def spy(*a, right=getattr(cls, name)):
            calls[backend] += 1
            return right(*a)
        monkeypatch.setattr(cls, name, spy)
    path, _ = data_file
    res = {}
    for backend in ("numpy", "torch"):
        out = tmp_path / f"{backend}.json"
        assert main(["select", "--data", str(path), "--n", "60", *extra, "--seed", "3",
                     "--backend", backend, "--out", str(out)]) == 0
        res[backend] = json.loads(out.read_text())
    assert res["torch"]["indices"] == res["numpy"]["indices"]
    assert res["torch"]["weighted_logdet"] == pytest.approx(res["numpy"]["weighted_logdet"],
                                                            rel=1e-12)
    assert calls["torch"] > 0 and calls["numpy"] == 0   # torch multiplied, and only for torch
    if "--replace" in extra:   # the mode is exercised: a row picked twice
        assert len(set(res["torch"]["indices"])) < 60


@pytest.mark.parametrize("record_kappa", [False, True])
def test_the_selector_runs_the_incremental_engine_on_torch(data_file, record_kappa):
    from sim.design.incremental import IncrementalGreedy
    from sim.design.torch_greedy import TorchProducts
    _, data = data_file
    kw = {"record_kappa": True} if record_kappa else {"n_candidates": 48}
    ref = make_selector("adpo+", data, seed=2, **kw)
    sel = make_selector("adpo+", data, seed=2, **kw)
    sel.products = TorchProducts()
    assert np.array_equal(sel.select(90), ref.select(90))
    assert isinstance(sel._engine, IncrementalGreedy) and sel._engine.products.name == "torch"
    np.testing.assert_allclose(sel.gains_, ref.gains_, rtol=1e-12)
    if record_kappa:
        np.testing.assert_allclose(sel.kappa_, ref.kappa_, rtol=1e-9)


@pytest.mark.parametrize("extra,needle", [
    (["--method", "uniform"], "backend"),                             # not a greedy design
    (["--method", "apo", "--criterion", "a"], "backend"),             # A-optimal gains
])
def test_methods_that_cannot_are_refused_in_one_line(data_file, tmp_path, capsys, extra, needle):
    path, _ = data_file
    code = main(["select", "--data", str(path), "--n", "5", *extra, "--backend", "torch",
                 "--out", str(tmp_path / "x.json")])
    err = capsys.readouterr().err.strip()
    assert code != 0 and needle in err and len(err.splitlines()) == 1
    assert not (tmp_path / "x.json").exists()


@pytest.mark.parametrize("extra, refused", [
    (["--method", "adpo"], True),                                     # blocked, reweighted
    (["--method", "apo", "--replace"], True),                         # device engine: no repeats
    (["--method", "apo"], False),                                     # device engine
    (["--method", "adpo", "--candidates", "32"], False),              # incremental on the device
])
def test_cuda_routes_or_refuses_in_one_line(data_file, capsys, monkeypatch, extra, refused):
    # No GPU here: torch is told one is visible, and the run stops at the first product
    # (TorchEngine for the exact argmax, TorchRowProducts for the incremental engine), after
    # use_backend has routed or refused.
    from sim.design import torch_greedy
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    calls = []

    def stop(*a, **k):
        calls.append(a)
        raise ValueError("stopped: reached the device engine")
    monkeypatch.setattr(torch_greedy, "TorchEngine", stop)
    monkeypatch.setattr(torch_greedy, "TorchRowProducts", stop)
    path, _ = data_file
    code = main(["select", "--data", str(path), "--n", "5", *extra, "--backend", "torch",
                 "--device", "cuda", "--out", "-"])
    err = capsys.readouterr().err.strip()
    assert code != 0 and len(err.splitlines()) == 1
    assert ("--device cpu" in err and not calls) if refused else ("stopped" in err and calls)


GPUS = [dev for dev in torch_devices() if dev != "cpu"]


@pytest.mark.parametrize("device", GPUS or [pytest.param("cuda", marks=pytest.mark.skip(
    reason="no CUDA device (run this file on a GPU machine)"))])
@pytest.mark.parametrize("extra", [
    ["--method", "apo"],                                              # device engine
    ["--method", "adpo+"],                                            # device engine, weights
    ["--method", "adpo", "--candidates", "32"],                       # incremental, refits
    ["--method", "oracle", "--record-kappa"],                         # incremental, maintained
])
def test_select_on_a_gpu_picks_what_numpy_picks(data_file, tmp_path, extra, device):
    # the routes the test above reaches, run to the end on a real CUDA device
    path, _ = data_file
    res = {}
    for backend, dev in (("numpy", []), ("torch", ["--device", device])):
        out = tmp_path / f"{backend}.json"
        assert main(["select", "--data", str(path), "--n", "60", *extra, "--seed", "3",
                     "--backend", backend, *dev, "--out", str(out)]) == 0
        res[backend] = json.loads(out.read_text())
    assert res["torch"]["indices"] == res["numpy"]["indices"]
    assert res["torch"]["weighted_logdet"] == pytest.approx(res["numpy"]["weighted_logdet"],
                                                            rel=1e-12)


def test_device_without_the_torch_backend_is_refused(data_file, tmp_path, capsys):
    path, _ = data_file
    assert main(["select", "--data", str(path), "--n", "5", "--method", "apo", "--device",
                 "cuda", "--out", str(tmp_path / "x.json")]) != 0
    assert "device" in capsys.readouterr().err


def test_cpu_backend_is_the_numpy_engine_with_torch_products(data_file):
    """On the CPU, --backend torch hands the selector the resumable numpy engine whose bulk
    products run on torch (no batches): same picks as the numpy backend."""
    from sim.design.greedy import BlockedGreedy
    from sim.design.torch_greedy import torch_engine
    _, data = data_file
    ref = make_selector("adpo+", data, seed=0).select(120)
    sel = make_selector("adpo+", data, seed=0)
    sel.engine_factory = lambda *a: torch_engine(*a, n=5)
    assert np.array_equal(sel.select(120), ref)
    assert isinstance(sel._engine, BlockedGreedy) and sel._engine.products.name == "torch"
