"""Exact position marginals of rankings by perturbed scores (`tailored.policies.marginals`) and of softmax
(Plackett-Luce): against enumeration of every ordered slate, and against sampling."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats

from tailored.policies.base import Candidates, parse_policy
from tailored.policies.marginals import gauss_legendre, position_marginals


def plackett_luce_by_enumeration(log_weights: np.ndarray, k: int) -> np.ndarray:
    """Sums the probability of every ordered slate of k distinct candidates (each draw over the ones left)."""
    weights = np.exp(log_weights - log_weights.max())
    n = len(weights)
    marginals = np.zeros((n, k))
    for slate in itertools.permutations(range(n), k):
        left, probability = list(range(n)), 1.0
        for c in slate:
            probability *= weights[c] / weights[left].sum()
            left.remove(c)
        marginals[list(slate), np.arange(k)] += probability
    return marginals


def softmax_pool(scores: np.ndarray) -> Candidates:
    return Candidates(np.arange(len(scores)).astype(str), scores, np.zeros(len(scores), bool))


def standardised(scores: np.ndarray) -> np.ndarray:
    return (scores - scores.mean()) / scores.std()


@pytest.mark.parametrize("temperature", [0.05, 0.3, 1.0, 5.0])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_softmax_marginals_equal_enumeration(temperature: float, seed: int) -> None:
    scores = np.random.default_rng(seed).normal(size=5) * [1, 3, 0.1, 2, 1]
    expected = plackett_luce_by_enumeration(standardised(scores) / temperature, 3)
    marginals = parse_policy(f"softmax:temperature={temperature}").marginals(softmax_pool(scores), 3)
    np.testing.assert_allclose(marginals, expected, rtol=0, atol=1e-10)


def test_softmax_wide_spreads_and_ties() -> None:
    """Scores far apart (a near-deterministic ranking), tied, or all equal (uniform)."""
    for scores, k in [(np.array([9.0, 3.0, 2.9, -4.0, -30.0, 0.0]), 4), (np.array([1.0, 1.0, 1.0, 0.0, 0.0]), 3),
                      (np.full(5, 2.5), 3), (np.array([2.0, 1.0, 0.0]), 3)]:
        policy = parse_policy("softmax:temperature=0.2")
        expected = plackett_luce_by_enumeration(standardised(scores) / 0.2 if scores.std() else scores * 0, k)
        np.testing.assert_allclose(policy.marginals(softmax_pool(scores), k), expected, rtol=0, atol=1e-10)


def test_softmax_matches_sampling_frequencies() -> None:
    scores = np.random.default_rng(3).normal(size=8)
    policy, pool, draws = parse_policy("softmax:temperature=0.7"), softmax_pool(scores), 8000
    marginals = policy.marginals(pool, 4)
    rng, counts = np.random.default_rng(11), np.zeros((8, 4))
    for _ in range(draws):
        slate = policy.choose(pool, 4, rng)
        np.testing.assert_allclose(slate.propensities, marginals[slate.chosen, np.arange(4)], rtol=0, atol=1e-12)
        counts[slate.chosen, np.arange(4)] += 1
    for position in range(4):  # one chi-square goodness-of-fit test per position
        expected = marginals[:, position] * draws
        assert stats.chisquare(counts[:, position], expected).pvalue > 1e-4


@pytest.mark.parametrize("temperature", [0.05, 0.5, 3.0])
def test_softmax_on_many_candidates_sums_to_one_and_prunes_the_hopeless(temperature: float) -> None:
    scores = np.random.default_rng(4).normal(size=200)
    marginals = parse_policy(f"softmax:temperature={temperature}").marginals(softmax_pool(scores), 10)
    np.testing.assert_allclose(marginals.sum(axis=0), 1.0, atol=1e-9)
    assert np.all(marginals.sum(axis=1) <= 1 + 1e-9)
    mu = standardised(scores) / temperature
    hopeless = mu < np.sort(mu)[-10] + np.log(1e-12 / 10)  # P(top 10) < 10 * w_c / w_(10) < 1e-12
    assert (hopeless.sum() > 100) == (temperature == 0.05)
    assert np.all(marginals[hopeless] == 0) and np.all(marginals[~hopeless].sum(axis=1) > 0)
    assert np.all(np.diff(marginals[np.argsort(-scores)[:5], 0]) <= 0)  # better scores lead more often


def test_position_marginals_of_gaussian_scores_match_enumeration_free_monte_carlo() -> None:
    """The generic integral with another family (Gaussian perturbations, unequal widths) against a large sample."""
    means, widths = np.array([1.0, 0.5, 0.0, -0.5, 0.2]), np.array([0.5, 1.0, 0.3, 2.0, 0.1])
    nodes, weights = gauss_legendre(np.linspace(-10, 10, 41), 12)
    cdf = stats.norm.cdf(nodes[None, :], means[:, None], widths[:, None])
    pdf = stats.norm.pdf(nodes[None, :], means[:, None], widths[:, None])
    marginals = position_marginals(cdf, pdf, weights, 3)
    np.testing.assert_allclose(marginals.sum(axis=0), 1.0, atol=1e-10)
    draws = 200_000
    values = np.random.default_rng(0).normal(means, widths, size=(draws, 5))
    top = np.argsort(-values, axis=1)[:, :3]
    frequency = np.stack([np.bincount(top[:, p], minlength=5) for p in range(3)], axis=1) / draws
    assert np.all(np.abs(frequency - marginals) <= 5 * np.sqrt(marginals * (1 - marginals) / draws) + 1e-9)
    np.testing.assert_allclose(position_marginals(cdf, pdf, weights, 3, rows=np.array([4, 1])), marginals[[4, 1]])


def test_gauss_legendre_integrates_polynomials_exactly() -> None:
    nodes, weights = gauss_legendre(np.array([0.0, 1.0, 3.0]), 4)
    assert len(nodes) == 8
    np.testing.assert_allclose(weights @ nodes**7, 3.0**8 / 8, rtol=1e-13)


def test_softmax_standardises_over_the_real_scores_and_never_draws_minus_infinity() -> None:
    """`candidates_of` maps a -inf score to float64.min / 4: it must not squash the others' spread, nor be drawn."""
    real = np.array([2.0, 1.0, 0.5, 0.0, -1.0])
    scores = np.concatenate([real, [np.finfo(np.float64).min / 4]])
    policy = parse_policy("softmax:temperature=0.5")
    marginals = policy.marginals(softmax_pool(scores), 3)
    np.testing.assert_allclose(marginals[:5], plackett_luce_by_enumeration(standardised(real) / 0.5, 3), atol=1e-10)
    assert np.all(marginals[5] == 0)
    rng = np.random.default_rng(0)
    assert all(5 not in policy.choose(softmax_pool(scores), 3, rng).chosen for _ in range(200))
