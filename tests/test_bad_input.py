"""The bad-input suite: every subcommand, every class of bad input the hardening issue found.

Each case runs ``adpo`` in process and asserts: the documented exit code (adpo.cli.EXIT_CODES:
2 usage, 3 bad data, 4 resources, 5 system, 130 interrupted; never 1 = an unmapped exception,
the in-process form of a traceback), exactly one line on stderr naming the field or path, no
``Traceback``, no file created (temp files included), and every input byte-identical
afterwards. A few real subprocesses prove that no traceback reaches a user. Then the readers
(.npz, JSONL, TOML sweeps, subset JSON) are fuzzed with hypothesis: any bytes or structurally
mutated valid file give a ``ValueError`` (or load), never another exception type.
"""

from __future__ import annotations

import errno
import json
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim import io as sim_io
from adpo.cli import EXIT_CODES, main
from sim.data import PreferenceData, read_subset
from sim.envs import gaussian_env
from sim.runner import load_sweep
from sim.textdata import handwritten_pairs, meta_path, read_pairs, split_lines, write_jsonl

ROOT = pathlib.Path(__file__).resolve().parents[1]
FUZZ = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])

TOML = """\
name = "t"
seeds = [0]
budgets = [4, 8]
[env]
kind = "gaussian"
N = 32
d = 2
[[methods]]
name = "uniform"
"""


# --------------------------------------------------------------------------- inputs
@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> pathlib.Path:
    """One folder of inputs, copied into every case's own folder."""
    d = tmp_path_factory.mktemp("inputs")
    g = gaussian_env(64, 4, seed=0)
    g.save(d / "g.npz")
    PreferenceData(phi=g.phi, b=g.b, beta=g.beta).save(d / "nolabels.npz")  # no s, no theta_star
    PreferenceData(phi=g.phi[:3], b=g.b[:3], beta=g.beta, s=g.s[:3]).save(d / "sep.npz")
    np.savez(d / "huge.npz", phi=g.phi * 1e200, b=g.b, beta=g.beta, s=g.s)
    np.savez(d / "complex.npz", phi=g.phi + 0j, b=g.b, beta=g.beta, s=g.s)
    np.savez(d / "nan.npz", phi=np.where(np.arange(4) == 2, np.nan, g.phi), b=g.b, beta=g.beta)
    np.savez(d / "bigbeta.npz", phi=g.phi, b=g.b, beta=1e300, s=g.s)
    (d / "corrupt.npz").write_bytes((d / "g.npz").read_bytes()[:200])
    (d / "text.npz").write_text("not a zip")
    (d / "sel.json").write_text(json.dumps({"indices": [0, 1, 2, 3, 4, 5]}))
    (d / "range.json").write_text("[0, 1, 64]")
    (d / "noindex.json").write_text(json.dumps({"method": "x"}))
    assert main(["design", "--data", str(d / "g.npz"), "--solver", "fw", "--out",
                 str(d / "fw.json")]) == 0  # the project's own relaxed design, without --n
    (d / "file").write_text("a plain file")
    (d / "sweep.toml").write_text(TOML)
    (d / "seeds.toml").write_text(TOML.replace("seeds = [0]", "seeds = 100000000"))
    (d / "bigseed.toml").write_text(TOML.replace("seeds = [0]", f"seeds = [{2 ** 63}]"))
    (d / "garbage.toml").write_text("[env\nkind = ")
    write_jsonl(handwritten_pairs()[:4], d / "pairs.jsonl")
    # a features file with a sidecar whose source changed afterwards (for --emit-jsonl)
    g.subset(np.arange(4)).save(d / "feat.npz")
    meta_path(d / "feat.npz").write_text(json.dumps(
        {"source": str(d / "pairs.jsonl"), "source_sha256": "0" * 64, "row_lines": [1, 2, 3, 4]}))
    return d


