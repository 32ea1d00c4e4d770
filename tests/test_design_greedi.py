"""GreeDi (sim.design.greedi) on a Dask LocalCluster with 2 worker processes (one cluster for the
module; one thread and BLAS pinned to one thread in each): identical to its in-process run and to
the two rounds composed by hand, and its log det against the single-machine greedy; the exact
variant (rows kept on the workers) picks exactly what the single-machine greedy picks."""

import json

import numpy as np
import pytest

import sim.design.greedi as greedi
from adpo.cli import main
from sim.data import PreferenceData
from sim.design import greedy_select, subset_logdet
from sim.design.greedi import connect, greedi_exact_select, greedi_select


@pytest.fixture(scope="module")
def client():
    c = connect("local:2")
    yield c
    c.close()


def test_distributed_equals_in_process_and_the_two_rounds_by_hand(client):
    rng = np.random.default_rng(0)
    V = rng.standard_normal((3000, 10)) * rng.uniform(0.3, 2.0, (3000, 1))
    dist = greedi_select(V, 40, parts=2, seed=5, client=client)
    here = greedi_select(V, 40, parts=2, seed=5)
    assert dist.info["distributed"] and np.array_equal(dist.indices, here.indices)
    perm = np.random.default_rng(5).permutation(3000)
    blocks = [np.sort(b) for b in np.array_split(perm, 2)]
    union = np.sort(np.concatenate([b[greedy_select(V[b], 40).indices] for b in blocks]))
    assert np.array_equal(here.indices, union[greedy_select(V[union], 40).indices])


def test_log_det_ratio_to_the_single_machine_greedy(client):
    # f(S) = log det(I + sum_S v v^T) (gamma = 1, so f(empty) = 0). GreeDi must reach >= 0.99 of
    # the greedy's f; a round 2 that keeps n random rows of the union instead of running the
    # greedy must not (the check can fail).
    rng = np.random.default_rng(1)
    V = rng.standard_normal((4000, 12)) * rng.uniform(0.2, 3.0, (4000, 1))
    g = greedy_select(V, 30).logdet
    r = greedi_select(V, 30, parts=2, seed=0, client=client)
    assert r.logdet / g >= 0.99 and r.info["union"] == 60
    perm = np.random.default_rng(0).permutation(4000)
    union = np.sort(np.concatenate([b[greedy_select(V[b], 30).indices]
                                    for b in (np.sort(x) for x in np.array_split(perm, 2))]))
    mutant = subset_logdet(V, np.random.default_rng(2).choice(union, 30, replace=False), 1.0)
    print(r.logdet / g, mutant / g)
    assert mutant / g < 0.99


def test_workers_are_pinned_to_one_blas_thread(client):
    from threadpoolctl import threadpool_info
    infos = client.run(lambda: [i["num_threads"] for i in threadpool_info()])
    assert len(infos) == 2 and all(t == [1] * len(t) and t for t in infos.values())


def test_exact_variant_on_the_cluster_picks_what_greedy_picks(client):
    rng = np.random.default_rng(3)
    V = rng.standard_normal((2000, 8)) * rng.uniform(0.3, 2.0, (2000, 1))
    g = greedy_select(V, 120, gamma=0.5)
    e = greedi_exact_select(V, 120, parts=2, gamma=0.5, client=client)
    assert e.info["distributed"] and e.info["reanchors"] > 0
    assert np.array_equal(e.indices, g.indices)
    assert e.logdet == pytest.approx(g.logdet, abs=1e-9)
    assert e.info["round_trips"] < 120 // 2            # the lookahead certifies several picks


def test_workers_read_their_own_rows_of_a_memory_mapped_pool(client, tmp_path):
    """A pool file is never loaded by the driver: each block (a Dask actor, or a round-1 task)
    maps the file by path and reads its own rows; the picks are those of the in-memory run."""
    rng = np.random.default_rng(4)
    V = (rng.standard_normal((3000, 8)) * rng.uniform(0.3, 2.0, (3000, 1))).astype(np.float32)
    w = rng.uniform(0.2, 1.0, 3000)
    np.save(tmp_path / "phi.npy", V)
    mm = np.load(tmp_path / "phi.npy", mmap_mode="r")
    V64 = V.astype(np.float64)
    assert not greedi._Rows(mm[:100], None).path          # a slice: its rows are shipped
    for c in (client, None):
        e = greedi_exact_select(mm, 100, parts=3, weights=w, client=c)
        assert e.info["rows_read_by_workers"]
        assert np.array_equal(e.indices, greedy_select(V64, 100, weights=w).indices)
        g = greedi_select(mm, 60, parts=2, weights=w, seed=5, client=c)
        assert g.info["rows_read_by_workers"]
        assert np.array_equal(g.indices, greedi_select(V64, 60, parts=2, weights=w,
                                                       seed=5).indices)


@pytest.mark.parametrize("parts,top", [(1, 16), (3, 1), (5, 4)])
def test_exact_variant_in_process_any_split_any_lookahead(parts, top):
    rng = np.random.default_rng(parts)
    V = rng.standard_normal((1500, 6))
    w = rng.uniform(0.1, 1.0, 1500)
    g = greedy_select(V, 150, weights=w)
    e = greedi_exact_select(V, 150, parts=parts, top=top, weights=w)
    assert np.array_equal(e.indices, g.indices) and len(set(e.indices.tolist())) == 150
    assert np.allclose(e.gains, g.gains, rtol=1e-10, atol=1e-12)


def test_exact_variant_mutant_without_the_lazy_bound_picks_differently(monkeypatch):
    """Reporting tau = -inf (no bound on the unreported rows) lets the driver accept reported
    rows that are not the global argmax: the picks must then differ from greedy's."""
    V = np.random.default_rng(1).standard_normal((1500, 6))
    g = greedy_select(V, 150)
    step = greedi.BlockScorer.step

    def no_bound(self, *args):
        s, i, R, _ = step(self, *args)
        return s, i, R, -np.inf

    monkeypatch.setattr(greedi.BlockScorer, "step", no_bound)
    assert not np.array_equal(greedi_exact_select(V, 150, parts=3, top=4).indices, g.indices)


def test_cli_greedi_exact_in_process_equals_greedy(tmp_path):
    rng = np.random.default_rng(0)
    data = PreferenceData(phi=rng.standard_normal((300, 5)), b=np.zeros(300), beta=1.0,
                          theta_star=rng.standard_normal(5))
    data.save(tmp_path / "d.npz")
    from sim.store import save_pool
    save_pool(tmp_path / "pool", data, dtype=np.float64)
    picks = {}
    for solver, src in (("greedy", "d.npz"), ("greedi-exact", "d.npz"), ("greedi-exact", "pool")):
        out = tmp_path / f"{solver}.json"
        assert main(["design", "--data", str(tmp_path / src), "--solver", solver, "--n",
                     "20", "--out", str(out)]) == 0
        res = json.loads(out.read_text())
        picks[solver, src] = res["indices"]
        if solver != "greedy":      # a pool folder is read by the blocks, not by the driver
            assert res["info"]["rows_read_by_workers"] is (src == "pool")
    assert picks["greedy", "d.npz"] == picks["greedi-exact", "d.npz"] == picks["greedi-exact",
                                                                                   "pool"]
    assert main(["design", "--data", str(tmp_path / "d.npz"), "--solver", "fw", "--scheduler",
                 "local:2", "--out", str(tmp_path / "x.json")]) == 2
