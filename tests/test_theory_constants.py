"""Tests of theory.constants against brute force over Assumption 2 instances and root finding."""

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy.optimize import brentq

from sim.dpo import sigmoid
from theory import constants as C

SETTINGS = settings(max_examples=60, deadline=None)


def _ball(rng, shape):
    """Points uniformly in the unit ball of R^shape[-1] (radius^(1/d) scaling)."""
    x = rng.standard_normal(shape)
    x /= np.linalg.norm(x, axis=-1, keepdims=True)
    return x * rng.random(shape[:-1] + (1,)) ** (1 / shape[-1])


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), d=st.integers(1, 6), beta=st.floats(0.01, 8.0))
def test_tight_constants_bracket_every_weight_under_assumption2(seed, d, beta):
    rng = np.random.default_rng(seed)
    phi, theta = _ball(rng, (500, d)), _ball(rng, (500, d))
    b = rng.uniform(-1, 1, 500)
    w = beta**2 * sigmoid(beta * (np.sum(phi * theta, 1) - b)) * sigmoid(-beta * (np.sum(phi * theta, 1) - b))
    assert w.min() >= C.c_min_tight(beta) * (1 - 1e-12)
    assert w.max() <= C.c_max(beta) * (1 + 1e-12)


@pytest.mark.parametrize("beta", [0.05, 0.3, 1.0, 4.0])
def test_tight_c_min_is_attained_and_c_max_is_the_maximum(beta):
    # phi = theta = e_1 and b = -1 give the extreme logit 2 beta allowed by Assumption 2.
    z = beta * (1.0 - (-1.0))
    assert math.isclose(beta**2 * sigmoid(z) * sigmoid(-z), C.c_min_tight(beta), rel_tol=1e-14)
    grid = np.linspace(-3, 3, 60001)
    assert math.isclose((beta**2 * sigmoid(grid) * sigmoid(-grid)).max(), C.c_max(beta), rel_tol=1e-12)


def test_printed_c_min_threshold_is_the_root_of_the_two_constants():
    root = brentq(lambda b: C.c_min_printed(b) - C.c_min_tight(b), 0.05, 2.0, xtol=1e-15)
    assert abs(root - C.PRINTED_C_MIN_BETA_MIN) < 1e-10
    assert abs(C.PRINTED_C_MIN_BETA_MIN - 0.5 * math.log(1.839286755214161)) < 1e-12
    u = C.TRIBONACCI
    assert abs(u**3 - u**2 - u - 1) < 1e-12


@SETTINGS
@given(beta=st.floats(0.001, 10.0))
def test_printed_c_min_is_valid_exactly_above_the_threshold(beta):
    printed, tight = C.c_min_printed(beta), C.c_min_tight(beta)
    if abs(beta - C.PRINTED_C_MIN_BETA_MIN) > 1e-6:
        assert C.printed_c_min_valid(beta) == (printed <= tight)


def test_numeric_example_of_the_c_min_correction():
    # beta = 0.1: the printed constant overstates the smallest weight by ~62%.
    assert C.c_min_printed(0.1) / 0.01 == pytest.approx(0.40131, abs=1e-5)
    assert C.c_min_tight(0.1) / 0.01 == pytest.approx(0.247517, abs=1e-6)  # e^.2/(1+e^.2)^2
    assert not C.printed_c_min_valid(0.1)
    # beta = 1: both valid, the printed one is 5.8x looser.
    assert C.c_min_tight(1.0) == pytest.approx(0.104994, abs=1e-6)
    assert C.c_min_printed(1.0) == pytest.approx(0.0179862, abs=1e-7)


def test_bad_inputs_name_the_field():
    with pytest.raises(ValueError, match="beta"):
        C.c_max(0)
    with pytest.raises(ValueError, match="beta"):
        C.c_min_tight(-1)
    with pytest.raises(ValueError, match="form"):
        C.c_min(1.0, form="paper")