def snapshot(folder: pathlib.Path) -> dict:
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# --------------------------------------------------------------------------- the table
# (id, argv with {d} = the case's folder, exit code, text the one line must contain)
MISSING = "nodir' does not exist"  # the reason, not just the path
CASES = [
    # env
    ("env-out-missing-folder", "env --N 32 --d 2 --seed 0 --out {d}/nodir/x.npz", 2, MISSING),
    ("env-out-under-file", "env --N 32 --d 2 --seed 0 --out {d}/file/x.npz", 2, "is a file"),
    ("env-out-folder", "env --N 32 --d 2 --seed 0 --out {d}", 2, "is a folder"),
    ("env-out-suffix", "env --N 32 --d 2 --seed 0 --out {d}/x.json", 2, ".npz"),
    ("env-out-stdout", "env --N 32 --d 2 --seed 0 --out -", 2, "stdout"),
    ("env-N-huge", "env --N 1000000000 --d 16 --seed 0 --out {d}/x.npz", 4, "GiB"),
    ("env-N-zero", "env --N 0 --d 2 --seed 0 --out {d}/x.npz", 2, "N:"),
    ("env-seed-2^64", "env --N 32 --d 2 --seed 18446744073709551616 --out {d}/x.npz", 2, "seed"),
    ("env-seed-negative", "env --N 32 --d 2 --seed -1 --out {d}/x.npz", 2, "seed"),
    ("env-beta-1e300", "env --N 32 --d 2 --seed 0 --beta 1e300 --out {d}/x.npz", 2, "beta"),
    ("env-beta-nan", "env --N 32 --d 2 --seed 0 --beta nan --out {d}/x.npz", 2, "beta"),
    ("env-no-d", "env --N 32 --seed 0 --out {d}/x.npz", 2, "d:"),
    ("env-fit-gamma-neg", "env --N 32 --d 2 --seed 0 --fit-ridge -1 --out {d}/x.npz", 2,
     "fit-ridge"),
    # fit
    ("fit-out-is-data", "fit --data {d}/g.npz --out {d}/g.npz", 2, "out"),
    ("fit-out-is-subset", "fit --data {d}/g.npz --subset {d}/sel.json --out {d}/sel.json", 2,
     "same file"),
    ("fit-out-missing-folder", "fit --data {d}/g.npz --out {d}/nodir/f.json", 2, MISSING),
    ("fit-out-under-file", "fit --data {d}/g.npz --out {d}/file/f.json", 2, "is a file"),
    ("fit-out-folder", "fit --data {d}/g.npz --out {d}", 2, "is a folder"),
    ("fit-gamma-0-separable", "fit --data {d}/sep.npz --fit-ridge 0", 2, "fit-ridge"),
    ("fit-gamma-negative", "fit --data {d}/g.npz --fit-ridge -1", 2, "fit-ridge"),
    ("fit-subset-fw-design", "fit --data {d}/g.npz --subset {d}/fw.json", 3, "--n"),
    ("fit-subset-no-indices", "fit --data {d}/g.npz --subset {d}/noindex.json", 3, "indices"),
    ("fit-subset-range", "fit --data {d}/g.npz --subset {d}/range.json", 3, "subset"),
    ("fit-subset-missing", "fit --data {d}/g.npz --subset {d}/none.json", 3, "none.json"),
    ("fit-phi-1e200", "fit --data {d}/huge.npz", 3, "phi"),
    ("fit-complex", "fit --data {d}/complex.npz", 3, "complex"),
    ("fit-nan", "fit --data {d}/nan.npz", 3, "NaN"),
    ("fit-beta-1e300", "fit --data {d}/bigbeta.npz", 3, "beta"),
    ("fit-no-labels", "fit --data {d}/nolabels.npz", 3, "labels"),
    ("fit-corrupt-npz", "fit --data {d}/corrupt.npz", 3, "corrupt.npz"),
    ("fit-text-npz", "fit --data {d}/text.npz", 3, "text.npz"),
    ("fit-missing-data", "fit --data {d}/none.npz", 3, "no such file"),
    # select
    ("select-out-is-data", "select --data {d}/g.npz --method uniform --n 4 --out {d}/g.npz", 2,
     "out"),
    ("select-out-missing-folder", "select --data {d}/g.npz --method uniform --n 4 "
     "--out {d}/nodir/s.json", 2, MISSING),
    ("select-refit-foo", "select --data {d}/g.npz --method adpo --n 4 --refit foo", 2,
     "expected {pow2, every} | int, got 'foo'"),
    ("select-fit-gamma-0", "select --data {d}/g.npz --method adpo --n 4 --fit-ridge 0", 2,
     "fit-ridge"),
    ("select-gamma-0", "select --data {d}/g.npz --method adpo --n 4 --design-ridge 0", 2, "design-ridge"),
    ("select-n-over-N", "select --data {d}/g.npz --method uniform --n 65", 2, "N = 64"),
    ("select-n-zero", "select --data {d}/g.npz --method uniform --n 0", 2, "n:"),
    ("select-candidates-foo", "select --data {d}/g.npz --method adpo --n 4 --candidates foo", 2,
     "candidates"),
    ("select-seed-2^64", "select --data {d}/g.npz --method uniform --n 4 "
     "--seed 18446744073709551616", 2, "seed"),
    ("select-unknown-method", "select --data {d}/g.npz --method nope --n 4", 2, "unknown method"),
    ("select-emit-no-sidecar", "select --data {d}/g.npz --method uniform --n 4 "
     "--out {d}/s.json --emit-jsonl {d}/s.jsonl", 3, "sidecar"),
    ("select-emit-source-changed", "select --data {d}/feat.npz --method uniform --n 2 "
     "--out {d}/s.json --emit-jsonl {d}/s.jsonl", 3, "changed"),
    ("select-emit-equals-out", "select --data {d}/feat.npz --method uniform --n 2 "
     "--out {d}/s.jsonl --emit-jsonl {d}/s.jsonl", 2, "out"),
    ("select-emit-is-source", "select --data {d}/feat.npz --method uniform --n 2 "
     "--emit-jsonl {d}/feat.npz", 2, "emit-jsonl"),
    ("select-phi-1e200", "select --data {d}/huge.npz --method uniform --n 4", 3, "phi"),
    # design
    ("design-out-is-data", "design --data {d}/g.npz --solver greedy --n 3 --out {d}/g.npz", 2,
     "out"),
    ("design-no-n", "design --data {d}/g.npz --solver greedy", 2, "--n"),
    ("design-theta-star-missing", "design --data {d}/nolabels.npz --solver fw "
     "--weights theta_star", 3, "adpo env"),
    ("design-gamma-0", "design --data {d}/g.npz --solver greedy --n 3 --design-ridge 0", 2, "design-ridge"),
    ("design-efficiency-1", "design --data {d}/g.npz --solver fw --efficiency 1", 2,
     "efficiency"),
    ("design-phi-1e200", "design --data {d}/huge.npz --solver greedy --n 3", 3, "phi"),
    ("design-cvxpy-memory", "design --data {d}/g.npz --solver cvxpy", 4, "--force"),
    ("design-n-over-N", "design --data {d}/g.npz --solver greedy --n 100", 2, "N = 64"),
    # sweep
    ("sweep-out-under-file", "sweep {d}/sweep.toml --out {d}/file/r", 2, "is a file"),
    ("sweep-out-missing-parent", "sweep {d}/sweep.toml --out {d}/nodir/r", 2, MISSING),
    ("sweep-out-is-config", "sweep {d}/sweep.toml --out {d}/sweep.toml", 2, "not a folder"),
    ("sweep-1e8-seeds-dry-run", "sweep {d}/seeds.toml --out {d}/r --dry-run", 2, "seeds"),
    ("sweep-seed-2^63", "sweep {d}/bigseed.toml --out {d}/r --dry-run", 2, "2^63"),
    ("sweep-garbage-toml", "sweep {d}/garbage.toml --out {d}/r", 3, "garbage.toml"),
    ("sweep-missing-config", "sweep {d}/none.toml --out {d}/r", 3, "none.toml"),
    ("sweep-jobs-0", "sweep {d}/sweep.toml --out {d}/r --jobs 0", 2, "jobs"),
    # bound
    ("bound-beta-1000", "bound --d 4 --n 10 --beta 1000", 2, "beta: 1000"),
    ("bound-beta-1e300", "bound --d 4 --n 10 --beta 1e300", 2, "beta"),
    ("bound-out-missing-folder", "bound --d 4 --n 10 --out {d}/nodir/b.json", 2, MISSING),
    # pairs
    ("pairs-out-suffix", "pairs --source handwritten --out {d}/p.json", 2, ".jsonl"),
    ("pairs-out-missing-folder", "pairs --source handwritten --out {d}/nodir/p.jsonl", 2, MISSING),
    ("pairs-n-zero", "pairs --source simulated --n 0 --out {d}/p.jsonl", 2, "n:"),
    # features: every option and the output before the model loads (load_model is a trap here)
    ("features-beta-0", "features --data {d}/pairs.jsonl --out {d}/f.npz --beta 0", 2, "beta"),
    ("features-beta-1e300", "features --data {d}/pairs.jsonl --out {d}/f.npz --beta 1e300", 2,
     "beta"),
    ("features-batch-size-0", "features --data {d}/pairs.jsonl --out {d}/f.npz --batch-size 0", 2,
     "batch-size"),
    ("features-chunk-rows-0", "features --data {d}/pairs.jsonl --out {d}/f.npz --chunk-rows 0", 2,
     "chunk-rows"),
    ("features-max-length-2", "features --data {d}/pairs.jsonl --out {d}/f.npz --max-length 2",
     2, "max-length"),
    ("features-out-suffix", "features --data {d}/pairs.jsonl --out {d}/f.json", 2, ".npz"),
    ("features-out-missing-folder", "features --data {d}/pairs.jsonl --out {d}/nodir/f.npz", 2,
     MISSING),
    ("features-bad-rows", "features --data {d}/sweep.toml --out {d}/f.npz", 3, "malformed"),
    # split
    ("split-pool-is-data", "split --data {d}/pairs.jsonl --pool {d}/pairs.jsonl "
     "--heldout {d}/h.jsonl", 2, "same file"),
    ("split-same-outputs", "split --data {d}/pairs.jsonl --pool {d}/p.jsonl --heldout {d}/p.jsonl",
     2, "also the pool"),
    ("split-heldout-missing-folder", "split --data {d}/pairs.jsonl --pool {d}/p.jsonl "
     "--heldout {d}/nodir/h.jsonl", 2, MISSING),
    ("split-record-suffix", "split --data {d}/pairs.jsonl --pool {d}/p.jsonl "
     "--heldout {d}/h.jsonl --record {d}/r.txt", 2, ".json"),
    # train / evaluate: checked before the model loads (load_model is a trap here)
    ("train-out-under-file", "train --data {d}/pairs.jsonl --out {d}/file/run", 2, "is a file"),
    ("train-out-missing-parent", "train --data {d}/pairs.jsonl --out {d}/nodir/run", 2, MISSING),
    ("train-out-is-data", "train --data {d}/pairs.jsonl --out {d}/pairs.jsonl", 2,
     "not a folder"),
    ("evaluate-out-is-data", "evaluate --model smollm2 --data {d}/pairs.jsonl "
     "--out {d}/pairs.jsonl", 2, ".json"),
    ("evaluate-out-missing-folder", "evaluate --model smollm2 --data {d}/pairs.jsonl "
     "--out {d}/nodir/e.json", 2, MISSING),
    ("evaluate-beta-1e300", "evaluate --model smollm2 --data {d}/pairs.jsonl --beta 1e300", 2,
     "beta"),
    ("evaluate-batch-size-0", "evaluate --model smollm2 --data {d}/pairs.jsonl --batch-size 0",
     2, "batch-size"),
    # the parser itself
    ("unknown-command", "nope", 2, "nope"),
    ("unknown-option", "fit --data {d}/g.npz --bogus 1", 2, "--bogus"),
    ("bad-int", "env --N many --d 2 --seed 0 --out {d}/x.npz", 2, "--N"),
    # registry listings and flags derived from the registries
    ("methods-unknown-tag", "methods --tag nope", 2, "tag: no method has tag 'nope'"),
    ("methods-tag-no-value", "methods --tag", 2, "--tag"),
    ("methods-bad-flag-value", "methods --json=1", 2, "--json"),
    ("envs-unknown-tag", "envs --tag nope", 2, "tag: no environment has tag 'nope'"),
    ("envs-tag-no-value", "envs --tag", 2, "--tag"),
    ("envs-bad-flag-value", "envs --json=1", 2, "--json"),
    ("env-flag-of-another-kind", "env --kind digits --N 32 --d 2 --seed 0 --out {d}/x.npz", 2,
     "--d: not an option of environment 'digits'"),
    ("env-file-missing", "env --kind file --path {d}/none.npz --seed 0 --out {d}/x.npz", 2,
     "none.npz"),
    ("select-option-the-method-ignores", "select --data {d}/g.npz --method uniform --n 4 "
     "--alpha 1", 2, "--alpha: not an option of method 'uniform'"),
    ("split-unknown-option", "split --data {d}/pairs.jsonl --pool {d}/p.jsonl "
     "--heldout {d}/h.jsonl --bogus 1", 2, "--bogus"),
    ("split-missing-data", "split --data {d}/none.jsonl --pool {d}/p.jsonl --heldout {d}/h.jsonl",
     3, "none.jsonl"),
    ("split-npz-outputs", "split --data {d}/pairs.jsonl --pool {d}/p.npz --heldout {d}/h.jsonl",
     2, "must end in .jsonl"),
    ("train-missing-data", "train --data {d}/none.jsonl --out {d}/run", 3, "none.jsonl"),
    ("train-unknown-option", "train --data {d}/g.npz --out {d}/run --bogus 1", 2, "--bogus"),
    ("train-npz-as-jsonl", "train --data {d}/g.npz --out {d}/run", 3, "UTF-8"),
    ("evaluate-no-model", "evaluate --data {d}/none.jsonl", 2, "--run --model"),
    ("evaluate-unknown-option", "evaluate --data {d}/g.npz --model x --bogus 1", 2, "--bogus"),
    ("evaluate-missing-required", "evaluate", 2, "--data"),
    ("select-old-gamma", "select --data {d}/g.npz --method adpo --n 4 --gamma 1", 2,
     "--design-ridge"),
]


