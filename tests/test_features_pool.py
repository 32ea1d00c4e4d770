"""``adpo features --out DIR/`` (sim.llm.extract_file with a pool folder): the same rows as the
.npz output, written chunk by chunk into a memory-mappable pool (sim.store), atomically."""

import numpy as np
import pytest

import torch  # noqa: F401  (the dev venv and CI install the CPU build)

from adpo.cli import main
from sim import llm
from sim import textdata as td
from sim.data import PreferenceData
from sim.store import open_pool

PAIRS = [("Name a fruit.", "An apple.", "A brick."), ("Say hello.", "Hello there!", "Bye."),
         ("Count to three.", "One, two, three.", "Seven."), ("Is ice cold?", "Yes.", "No."),
         ("Pick a number.", "Seven.", "Banana.")]


@pytest.fixture(scope="module")
def tiny():
    return llm.tiny_model(seed=3)


def test_pool_output_equals_the_npz_output(tiny, tmp_path):
    src = tmp_path / "p.jsonl"
    td.write_jsonl([{"prompt": p, "chosen": c, "rejected": r} for p, c, r in PAIRS], src)
    llm.extract_file(tiny, src, tmp_path / "f.npz", chunk_rows=2, seed=1, progress=False)
    meta = llm.extract_file(tiny, src, str(tmp_path / "pool") + "/", chunk_rows=2, seed=1,
                            progress=False)
    ref, pool = PreferenceData.load(tmp_path / "f.npz"), open_pool(tmp_path / "pool")
    assert isinstance(pool.phi, np.memmap) and pool.phi.dtype == np.float32
    np.testing.assert_array_equal(pool.phi, ref.phi.astype(np.float32))  # 3 chunks, in order
    np.testing.assert_array_equal(pool.b, ref.b)
    np.testing.assert_array_equal(pool.s, ref.s)
    assert 0 < pool.s.sum() < len(PAIRS) and meta["d"] == pool.d
    assert td.meta_path(tmp_path / "pool").is_file()


def test_a_failing_chunk_leaves_no_pool(tiny, tmp_path, monkeypatch):
    src = tmp_path / "p.jsonl"
    td.write_jsonl([{"prompt": p, "chosen": c, "rejected": r} for p, c, r in PAIRS], src)
    real = np.load

    def corrupt(path, *a, **kw):
        z = dict(real(path, *a, **kw))
        if str(path).endswith("chunk_00001.npz"):
            z["phi_1"] = z["phi_1"] * np.nan
        return _Closing(z)

    monkeypatch.setattr(np, "load", corrupt)
    with pytest.raises(ValueError, match="NaN"):
        llm.extract_file(tiny, src, str(tmp_path / "pool") + "/", chunk_rows=2, progress=False)
    assert not (tmp_path / "pool").exists() and not (tmp_path / "pool.tmp-pool").exists()


class _Closing(dict):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_cli_refuses_a_folder_that_is_not_a_pool(tmp_path, capsys):
    (tmp_path / "p.jsonl").write_text('{"prompt": "a", "chosen": "b", "rejected": "c"}\n')
    (tmp_path / "plain").mkdir()
    assert main(["features", "--data", str(tmp_path / "p.jsonl"), "--out",
                 str(tmp_path / "plain") + "/"]) != 0
    assert "not a pool folder" in capsys.readouterr().err
