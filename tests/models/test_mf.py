"""Bayesian biased matrix factorisation (``mf``): recovery, cold fallbacks, clipping, determinism."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tailored.data.dataset import Dataset
from tailored.errors import ConfigError
from tailored.eval.metrics import rmse
from tailored.models import create_scorer
from tailored.models.base import fitted_state
from tailored.models.mf import MatrixFactorizationScorer
from tailored.pipeline.recommender import Recommender

FAST = {"epochs": 30, "burn_in": 10}


def planted_ratings(seed: int = 0, noise: float = 0.1) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Ratings ``3 + b_u + b_i + p_u . q_i + noise`` of rank 2 on 40% of 150 x 120 pairs; 10% of them held out."""
    rng = np.random.default_rng(seed)
    n_users, n_items = 150, 120
    truth = (
        3.0
        + rng.normal(0, 0.3, (n_users, 1))
        + rng.normal(0, 0.3, (1, n_items))
        + rng.normal(0, 0.8, (n_users, 2)) @ rng.normal(0, 0.8, (2, n_items))
    )
    users, items = np.nonzero(rng.random((n_users, n_items)) < 0.4)
    frame = pd.DataFrame(
        {
            "user_id": [f"u{u}" for u in users],
            "item_id": [f"i{i}" for i in items],
            "value": truth[users, items] + rng.normal(0, noise, len(users)),
        }
    )
    held_out = rng.random(len(frame)) < 0.1
    return frame[~held_out], frame[held_out]


@pytest.fixture(scope="module")
def planted() -> tuple[Dataset, pd.DataFrame, MatrixFactorizationScorer]:
    train, test = planted_ratings()
    dataset = Dataset.from_frame(train)
    return dataset, test, MatrixFactorizationScorer(**FAST).fit(dataset)


def test_recovers_a_planted_low_rank_matrix(planted) -> None:
    dataset, test, scorer = planted
    recommender = Recommender(scorer).fit(dataset)
    predictions = recommender.predict(test.user_id.to_numpy(), test.item_id.to_numpy())
    truth = test.value.to_numpy()
    bias_only = rmse(np.full(len(truth), dataset.values.mean()), truth)
    assert rmse(predictions, truth) < 0.15  # the noise is 0.1
    assert rmse(predictions, truth) < 0.2 * bias_only


def test_is_registered_as_an_explicit_scorer() -> None:
    scorer = create_scorer("mf", {"factors": "4"})
    assert isinstance(scorer, MatrixFactorizationScorer)
    assert scorer.factors == 4 and scorer.explicit


def test_unknown_users_and_items_get_the_global_mean_plus_the_known_bias(planted) -> None:
    _, _, scorer = planted
    predictions = scorer.predict(np.array([-1, 3, -1]), np.array([5, -1, -1]))
    expected = [
        scorer.global_mean_ + scorer.item_bias_[5],
        scorer.global_mean_ + scorer.user_bias_[3],
        scorer.global_mean_,
    ]
    np.testing.assert_allclose(predictions, expected)


def test_recommender_predicts_every_pair_including_unknown_ids(planted) -> None:
    dataset, _, scorer = planted
    recommender = Recommender(scorer).fit(dataset)
    predictions = recommender.predict(["u0", "stranger", "stranger"], ["i0", "i0", "new-item"])
    assert np.isfinite(predictions).all()
    assert predictions[2] == pytest.approx(scorer.global_mean_)


def test_predictions_are_clipped_to_the_training_range_and_scores_are_not() -> None:
    rng = np.random.default_rng(1)
    users, items = np.nonzero(rng.random((40, 30)) < 0.5)
    generous = users < 10  # a quarter of the users rate every item 5
    values = np.where(generous, 5.0, rng.integers(1, 6, len(users)))
    frame = pd.DataFrame({"user_id": users.astype(str), "item_id": items.astype(str), "value": values})
    dataset = Dataset.from_frame(frame)
    scorer = MatrixFactorizationScorer(**FAST).fit(dataset)
    scores = scorer.score(np.arange(dataset.n_users))
    assert scores.max() > 5.0
    all_users, all_items = np.indices(scores.shape).reshape(2, -1)
    predictions = scorer.predict(all_users, all_items)
    assert predictions.min() >= 1.0 and predictions.max() == 5.0
    np.testing.assert_allclose(predictions, np.clip(scores.ravel(), 1.0, 5.0), rtol=1e-5)


def test_same_seed_same_model_and_another_seed_another(planted) -> None:
    dataset, _, scorer = planted
    again = MatrixFactorizationScorer(**FAST).fit(dataset)
    for name, value in fitted_state(scorer).items():
        np.testing.assert_array_equal(value, fitted_state(again)[name], err_msg=name)
    other = MatrixFactorizationScorer(**FAST, seed=1).fit(dataset)
    assert not np.array_equal(other.user_factors_, scorer.user_factors_)


def test_burn_in_must_leave_samples() -> None:
    dataset = Dataset.from_frame(pd.DataFrame({"user_id": ["a"], "item_id": ["x"], "value": [3.0]}))
    with pytest.raises(ConfigError, match="burn_in=5 must lie in"):
        MatrixFactorizationScorer(epochs=5, burn_in=5).fit(dataset)
