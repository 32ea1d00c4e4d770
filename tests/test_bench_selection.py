"""bench_selection at a tiny size: the rows it records and the same-picks check it reports."""

import json

from bench import bench_selection, common


def test_tiny_run_records_ratios_and_same_picks(tmp_path, monkeypatch):
    """A --size run goes to the ignored quick directory (never the committed record), runs only
    the --methods asked for, and finds that the oracle (fixed weights) picks exactly
    greedy_select's rows under its own weights. Mutant rejected: the reference greedy_select
    run without the selector's weights (same_picks False for the oracle)."""
    monkeypatch.setattr(common, "QUICK_DIR", tmp_path)
    bench_selection.main(["--size", "300", "6", "40", "--repeat", "1", "--features", "unit",
                          "--methods", "oracle", "adpo", "--blas-threads", "1"])
    data = json.loads((tmp_path / "selection.json").read_text())
    assert data["quick"] is True
    assert data["params"]["blas_threads"] == 1 and data["params"]["N"] == 300
    rows = {r["method"]: r for r in data["tables"]["rows"]}
    assert set(rows) == {"oracle", "adpo"}
    assert rows["oracle"]["same_picks"] is True and rows["oracle"]["refits"] == 0
    assert rows["adpo"]["refits"] == 6  # rounds 1, 2, 4, 8, 16, 32 (pow2, n = 40)
    for r in rows.values():
        assert 0 <= r["refit_fraction"] < 1 and r["engine_s"] <= r["select_s"]
        assert abs(r["ratio"] - r["select_s"] / r["greedy_select_s"]) < 1e-12
