"""Each theory figure script runs at scale "tiny" and writes a non-empty PNG, PDF and JSON."""

import importlib
import json

import pytest

from theory import figure_support

NAMES = ["theory_bound", "theory_kappa", "theory_coverage", "theory_dscaling"]


@pytest.mark.parametrize("name", NAMES)
def test_figure_script_runs_at_tiny_scale(name, tmp_path, monkeypatch):
    monkeypatch.setattr(figure_support, "CACHE_ROOT", tmp_path / "cache")
    mod = importlib.import_module(f"figures.fig_{name}")
    paths = mod.main(scale="tiny", out_dir=tmp_path, jobs=1)
    assert {p.suffix for p in paths} == {".png", ".pdf", ".json"}
    for p in paths:
        assert p.exists() and p.stat().st_size > 0
    side = json.loads((tmp_path / f"fig_{name}.json").read_text())
    assert side["scale"] == "tiny" and side["figure"] == name
    # A second call is served from the cache and gives the same sidecar.
    mod.main(scale="tiny", out_dir=tmp_path, jobs=1)
    assert json.loads((tmp_path / f"fig_{name}.json").read_text()) == side
    assert any((tmp_path / "cache" / name).glob("*.npz"))


def test_unknown_scale_is_refused():
    mod = importlib.import_module("figures.fig_theory_bound")
    with pytest.raises(ValueError, match="scale"):
        mod.main(scale="huge")
