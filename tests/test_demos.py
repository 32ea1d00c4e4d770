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


def test_plot_helper_draws_nothing_with_no_plot(tmp_path):
    import argparse

    from sim.demos._common import plot

    def draw(ax):
        raise AssertionError("draw() called under --no-plot")

    plot(argparse.Namespace(no_plot=True, out=str(tmp_path)), "x", draw)
    assert not any(tmp_path.iterdir())
