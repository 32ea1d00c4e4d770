"""GreeDi (sim.design.greedi) on a Dask LocalCluster with 2 workers (one cluster for the module):
identical to its in-process run and to the two rounds composed by hand, and its log det against
the single-machine greedy."""

import numpy as np
import pytest

from sim.design import greedy_select, subset_logdet
from sim.design.greedi import connect, greedi_select


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
