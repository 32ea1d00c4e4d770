"""Frank-Wolfe on the torch backend (sim.design.relaxed_rows.TorchRows) against the numpy one,
cvxpy and dense solves; the CLI's ``--backend torch`` for ``--solver fw``; and mutants (a wrong
step, a wrong certificate, a torch update that drifts from numpy's) that these checks reject."""

import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import sim.design.relaxed as relaxed
from adpo.cli import main
from sim.data import PreferenceData
from sim.design import cvxpy_design, fw_design
from sim.design.relaxed_rows import NumpyRows

torch = pytest.importorskip("torch")
from sim.design.relaxed_rows import TorchRows  # noqa: E402

from helpers import torch_devices  # noqa: E402


def _dense(V, pi):
    """(log det M(pi), d / max_i g_i) by a dense solve, independent of the solvers."""
    M = V.T @ (pi[:, None] * V)
    g = np.einsum("ij,ij->i", V, np.linalg.solve(M, V.T).T)
    return np.linalg.slogdet(M)[1], V.shape[1] / g.max()


def _same(a, b, tol=1e-9):
    """Whether two relaxed designs agree: weights, log det and certificate to ``tol``."""
    return bool(np.abs(a.pi - b.pi).max() <= tol and abs(a.logdet - b.logdet) <= tol
                and abs(a.efficiency - b.efficiency) <= tol)


# (N, d, options): the full-row solve, the working set (N > 2000) and the away steps
CASES = [(300, 6, {}), (3000, 10, {}), (400, 5, {"step": "away"})]


@pytest.fixture(scope="module", params=CASES, ids=["full", "working-set", "away"])
def pair(request):
    N, d, opts = request.param
    rng = np.random.default_rng(N + d)
    V = rng.standard_normal((N, d)) * rng.uniform(0.3, 2.0, (N, 1))
    w = rng.uniform(0.2, 1.5, N)
    kw = dict(weights=w, efficiency=1 - 1e-10, **opts)
    return V, w, kw, fw_design(V, **kw), fw_design(V, backend="torch", device="cpu", **kw)


def _early(V, kw, backend):
    """The design after 40 steps from the greedy start with random masses: early steps have
    clear argmax / argmin gaps, so both backends take the same path and agree to rounding.
    (The uniform start ties every support row at g_i = d, and near the optimum rows tie again:
    there rounding picks the order, and only the converged designs can be compared.)"""
    Vw = V * np.sqrt(kw["weights"])[:, None]
    pi0 = relaxed._start(Vw, "greedy", None) * np.random.default_rng(0).uniform(1, 2, len(V))
    return fw_design(V, backend=backend, pi0=pi0, **{**kw, "max_iter": 40})


def test_torch_cpu_equals_numpy_weights_log_det_and_certificate(pair):
    V, w, kw, a, b = pair
    ea, eb = _early(V, kw, "numpy"), _early(V, kw, "torch")
    assert ea.iterations == eb.iterations == 40 and _same(ea, eb, 1e-12)
    assert b.info["backend"] == "torch" and a.info["backend"] == "numpy"
    assert a.converged and b.converged and b.efficiency >= 1 - 1e-10
    assert _same(a, b)
    Vw = V * np.sqrt(w)[:, None]
    logdet, eff = _dense(Vw, b.pi)                 # reported numbers are those of its pi
    assert b.logdet == pytest.approx(logdet, abs=1e-10)
    assert b.efficiency == pytest.approx(eff, rel=1e-10)


GPUS = [dev for dev in torch_devices() if dev != "cpu"]


@pytest.mark.parametrize("device", GPUS or [pytest.param("cuda", marks=pytest.mark.skip(
    reason="no CUDA device (run this file on a GPU machine)"))])
def test_fw_on_the_gpu_equals_numpy(pair, device):
    # the same solver on a CUDA device: converged to the numpy design, and the reported log det
    # and certificate are those of its pi (cuBLAS sums in another order than the CPU)
    V, w, kw, a, _ = pair
    g = fw_design(V, backend="torch", device=device, **kw)
    assert g.info["device"].startswith("cuda") and g.converged and _same(a, g)
    logdet, eff = _dense(V * np.sqrt(w)[:, None], g.pi)
    assert g.logdet == pytest.approx(logdet, abs=1e-10)
    assert g.efficiency == pytest.approx(eff, rel=1e-10)


def test_torch_fw_equals_cvxpy_on_a_tiny_instance():
    rng = np.random.default_rng(11)
    V = rng.standard_normal((60, 4)) * rng.uniform(0.2, 2.0, (60, 1))
    t = fw_design(V, efficiency=1 - 1e-10, backend="torch")
    cv = cvxpy_design(V, tol_gap_rel=1e-12, tol_gap_abs=1e-12, tol_feas=1e-12)
    assert abs(t.logdet - cv.logdet) <= 1e-7
    assert np.abs(t.pi - cv.pi).max() <= 1e-4     # the optimum is unique for generic V


