"""The ``adpo design`` subcommand (adpo/commands/design.py)."""

import json

import numpy as np
import pytest

from adpo.cli import main
from sim.data import PreferenceData
from sim.design import fw_design, greedy_select
from sim.dpo import logistic_weight


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    rng = np.random.default_rng(0)
    N, d = 80, 4
    phi = rng.standard_normal((N, d))
    b = rng.standard_normal(N) * 0.1
    theta = rng.standard_normal(d)
    data = PreferenceData(phi=phi, b=b, beta=0.5, theta_star=theta)
    path = tmp_path_factory.mktemp("design") / "data.npz"
    data.save(path)
    return path, data


@pytest.mark.parametrize("solver", ["greedy", "fw", "rex", "multiplicative", "cvxpy", "exchange"])
def test_each_solver_writes_its_json(data_file, tmp_path, solver):
    path, data = data_file
    out = tmp_path / "design.json"
    args = ["design", "--data", str(path), "--solver", solver, "--n", "6", "--design-ridge", "0.5",
            "--weights", "theta_star", "--out", str(out)]
    if solver == "multiplicative":
        args += ["--efficiency", "0.999"]
    assert main(args) == 0
    res = json.loads(out.read_text())
    assert len(res["indices"]) == 6 and len(set(res["indices"])) == 6
    assert res["seconds"] >= 0 and np.isfinite(res["logdet"])
    w = data.beta ** 2 * logistic_weight(data.beta * (data.phi @ data.theta_star - data.b))
    if solver == "greedy":
        ref = greedy_select(data.phi, 6, gamma=0.5, weights=w)
        assert res["indices"] == ref.indices.tolist()
        assert res["efficiency"] is None and res["logdet_relaxed"] is None
        assert abs(res["weighted_logdet"] - ref.logdet) < 1e-9
    elif solver in ("fw", "rex", "multiplicative", "cvxpy"):
        assert len(res["pi"]) == data.N and abs(sum(res["pi"]) - 1) < 1e-9
        assert 0.99 < res["efficiency"] <= 1
        opt = fw_design(data.phi, weights=w, efficiency=1 - 1e-10).logdet
        assert res["logdet_relaxed"] <= opt + 1e-9
    # 'logdet' is the unweighted log det(gamma I + sum phi phi^T) of the chosen rows, as in select
    ref = np.linalg.slogdet(0.5 * np.eye(data.d) + data.phi[res["indices"]].T @ data.phi[res["indices"]])[1]
    assert abs(res["logdet"] - ref) < 1e-9


def test_brute_and_errors(data_file, tmp_path, capsys):
    path, data = data_file
    out = tmp_path / "b.json"
    small = tmp_path / "small.npz"
    data.subset(np.arange(10)).save(small)
    assert main(["design", "--data", str(small), "--solver", "brute", "--n", "3",
                 "--out", str(out)]) == 0
    assert len(json.loads(out.read_text())["indices"]) == 3
    assert main(["design", "--data", str(path), "--solver", "greedy", "--out", str(out)]) == 2
    assert "--n is required" in capsys.readouterr().err
    assert main(["design", "--data", str(path), "--solver", "brute", "--n", "20",
                 "--out", str(out)]) == 2
    assert "max_subsets" in capsys.readouterr().err
    nostar = tmp_path / "nostar.npz"
    PreferenceData(phi=data.phi, b=data.b, beta=data.beta).save(nostar)
    assert main(["design", "--data", str(nostar), "--solver", "fw", "--weights", "theta_star",
                 "--out", str(out)]) == 3
    assert "theta_star" in capsys.readouterr().err
