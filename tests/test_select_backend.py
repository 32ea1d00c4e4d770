"""``adpo select --backend torch`` (adpo/commands/select.py, the GreedySelector engine hook and
sim.design.torch_greedy.TorchEngine) on torch-CPU: the fixed-weight greedy methods pick exactly
what the numpy engine picks; the others are refused in one line."""

import json

import numpy as np
import pytest

import torch  # noqa: F401  (the dev venv and CI install the CPU build)

from adpo.cli import main
from sim.design.torch_greedy import TorchEngine
from sim.envs import gaussian_env
from sim.selectors import make_selector


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


@pytest.mark.parametrize("extra,needle", [
    (["--method", "adpo"], "backend"),                               # refits its weights
    (["--method", "adpo+", "--candidates", "64"], "backend"),         # random subsets
    (["--method", "uniform"], "backend"),                             # not a greedy design
])
def test_methods_that_cannot_are_refused_in_one_line(data_file, tmp_path, capsys, extra, needle):
    path, _ = data_file
    code = main(["select", "--data", str(path), "--n", "5", *extra, "--backend", "torch",
                 "--out", str(tmp_path / "x.json")])
    err = capsys.readouterr().err.strip()
    assert code != 0 and needle in err and len(err.splitlines()) == 1
    assert not (tmp_path / "x.json").exists()


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
