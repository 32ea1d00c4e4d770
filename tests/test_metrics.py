"""Metrics of sec. 6.1 and 6.2 on hand-computed cases."""

import numpy as np
import pytest

from sim.data import PreferenceData
from sim.metrics import (accuracy, error_rate, evaluate, margin, max_logit_error,
                         mean_logit_error, neg_log_likelihood)

PHI = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, -1.0]])
B = np.array([0.5, 0.0, -1.0])


def test_logit_errors_by_hand():
    th, ts = np.array([1.0, 1.0]), np.array([0.0, 1.0])  # diff (1, 0): errors |1|, |0|, |1|
    assert max_logit_error(PHI, th, ts) == 1.0
    assert mean_logit_error(PHI, th, ts) == pytest.approx(2 / 3)
    assert max_logit_error(PHI, th, ts, beta=3.0) == 3.0  # eq. 7 with its beta


def test_error_rate_by_hand():
    # phi theta - b: theta_hat=(1,1): (0.5, 2, 1); theta_star=(0,1): (-0.5, 2, 0) -> signs (+,+,+) vs (-,+,0)
    assert error_rate(PHI, B, np.array([1.0, 1.0]), np.array([0.0, 1.0])) == pytest.approx(2 / 3)


def test_accuracy_margin_nll_by_hand():
    th, beta = np.array([1.0, 1.0]), 2.0
    z = beta * (PHI @ th - B)  # (1, 4, 2): all positive
    assert accuracy(PHI, B, beta, th) == 1.0
    assert margin(PHI, B, beta, th) == pytest.approx(z.mean())
    assert neg_log_likelihood(PHI, B, beta, th) == pytest.approx(np.mean(np.log1p(np.exp(-z))))
    s = np.array([1, 0, 1])  # the second pair's winner is y2: its logit flips sign
    assert accuracy(PHI, B, beta, th, s) == pytest.approx(2 / 3)
    assert margin(PHI, B, beta, th, s) == pytest.approx((1 - 4 + 2) / 3)


def test_nll_is_finite_at_extreme_logits():
    phi = np.array([[1.0], [1.0]])
    assert np.isfinite(neg_log_likelihood(phi, np.zeros(2), 1.0, np.array([1e4]), np.array([0, 1])))
    assert neg_log_likelihood(phi, np.zeros(2), 1.0, np.array([1e4]), np.array([0, 1])) == \
        pytest.approx(5e3)


def test_evaluate_keys_depend_on_available_fields():
    d = PreferenceData(phi=PHI, b=B, beta=1.0)
    assert set(evaluate(d, np.zeros(2))) == {"theta_norm", "accuracy", "margin", "nll"}
    d2 = d.with_(theta_star=np.ones(2), s=np.array([1, 0, 1]))
    e = evaluate(d2, np.ones(2))
    assert e["max_logit_error"] == 0.0 and e["error_rate"] == 0.0
