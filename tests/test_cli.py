"""The adpo console script: env -> fit -> select round trip, --help, and exit codes."""

import json
import subprocess
import sys

import numpy as np
import pytest

from adpo.cli import main
from sim.data import PreferenceData


def test_help_documents_npz_keys(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for key in ("phi", "b", "beta", "s", "theta_star", "theta_true"):
        assert f"  {key} " in out


def test_env_fit_select_round_trip(tmp_path, capsys):
    data = tmp_path / "g.npz"
    assert main(["env", "--kind", "gaussian", "--N", "400", "--d", "4", "--seed", "1",
                 "--out", str(data)]) == 0
    d = PreferenceData.load(data)
    assert d.N == 400 and d.s is not None and d.theta_star is not None
    capsys.readouterr()
    sel = tmp_path / "sel.json"
    assert main(["select", "--data", str(data), "--method", "adpo+", "--n", "30",
                 "--out", str(sel)]) == 0
    chosen = json.loads(sel.read_text())
    assert len(chosen["indices"]) == 30 and np.isfinite(chosen["logdet"])
    assert main(["fit", "--data", str(data), "--subset", str(sel)]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["n"] == 30 and len(res["theta_hat"]) == 4
    for k in ("max_logit_error", "mean_logit_error", "error_rate", "accuracy", "margin", "nll"):
        assert k in res["metrics"]
    # the fit on all rows reproduces theta_star (same ridge): logit error ~ 0
    assert main(["fit", "--data", str(data)]) == 0
    full = json.loads(capsys.readouterr().out)
    assert full["metrics"]["max_logit_error"] < 1e-8


@pytest.mark.parametrize("argv,needle,code", [
    (["fit", "--data", "/nonexistent.npz"], "no such file", 3),
    (["env", "--kind", "gaussian", "--N", "10", "--seed", "0", "--out", "x.npz"], "d", 2),
    (["env", "--kind", "gaussian", "--N", "10", "--d", "2", "--beta", "-1", "--seed", "0",
      "--out", "x.npz"], "beta", 2),
])
def test_errors_exit_with_a_named_field(argv, needle, code, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == code  # 2 = bad option, 3 = bad input file (adpo.cli.EXIT_CODES)
    assert needle in capsys.readouterr().err


def test_select_rejects_oversized_budget_and_bad_subset(tmp_path, capsys):
    data = tmp_path / "g.npz"
    main(["env", "--kind", "gaussian", "--N", "50", "--d", "3", "--seed", "0", "--out", str(data)])
    assert main(["select", "--data", str(data), "--method", "uniform", "--n", "51"]) == 2
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 1]")
    assert main(["fit", "--data", str(data), "--subset", str(bad)]) == 3
    bad.write_text("{not json")
    assert main(["fit", "--data", str(data), "--subset", str(bad)]) == 3
    err = capsys.readouterr().err
    assert "budget" in err and "duplicate" in err and "not readable JSON" in err


def test_console_script_entry_point():
    out = subprocess.run([sys.executable, "-m", "adpo", "--help"], capture_output=True,
                         text=True, check=True)
    assert "select" in out.stdout


def test_add_command_takes_help_and_description_from_the_module_docstring():
    import argparse

    from adpo.commands import add_command

    sub = argparse.ArgumentParser().add_subparsers()
    doc = """``adpo demo``: one line
    of help

    First paragraph,
    wrapped.

    Second."""
    p = add_command(sub, "demo", doc)
    assert sub._choices_actions[0].help == "one line of help"
    assert p.description == "First paragraph, wrapped.\n\nSecond."
    with pytest.raises(ValueError, match="adpo other"):
        add_command(sub, "other", doc)  # the docstring must name its own command
    assert add_command(sub, "bare", None).description is None  # python -OO: no docstrings
