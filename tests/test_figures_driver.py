"""``python -m figures`` (figures.driver): timed figures alone, the others side by side in
one-thread processes, with the same outputs as one after another."""

import concurrent.futures as cf
import json
import multiprocessing
import os
import pathlib
import subprocess
import sys

from figures import common, driver

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_timed_figures_are_the_ones_measuring_wall_clock_time():
    timed = [n for n in driver.discover() if driver.is_timed(n)]
    assert timed == ["design_scaling"]  # its sidecar: "measured on this run (never cached)"


def test_longest_figure_of_the_last_run_starts_first_and_new_ones_before_all(tmp_path,
                                                                             monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert driver._order(["a", "b", "c"]) == ["a", "b", "c"]  # no record: as discovered
    driver.DURATIONS.parent.mkdir(parents=True)
    driver.DURATIONS.write_text(json.dumps({"a": 1.0, "b": 5.0}))
    assert driver._order(["a", "b", "c"]) == ["c", "b", "a"]
    driver.DURATIONS.write_text("[1, 2]")  # unreadable record: as discovered, no error
    assert driver._order(["a", "b", "c"]) == ["a", "b", "c"]


def test_figure_processes_run_one_thread():
    # the driver's pool: each process pins BLAS / OpenMP / torch to one thread before any import
    ctx = multiprocessing.get_context("spawn")
    with cf.ProcessPoolExecutor(1, mp_context=ctx, initializer=driver._pin_one_thread) as pool:
        assert pool.submit(common.cpu_threads).result() == 1
    # without the initializer (the mutant) a figure would take the machine's threads
    with cf.ProcessPoolExecutor(1, mp_context=ctx) as pool:
        assert pool.submit(common.cpu_threads).result() == int(
            os.environ.get("ADPO_FIGURE_THREADS", "2"))


def _run(cwd, *args):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-m", "figures", "--scale", "tiny", "--out-dir", "out",
                          *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_side_by_side_figures_write_what_one_after_another_writes(tmp_path):
    names = ["design_quality", "theory_dscaling"]
    (tmp_path / "par").mkdir()
    (tmp_path / "seq").mkdir()
    log = _run(tmp_path / "par", "--jobs", "2", *names)
    assert all(f"] {n}: " in log for n in names)
    _run(tmp_path / "seq", "--jobs", "1", *names)
    for n in names:
        par = json.loads((tmp_path / "par" / "out" / f"{n}.json").read_text())
        seq = json.loads((tmp_path / "seq" / "out" / f"{n}.json").read_text())
        assert par == seq, n
    # a subset run leaves the durations record of a full run alone
    assert not (tmp_path / "par" / driver.DURATIONS).exists()