def _command(case_id: str) -> str:
    return case_id.split("-")[0]


@pytest.fixture
def case_dir(inputs, tmp_path, monkeypatch):
    d = tmp_path / "case"
    shutil.copytree(inputs, d)
    # 32 KiB: cvxpy's (N, d, d) estimate at N = 64, d = 4 is 64 KiB, every other case's < 16 KiB
    monkeypatch.setenv("ADPO_MEMORY_LIMIT_GB", str(32 / 2 ** 20))

    def trap(*args, **kwargs):
        raise AssertionError("the model was loaded before the options were checked")

    import sim.llm
    monkeypatch.setattr(sim.llm, "load_model", trap)
    monkeypatch.chdir(d)
    return d


@pytest.mark.parametrize("case_id,argv,code,needle", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gives_one_line(case_dir, capsys, case_id, argv, code, needle):
    before = snapshot(case_dir)
    got = main(argv.format(d=case_dir).split())
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert got == code, f"exit {got} ({EXIT_CODES.get(got)}), expected {code}: {err}"
    assert len(lines) == 1, err
    assert needle in lines[0] and "Traceback" not in err
    if _command(case_id) not in ("unknown", "bad"):
        assert lines[0].startswith(f"adpo {_command(case_id)}: ")
    assert snapshot(case_dir) == before  # inputs unchanged, nothing created (temp files too)


def test_table_covers_every_subcommand():
    from adpo.cli import COMMANDS

    counts = {c: sum(_command(k) == c for k, *_ in CASES) for c in COMMANDS}
    assert min(counts.values()) >= 3, counts


# --------------------------------------------------------------------------- mapped errors
@pytest.mark.parametrize("exc,code,needle", [
    (KeyboardInterrupt(), 130, "interrupted"),
    (MemoryError(), 4, "out of memory"),
    (OSError(errno.ENOSPC, "No space left on device", "x.npz"), 5, "free disk space"),
    (OSError(errno.EACCES, "Permission denied", "x.npz"), 5, "permissions"),
    (RuntimeError("boom"), 1, "--debug"),
])
def test_errors_during_the_write_are_mapped_and_leave_nothing(inputs, tmp_path, monkeypatch,
                                                              capsys, exc, code, needle):
    """An error while the output is written: the documented code, one line, no temp file."""
    def failing_savez(*args, **kwargs):
        raise exc

    monkeypatch.setattr(sim_io.np, "savez", failing_savez)
    assert main(["env", "--N", "32", "--d", "2", "--seed", "0", "--out",
                 str(tmp_path / "x.npz")]) == code
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and needle in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("quiet", [True, False])
def test_features_quiet_silences_model_loading_bars(inputs, tmp_path, monkeypatch, capsys, quiet):
    import sim.llm

    def loading(*args, **kwargs):
        from tqdm import tqdm
        for _ in tqdm(range(3), desc="Converting and de-quantizing GGUF tensors"):
            pass
        raise ValueError("model: stop here")

    monkeypatch.setattr(sim.llm, "load_model", loading)
    argv = ["features", "--data", str(inputs / "pairs.jsonl"), "--out", str(tmp_path / "f.npz")]
    assert main(argv + ["--quiet"] * quiet) == 2
    err = capsys.readouterr().err
    assert ("GGUF" in err) != quiet
    assert err.strip().splitlines()[-1] == "adpo features: model: stop here"


def test_debug_shows_the_traceback(inputs, capsys):
    assert main(["--debug", "fit", "--data", str(inputs / "complex.npz")]) == 3
    err = capsys.readouterr().err
    assert err.startswith("adpo fit: data file") and "Traceback" in err


def test_convergence_error_is_mapped(monkeypatch, inputs, capsys):
    from sim import dpo
    from adpo.commands import fit

    def no_convergence(*args, **kwargs):
        raise dpo.ConvergenceError("fit_dpo: no convergence in 100 Newton steps (|grad| = 8e-15)")

    monkeypatch.setattr(fit, "fit_dpo", no_convergence)
    assert main(["fit", "--data", str(inputs / "g.npz")]) == 3
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "ridge" in err


def test_emit_jsonl_writes_both_files_or_neither(inputs, tmp_path, monkeypatch):
    """The selection JSON is not left behind when the JSONL write fails."""
    import sim.textdata as td

    src = tmp_path / "pairs.jsonl"
    shutil.copy(inputs / "pairs.jsonl", src)
    shutil.copy(inputs / "feat.npz", tmp_path / "feat.npz")
    meta_path(tmp_path / "feat.npz").write_text(json.dumps(
        {"source": str(src), "source_sha256": td.file_sha256(src), "row_lines": [1, 2, 3, 4]}))
    argv = ["select", "--data", str(tmp_path / "feat.npz"), "--method", "uniform", "--n", "2",
            "--out", str(tmp_path / "s.json"), "--emit-jsonl", str(tmp_path / "s.jsonl")]
    real = td.selected_lines
    calls = []

    def fail_second(*args):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(td, "selected_lines", fail_second)
    assert main(argv) == 130
    assert sorted(p.name for p in tmp_path.iterdir()) == ["feat.meta.json", "feat.npz",
                                                          "pairs.jsonl"]
    monkeypatch.setattr(td, "selected_lines", real)
    assert main(argv) == 0
    rows = json.loads((tmp_path / "s.json").read_text())["indices"]
    lines = split_lines(src.read_text(encoding="utf-8"))
    assert (tmp_path / "s.jsonl").read_text(encoding="utf-8") == "".join(
        lines[i] + "\n" for i in rows)


@pytest.mark.parametrize("argv,code", [
    (["fit", "--data", "missing.npz"], 3),
    (["select", "--data", "missing.npz", "--method", "adpo", "--n", "4", "--refit", "foo"], 2),
])
def test_no_traceback_reaches_a_user(tmp_path, argv, code):
    """Real processes: the console entry point prints one line and exits with the code."""
    r = subprocess.run([sys.executable, "-c", "import sys; from adpo.cli import main; "
                        "sys.exit(main())", *argv], cwd=tmp_path, capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert r.returncode == code and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and r.stdout == ""


# --------------------------------------------------------------------------- one meaning
def test_logdet_means_the_same_for_every_method(inputs, tmp_path):
    """select's and design's 'logdet' = log det(gamma I + sum phi phi^T) over the chosen rows."""
    data = PreferenceData.load(inputs / "g.npz")
    runs = {m: ["select", "--method", m, "--n", "8"] for m in ("uniform", "adpo+", "oracle", "apo")}
    runs["design-greedy"] = ["design", "--solver", "greedy", "--n", "8", "--weights", "theta_star"]
    runs["design-fw"] = ["design", "--solver", "fw", "--n", "8", "--weights", "theta_star"]
    for name, argv in runs.items():
        out = tmp_path / f"{name}.json"
        ridge = [] if argv[2:3] == ["uniform"] else ["--design-ridge", "0.5"]
        assert main(argv + ["--data", str(inputs / "g.npz"), *ridge, "--out", str(out)]) == 0
        res = json.loads(out.read_text())
        X = data.phi[res["indices"]]
        gamma = 1.0 if argv[2:3] == ["uniform"] else 0.5  # uniform takes no design ridge
        assert res["logdet"] == pytest.approx(
            np.linalg.slogdet(gamma * np.eye(data.d) + X.T @ X)[1], abs=1e-9), name
        if name in ("adpo+", "oracle", "design-greedy"):  # weighted methods name theirs
            assert res["weighted_logdet"] != pytest.approx(res["logdet"]), name


def test_json_is_strict():
    with pytest.raises(ValueError, match=r"metrics\.err: is nan"):
        sim_io.dumps_json({"metrics": {"err": float("nan")}})
    with pytest.raises(ValueError, match=r"x\[1\]: is inf"):
        sim_io.dumps_json({"x": np.array([1.0, np.inf])})
    assert json.loads(sim_io.dumps_json({"a": np.float32(0.5), "b": np.int64(3)})) == \
        {"a": 0.5, "b": 3}


# --------------------------------------------------------------------------- sim.io
def test_samefile_catches_links_and_relative_paths(tmp_path, monkeypatch):
    f = tmp_path / "data.json"
    f.write_text("{}")
    (tmp_path / "link.json").symlink_to(f)
    os.link(f, tmp_path / "hard.json")
    monkeypatch.chdir(tmp_path)
    for alias in ("link.json", "hard.json", "./data.json", str(f)):
        with pytest.raises(ValueError, match="same file"):
            sim_io.check_output(alias, suffix=".json", inputs=[str(f)])
    assert sim_io.check_output("other.json", suffix=".json", inputs=[str(f)]) is not None


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path):
    p = tmp_path / "out.txt"
    p.write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with sim_io.atomic_open(p) as f:
            f.write("new, half")
            raise KeyboardInterrupt
    assert p.read_text() == "old" and sorted(tmp_path.iterdir()) == [p]


def test_output_group_is_all_or_none(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    with pytest.raises(RuntimeError):
        with sim_io.OutputGroup() as g:
            g.text(a, "A")
            raise RuntimeError("second file failed")
    assert list(tmp_path.iterdir()) == []
    with sim_io.OutputGroup() as g:
        g.text(a, "A")
        g.json(b, {"x": 1})
        assert list(tmp_path.iterdir()) != [] and not a.exists()  # staged, not yet in place
    assert a.read_text() == "A" and json.loads(b.read_text()) == {"x": 1}
    assert sorted(tmp_path.iterdir()) == [a, b]


def test_savez_refuses_numpy_keywords_as_array_names_and_never_pickles(tmp_path):
    """Found by mypy (numpy's stub types savez's ``**kwds`` against ``allow_pickle: bool``): an
    array named ``allow_pickle`` was silently taken as that flag and never stored, and
    OutputGroup.savez pickled object arrays. Both are refused now, before any file appears."""
    p = tmp_path / "x.npz"
    for name in ("allow_pickle", "file"):
        with pytest.raises(ValueError, match=f"^{name}: is a keyword of numpy.savez"):
            sim_io.atomic_savez(p, a=np.ones(2), **{name: np.arange(3)})
    with pytest.raises(ValueError, match="^obj: object arrays"):
        with sim_io.OutputGroup() as g:
            g.savez(p, obj=np.array([{"x": 1}], dtype=object))
    with pytest.raises(ValueError, match="^allow_pickle: is a keyword"):
        with sim_io.OutputGroup() as g:
            g.savez(p, allow_pickle=np.arange(3))
    assert list(tmp_path.iterdir()) == []
    sim_io.atomic_savez(p, a=np.ones(2), b=[1, 2, 3])
    with np.load(p, allow_pickle=False) as z:
        assert sorted(z.files) == ["a", "b"] and z["b"].tolist() == [1, 2, 3]


# --------------------------------------------------------------------------- JSONL lines
def test_jsonl_keeps_rows_with_unicode_line_separators(tmp_path):
    """U+2028, U+2029 and U+0085 are legal raw inside JSON strings: the row stays one row and
    later line numbers stay right (str.splitlines would split it)."""
    rows = [{"prompt": f"p{i}", "chosen": f"good{sep}answer", "rejected": "bad"}
            for i, sep in enumerate(["\u2028", "\u2029", "\u0085", "\x0b", "\x1c", ""])]
    p = tmp_path / "pairs.jsonl"
    write_jsonl(rows, p)
    assert "\u2028" in p.read_text(encoding="utf-8")  # written raw, as the issue describes
    got, fmt = read_pairs(p)
    assert fmt == "trl" and [r.line for r in got] == [1, 2, 3, 4, 5, 6]
    assert [r.response_1 for r in got] == [r["chosen"] for r in rows]


# --------------------------------------------------------------------------- fuzzing
def _only_value_error(fn, *args):
    try:
        fn(*args)
    except ValueError as exc:
        assert str(exc).strip(), "an empty message"


@pytest.fixture(scope="module")
def valid_npz(inputs) -> bytes:
    return (inputs / "g.npz").read_bytes()


@FUZZ
@given(data=st.data())
def test_fuzz_npz_bytes(tmp_path, valid_npz, data):
    """Random bytes and byte-level mutations (flips, truncations) of a valid .npz."""
    mode = data.draw(st.sampled_from(["random", "flip", "truncate"]))
    if mode == "random":
        blob = data.draw(st.binary(max_size=400))
        if data.draw(st.booleans()):
            blob = b"PK\x03\x04" + blob
    elif mode == "flip":
        blob = bytearray(valid_npz)
        for _ in range(data.draw(st.integers(1, 8))):
            i = data.draw(st.integers(0, len(blob) - 1))
            blob[i] = data.draw(st.integers(0, 255))
        blob = bytes(blob)
    else:
        blob = valid_npz[:data.draw(st.integers(0, len(valid_npz)))]
    p = tmp_path / "f.npz"
    p.write_bytes(blob)
    _only_value_error(PreferenceData.load, p)


_arrays = st.one_of(
    st.just(np.zeros((0, 2))), st.just(np.array(["a", "b"])), st.just(np.array(1 + 2j)),
    st.just(np.array([True, False])), st.just(np.array([2 ** 62, -1], dtype=np.int64)),
    st.just(np.array([1e308, -1e308])), st.just(np.array([np.nan])),
    st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=6).map(np.array),
    st.lists(st.lists(st.floats(-1e300, 1e300), min_size=2, max_size=2), min_size=1,
             max_size=4).map(np.array),
    st.integers(-3, 3).map(np.array), st.just(np.ones((2, 2), dtype=np.complex64)),
    st.just(np.zeros((2, 2, 2))), st.just(np.array([0, 1, 2], dtype=np.uint8)),
)


@FUZZ
@given(arrays=st.dictionaries(
    st.sampled_from(["phi", "b", "beta", "s", "theta_star", "theta_true", "extra"]), _arrays,
    max_size=7))
def test_fuzz_npz_structure(tmp_path, arrays):
    """Valid zip files with any keys, dtypes and shapes."""
    p = tmp_path / "f.npz"
    np.savez(p, **arrays)
    _only_value_error(PreferenceData.load, p)


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70) | st.floats() | st.text(max_size=8),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(
        st.sampled_from(["prompt", "chosen", "rejected", "response_1", "response_2", "label",
                         "indices", "pi", "x"]), kids, max_size=5), max_leaves=12)


