"""Bayesian biased matrix factorisation for explicit ratings, sampled by Gibbs sampling.

R. Salakhutdinov and A. Mnih. Bayesian Probabilistic Matrix Factorization using Markov Chain Monte Carlo. ICML 2008.
The model is the biased MF of Koren, Bell and Volinsky (Matrix Factorization Techniques for Recommender Systems,
IEEE Computer 2009), ``r_ui ~ N(mu + b_u + b_i + p_u . q_i, 1 / alpha)``, with the biases folded into the factors:
a user's vector ``[b_u, p_u]`` meets an item's design row ``[1, q_i]`` against the target ``r_ui - mu - b_i``
(and symmetrically for items), so each half-sweep is one Bayesian linear regression per user (per item).

Every vector has a Gaussian prior whose mean and precision have a Gaussian-Wishart hyperprior (paper eq. 5 and 14,
``mu0 = 0, beta0 = 2, nu0 = d, W0 = I``); the noise precision ``alpha`` is sampled under a Gamma(1, 1) prior as in
libFM's MCMC (Rendle, Factorization Machines with libFM, ACM TIST 2012) instead of being fixed at 2, so the
rating scale need not be known. All users (items) are drawn at once: their normal-equation matrices are built as
``rated @ (Z outer Z)`` (``rated`` holds a 1 per rating) and solved with batched Cholesky factors. Predictions
average the sweeps after burn-in (paper eq. 10); the average of ``p_u . q_i`` over S samples is the dot product of
the samples' factors stacked side by side and divided by sqrt(S), so the fitted state is an ordinary biased MF
with S * factors columns.

Defaults (10 factors, 100 sweeps, 20 of them burn-in) were chosen on a random 20% of each MovieLens 100K
``uN.base`` file (``tailored benchmark movielens-100k --validation``); the figures are in docs/benchmarks.md.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import ClassVar, Self

import numpy as np
import scipy.sparse as sp

from tailored.data.dataset import Dataset
from tailored.errors import ConfigError
from tailored.models.base import Int, check_fitted, register

logger = logging.getLogger(__name__)

PRIOR_STRENGTH = 2.0  # beta0: pseudo-observations behind the hyperprior's mean
NOISE_SHAPE, NOISE_RATE = 1.0, 1.0  # Gamma prior of the noise precision alpha
INITIAL_NOISE_PRECISION = 2.0  # the paper's fixed alpha, used for the first sweep
INITIAL_SCALE = 0.1


@register("mf")
@dataclass(eq=False)
class MatrixFactorizationScorer:
    """Biased MF ``mu + b_u + b_i + p_u . q_i`` averaged over ``epochs - burn_in`` Gibbs samples.

    ``predict`` clips to the training rating range and falls back to ``mu + b_i`` / ``mu + b_u`` / ``mu`` for
    unknown users / items / both. ``score`` gives the same predicted ratings unclipped, so ranking keeps the order
    among items predicted above the top of the scale.
    """

    factors: int = 10
    epochs: int = 100
    burn_in: int = 20
    seed: int = 0

    explicit: ClassVar[bool] = True
    handles_cold_users: ClassVar[bool] = False
    handles_cold_items: ClassVar[bool] = False
    search_space: ClassVar[dict[str, Int]] = {"factors": Int(2, 40, log=True), "epochs": Int(40, 200, log=True)}

    def fit(self, dataset: Dataset) -> Self:
        if not 0 <= self.burn_in < self.epochs:
            raise ConfigError(
                f"burn_in={self.burn_in} must lie in [0, epochs={self.epochs}); lower it or raise epochs."
            )
        rng = np.random.default_rng(self.seed)
        users, items = dataset.user_index, dataset.item_index
        ratings = dataset.values.astype(np.float64)
        n_users, n_items = dataset.n_users, dataset.n_items
        mean = float(ratings.mean())
        user_order, rated_by_user = rating_layout(users, items, (n_users, n_items))
        item_order, rated_by_item = rating_layout(items, users, (n_items, n_users))

        # column 0 holds the bias, columns 1: the factors
        user_vectors = np.hstack([np.zeros((n_users, 1)), rng.normal(0.0, INITIAL_SCALE, (n_users, self.factors))])
        item_vectors = np.hstack([np.zeros((n_items, 1)), rng.normal(0.0, INITIAL_SCALE, (n_items, self.factors))])
        noise_precision = INITIAL_NOISE_PRECISION
        user_samples, item_samples = [], []
        for sweep in range(self.epochs):
            target = ratings - mean - item_vectors[items, 0]
            user_vectors = sample_vectors(
                rated_by_user, target[user_order], with_bias_column(item_vectors), *sample_prior(user_vectors, rng),
                noise_precision, rng,
            )
            target = ratings - mean - user_vectors[users, 0]
            user_design = with_bias_column(user_vectors)
            item_vectors = sample_vectors(
                rated_by_item, target[item_order], user_design, *sample_prior(item_vectors, rng), noise_precision, rng
            )
            errors = target - np.einsum("ij,ij->i", user_design[users], item_vectors[items])
            squared_error = float(errors @ errors)
            noise_precision = rng.gamma(NOISE_SHAPE + len(ratings) / 2, 1.0 / (NOISE_RATE + squared_error / 2))
            logger.debug(
                "mf sweep=%d train_rmse=%.4f noise_precision=%.3f",
                sweep, np.sqrt(squared_error / len(ratings)), noise_precision,
            )
            if sweep >= self.burn_in:
                user_samples.append(user_vectors)
                item_samples.append(item_vectors)

        scale = np.sqrt(len(user_samples))
        self.global_mean_ = mean
        self.rating_min_ = float(ratings.min())
        self.rating_max_ = float(ratings.max())
        self.user_bias_ = np.mean([sample[:, 0] for sample in user_samples], axis=0)
        self.item_bias_ = np.mean([sample[:, 0] for sample in item_samples], axis=0)
        self.user_factors_ = (np.hstack([sample[:, 1:] for sample in user_samples]) / scale).astype(np.float32)
        self.item_factors_ = (np.hstack([sample[:, 1:] for sample in item_samples]) / scale).astype(np.float32)
        logger.info("mf fitted samples=%d noise_std=%.4f", len(user_samples), 1.0 / np.sqrt(noise_precision))
        return self

    def score(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        check_fitted(self, "user_factors_")
        items = np.arange(len(self.item_bias_)) if items is None else np.asarray(items)
        interaction = self.user_factors_[users] @ self.item_factors_[items].T
        return (self.global_mean_ + self.user_bias_[users, None] + self.item_bias_[None, items] + interaction).astype(
            np.float32
        )

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Clipped ratings for aligned (user, item) pairs; -1 marks an id unseen in training."""
        check_fitted(self, "user_factors_")
        users, items = np.asarray(users), np.asarray(items)
        known_user, known_item = users >= 0, items >= 0
        both = known_user & known_item
        predictions = np.full(len(users), self.global_mean_)
        predictions[known_user] += self.user_bias_[users[known_user]]
        predictions[known_item] += self.item_bias_[items[known_item]]
        predictions[both] += np.einsum("ij,ij->i", self.user_factors_[users[both]], self.item_factors_[items[both]])
        return np.clip(predictions, self.rating_min_, self.rating_max_)


