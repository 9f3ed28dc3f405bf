"""`tailored.tuning.tune`: defaults first, best never worse than the defaults on validation, deterministic for a
seed, validation carved from the given (training) data only, rating metrics minimised."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pytest

import tailored.tuning as tuning
from tailored.data.dataset import Dataset
from tailored.errors import ConfigError
from tailored.models.base import params_of
from tailored.split import carve_validation, split_per_user
from tailored.pipeline import build_recommender
from tailored.tuning import score_on, tune, validation_method

KEY = ["user_id", "item_id", "timestamp"]


def implicit_dataset(seed: int = 0) -> Dataset:
    """Users in two taste groups over 30 items, unique pairs, timestamps."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(60):
        group = np.arange(15) if u % 2 else np.arange(15, 30)
        p = np.full(30, 0.2 / 15)
        p[group] = 0.8 / 15
        for j, i in enumerate(rng.choice(30, 10, replace=False, p=p)):
            rows.append((f"u{u}", f"i{i}", 1.0, 1_700_000_000 + 100 * u + j))
    return Dataset.from_frame(pd.DataFrame(rows, columns=["user_id", "item_id", "value", "timestamp"]))


def ratings_dataset() -> Dataset:
    rng = np.random.default_rng(1)
    users, items = rng.normal(size=(40, 2)), rng.normal(size=(25, 2))
    rows = []
    for u in range(40):
        for i in rng.choice(25, 12, replace=False):
            value = float(np.clip(np.rint(3 + users[u] @ items[i] + rng.normal(scale=0.3)), 1, 5))
            rows.append((f"r{u}", f"m{i}", value, 1_700_000_000 + 50 * u + int(i)))
    return Dataset.from_frame(pd.DataFrame(rows, columns=["user_id", "item_id", "value", "timestamp"]))


def rows_of(dataset: Dataset) -> Counter:
    return Counter(map(tuple, dataset.to_frame()[KEY].astype(str).to_numpy()))


@pytest.fixture(scope="module")
def data() -> Dataset:
    return implicit_dataset()


@pytest.fixture(scope="module")
def ease_result(data: Dataset) -> tuning.TuneResult:
    return tune(data, "ease", "ndcg@10", trials=5, seed=3)


def test_defaults_are_trial_zero(data: Dataset, ease_result: tuning.TuneResult) -> None:
    trials = ease_result.trials
    assert len(trials) == 5 and trials["number"].tolist() == list(range(5))
    defaults = params_of(build_recommender("ease", {}).scorer) | {"weighting": "raw"}
    first = trials.iloc[0]
    for name in tuning.search_space("ease"):
        assert first[f"params_{name}"] == defaults[name], name
    assert ease_result.default_value == pytest.approx(first["value"])
    # the default value is the defaults' score on the validation split tune carves (per_user for ndcg)
    split = carve_validation(data, method="per_user", seed=3)
    assert ease_result.default_value == pytest.approx(score_on(build_recommender("ease", {}), split, "ndcg@10"))


def test_best_is_at_least_the_defaults(ease_result: tuning.TuneResult) -> None:
    assert ease_result.validation == "per_user" and ease_result.metric == "ndcg@10"
    assert ease_result.best_value >= ease_result.default_value
    assert ease_result.best_value == pytest.approx(ease_result.trials["value"].max())
    assert set(ease_result.best_params) == set(tuning.search_space("ease"))
    build_recommender("ease", ease_result.best_params)  # usable as given


def test_tuning_is_deterministic_for_a_seed(data: Dataset, ease_result: tuning.TuneResult) -> None:
    again = tune(data, "ease", "ndcg@10", trials=5, seed=3)
    pd.testing.assert_frame_equal(again.trials, ease_result.trials)
    assert again.best_params == ease_result.best_params and again.best_value == ease_result.best_value


def test_validation_is_carved_from_the_given_training_data_only(monkeypatch: pytest.MonkeyPatch) -> None:
    full = implicit_dataset(seed=4)
    outer = split_per_user(full, 0.2, seed=11)
    carved = []

    def spy(*args, **kwargs):
        result = carve_validation(*args, **kwargs)
        carved.append((args, kwargs, result))
        return result

    monkeypatch.setattr(tuning, "carve_validation", spy)
    result = tune(outer.train, "ease", "hr@10", trials=2, seed=5)
    assert len(carved) == 1
    (given, *_), _, split = carved[0]
    assert given is outer.train
    assert result.validation == "leave_last_out"
    inner = rows_of(split.train) + rows_of(split.test)
    assert inner == rows_of(outer.train), "validation split = a partition of the training data"
    assert not set(inner) & set(rows_of(outer.test)), "no test row reaches tuning"
    assert split.test.to_frame()["user_id"].is_unique  # leave-last-out: one validation row per user


@pytest.mark.parametrize(("metric", "method"), [("hr@10", "leave_last_out"), ("HR@5", "leave_last_out"),
                                                 ("rmse", "random"), ("mae", "random"), ("ndcg@10", "per_user"),
                                                 ("recall@20", "per_user")])
def test_validation_method_follows_the_metric(metric: str, method: str) -> None:
    assert validation_method(metric) == method


def test_explicit_validation_and_fixed_parameters(data: Dataset) -> None:
    result = tune(data, "ease", "recall@10", trials=2, seed=1, validation="random", fixed={"reg": 50.0})
    assert result.validation == "random"
    assert result.best_params["reg"] == 50.0
    assert "params_reg" not in result.trials.columns


def test_rating_metric_is_minimised_for_mf() -> None:
    ratings = ratings_dataset()
    result = tune(ratings, "mf", "rmse", trials=4, seed=2, fixed={"epochs": 30, "burn_in": 5})
    assert result.validation == "random" and result.metric == "rmse"
    values = result.trials["value"]
    assert result.best_value == pytest.approx(values.min())
    assert result.best_value <= result.default_value
    assert 0 < result.best_value < 4
    assert result.best_params["epochs"] == 30


def test_unknown_metric_and_algorithm_fail_early(data: Dataset) -> None:
    with pytest.raises(ConfigError):
        tune(data, "ease", "nonsense@10", trials=1)
    with pytest.raises(ConfigError, match="nope"):
        tune(data, "nope", "ndcg@10", trials=1)


def test_rating_metric_with_implicit_algorithm_is_rejected(data: Dataset) -> None:
    with pytest.raises(ConfigError, match="rmse"):
        tune(data, "ease", "rmse", trials=1)