def test_mutant_torch_update_that_drifts_from_numpy_is_caught(monkeypatch, pair):
    V, w, kw, _, _ = pair
    right = TorchRows.update
    # the variances updated with 0.999 times the right coefficients between refreshes
    monkeypatch.setattr(TorchRows, "update", lambda self, U, c, scale: right(
        self, U, tuple(0.999 * x for x in c), scale))
    assert not _same(_early(V, kw, "numpy"), _early(V, kw, "torch"), 1e-12)


@pytest.mark.parametrize("factor", [0.3, 2.0])
def test_mutant_wrong_pairwise_step_fails_to_certify(monkeypatch, factor):
    V = np.random.default_rng(2).standard_normal((500, 8))
    for backend in ("numpy", "torch"):          # ~360 steps with the right step
        assert fw_design(V, efficiency=1 - 1e-9, max_iter=600, backend=backend).converged
    right = relaxed.pairwise_step
    monkeypatch.setattr(relaxed, "pairwise_step", lambda *a: factor * right(*a))
    for backend in ("numpy", "torch"):          # 0.3x: ~2000 steps; 2x: never
        bad = fw_design(V, efficiency=1 - 1e-9, max_iter=600, backend=backend)
        assert not bad.converged and bad.efficiency < 1 - 1e-9


@pytest.mark.parametrize("cls", [NumpyRows, TorchRows])
def test_mutant_wrong_certificate_is_caught_by_the_dense_check(monkeypatch, cls):
    V = np.random.default_rng(3).standard_normal((3000, 6))
    backend = "numpy" if cls is NumpyRows else "torch"
    right = cls.scan
    # the reported (float64) certificate from L^{-1} where L^{-T} is due
    monkeypatch.setattr(cls, "scan", lambda self, L, exact=False: right(
        self, L.T if exact else L, exact))
    r = fw_design(V, efficiency=1 - 1e-6, backend=backend, max_iter=3000)
    assert r.efficiency != pytest.approx(_dense(V, r.pi)[1], rel=1e-6)


def test_cli_fw_on_torch_and_one_line_refusals(tmp_path, capsys):
    rng = np.random.default_rng(4)
    path = tmp_path / "d.npz"
    PreferenceData(phi=rng.standard_normal((120, 5)), b=np.zeros(120), beta=1.0).save(path)
    outs = {}
    for backend in ("numpy", "torch"):
        out = tmp_path / f"{backend}.json"
        assert main(["design", "--data", str(path), "--solver", "fw", "--backend", backend,
                     "--efficiency", "0.9999999999", "--out", str(out)]) == 0
        outs[backend] = json.loads(out.read_text())
    assert outs["torch"]["options"]["backend"] == "torch"
    assert np.abs(np.subtract(outs["torch"]["pi"], outs["numpy"]["pi"])).max() < 1e-9
    assert abs(outs["torch"]["logdet_relaxed"] - outs["numpy"]["logdet_relaxed"]) < 1e-9
    for extra, msg in ((["--solver", "rex", "--backend", "torch"], "applies to --solver greedy or fw"),
                       (["--solver", "fw", "--device", "cuda"], "--backend torch only"),
                       (["--solver", "fw", "--backend", "torch", "--device", "tpu"], "device")):
        assert main(["design", "--data", str(path), *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert msg in err and "\n" not in err and "Traceback" not in err
    if not torch.cuda.is_available():
        assert main(["design", "--data", str(path), "--solver", "fw", "--backend", "torch",
                     "--device", "cuda"]) == 2
        assert "no CUDA device" in capsys.readouterr().err


def test_bad_backend_in_the_api():
    V = np.random.default_rng(5).standard_normal((20, 3))
    with pytest.raises(ValueError, match="backend"):
        fw_design(V, backend="jax")
    with pytest.raises(ValueError, match="device"):
        fw_design(V, device="cuda")


def test_read_only_rows_reach_torch_without_a_warning(tmp_path):
    """A loaded .npz or a pool gives read-only arrays; ``adpo design --solver fw --backend torch``
    printed torch's "NumPy array is not writable" UserWarning for them. torch warns once per
    process, so the check runs in a fresh one, with every warning an error (mutant: TorchRows
    calling torch.from_numpy directly, as it did, exits non-zero here)."""
    code = ("import warnings, numpy as np\n"
            "from sim.design.relaxed_rows import TorchRows\n"
            "V = np.arange(12.0).reshape(4, 3); V.setflags(write=False)\n"
            "warnings.simplefilter('error')\n"
            "rows = TorchRows(V)\n"
            "assert rows.take(np.array([2, 0])).X.tolist() == [[6, 7, 8], [0, 1, 2]]\n")
    root = pathlib.Path(__file__).resolve().parents[1]
    r = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