@settings(FUZZ, max_examples=30)
@given(lines=st.lists(st.one_of(_json_values.map(lambda v: json.dumps(v, ensure_ascii=False)),
                                st.text(max_size=30)), max_size=6),
       sep=st.sampled_from(["\n", "\r\n"]))
def test_fuzz_jsonl(tmp_path, lines, sep):
    p = tmp_path / "pairs.jsonl"
    p.write_bytes(sep.join(lines).encode("utf-8", "surrogatepass"))
    _only_value_error(read_pairs, p)


@FUZZ
@given(blob=st.one_of(st.binary(max_size=200), st.text(max_size=200).map(
    lambda t: t.encode("utf-8", "surrogatepass")),
    _json_values.map(lambda v: json.dumps(v).encode())))
def test_fuzz_subset(tmp_path, blob):
    p = tmp_path / "subset.json"
    p.write_bytes(blob)
    _only_value_error(read_subset, p, 10)


_toml_values = st.recursive(
    st.booleans() | st.integers(-2 ** 65, 2 ** 65) | st.floats(allow_nan=False)
    | st.text(max_size=6),
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.sampled_from(
        ["kind", "N", "d", "beta", "name", "start", "count", "alpha"]), kids, max_size=3),
    max_leaves=8)


def _toml(key, value) -> str:
    return f"{key} = {json.dumps(value)}\n" if not isinstance(value, dict) else \
        f"[{key}]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in value.items()
                               if not isinstance(v, dict))


@FUZZ
@given(parts=st.lists(st.tuples(st.sampled_from(
    ["name", "seeds", "budgets", "n_min", "n_max", "env", "grid", "methods", "other"]),
    _toml_values), max_size=5), raw=st.text(max_size=40), base=st.booleans())
def test_fuzz_sweep_toml(tmp_path, parts, raw, base):
    """Random text, and valid TOML with random keys and values over a valid sweep."""
    text = (TOML if base else "") + "".join(_toml(k, v) for k, v in parts) + raw
    p = tmp_path / "s.toml"
    p.write_bytes(text.encode("utf-8", "surrogatepass"))
    _only_value_error(lambda q: load_sweep(q, check=False), p)
