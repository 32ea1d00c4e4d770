"""Out-of-core pool folders (sim.store): round trip, memory mapping, validation, and the CLI
reading them wherever it reads an .npz (streamed by the torch greedy engine)."""

import json

import numpy as np
import pytest

from adpo.cli import main
from sim.data import PreferenceData
from sim.design import greedy_select
from sim.store import open_pool, save_pool


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    rng = np.random.default_rng(0)
    N, d = 500, 6
    data = PreferenceData(phi=rng.standard_normal((N, d)), b=rng.standard_normal(N) * 0.1,
                          beta=0.5, s=rng.integers(0, 2, N), theta_star=rng.standard_normal(d))
    root = tmp_path_factory.mktemp("pool")
    save_pool(root / "pool", data, dtype=np.float64)
    data.save(root / "data.npz")
    return root, data


def test_round_trip_is_memory_mapped_and_exact(pool):
    root, data = pool
    p = open_pool(root / "pool")
    assert isinstance(p.phi, np.memmap) and p.phi.shape == (data.N, data.d)
    assert np.array_equal(np.asarray(p.phi), data.phi) and np.array_equal(p.s, data.s)
    assert np.array_equal(p.theta_star, data.theta_star) and p.theta_true is None
    loaded = PreferenceData.load(root / "pool")           # the hook every --data goes through
    assert np.array_equal(loaded.phi, data.phi) and loaded.beta == data.beta
    head = json.loads((root / "pool" / "header.json").read_text())
    assert head["version"] == 1 and head["keys"] == ["phi", "b", "s", "theta_star"]


def test_bad_pools_give_one_line_errors(pool, tmp_path):
    root, data = pool
    with pytest.raises(ValueError, match="already exists"):
        save_pool(root / "pool", data)
    save_pool(tmp_path / "p", data)
    head = json.loads((tmp_path / "p" / "header.json").read_text())
    (tmp_path / "p" / "header.json").write_text(json.dumps({**head, "version": 99}))
    with pytest.raises(ValueError, match="version 99"):
        open_pool(tmp_path / "p")
    (tmp_path / "p" / "header.json").write_text(json.dumps({**head, "N": 7}))
    with pytest.raises(ValueError, match="header says N = 7"):
        open_pool(tmp_path / "p")
    (tmp_path / "p" / "header.json").write_text(json.dumps(head))
    (tmp_path / "p" / "b.npy").unlink()
    with pytest.raises(ValueError, match="b.npy"):
        open_pool(tmp_path / "p")
    (tmp_path / "q").mkdir()
    with pytest.raises(ValueError, match="header.json"):
        PreferenceData.load(tmp_path / "q")


def test_cli_streams_a_pool_with_either_engine(pool, tmp_path):
    root, data = pool
    ref = greedy_select(data.phi, 30, gamma=0.5)
    for src, extra, streamed in (
            (root / "pool", ["--backend", "torch", "--rows-per-block", "64"], True),
            (root / "pool", ["--rows-per-block", "64"], True), (root / "pool", [], True),
            (root / "data.npz", ["--backend", "torch"], False), (root / "data.npz", [], False)):
        out = tmp_path / "o.json"
        assert main(["design", "--data", str(src), "--solver", "greedy", "--n", "30",
                     "--design-ridge", "0.5", "--out", str(out), *extra]) == 0
        res = json.loads(out.read_text())
        assert res["indices"] == ref.indices.tolist(), (src, extra)
        assert res["info"]["streamed"] is streamed, (src, extra)
    assert main(["design", "--data", str(root / "pool"), "--solver", "rex", "--backend",
                 "torch"]) == 2


def test_pool_writer_commits_only_on_success(tmp_path):
    from sim.store import PoolWriter
    with pytest.raises(RuntimeError):
        with PoolWriter(tmp_path / "p", 10, 3, beta=1.0) as w:
            w.phi[:5] = 1.0
            raise RuntimeError("interrupted mid-write")
    assert list(tmp_path.iterdir()) == []                 # no folder, no temporary left
    with PoolWriter(tmp_path / "p", 10, 3, beta=2.0, dtype=np.float64) as w:
        w.phi[:] = np.arange(30.0).reshape(10, 3)
        w.put("b", np.zeros(10))
    p = open_pool(tmp_path / "p")
    assert p.beta == 2.0 and np.array_equal(p.phi, np.arange(30.0).reshape(10, 3))
    with pytest.raises(ValueError, match="already exists"):
        PoolWriter(tmp_path / "p", 10, 3, beta=1.0)