def rating_layout(rows: np.ndarray, columns: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, sp.csr_matrix]:
    """The ratings' order row by row, and a CSR matrix with a 1 per rating in that order (repeats kept apart).

    A target vector taken in that order is the data of a CSR matrix with the same structure.
    """
    order = np.argsort(rows, kind="stable")
    pointers = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=shape[0]))])
    return order, sp.csr_matrix((np.ones(len(rows)), columns[order], pointers), shape=shape)


def with_bias_column(vectors: np.ndarray) -> np.ndarray:
    """Design rows ``[1, factors]``: the other side's bias enters with weight one."""
    return np.hstack([np.ones((len(vectors), 1)), vectors[:, 1:]])


def sample_prior(vectors: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Draw the prior mean and precision from their Gaussian-Wishart posterior given the current vectors (eq. 14)."""
    count, dimension = vectors.shape
    average = vectors.mean(axis=0)
    centred = vectors - average
    strength = PRIOR_STRENGTH + count
    shrinkage = PRIOR_STRENGTH * count / strength * np.outer(average, average)
    scale_inverse = np.eye(dimension) + centred.T @ centred + shrinkage
    scale = np.linalg.inv(scale_inverse)
    from scipy.stats import wishart  # imported here: scipy.stats costs half a second at start-up

    precision = wishart.rvs(df=dimension + count, scale=(scale + scale.T) / 2, random_state=rng)
    mean = rng.multivariate_normal(count * average / strength, np.linalg.inv(strength * precision))
    return mean, precision


def sample_vectors(
    rated: sp.csr_matrix,
    target: np.ndarray,
    design: np.ndarray,
    prior_mean: np.ndarray,
    prior_precision: np.ndarray,
    noise_precision: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Draw every row's vector from its Gaussian conditional (eq. 12-13), all rows at once.

    ``rated`` (rows x columns, from ``rating_layout``) holds a 1 per rating, ``target`` the regression targets in
    the same order and ``design`` the other side's ``[1, factors]`` rows.
    """
    dimension = design.shape[1]
    upper_rows, upper_columns = np.triu_indices(dimension)
    gram = np.asarray(rated @ (design[:, upper_rows] * design[:, upper_columns]))
    precision = np.empty((rated.shape[0], dimension, dimension))
    precision[:, upper_rows, upper_columns] = gram
    precision[:, upper_columns, upper_rows] = gram
    precision = noise_precision * precision + prior_precision
    targets = sp.csr_matrix((target, rated.indices, rated.indptr), shape=rated.shape)
    right = noise_precision * np.asarray(targets @ design) + prior_precision @ prior_mean
    # precision = L L^T, so x = L^-T (L^-1 right + z) has mean precision^-1 right and covariance precision^-1
    lower = np.linalg.cholesky(precision)
    whitened = np.linalg.solve(lower, right[:, :, None]) + rng.standard_normal((len(right), dimension, 1))
    return np.linalg.solve(lower.mT, whitened)[:, :, 0]
