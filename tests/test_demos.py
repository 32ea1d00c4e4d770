"""Every teaching script runs end to end and writes its figure."""

import importlib
import sys

import pytest

DEMOS = ["design_vs_uniform", "gain_is_variance", "logistic_weight", "online_vs_offline",
         "what_kappa_measures"]


@pytest.mark.parametrize("name", DEMOS)
def test_demo_runs(name, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", [name, "--out", str(tmp_path)])
    importlib.import_module(f"sim.demos.{name}").main()
    png = tmp_path / f"{name}.png"
    assert png.exists() and png.stat().st_size > 1000
    assert capsys.readouterr().out.strip()
