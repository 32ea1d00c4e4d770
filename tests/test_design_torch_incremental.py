"""The incremental greedy engine (sim.design.incremental: a random subset of m candidates per
pick, and the maintained scores of record_kappa) with its products on torch-CPU
(sim.design.torch_greedy.TorchRowProducts): the same picks, gains and kappa as numpy, ties to
the lowest index under changing weights, and mutant products that must change the picks."""

import numpy as np
import pytest

import torch  # noqa: F401  (the dev venv and CI install the CPU build)

from sim.design import greedy_select
from sim.design.greedy import GreedyState
from sim.design.incremental import IncrementalGreedy
from sim.design.torch_greedy import TorchProducts, TorchRowProducts

from helpers import torch_devices  # noqa: E402

DEVICES = torch_devices()

MODES = {"subset": {"candidates": 64, "seed": 1}, "maintained": {"record_kappa": True}}


@pytest.fixture(scope="module")
def V():
    rng = np.random.default_rng(0)
    return rng.standard_normal((3000, 16)) * rng.uniform(0.3, 2.0, (3000, 1))


@pytest.fixture(scope="module")
def numpy_runs(V):
    return {mode: greedy_select(V, 400, gamma=0.5, **kw) for mode, kw in MODES.items()}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mode", list(MODES))
def test_same_picks_gains_and_kappa_as_numpy(V, numpy_runs, mode, device):
    # on CUDA too where a GPU is present (the rows copied to the device once)
    ref = numpy_runs[mode]
    out = greedy_select(V, 400, gamma=0.5, products=TorchProducts(device), **MODES[mode])
    assert np.array_equal(out.indices, ref.indices)
    np.testing.assert_allclose(out.gains, ref.gains, rtol=1e-12)
    assert out.logdet == pytest.approx(ref.logdet, rel=1e-13)
    assert out.info["evaluations"] == ref.info["evaluations"]   # the same lazy refreshes
    if mode == "maintained":
        np.testing.assert_allclose(out.kappa, ref.kappa, rtol=1e-9)


def _hinv_off(self, state, idx):
    # the H^{-1} product 0.1% off (the pending rank-one rows exact)
    with self._threads():
        X = self._phi[idx]
        s = ((X @ self._dev(state._h_inv)) * X).sum(1) * 0.999
        if state._k:
            C = X @ self._dev(state._W[:state._k]).T
            s -= (C * C).sum(1)
        return s.numpy()


def _pending_dropped(self, state, idx, right=TorchRowProducts.scores):
    k, state._k = state._k, 0
    try:
        return right(self, state, idx)
    finally:
        state._k = k


def _downdate_off(self, q, w):
    c = self._phi @ self._dev(w)
    q -= 0.999 * (c * c).numpy()


@pytest.mark.parametrize("mode, method, mutant", [
    ("subset", "scores", _hinv_off), ("subset", "scores", _pending_dropped),
    ("maintained", "downdate", _downdate_off)])
def test_a_wrong_torch_product_changes_the_picks(V, numpy_runs, monkeypatch, mode, method,
                                                 mutant):
    # The equality above compares torch's arithmetic: a torch product 0.1% off (or one that
    # forgets the state's pending rank-one terms) must change the picks. (Scaling every score by
    # the same factor cannot: the argmax over a subset is invariant to it.)
    monkeypatch.setattr(TorchRowProducts, method, mutant)
    out = greedy_select(V, 400, gamma=0.5, products=TorchProducts(), **MODES[mode])
    assert not np.array_equal(out.indices, numpy_runs[mode].indices)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("track_all", [False, True])
def test_changing_weights_subsets_and_ties_match_numpy(track_all, device):
    # ADPO's use: weights replaced every 5 picks, a random subset each pick, and rows i and
    # i + 200 identical (same weight): both backends must pick the same rows with the same
    # exact scores, and of two identical rows the lower index first.
    rng = np.random.default_rng(3)
    base = rng.standard_normal((200, 6))
    phi = np.vstack([base, base])
    engines = [IncrementalGreedy(phi, GreedyState(6, 0.5), track_all=track_all,
                                 products=p) for p in (None, TorchProducts(device))]
    assert [e.products.name for e in engines] == ["numpy", "torch"]
    free = np.ones(400, dtype=bool)
    picks = []
    for t in range(120):
        if t % 5 == 0:
            w = np.tile(rng.uniform(0.05, 1.0, 200), 2)
        cand = np.sort(rng.choice(np.flatnonzero(free), size=min(80, free.sum()),
                                  replace=False))
        (i, s), (i_t, s_t) = (e.argmax(w, cand) for e in engines)
        assert i_t == i and s_t == pytest.approx(s, rel=1e-12), t
        v = np.sqrt(w[i]) * phi[i]
        assert engines[1].add(v) == pytest.approx(engines[0].add(v), rel=1e-12)
        assert not (i >= 200 and free[i - 200] and i - 200 in cand)  # lower twin was a candidate
        free[i] = False
        picks.append(i)
    if track_all:
        np.testing.assert_allclose(engines[1].q, engines[0].q, rtol=1e-9, atol=1e-12)
    assert any(p >= 200 for p in picks)


def test_adpo_design_with_candidates_runs_on_torch(tmp_path, monkeypatch):
    # `adpo design --solver greedy --candidates M --backend torch` (refused before): the numpy
    # run's picks, with torch's products called (and only in the torch run)
    import json

    from adpo.cli import main
    from sim.data import PreferenceData
    rng = np.random.default_rng(4)
    path = tmp_path / "d.npz"
    PreferenceData(phi=rng.standard_normal((500, 6)), b=np.zeros(500), beta=1.0).save(path)
    calls = []
    right = TorchRowProducts.scores
    monkeypatch.setattr(TorchRowProducts, "scores", lambda *a: calls.append(1) or right(*a))
    outs = {}
    for backend in ("numpy", "torch"):
        n_calls = len(calls)
        out = tmp_path / f"{backend}.json"
        assert main(["design", "--data", str(path), "--solver", "greedy", "--n", "40",
                     "--candidates", "50", "--seed", "2", "--backend", backend,
                     "--out", str(out)]) == 0
        outs[backend] = json.loads(out.read_text())
        assert (len(calls) > n_calls) == (backend == "torch")
    assert outs["torch"]["indices"] == outs["numpy"]["indices"]
    assert outs["torch"]["logdet"] == pytest.approx(outs["numpy"]["logdet"], rel=1e-12)


def test_the_incremental_engine_is_float64_on_both_backends(V, numpy_runs):
    # float32 asks only the blocked engine's bulk for single precision: the incremental one
    # runs (and reports) float64 on either backend, with the float64 picks
    for products in (None, TorchProducts()):
        out = greedy_select(V, 400, gamma=0.5, dtype=np.float32, products=products,
                            **MODES["subset"])
        assert out.info["dtype"] == "float64"
        assert np.array_equal(out.indices, numpy_runs["subset"].indices)
