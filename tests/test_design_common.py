"""Shared design helpers (sim.design.common): design vectors, rank checks, the certificate."""

import json

import numpy as np
import pytest

from sim.design import DesignResult, design_vectors, efficiency_certificate, subset_logdet
from sim.design.common import require_full_rank


def test_design_vectors_apply_sqrt_weights_and_check_them():
    V = np.arange(6.0).reshape(3, 2)
    np.testing.assert_allclose(design_vectors(V, [4.0, 0.0, 1.0]), V * np.array([[2], [0], [1]]))
    assert design_vectors(V) is not None
    with pytest.raises(ValueError, match="weights.*>= 0"):
        design_vectors(V, [1.0, -1.0, 1.0])
    with pytest.raises(ValueError, match="weights"):
        design_vectors(V, [1.0, np.nan, 1.0])
    with pytest.raises(ValueError, match="weights.*length"):
        design_vectors(V, [1.0, 1.0])
    with pytest.raises(ValueError, match="V"):
        design_vectors(np.ones(3))


def test_rank_checks_name_V():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="V: 3 rows cannot span d = 5"):
        require_full_rank(rng.standard_normal((3, 5)))
    with pytest.raises(ValueError, match="V: rows span only 2 of d = 4"):
        require_full_rank(rng.standard_normal((50, 2)) @ rng.standard_normal((2, 4)))
    require_full_rank(rng.standard_normal((50, 4)))


def test_certificate_of_a_known_optimum_and_of_a_poor_design():
    V = np.vstack([np.eye(3), -np.eye(3)])
    assert efficiency_certificate(V, np.ones(6)) == pytest.approx(1.0, rel=1e-14)
    # all mass on +-e_1, +-e_2 and a sliver on e_3: g_3 = 1/pi_3 is huge, bound is tiny
    pi = np.array([0.25, 0.25, 1e-3, 0.25, 0.25, 0.0])
    pi /= pi.sum()
    assert efficiency_certificate(V, pi) == pytest.approx(3 * pi[2], rel=1e-12)


def test_subset_logdet_and_json():
    V = np.array([[1.0, 0.0], [0.0, 2.0]])
    assert subset_logdet(V, [0, 1], 1.0) == pytest.approx(np.log(2.0 * 5.0))
    assert subset_logdet(V, [0], 0.0) == -np.inf
    r = DesignResult(solver="x", indices=np.array([1, 2]), logdet=1.5)
    out = json.loads(json.dumps(r.to_json()))
    assert out["indices"] == [1, 2] and out["efficiency"] is None
