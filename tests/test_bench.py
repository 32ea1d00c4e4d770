"""The benchmark record: one writer, median-of-3 timing, and a README table generated from it."""

import json

import pytest

from bench import common, readme
from sim.docblocks import get_block, replace_block


def test_readme_table_matches_committed_results():
    """The README's benchmark blocks are exactly the renderings of bench/results/*.json."""
    text = readme.README.read_text()
    assert get_block(text, readme.BLOCK) == readme.render()
    assert get_block(text, readme.POOLS_BLOCK) == readme.render_pools()
    # every setting of the pools table has a measurement behind it
    assert "not measured yet" not in readme.render_pools()


def test_stale_readme_table_is_caught(tmp_path, monkeypatch):
    """Mutant: one timing in a results file changes -> the rendered table differs and --check
    fails."""
    rec = common.Results("demo", params={"N": 4})
    rec.add("rows", solver="ours", seconds=1.25)
    rec.headline("demo bench", ours="1.25 s", reference="ref 2.50 s (2.0×)")
    rec.write(tmp_path)
    readme_file = tmp_path / "README.md"
    body = readme.render(tmp_path)
    readme_file.write_text(replace_block("x\n<!-- bench:table -->\n<!-- /bench:table -->\n"
                                         "<!-- bench:pools -->\n<!-- /bench:pools -->\n",
                                         readme.BLOCK, body))
    monkeypatch.setattr(readme, "POOLS", (("laptop", "adpo design", (("demo", "demo"),)),))
    readme_file.write_text(replace_block(readme_file.read_text(), readme.POOLS_BLOCK,
                                         readme.render_pools(tmp_path)))
    monkeypatch.setattr(readme, "README", readme_file)
    monkeypatch.setattr(readme, "RESULTS_DIR", tmp_path)
    assert readme.main(["--check"]) == 0
    data = json.loads((tmp_path / "demo.json").read_text())
    data["headlines"][0]["ours"] = "1.30 s"
    (tmp_path / "demo.json").write_text(json.dumps(data))
    assert readme.main(["--check"]) == 1
    assert readme.main(["--write"]) == 0 and readme.main(["--check"]) == 0
    text = readme_file.read_text()
    assert "1.30 s" in get_block(text, readme.BLOCK) and "1.30 s" in get_block(
        text, readme.POOLS_BLOCK)


def test_results_file_records_machine_and_load(tmp_path):
    rec = common.Results("demo", quick=True, params={"N": 8})
    rec.add("rows", seconds=0.5)
    rec.headline("b", ours="o", reference="r")
    data = common.load(rec.write(tmp_path))
    assert data["format"] == common.FORMAT and data["quick"] is True
    m = data["machine"]
    assert {"cpu", "cores", "ram_gb", "numpy", "scipy", "torch", "blas", "OPENBLAS_CORETYPE",
            "kernel"} <= set(m) and m["cores"] >= 1 and m["blas"]
    assert len(data["load_average"]["start"]) == 3 and len(data["load_average"]["end"]) == 3
    assert data["tables"] == {"rows": [{"seconds": 0.5}]} and data["params"] == {"N": 8}
    (tmp_path / "bad.json").write_text('{"format": "other"}')
    with pytest.raises(ValueError, match="adpo-bench/1"):
        common.load(tmp_path / "bad.json")


def test_median_time_warms_up_and_takes_the_median(monkeypatch):
    """Fake clock: the warm-up (10 s) is excluded and the median of 1, 7, 2 s is 2 s.
    Mutants rejected: timing the warm-up (max 10), the mean (3.33), the minimum (1)."""
    ticks = iter([0, 1, 10, 17, 20, 22])  # start/stop pairs of the three timed calls
    import types

    import sim.timing  # the one timing rule, re-exported by bench.common

    monkeypatch.setattr(sim.timing, "time", types.SimpleNamespace(perf_counter=lambda: next(ticks)))
    calls = []
    t = common.median_time(lambda x: calls.append(x) or len(calls), "a")
    assert calls == ["a"] * 4 and t.runs == [1, 7, 2] and t.seconds == 2 and t.result == 4
    with pytest.raises(ValueError, match="at least 3"):
        common.median_time(lambda: None, repeat=2)


def test_blocks_are_found_once():
    text = "a\n<!-- t -->\nold\n<!-- /t -->\nb\n"
    assert get_block(text, "t") == "old\n"
    assert replace_block(text, "t", "new") == "a\n<!-- t -->\nnew\n<!-- /t -->\nb\n"
    with pytest.raises(ValueError, match="found 0 times"):
        get_block("no block", "t")
    with pytest.raises(ValueError, match="found 2 times"):
        get_block(text + text, "t")


def test_save_goes_through_the_one_writer(tmp_path, monkeypatch):
    monkeypatch.setattr(common, "RESULTS_DIR", tmp_path)
    data = common.load(common.save("legacy", {"N": 4, "rows": [{"s": 1.0}]}))
    assert data["tables"] == {"rows": [{"s": 1.0}]} and data["params"] == {"N": 4}


