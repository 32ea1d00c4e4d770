"""Every figure script runs at the tiny scale and writes a non-empty PNG, PDF and sidecar."""

import importlib
import json

import pytest

from figures.__main__ import discover


@pytest.mark.parametrize("name", discover())
def test_figure_script_tiny(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # caches go to tmp_path/results, not the checkout
    mod = importlib.import_module(f"figures.fig_{name}")
    paths = mod.main(scale="tiny", out_dir=tmp_path / "out", jobs=1)
    suffixes = {p.suffix for p in paths}
    assert {".png", ".pdf", ".json"} <= suffixes
    for p in paths:
        assert p.exists() and p.stat().st_size > 0, p
    sidecar = json.loads(next(p for p in paths if p.suffix == ".json").read_text())
    assert sidecar.get("scale") == "tiny"
