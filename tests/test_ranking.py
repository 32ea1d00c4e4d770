"""Plackett–Luce rankings (sim.ranking) against independent references.

References: finite differences (gradient, Hessian), brute-force enumeration of the K! rankings
(normalisation, expected information), the pairwise DPO model of sim.dpo at K = 2 (loss,
Hessian, MLE), the explicit log det (greedy gains), brute force over subsets (first pick), and
the rank-one greedy of sim.design at K = 2. Each reference is shown to reject a mutant.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from sim import ranking as R
from sim.dpo import dpo_hessian, dpo_loss, fit_dpo, logistic_weight


def _instance(M=25, K=4, d=3, seed=0):
    rng = np.random.default_rng(seed)
    psi = rng.standard_normal((M, K, d))
    b = rng.standard_normal((M, K))
    theta = rng.standard_normal(d)
    return psi, b, 0.7, theta


def _fd_grad(f, x, eps=1e-6):
    e = np.eye(x.size)
    return np.array([(f(x + eps * e[k]) - f(x - eps * e[k])) / (2 * eps) for k in range(x.size)])


def test_probabilities_sum_to_one_over_all_rankings():
    psi, b, beta, th = _instance(K=4)
    total = sum(np.exp(R.ranking_log_prob(psi, b, beta, th, np.broadcast_to(t, (25, 4))))
                for t in itertools.permutations(range(4)))
    assert np.allclose(total, 1.0, atol=1e-12)


def test_gradient_and_hessian_match_finite_differences():
    psi, b, beta, th = _instance()
    tau = R.sample_rankings(psi, b, beta, th, seed=1)
    g = R.pl_gradient(th, psi, b, beta, tau, 0.1)
    assert np.allclose(g, _fd_grad(lambda t: R.pl_loss(t, psi, b, beta, tau, 0.1), th), atol=1e-6)
    H = R.pl_hessian(th, psi, b, beta, tau, 0.1)
    fdH = np.array([_fd_grad(lambda t: R.pl_gradient(t, psi, b, beta, tau, 0.1)[k], th)
                    for k in range(th.size)])
    assert np.allclose(H, fdH, atol=1e-6)
    # mutant: the stage Laplacians without their cross terms (off-diagonals dropped)
    a_full = R.stage_laplacian(psi, b, beta, th, tau)
    a_bad = np.einsum("mkk->mk", a_full)[:, :, None] * np.eye(4)
    H_bad = beta**2 * np.einsum("mkd,mkl,mle->de", psi, a_bad, psi) + 0.1 * np.eye(3)
    assert not np.allclose(H_bad, fdH, atol=1e-6)


def test_k2_is_the_pairwise_dpo_model():
    psi, b, beta, th = _instance(M=60, K=2)
    tau = R.sample_rankings(psi, b, beta, th, seed=2)
    phi, bb = psi[:, 0] - psi[:, 1], b[:, 0] - b[:, 1]
    s = (tau[:, 0] == 0).astype(np.int8)
    assert R.pl_loss(th, psi, b, beta, tau, 0.1) == pytest.approx(dpo_loss(th, phi, bb, beta, s, 0.1),
                                                                  rel=1e-12)
    assert np.allclose(R.pl_hessian(th, psi, b, beta, tau, 0.1), dpo_hessian(th, phi, bb, beta, 0.1),
                       atol=1e-12)
    fit = R.fit_pl(psi, b, beta, tau, fit_ridge=0.1)
    assert fit.converged
    assert np.allclose(fit.theta, fit_dpo(phi, bb, beta, s, fit_ridge=0.1).theta, atol=1e-7)
    # mutant: swapping the labels' orientation moves the pairwise MLE far away
    assert not np.allclose(fit.theta, fit_dpo(phi, bb, beta, 1 - s, fit_ridge=0.1).theta, atol=1e-3)


def test_expected_information_by_enumeration_and_monte_carlo():
    psi, b, beta, th = _instance(M=5, K=3)
    exact = R.expected_laplacian(psi, b, beta, th)
    brute = np.zeros_like(exact)
    for t in itertools.permutations(range(3)):
        tt = np.broadcast_to(t, (5, 3))
        brute += (np.exp(R.ranking_log_prob(psi, b, beta, th, tt))[:, None, None]
                  * R.stage_laplacian(psi, b, beta, th, tt))
    assert np.allclose(exact, brute, atol=1e-14)
    # rows of a stage Laplacian sum to zero; it is PSD
    assert np.allclose(exact.sum(axis=2), 0, atol=1e-12)
    assert np.linalg.eigvalsh(exact).min() > -1e-12
    # K = 2: the expected information is Lemma 1's mu(1-mu) phi phi^T (independent of the label)
    psi2, b2 = psi[:, :2], b[:, :2]
    F = R.information_factors(psi2, b2, beta, th)
    phi = psi2[:, 0] - psi2[:, 1]
    w = beta**2 * logistic_weight(beta * (phi @ th - (b2[:, 0] - b2[:, 1])))
    assert np.allclose(np.einsum("mdc,mec->mde", F, F), w[:, None, None]
                       * np.einsum("md,me->mde", phi, phi), atol=1e-12)


def test_monte_carlo_expectation_above_exact_limit_needs_a_seed():
    psi, b, beta, th = _instance(M=2, K=R.EXACT_MAX_K + 1, d=2)
    with pytest.raises(ValueError, match="seed"):
        R.expected_laplacian(psi, b, beta, th)
    a = R.expected_laplacian(psi, b, beta, th, n_mc=64, seed=0)
    assert np.allclose(a, R.expected_laplacian(psi, b, beta, th, n_mc=64, seed=0))


def test_sampler_frequencies_match_pl_probabilities():
    """Gumbel-max sampler vs the exact PL law on one K = 3 prompt, n = 40,000 draws.

    Hoeffding per ranking with a union bound over the 6 rankings: P(any |f - p| > eps) <=
    12 exp(-2 n eps^2) = 1e-6 at eps = 0.0202: false failure <= 1e-6. Power: the mutant that
    samples with the rewards' sign flipped (worst first) moves some ranking's frequency by
    > 0.2 here, so it is rejected with probability 1 - 1e-6 (same bound).
    """
    rng = np.random.default_rng(3)
    psi1, b1 = rng.standard_normal((1, 3, 2)), rng.standard_normal((1, 3))
    th = np.array([1.0, -0.5])
    n = 40_000
    psi, b = np.repeat(psi1, n, axis=0), np.repeat(b1, n, axis=0)
    eps = np.sqrt(np.log(12 / 1e-6) / (2 * n))
    perms = list(itertools.permutations(range(3)))
    exact = np.array([np.exp(R.ranking_log_prob(psi1, b1, 1.0, th, np.array([t])))[0]
                      for t in perms])

    def freqs(tau):
        return np.array([np.mean(np.all(tau == t, axis=1)) for t in perms])

    assert np.max(np.abs(freqs(R.sample_rankings(psi, b, 1.0, th, seed=4)) - exact)) <= eps
    flipped = R.sample_rankings(psi, b, 1.0, -th, seed=4)
    assert np.max(np.abs(freqs(flipped) - exact)) > eps


def test_greedy_tuple_gains_are_log_det_increments_and_first_pick_is_brute_force():
    psi, b, beta, th = _instance(M=12, K=3, d=3)
    F = R.information_factors(psi, b, beta, th)
    des = R.greedy_tuples(F, 4, gamma=0.5)
    assert des.logdet == pytest.approx(R.tuple_logdet(F, des.indices, 0.5), rel=1e-12)
    assert des.gains.sum() == pytest.approx(des.logdet - 3 * np.log(0.5), rel=1e-12)
    singles = [R.tuple_logdet(F, [i], 0.5) for i in range(12)]
    assert des.indices[0] == int(np.argmax(singles))
    # each later pick is the brute-force best extension of the earlier picks
    for t in range(1, 4):
        ext = [R.tuple_logdet(F, list(des.indices[:t]) + [i], 0.5) if i not in des.indices[:t]
               else -np.inf for i in range(12)]
        assert des.indices[t] == int(np.argmax(ext))


def test_k2_tuple_greedy_equals_the_rank_one_engine():
    from sim.design import greedy_select
    psi, b, beta, th = _instance(M=40, K=2, d=4, seed=5)
    F = R.information_factors(psi, b, beta, th)
    phi = psi[:, 0] - psi[:, 1]
    w = beta**2 * logistic_weight(beta * (phi @ th - (b[:, 0] - b[:, 1])))
    ours = R.greedy_tuples(F, 10, gamma=1.0).indices
    ref = greedy_select(phi, 10, gamma=1.0, weights=w).indices
    assert np.array_equal(ours, ref)
    # mutant: unweighted vectors (ignoring the PL information) pick differently here
    assert not np.array_equal(greedy_select(phi, 10, gamma=1.0).indices, ours)


def test_env_recovers_theta_and_validates():
    env = R.ranking_env(400, 4, 3, seed=0, theta_norm=2.0)
    assert env.rankings.shape == (400, 4)
    assert np.linalg.norm(env.theta_star - env.theta_true) < 0.6 * np.linalg.norm(env.theta_true)
    with pytest.raises(ValueError, match="K"):
        R.ranking_env(10, 1, 3, seed=0)
    with pytest.raises(ValueError, match="rankings: row 1"):
        R.RankingData(psi=env.psi[:2], b=env.b[:2], rankings=np.array([[0, 1, 2, 3], [0, 0, 1, 2]]))