def test_relaxed_bench_measures_every_solver_on_one_instance(monkeypatch):
    """bench.bench_relaxed: every solver's row certifies the target, gaps are to the best design
    of the instance (one row 0, none negative), REX's exchanges and the load are recorded; a REX
    stopped by its time cap is reported as stopped, with the efficiency it reached."""
    from bench import bench_relaxed as br

    res = common.Results("relaxed", quick=True)
    br.bench_relaxed(res, [(200, 6)], [], rex_seconds=30, torch=False)
    rows = {r["solver"]: r for r in res.tables["relaxed"]}
    assert set(rows) == {"fw-numpy", "rex"}
    assert min(r["logdet_gap"] for r in rows.values()) == 0
    for r in rows.values():
        assert r["converged"] and r["efficiency"] >= br.TARGET and 0 <= r["logdet_gap"] < 1e-8
        assert len(r["load"]) == 3 and r["N"] == 200 and r["d"] == 6
    assert rows["rex"]["exchanges"] > 0 and "REX / FW-numpy" in res.headlines[0]["reference"]
    stopped = common.Results("relaxed", quick=True)
    monkeypatch.setattr(br, "TARGET", 1 - 1e-13)
    br.bench_relaxed(stopped, [(200, 6)], [], rex_seconds=1e-9, torch=False)
    rex = next(r for r in stopped.tables["relaxed"] if r["solver"] == "rex")
    assert not rex["converged"] and "stopped at efficiency" in stopped.headlines[0]["ours"]
    assert "REX / FW-numpy > " in stopped.headlines[0]["reference"]   # a bound, not a ratio


def test_work_split_recovers_parallel_and_serial_work():
    """A run with P seconds of work spread over w cores and S seconds on one core has
    wall = P / w + S and cpu = P + S; work_split must give P and S back (mutants: the wall
    taken as the serial part, or P not rescaled by w / (w - 1), miss by seconds)."""
    from bench.bench_greedy import work_split
    for P, S, w in [(40.0, 10.0, 2), (30.0, 3.0, 4)]:
        out = work_split(P / w + S, P + S, w, flops=1e11, rate=10.0)
        assert out["parallel_cpu_s"] == pytest.approx(P) and out["serial_s"] == pytest.approx(S)
        assert out["gemm_fraction_overlapped"] == pytest.approx(1e11 / ((P + S) / w) / 1e10)
    assert work_split(5.0, 5.0, 1, flops=1.0, rate=1.0) == {"cpu_seconds": 5.0, "workers": 1}


def test_gpu_scale_smoke_on_the_cpu(tmp_path):
    # bench.gpu_scale's sections at tiny sizes on the CPU (the script itself runs on a GPU
    # machine): every equality it reports holds, each section gives its README headline, and
    # the pool section selected through the CLI from a pool folder it wrote and removed.
    pytest.importorskip("torch")
    from bench import gpu_scale
    out = tmp_path / "g.json"
    assert gpu_scale.main(["--device", "cpu", "--tiny", "--pool", "--pool-dir", str(tmp_path),
                           "--incremental", "4096", "16", "128", "--incremental-n", "60",
                           "--out", str(out)]) == 0
    rec = json.loads(out.read_text())
    t = rec["tables"]
    assert t["check"][0]["torch_f32_equal_numpy_f64"] and t["check"][0]["torch_f64_equal_numpy_f64"]
    assert t["pool"][0]["rc"] == 0 and t["pool"][0]["picks_equal"]
    assert [r["mode"] for r in t["incremental"]] == ["maintained", "subset"]
    assert all(r["picks_equal"] and r["evaluations_equal"] for r in t["incremental"])
    assert t["incremental"][0]["kappa_max_rel_diff"] < 1e-9
    assert [h["benchmark"].split(" ")[0] for h in rec["headlines"]] == [
        "greedy", "adpo", "incremental", "incremental"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.json"]   # the pool was removed


@pytest.mark.parametrize("args, needle", [
    (["--out", "/nonexistent-dir/g.json"], "--out"),
    (["--out", "g.json", "--pool", "--pool-dir", "/nonexistent-dir"], "--pool-dir"),
    (["--out", "g.json", "--pool", "--N", "10000000000000"], "GB free"),
    (["--out", "g.json", "--pool", "--pool-partial", "0.5"], "CUDA"),      # --device cpu
    (["--out", "g.json", "--pool-partial", "0.5", "--device", "cuda"], "with --pool"),
    (["--out", "g.json", "--pool", "--pool-partial", "1.5", "--device", "cuda"], "0 < F < 1"),
    (["--out", "g.json", "--pool", "--pool-partial", "0.5", "--pool-partial-n", "0",
      "--device", "cuda"], "--pool-partial-n"),
])
def test_gpu_scale_refuses_bad_paths_before_any_work(tmp_path, monkeypatch, capsys, args, needle):
    from bench import gpu_scale
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as e:
        gpu_scale.main(["--device", "cpu", "--tiny", *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and needle in err[-1]
    assert list(tmp_path.iterdir()) == []


def test_committed_gpu_headlines_are_rendered_from_their_tables():
    # bench/results/gpu_scale.json comes from a GPU machine (bench/gpu_design.sh): its README
    # rows must be what bench.gpu_scale's headline functions make of its own tables, so no
    # number in them is typed by hand (a hand-edited speed-up fails here)
    from bench import gpu_scale
    rec = common.load(common.RESULTS_DIR / "gpu_scale.json")
    gpu, t = rec["machine"]["gpu"], rec["tables"]
    want = ([gpu_scale.compare_headline(r, gpu) for r in t.get("compare", [])]
            + [gpu_scale.pool_headline(r, gpu) for r in t.get("pool", [])]
            + [gpu_scale.pool_partial_headline(r, gpu) for r in t.get("pool_partial", [])]
            + [gpu_scale.incremental_headline(r, gpu) for r in t.get("incremental", [])])
    assert want and rec["headlines"][1:] == want
    timing = t["timing"][0]
    assert rec["headlines"][0]["ours"] == f"{timing['seconds']:.1f} s"
    edited = {**t["compare"][0], "speedup": t["compare"][0]["speedup"] * 1.1}
    assert gpu_scale.compare_headline(edited, gpu) != rec["headlines"][1]
